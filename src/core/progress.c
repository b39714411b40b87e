/* Progress reporting on rank 0 (see progress.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hb_progress_init(hb_progress *p, int enabled, double every, long warmup, long sampling,
                      double chains) {
    p->enabled = enabled && every > 0;
    p->tty = isatty(2);
    p->every = p->tty ? 0.2 : every;
    p->t_start = p->t_phase = now();
    p->t_last = p->t_start;
    p->total_warmup = warmup;
    p->total_sampling = sampling;
    p->chains = chains;
    p->accept = p->step_size = 0;
    p->phase = HB_PHASE_WARMUP;
}

static void fmt_time(double s, char *buf, size_t len) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%lds", t);
}

void hb_progress_update(hb_progress *p, hb_phase phase, long iter, double grads) {
    if (!p->enabled) return;
    double t = now();
    if (phase != p->phase) {
        p->phase = phase;
        p->t_phase = t;
    }
    long total = phase == HB_PHASE_WARMUP ? p->total_warmup : p->total_sampling;
    if (t - p->t_last < p->every && iter < total) return;
    p->t_last = t;
    double el = t - p->t_phase;
    double rate = el > 0 ? (double)iter * p->chains / el : 0;
    double grate = el > 0 ? grads / el : 0;
    /* ETA: the rest of this phase, plus the next phase at this phase's rate as a guess. */
    double eta = iter > 0 ? el / (double)iter * (double)(total - iter) : 0;
    if (phase == HB_PHASE_WARMUP && iter > 0) eta += el / (double)iter * (double)p->total_sampling;
    char etab[32];
    fmt_time(eta, etab, sizeof etab);
    fprintf(stderr, "%s%-8s %ld/%ld  %.3g draws/s  %.3g grad/s  accept %.3f  step %.3g  ETA %s%s",
            p->tty ? "\r" : "", phase == HB_PHASE_WARMUP ? "warmup" : "sampling", iter, total, rate,
            grate, p->accept, p->step_size, etab, p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void hb_progress_finish(hb_progress *p, double t_warmup, double t_sampling, double draws) {
    if (!p->enabled) return;
    fprintf(stderr, "%sdone: warmup %.2f s, sampling %.2f s, %.4g draws (%.3g draws/s)\n",
            p->tty ? "\r\033[K" : "", t_warmup, t_sampling, draws,
            t_sampling > 0 ? draws / t_sampling : 0);
}
