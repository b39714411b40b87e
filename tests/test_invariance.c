/* Bitwise invariance: the same config run as 1 rank x 1 thread, 1 x 2, 2 x 1 and 4 x 1
 * (mpirun --oversubscribe) writes identical posterior and sample_stats datasets, for every
 * sampler. 100 chains (padding lanes, uneven rank blocks) and a warmup long enough for
 * several metric windows. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

/* Every dataset under /posterior and /sample_stats as raw bytes, concatenated with names. */
typedef struct blob {
    char *data;
    size_t len;
} blob;

static void append(blob *b, const void *p, size_t n) {
    b->data = realloc(b->data, b->len + n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    blob *b = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), nt = H5Tget_native_type(t, H5T_DIR_ASCEND);
    hid_t s = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(s) * H5Tget_size(nt);
    char *buf = malloc(n ? n : 1);
    if (H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
        append(b, name, strlen(name) + 1);
        append(b, buf, n);
    }
    free(buf);
    H5Sclose(s);
    H5Tclose(nt);
    H5Tclose(t);
    H5Dclose(d);
    return 0;
}

static blob read_all(const char *file) {
    blob b = {0};
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return b;
    const char *groups[] = {"/posterior", "/sample_stats", "/adaptation"};
    for (int i = 0; i < 3; i++) {
        hid_t g = H5Gopen2(f, groups[i], H5P_DEFAULT);
        if (g < 0) continue;
        append(&b, groups[i], strlen(groups[i]) + 1);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &b);
        H5Gclose(g);
    }
    H5Fclose(f);
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
    /* ranks, threads, write batch: the last layout also changes how draws are batched for
       writing, which must not change them either */
    const char *layouts[][3] = {
        {"1", "1", "16"}, {"1", "2", "16"}, {"2", "1", "16"}, {"4", "1", "16"}, {"2", "2", "7"}};
    blob ref = {0};
    for (int k = 0; k < 5; k++) {
        char out[512], *log = NULL;
        snprintf(out, sizeof out, "%s/inv_%s_%sx%s.h5", hbt_tmpdir(), algorithm, layouts[k][0],
                 layouts[k][1]);
        int rc = hbt_sh(&log,
                        "OMP_NUM_THREADS=%s %s -n %s --oversubscribe --bind-to none %s run %s "
                        "--output %s --quiet",
                        layouts[k][1], hbt_env("HB_MPIEXEC"), layouts[k][0], hbt_env("HB_BIN"), cfg,
                        out);
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
