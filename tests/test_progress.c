/* Progress reporting (src/core/progress.c): the lines it prints to a log and a terminal, the
 * rates after a resume, the final line, and `heartbeat run`'s progress end to end (plain lines
 * in a log, only the final line with progress_every = 0, nothing with --quiet, a live line on
 * a terminal through script(1)). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/progress.h"
#include "hbtest.h"

/* Run fn with stderr going to a file; return what it printed (malloc'd). */
static char *capture(void (*fn)(void *), void *arg) {
    char *path = NULL;
    if (asprintf(&path, "%s/stderr.txt", hbt_tmpdir()) < 0) exit(1);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) exit(1);
    dup2(fd, 2);
    close(fd);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1 << 16);
    if (!f || !text) exit(1);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = '\0';
    fclose(f);
    free(path);
    return text;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* The number in the line after the word `key` (e.g. "draws/s" -> the number before it). */
static double number_before(const char *line, const char *key) {
    const char *k = strstr(line, key);
    if (!k) return -1;
    const char *p = k - 1;
    while (p > line && *p == ' ') p--;
    while (p > line && p[-1] != ' ') p--;
    return atof(p);
}

static void log_lines(void *arg) {
    (void)arg;
    hb_progress p;
    hb_progress_init(&p, 1, 1e-9, 100, 1000, 64); /* a line at every update */
    sleep_s(0.05);
    hb_progress_update(&p, HB_PHASE_WARMUP, 50, 50 * 64);
    p.accept = 0.5;
    p.step_size = 0.25;
    hb_progress_update(&p, HB_PHASE_WARMUP, 100, 100 * 64);
    /* Sampling, thinned by 10, resumed at iteration 600 with 600*64 gradients done. */
    p.thin = 10;
    hb_progress_start(&p, HB_PHASE_SAMPLING, 600, 600 * 64);
    sleep_s(0.05);
    hb_progress_update(&p, HB_PHASE_SAMPLING, 700, 700 * 64);
    hb_progress_stop(&p); /* not a terminal: nothing to end */
    hb_progress_finish(&p, 1.5, 2.0, 6400);
}

static void test_log_lines(void) {
    char *t = capture(log_lines, NULL);
    fprintf(stderr, "%s", t);
    CU_ASSERT(strchr(t, '\r') == NULL);
    CU_ASSERT(strstr(t, "\033[K") == NULL);
    char *l1 = strstr(t, "warmup   50/100   50%  ETA ");
    char *l2 = strstr(t, "warmup   100/100  100%  ETA ");
    char *l3 = strstr(t, "sampling 700/1000   70%  ETA ");
    char *l4 = strstr(t, "done: warmup 1.500 s, sampling 2.000 s, 6400 draws (3.2e+03 draws/s, ");
    CU_ASSERT_PTR_NOT_NULL(l1);
    CU_ASSERT_PTR_NOT_NULL(l2);
    CU_ASSERT_PTR_NOT_NULL(l3);
    CU_ASSERT_PTR_NOT_NULL(l4);
    if (l1 && l2 && l3 && l4) {
        *strchr(l1, '\n') = *strchr(l2, '\n') = *strchr(l3, '\n') = '\0';
        /* acceptance and step size only once set, and not carried into sampling */
        CU_ASSERT(strstr(l1, "accept") == NULL && strstr(l1, "step") == NULL);
        CU_ASSERT(strstr(l2, "accept 0.500  step 0.25  elapsed ") != NULL);
        CU_ASSERT(strstr(l3, "accept") == NULL && strstr(l3, "step 0.25") != NULL);
        /* Rates are bounded by the work since the (re)start over the time slept at least:
           warmup 50 x 64 chain-iterations in >= 0.05 s; sampling (700 - 600) / 10 x 64 kept
           draws in >= 0.05 s (counted from 0 they would be 7x that bound). */
        double w = number_before(l1, "draws/s"), s = number_before(l3, "draws/s");
        double g = number_before(l3, "grad/s");
        CU_ASSERT(w > 0 && w <= 1.001 * 50 * 64 / 0.05);
        CU_ASSERT(s > 0 && s <= 1.001 * 100 / 10 * 64 / 0.05);
        CU_ASSERT(g > 0 && g <= 1.001 * 100 * 64 / 0.05);
        /* ETA of sampling: 300 iterations left at >= 0.05 s per 100 */
        CU_ASSERT(strstr(l3, "ETA ?") == NULL);
    }
    free(t);
}

static void quiet_lines(void *arg) {
    int mode = *(int *)arg;
    hb_progress p;
    memset(&p, 0x55, sizeof p); /* init must set every field the final line reads */
    hb_progress_init(&p, mode != 0, mode == 1 || mode == 3 ? 0 : 1e-9, 10, 10, 8);
    hb_progress_update(&p, HB_PHASE_WARMUP, 10, 80);
    hb_progress_update(&p, HB_PHASE_SAMPLING, 10, 80);
    if (mode == 3) p.warmup_used = 7; /* warmup = auto stopped after 7 of 10 */
    hb_progress_finish(&p, 0.25, 0.5, 80);
}

static void test_quiet(void) {
    int mode = 1; /* progress_every = 0: only the final line */
    char *t = capture(quiet_lines, &mode);
    CU_ASSERT_STRING_EQUAL(t, "done: warmup 0.250 s, sampling 0.500 s, 80 draws (160 draws/s, "
                              "0 grad/s)\n");
    free(t);
    mode = 3; /* warmup = auto: the iterations it used */
    t = capture(quiet_lines, &mode);
    CU_ASSERT_STRING_EQUAL(t, "done: warmup 0.250 s (auto: 7 of 10 iterations), sampling 0.500 s, "
                              "80 draws (160 draws/s, 0 grad/s)\n");
    free(t);
    mode = 0; /* --quiet / not rank 0: nothing */
    t = capture(quiet_lines, &mode);
    CU_ASSERT_STRING_EQUAL(t, "");
    free(t);
}

static const char *CFG = "[run]\nseed = 2\nchains = 32\nwarmup = 100\ndraws = 200\nthin = 50\n"
                         "write_batch = 20\noutput = none\nprogress_every = 0.05\n"
                         "[model]\nname = gaussian\ndim = 4\n[sampler]\nalgorithm = mala\n";

static void test_run_log(void) {
    char *cfg = hbt_write_file("progress.ini", CFG);
    char *log = NULL;
    int rc =
        hbt_sh(&log, "OMP_NUM_THREADS=1 %s run %s 2>&1 </dev/null | cat", hbt_env("HB_BIN"), cfg);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(log);
    if (log) {
        CU_ASSERT(strchr(log, '\r') == NULL);
        CU_ASSERT(strstr(log, "warmup   100/100  100%  ETA ") != NULL);
        CU_ASSERT(strstr(log, "sampling 10000/10000  100%  ETA 0s  ") != NULL);
        char *d = strstr(log, "done: warmup ");
        CU_ASSERT(d != NULL && strstr(d, " s, 6400 draws (") != NULL);
        if (!d) fprintf(stderr, "%s", log);
    }
    free(log);
    /* progress_every = 0: the final line only; --quiet: nothing */
    log = NULL;
    rc = hbt_sh(&log, "OMP_NUM_THREADS=1 %s run %s --set run.progress_every=0 2>&1 | cat",
                hbt_env("HB_BIN"), cfg);
    CU_ASSERT(rc == 0 && log && strncmp(log, "done: warmup ", 13) == 0 &&
              strchr(log, '\n') == log + strlen(log) - 1);
    free(log);
    log = NULL;
    rc = hbt_sh(&log, "OMP_NUM_THREADS=1 %s run %s --quiet 2>&1 | cat", hbt_env("HB_BIN"), cfg);
    CU_ASSERT(rc == 0 && log && log[0] == '\0');
    free(log);
    free(cfg);
}

/* On a terminal (script(1) gives the program one): a live line rewritten with \r and cleared
   to the end with ESC [K, then the final line. */
static void test_run_tty(void) {
    if (hbt_sh(NULL, "command -v script >/dev/null") != 0) {
        fprintf(stderr, "  script(1) not installed: terminal case not run\n");
        return;
    }
    char *cfg = hbt_write_file("progress_tty.ini", CFG);
    char *log = NULL;
    int rc = hbt_sh(&log, "OMP_NUM_THREADS=1 script -qec '%s run %s' /dev/null </dev/null",
                    hbt_env("HB_BIN"), cfg);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(log && strstr(log, "\rsampling ") && strstr(log, "\033[K") &&
              strstr(log, "\r\033[Kdone: warmup "));
    if (log && !strstr(log, "\r\033[Kdone: warmup ")) fprintf(stderr, "%s", log);
    free(log);
    free(cfg);
}

int main(void) {
    const hbt_case cases[] = {
        {"progress lines in a log, rates after a resume", test_log_lines},
        {"progress_every = 0 and quiet", test_quiet},
        {"heartbeat run: progress in a log", test_run_log},
        {"heartbeat run: live line on a terminal", test_run_tty},
    };
    return hbt_run_suite("progress", cases, sizeof cases / sizeof cases[0]);
}
