/* Checkpoint and resume (issue 6): for every registered sampler, a run interrupted by SIGTERM
 * in warmup and in sampling and resumed, with a change of ranks x threads between the parts,
 * writes bitwise the datasets of an uninterrupted run; a checkpoint from another config is
 * refused; periodic checkpoints change nothing; a failing write (fault injection) gives exit 4
 * and a file whose committed draws are right; 20 SIGKILLs at random times (fixed seed): every
 * file opens with h5py with the committed draws of the uninterrupted run, and resuming from
 * the last checkpoint completes it bitwise. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hbtest.h"
#include "samplers/sampler.h"

static char *config(const char *tag, const char *algorithm) {
    char text[1024], name[128];
    snprintf(text, sizeof text,
             "[run]\nseed = 77\nchains = 20\nwarmup = 150\ndraws = 120\nwrite_batch = 16\n"
             "[model]\nname = gaussian\ndim = 5\ncorrelation = 0.3\ncondition_number = 4\n"
             "[sampler]\nalgorithm = %s\n",
             algorithm);
    snprintf(name, sizeof name, "ck_%s.ini", tag);
    return hbt_write_file(name, text);
}

/* heartbeat run under mpirun; env is extra VAR=value words (may be ""). */
static int run(const char *env, int ranks, int threads, const char *cfg, const char *out,
               const char *extra, char **log) {
    return hbt_sh(log,
                  "%s OMP_NUM_THREADS=%d %s -n %d --oversubscribe --bind-to none %s run %s "
                  "--output %s --quiet %s",
                  env, threads, hbt_env("HB_MPIEXEC"), ranks, hbt_env("HB_BIN"), cfg, out, extra);
}

static int same_run(const char *a, const char *b) {
    size_t na, nb;
    char *x = hbt_read_run_bytes(a, &na), *y = hbt_read_run_bytes(b, &nb);
    int same = x && y && na == nb && na > 0 && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Interrupt at `at` with ranks1 x threads1, resume with ranks2 x threads2, compare. */
static void interrupt_resume(const char *algorithm, const char *cfg, const char *ref,
                             const char *at, int r1, int t1, int r2, int t2) {
    char out[512], ck[600], env[128], *log = NULL;
    snprintf(out, sizeof out, "%s/ck_%s_%s.h5", hbt_tmpdir(), algorithm, at);
    snprintf(ck, sizeof ck, "%s.ckpt", out);
    snprintf(env, sizeof env, "HB_INTERRUPT_AT=%s", at);
    int rc = run(env, r1, t1, cfg, out, "", &log);
    if (rc != 5) fprintf(stderr, "  %s at %s: exit %d (want 5): %s\n", algorithm, at, rc, log);
    CU_ASSERT_EQUAL(rc, 5);
    CU_ASSERT(log && strstr(log, "checkpoint") && strstr(log, "--resume"));
    CU_ASSERT(exists(ck));
    free(log);
    rc = run("", r2, t2, cfg, out, "--resume", &log);
    if (rc != 0) fprintf(stderr, "  %s resume from %s: exit %d: %s\n", algorithm, at, rc, log);
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    int same = same_run(ref, out);
    if (!same)
        fprintf(stderr, "  %s: interrupted at %s (%dx%d), resumed %dx%d: differs\n", algorithm, at,
                r1, t1, r2, t2);
    CU_ASSERT(same);
    CU_ASSERT(!exists(ck)); /* a completed run removes its checkpoint */
    remove(out);
}

static void test_every_sampler(void) {
    for (const hb_sampler_type *const *t = hb_sampler_types(); *t; t++) {
        const char *a = (*t)->name;
        char *cfg = config(a, a), ref[512], *log = NULL;
        snprintf(ref, sizeof ref, "%s/ck_%s_ref.h5", hbt_tmpdir(), a);
        int rc = run("", 1, 1, cfg, ref, "", &log);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        free(log);
        interrupt_resume(a, cfg, ref, "warmup:60", 1, 1, 2, 1);
        interrupt_resume(a, cfg, ref, "sampling:48", 2, 1, 1, 2);
        remove(ref);
        free(cfg);
    }
}

/* RWMH in 1-d, whose odd iterations take their variates from the batch state the even ones
   left (samplers/rwmh.c): interrupted before an odd iteration in warmup and in sampling (an odd
   warmup length), resumed on other ranks x threads, bitwise the uninterrupted run. */
static void test_rwmh_1d(void) {
    char *cfg = hbt_write_file("ck_rwmh1.ini", "[run]\nseed = 78\nchains = 20\nwarmup = 151\n"
                                               "draws = 120\nwrite_batch = 16\n[model]\n"
                                               "name = mixture\n[sampler]\nalgorithm = rwmh\n");
    char ref[512], *log = NULL;
    snprintf(ref, sizeof ref, "%s/ck_rwmh1_ref.h5", hbt_tmpdir());
    CU_ASSERT_EQUAL_FATAL(run("", 1, 1, cfg, ref, "", &log), 0);
    free(log);
    interrupt_resume("rwmh1d", cfg, ref, "warmup:61", 1, 1, 2, 1);
    interrupt_resume("rwmh1d", cfg, ref, "sampling:48", 2, 1, 1, 2);
    remove(ref);
    free(cfg);
}

/* Heartbeat with [run] warmup = auto: SIGTERM in stage A, in stage C, at the iteration where
   the rule ended warmup and just before it, and in sampling; each resumed on another ranks x
   threads gives the uninterrupted run bitwise (the same warmup_used included). */
static void test_heartbeat_auto(void) {
    char text[1024], ref[512], *log = NULL;
    snprintf(text, sizeof text,
             "[run]\nseed = 77\nchains = 128\nwarmup = auto\nwarmup_max = 400\ndraws = 120\n"
             "write_batch = 16\n[model]\nname = gaussian\ndim = 5\ncorrelation = 0.3\n"
             "condition_number = 4\n[sampler]\nalgorithm = heartbeat\n");
    char *cfg = hbt_write_file("ck_hb_auto.ini", text);
    snprintf(ref, sizeof ref, "%s/ck_hb_auto_ref.h5", hbt_tmpdir());
    CU_ASSERT_EQUAL_FATAL(run("", 1, 1, cfg, ref, "", &log), 0);
    free(log);
    /* the iteration warmup stopped at, from /adaptation/warmup_used */
    char *out = NULL;
    CU_ASSERT_EQUAL(
        hbt_sh(&out, "h5dump -a /adaptation/warmup_used %s | grep -o '(0): [0-9]*'", ref), 0);
    long used = out ? atol(out + 5) : 0;
    free(out);
    fprintf(stderr, "  heartbeat auto: warmup_used %ld of 400\n", used);
    CU_ASSERT_FATAL(used > 60 && used < 400);
    char at[4][32];
    snprintf(at[0], sizeof at[0], "warmup:30");
    snprintf(at[1], sizeof at[1], "warmup:%ld", used - 5);
    snprintf(at[2], sizeof at[2], "warmup:%ld", used - 1);
    snprintf(at[3], sizeof at[3], "warmup:%ld", used);
    for (int k = 0; k < 4; k++) interrupt_resume("heartbeat_auto", cfg, ref, at[k], 1, 1, 2, 1);
    interrupt_resume("heartbeat_auto", cfg, ref, "sampling:48", 2, 1, 1, 2);
    remove(ref);
    free(cfg);
}

static void test_refusals_and_periodic(void) {
    char *cfg = config("misc", "mala"), ref[512], out[512], *log = NULL;
    snprintf(ref, sizeof ref, "%s/ck_misc_ref.h5", hbt_tmpdir());
    snprintf(out, sizeof out, "%s/ck_misc.h5", hbt_tmpdir());
    CU_ASSERT_EQUAL_FATAL(run("", 1, 1, cfg, ref, "", &log), 0);
    free(log);
    /* no checkpoint to resume from */
    int rc = run("", 1, 1, cfg, out, "--resume", &log);
    CU_ASSERT(rc == 4 && log && strstr(log, "cannot open the checkpoint"));
    free(log);
    /* a checkpoint of another config */
    CU_ASSERT_EQUAL(run("HB_INTERRUPT_AT=warmup:30", 1, 1, cfg, out, "", &log), 5);
    free(log);
    rc = run("", 1, 1, cfg, out, "--resume --set run.seed=78", &log);
    CU_ASSERT(rc == 2 && log && strstr(log, "another configuration"));
    free(log);
    rc = run("", 1, 1, cfg, out, "--resume --set sampler.algorithm=rwmh", &log);
    CU_ASSERT(rc == 2 && log && strstr(log, "another configuration"));
    free(log);
    /* a checkpoint at every boundary changes nothing */
    rc = run("", 2, 1, cfg, out, "--set run.checkpoint_every=1e-9", &log);
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    CU_ASSERT(same_run(ref, out));
    /* a failing write: exit 4, a file that opens, committed draws those of the reference */
    rc = run("HB_FAULT_WRITE=3", 2, 1, cfg, out, "", &log);
    CU_ASSERT(rc == 4 && log && strstr(log, "injected"));
    free(log);
    CU_ASSERT_EQUAL(hbt_read_attr_int(out, "draws_committed"), 32);
    rc = hbt_sh(&log, "%s %s/tests/py/check_prefix.py %s %s", hbt_env("HB_PYTHON"),
                hbt_env("HB_SOURCE_DIR"), ref, out);
    CU_ASSERT(rc == 0 && log && atoi(log) == 32);
    free(log);
    /* out of disk (a 2 MB tmpfs, when this process may mount one): exit 4, no file left */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small", hbt_tmpdir());
    if (hbt_sh(&log, "mkdir -p %s && mount -t tmpfs -o size=2m tmpfs %s", dir, dir) == 0) {
        free(log);
        rc = hbt_sh(&log, "%s run %s --output %s/run.h5 --quiet --set run.chains=4000",
                    hbt_env("HB_BIN"), cfg, dir);
        CU_ASSERT(rc == 4 && log && strstr(log, "cannot reserve") && strstr(log, "No space left"));
        free(log);
        rc = hbt_sh(&log, "ls %s | grep -c h5; umount %s", dir, dir);
        CU_ASSERT(log && atoi(log) == 0);
    } else {
        printf("\n  cannot mount a tmpfs here: the out-of-disk case is not run\n");
    }
    free(log);
    remove(ref);
    remove(out);
    free(cfg);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Spawn heartbeat directly (one process, stderr to /dev/null) with `--set draws` when
   draws > 0; delay < 0: wait for it and return its wall time in seconds (negative if it
   failed). Otherwise kill it with SIGKILL after `delay` seconds and return 1 if it had
   finished by then with exit 0, else 0. */
static double spawn_and_kill(const char *cfg, const char *out, int resume, double delay,
                             int draws) {
    char set[64];
    snprintf(set, sizeof set, "run.draws=%d", draws);
    const double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        char *argv[10] = {
            (char *)hbt_env("HB_BIN"), "run", (char *)cfg, "--output", (char *)out, "--quiet"};
        int k = 6;
        if (resume) argv[k++] = "--resume";
        if (draws > 0) argv[k++] = "--set", argv[k++] = set;
        argv[k] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (delay < 0) {
        waitpid(pid, &status, 0);
        const double t = now_s() - t0;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1.0;
    }
    struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
    nanosleep(&ts, NULL);
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 0;
}

static char *kill_config(int draws) {
    char text[1024];
    snprintf(text, sizeof text,
             "[run]\nseed = 5\nchains = 200\nwarmup = 200\ndraws = %d\nthin = 200\n"
             "write_batch = 10\ncheckpoint_every = 0.02\n[model]\nname = gaussian\ndim = 20\n"
             "correlation = 0.3\n[sampler]\nalgorithm = mala\n",
             draws);
    return hbt_write_file("ck_kill.ini", text);
}

static void test_sigkill(void) {
    char ref[512], out[512], ck[600], *log = NULL;
    snprintf(ref, sizeof ref, "%s/ck_kill_ref.h5", hbt_tmpdir());
    snprintf(out, sizeof out, "%s/ck_kill.h5", hbt_tmpdir());
    snprintf(ck, sizeof ck, "%s.ckpt", out);
    /* The run's length and the kill times come from this machine's own timings (a release
       build, a sanitizer build, a loaded machine): startup s0 (a run with one draw), the
       time per draw from a run of 100, then as many draws as take about 6 s (400 .. 5000);
       each kill comes at s0 plus at most 1/22 of the whole run's sampling time, so that 20
       resumed pieces cover at most 20/22 of it (if the machine speeds up, see below). */
    char *cfg = kill_config(100);
    const double s0 = spawn_and_kill(cfg, out, 0, -1.0, 1);
    remove(out);
    remove(ck);
    const double t100 = spawn_and_kill(cfg, out, 0, -1.0, 0);
    remove(out);
    remove(ck);
    free(cfg);
    CU_ASSERT_FATAL(s0 > 0 && t100 > 0);
    const double per_draw = fmax(t100 - s0, 1e-3) / 99;
    const int draws = (int)fmin(5000, fmax(400, 6.0 / per_draw));
    cfg = kill_config(draws);
    const double full = spawn_and_kill(cfg, ref, 0, -1.0, 0); /* the uninterrupted run */
    CU_ASSERT_FATAL(full > s0);
    printf("\n  startup %.2f s, %d draws, whole run %.2f s", s0, draws, full);
    unsigned long long lcg = 20261122;
    int kills = 0, done = 0, opened = 0, spawns = 0, completed = 0;
    /* A run that completes between kills (the machine got faster than when it was timed)
       must equal the reference; the next one starts afresh, until 20 kills have landed. */
    while (kills < 20 && spawns++ < 60) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        double delay = s0 + (full - s0) / 22 * (double)(lcg >> 11) * 0x1.0p-53;
        done = spawn_and_kill(cfg, out, exists(ck), delay, 0) > 0;
        if (done) {
            CU_ASSERT(same_run(ref, out));
            completed++;
            remove(out);
            remove(ck);
            continue;
        }
        kills++;
        if (!exists(out)) continue; /* killed before the output existed */
        int rc = hbt_sh(&log, "%s %s/tests/py/check_prefix.py %s %s", hbt_env("HB_PYTHON"),
                        hbt_env("HB_SOURCE_DIR"), ref, out);
        if (rc != 0) fprintf(stderr, "  kill %d after %.3f s: %s\n", kills, delay, log ? log : "");
        CU_ASSERT_EQUAL(rc, 0);
        opened += rc == 0;
        free(log);
    }
    printf("\n  %d kills, %d files checked, %d runs completed between kills\n", kills, opened,
           completed);
    CU_ASSERT(kills == 20);
    CU_ASSERT(opened >= 10); /* most of them while the file is being written */
    {
        int rc = hbt_sh(&log, "%s run %s --output %s --quiet %s", hbt_env("HB_BIN"), cfg, out,
                        exists(ck) ? "--resume" : "");
        CU_ASSERT_EQUAL(rc, 0);
        free(log);
    }
    CU_ASSERT(same_run(ref, out));
    remove(ref);
    remove(out);
    free(cfg);
}

int main(void) {
    static const hbt_case cases[] = {
        {"every sampler: SIGTERM in warmup and in sampling, resume on other ranks x threads = "
         "uninterrupted",
         test_every_sampler},
        {"rwmh 1-d (paired variates): SIGTERM before odd iterations, resume elsewhere = "
         "uninterrupted",
         test_rwmh_1d},
        {"heartbeat warmup = auto: SIGTERM in stages A and C, at and before the stop, in "
         "sampling; resumed bitwise",
         test_heartbeat_auto},
        {"resume refusals, periodic checkpoints, fault injection, out of disk",
         test_refusals_and_periodic},
        {"20 SIGKILLs: files open, committed draws right, resume completes", test_sigkill},
    };
    return hbt_run_suite("checkpoint", cases, sizeof cases / sizeof *cases);
}
