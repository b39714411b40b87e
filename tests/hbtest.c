/* Shared test helpers (see hbtest.h). */
#define _GNU_SOURCE
#include "hbtest.h"

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/h5in.h"
#include "io/reference.h"

int hbt_run_suite(const char *suite, const hbt_case *cases, size_t n) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    for (size_t i = 0; i < n; i++) CU_add_test(s, cases[i].name, cases[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed == 0 && ran == n) ? 0 : 1;
}

const char *hbt_env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "test environment variable %s is not set (run through ctest)\n", name);
        exit(1);
    }
    return v;
}

const char *hbt_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/hbtest.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

char *hbt_run_cfg(const char *tag, unsigned seed, const char *run_keys, const char *body,
                  const char *launch, char **log) {
    char *out = NULL, *text = NULL, name[128];
    if (asprintf(&out, "%s/%s.h5", hbt_tmpdir(), tag) < 0 ||
        asprintf(&text, "[run]\nseed = %u\noutput = %s\n%s\n%s\n", seed, out, run_keys, body) < 0)
        exit(1);
    snprintf(name, sizeof name, "%s.ini", tag);
    char *cfg = hbt_write_file(name, text), *l = NULL;
    int rc = hbt_sh(&l, "%s %s run %s%s", launch ? launch : "OMP_NUM_THREADS=2", hbt_env("HB_BIN"),
                    cfg, log ? "" : " --quiet");
    if (rc != 0) fprintf(stderr, "  %s: exit %d: %s\n", tag, rc, l ? l : "");
    CU_ASSERT_EQUAL(rc, 0);
    if (log)
        *log = l;
    else
        free(l);
    free(cfg);
    free(text);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

int hbt_expect_config_error(const char *name, const char *ini, const char *what,
                            const char *where) {
    char *cfg = hbt_write_file(name, ini), *log = NULL;
    int rc = hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg);
    int ok = rc == 2 && log && (!what || strstr(log, what)) && (!where || strstr(log, where));
    if (!ok)
        fprintf(stderr, "  %s: exit %d (want 2, '%s' at '%s'): %s\n", name, rc, what ? what : "",
                where ? where : "", log ? log : "");
    CU_ASSERT(ok);
    free(log);
    free(cfg);
    return ok;
}

char *hbt_write_file(const char *name, const char *text) {
    char *path = NULL;
    if (asprintf(&path, "%s/%s", hbt_tmpdir(), name) < 0) exit(1);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

int hbt_sh(char **output, const char *fmt, ...) {
    char *cmd = NULL, *full = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0) exit(1);
    va_end(ap);
    if (asprintf(&full, "(%s) 2>&1", cmd) < 0) exit(1);
    FILE *p = popen(full, "r");
    if (!p) exit(1);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    free(cmd);
    free(full);
    if (output)
        *output = buf;
    else
        free(buf);
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

double *hbt_read_dataset(const char *file, const char *path, size_t *n, size_t dims[4], int *rank) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) {
        H5Fclose(f);
        return NULL;
    }
    hid_t s = H5Dget_space(d);
    hsize_t hd[8] = {0};
    int r = H5Sget_simple_extent_dims(s, hd, NULL);
    size_t total = 1;
    for (int i = 0; i < r; i++) total *= hd[i];
    double *buf = malloc((total ? total : 1) * sizeof *buf);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
    }
    if (dims)
        for (int i = 0; i < r && i < 4; i++) dims[i] = hd[i];
    if (rank) *rank = r;
    *n = total;
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return buf;
}

long long hbt_read_attr_int(const char *file, const char *name) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    long long v = -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a >= 0) {
        if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = -1;
        H5Aclose(a);
    }
    H5Fclose(f);
    return v;
}

double hbt_read_adaptation_attr(const char *file, const char *name) {
    double v = NAN;
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return v;
    hid_t a = H5Aopen_by_name(f, "/adaptation", name, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
        H5Aclose(a);
    }
    H5Fclose(f);
    return v;
}

double hbt_mcse_chain_means(const double *draws, size_t nc, size_t n, double *mean) {
    double m = 0, s2 = 0;
    for (size_t c = 0; c < nc; c++) {
        double cm = 0;
        for (size_t j = 0; j < n; j++) cm += draws[c * n + j];
        cm /= (double)n;
        double dlt = cm - m;
        m += dlt / (double)(c + 1);
        s2 += dlt * (cm - m);
    }
    if (mean) *mean = m;
    return sqrt(s2 / (double)(nc - 1) / (double)nc);
}

typedef struct hbt_blob {
    char *data;
    size_t len;
} hbt_blob;

static void blob_append(hbt_blob *b, const void *p, size_t n) {
    b->data = realloc(b->data, b->len + n);
    if (!b->data) abort();
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static herr_t blob_visit(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    hbt_blob *b = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), nt = H5Tget_native_type(t, H5T_DIR_ASCEND);
    hid_t s = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(s) * H5Tget_size(nt);
    char *buf = malloc(n ? n : 1);
    if (H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
        blob_append(b, name, strlen(name) + 1);
        blob_append(b, buf, n);
    }
    free(buf);
    H5Sclose(s);
    H5Tclose(nt);
    H5Tclose(t);
    H5Dclose(d);
    return 0;
}

char *hbt_read_run_bytes(const char *file, size_t *len) {
    hbt_blob b = {0};
    *len = 0;
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    const char *groups[] = {"/posterior", "/sample_stats", "/adaptation"};
    for (int i = 0; i < 3; i++) {
        hid_t g = H5Gopen2(f, groups[i], H5P_DEFAULT);
        if (g < 0) continue;
        blob_append(&b, groups[i], strlen(groups[i]) + 1);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, blob_visit, &b);
        H5Gclose(g);
    }
    H5Fclose(f);
    *len = b.len;
    return b.data;
}

void hbt_validate_run_file(const char *target, const char *run_file, const char *ref_path,
                           size_t chains, size_t draws) {
    hb_error err;
    hb_error_clear(&err);
    hb_reference *ref = NULL;
    hb_h5in *f = NULL;
    hb_validation v;
    CU_ASSERT_FATAL(hb_reference_load(&ref, ref_path, &err) == HB_OK);
    CU_ASSERT_FATAL(hb_h5in_open(&f, run_file, &err) == HB_OK);
    int rc = hb_validate_run(f, ref, &v, &err);
    if (rc) fprintf(stderr, "  %s: %s\n", target, err.msg);
    CU_ASSERT_FATAL(rc == HB_OK);
    if (chains) CU_ASSERT(v.n_draws == draws && v.n_chains == chains);
    for (size_t b = 0; b < v.n_blocks; b++) {
        const hb_vblock *vb = &v.blocks[b];
        printf("\n    %s %s: b2 = %.2e, max |z| = %.2f (%s)", target, vb->rb->block, vb->b2,
               vb->max_abs_z, vb->rows[vb->worst].ref->name);
        for (size_t j = 0; j < vb->rb->n; j++) {
            const hb_vrow *r = &vb->rows[j];
            HBT_ASSERT_Z(r->ref->name, r->mean, r->ref->mean, r->se, 4.0);
        }
        if (!(vb->b2 < 0.01)) fprintf(stderr, "  %s: b2 = %g\n", vb->rb->block, vb->b2);
        CU_ASSERT(vb->b2 < 0.01);
    }
    hb_validation_free(&v);
    hb_h5in_close(f);
    hb_reference_free(ref);
}
