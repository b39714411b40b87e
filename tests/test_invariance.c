/* Bitwise invariance: the same config run as 1 rank x 1 thread, 1 x 2, 2 x 1 and 4 x 1
 * (mpirun --oversubscribe) writes identical posterior and sample_stats datasets, for every
 * sampler. 100 chains (padding lanes, uneven rank blocks) and a warmup long enough for
 * several metric windows. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

typedef struct blob {
    char *data;
    size_t len;
} blob;

static blob read_all(const char *file) {
    blob b;
    b.data = hbt_read_run_bytes(file, &b.len);
    return b;
}

static void check_sampler(const char *algorithm) {
    char text[1024], name[64];
    snprintf(text, sizeof text,
             "[run]\nseed = 99\nchains = 100\nwarmup = 150\ndraws = 40\n"
             "[model]\nname = gaussian\ndim = 5\ncondition_number = 20\ncorrelation = 0.3\n"
             "[sampler]\nalgorithm = %s\n",
             algorithm);
    snprintf(name, sizeof name, "inv_%s.ini", algorithm);
    char *cfg = hbt_write_file(name, text);
    /* ranks, threads, write batch: 40 draws in 3 or 6 batches, so batch k is written while
       k + 1 is sampled (with one thread per rank a second thread samples meanwhile); the
       last layout also changes how draws are batched for writing, which must not change
       them either */
    const char *layouts[][3] = {
        {"1", "1", "16"}, {"1", "2", "16"}, {"2", "1", "16"}, {"4", "1", "16"}, {"2", "2", "7"}};
    blob ref = {0};
    for (int k = 0; k < 5; k++) {
        char out[512], *log = NULL;
        snprintf(out, sizeof out, "%s/inv_%s_%sx%s.h5", hbt_tmpdir(), algorithm, layouts[k][0],
                 layouts[k][1]);
        int rc = hbt_sh(&log,
                        "OMP_NUM_THREADS=%s %s -n %s --oversubscribe --bind-to none %s run %s "
                        "--output %s --quiet --set run.write_batch=%s",
                        layouts[k][1], hbt_env("HB_MPIEXEC"), layouts[k][0], hbt_env("HB_BIN"), cfg,
                        out, layouts[k][2]);
        if (rc != 0)
            fprintf(stderr, "  %s %s ranks x %s threads failed: %s\n", algorithm, layouts[k][0],
                    layouts[k][1], log);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        free(log);
        CU_ASSERT_EQUAL(hbt_read_attr_int(out, "draws_committed"), 40);
        CU_ASSERT_EQUAL(hbt_read_attr_int(out, "n_ranks"), atoi(layouts[k][0]));
        blob b = read_all(out);
        CU_ASSERT(b.len > 100 * 40 * 5 * 8);
        if (k == 0) {
            ref = b;
        } else {
            int same = b.len == ref.len && memcmp(b.data, ref.data, b.len) == 0;
            if (!same)
                fprintf(stderr, "  %s: %s ranks x %s threads differs from 1 x 1\n", algorithm,
                        layouts[k][0], layouts[k][1]);
            CU_ASSERT(same);
            free(b.data);
        }
    }
    free(ref.data);
    free(cfg);
}

static void test_mala(void) {
    check_sampler("mala");
}
static void test_rwmh(void) {
    check_sampler("rwmh");
}
static void test_ula(void) {
    check_sampler("ula");
}

int main(void) {
    static const hbt_case cases[] = {
        {"mala: 1x1 = 1x2 = 2x1 = 4x1 = 2x2 (other write batch)", test_mala},
        {"rwmh: 1x1 = 1x2 = 2x1 = 4x1 = 2x2 (other write batch)", test_rwmh},
        {"ula: 1x1 = 1x2 = 2x1 = 4x1 = 2x2 (other write batch)", test_ula},
    };
    return hbt_run_suite("invariance", cases, sizeof cases / sizeof *cases);
}
