/* Progress reporting on rank 0 (see progress.h). */
#define _DEFAULT_SOURCE /* TIOCGWINSZ */
#define _POSIX_C_SOURCE 200809L
#include "core/progress.h"

#include <math.h>
#include <sys/ioctl.h>
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
    p->enabled = enabled;
    p->periodic = enabled && every > 0;
    p->tty = isatty(2);
    p->live = 0;
    /* On a terminal the line is rewritten five times a second; in logs every `every` s. */
    p->every = p->tty ? 0.2 : every;
    p->t_start = p->t_phase = now();
    p->t_last = p->t_start;
    p->total_warmup = warmup;
    p->total_sampling = sampling;
    p->thin = 1;
    p->iter0 = 0;
    p->grads0 = 0;
    p->grads[0] = p->grads[1] = 0;
    p->t_grads = p->t_start;
    p->chains = chains;
    p->accept = NAN;
    p->step_size = NAN;
    p->phase = HB_PHASE_WARMUP;
    p->warmup_used = 0;
}

void hb_progress_start(hb_progress *p, hb_phase phase, long iter, double grads) {
    if (phase != p->phase) p->accept = NAN; /* the last phase's acceptance is stale */
    p->phase = phase;
    p->t_phase = now();
    p->iter0 = iter;
    p->grads0 = grads;
    p->grads[phase] = grads;
    p->t_grads = p->t_phase;
}

static void fmt_time(double s, char *buf, size_t len) {
    if (!(s >= 0) || s > 1e9) {
        snprintf(buf, len, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 86400)
        snprintf(buf, len, "%ldd%02ldh", t / 86400, (t / 3600) % 24);
    else if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%lds", t);
}

void hb_progress_update(hb_progress *p, hb_phase phase, long iter, double grads) {
    if (phase != p->phase) hb_progress_start(p, phase, iter, grads);
    double t = now();
    if (grads >= p->grads0) {
        p->grads[phase] = grads;
        p->t_grads = t;
    }
    if (!p->periodic) return;
    long total = phase == HB_PHASE_WARMUP ? p->total_warmup : p->total_sampling;
    if (t - p->t_last < p->every && iter < total) return;
    p->t_last = t;
    double el = t - p->t_phase;
    long done = iter > p->iter0 ? iter - p->iter0 : 0;
    double per_iter = done > 0 ? el / (double)done : NAN; /* seconds per iteration */
    double per_draw = phase == HB_PHASE_SAMPLING && p->thin > 1 ? (double)p->thin : 1.0;
    double rate = el > 0 ? (double)done * p->chains / per_draw / el : 0;
    double grate = el > 0 && grads > p->grads0 ? (grads - p->grads0) / el : 0;
    /* ETA: the rest of this phase at its rate; in warmup plus the sampling iterations at the
       warmup's rate (a guess: a sampling iteration may cost more or less than a warmup one). */
    double eta = per_iter * (double)(total - iter);
    if (phase == HB_PHASE_WARMUP) eta += per_iter * (double)p->total_sampling;
    char etab[32], elb[32], accb[32] = "", stepb[32] = "";
    fmt_time(eta, etab, sizeof etab);
    fmt_time(t - p->t_start, elb, sizeof elb);
    if (!isnan(p->accept)) snprintf(accb, sizeof accb, "  accept %.3f", p->accept);
    if (!isnan(p->step_size)) snprintf(stepb, sizeof stepb, "  step %.3g", p->step_size);
    char line[256];
    snprintf(line, sizeof line,
             "%-8s %ld/%ld  %3.0f%%  ETA %s  %.3g draws/s  %.3g grad/s%s%s  elapsed %s",
             phase == HB_PHASE_WARMUP ? "warmup" : "sampling", iter, total,
             total > 0 ? 100.0 * (double)iter / (double)total : 100.0, etab, rate, grate, accb,
             stepb, elb);
    if (p->tty) {
        /* A live line longer than the terminal would wrap and \r would not return over it. */
        struct winsize ws;
        if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && ws.ws_col <= sizeof line)
            line[ws.ws_col - 1] = '\0';
        fprintf(stderr, "\r%s\033[K", line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
    p->live = p->tty;
    fflush(stderr);
}

void hb_progress_stop(hb_progress *p) {
    if (p->live) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    p->live = 0;
}

void hb_progress_finish(hb_progress *p, double t_warmup, double t_sampling, double draws) {
    if (!p->enabled) return;
    if (p->live) fputs("\r\033[K", stderr);
    p->live = 0;
    /* Gradients per second of the sampling phase as this process measured it (after a resume,
       of the part since the checkpoint); draws per second over the whole run. */
    double gs = 0;
    if (p->phase == HB_PHASE_SAMPLING && p->t_grads > p->t_phase)
        gs = (p->grads[HB_PHASE_SAMPLING] - p->grads0) / (p->t_grads - p->t_phase);
    char used[96] = "";
    if (p->warmup_used > 0)
        snprintf(used, sizeof used, " (auto: %ld of %ld iterations)", p->warmup_used,
                 p->total_warmup);
    fprintf(stderr,
            "done: warmup %.3f s%s, sampling %.3f s, %.0f draws (%.3g draws/s, %.3g grad/s)\n",
            t_warmup, used, t_sampling, draws, t_sampling > 0 ? draws / t_sampling : 0, gs);
    fflush(stderr);
}
