/* Tests of `heartbeat summary` on run files written by the output writer: the printed numbers
 * equal the library's on the same draws (all formats), partial files use only committed draws,
 * options and their errors, warnings, and broken files (corrupt, truncated, missing group). */
#define _GNU_SOURCE
#include "hbtest.h"
#include "heartbeat/diag.h"
#include "io/h5out.h"

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *g_bin;

/* ---- writing run files ---- */

static const hb_stat_spec stats_spec[] = {{"lp", HB_STAT_F64},
                                          {"acceptance_rate", HB_STAT_F64},
                                          {"step_size", HB_STAT_F64},
                                          {"diverging", HB_STAT_BOOL},
                                          {"n_steps", HB_STAT_I64}};
#define N_STATS 5

typedef struct spec {
    size_t nc, nd, n_write, batch;
    const char *const *names;
    size_t dim;
    const char *algorithm; /* NULL: attribute not written */
    const char *config;
    int with_times;
} spec;

static uint64_t rng_state;
static double unif(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}
static double gauss(void) {
    return sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif());
}

/* Draws of coordinate j: AR(1) chains with coordinate-dependent mean, scale, correlation;
   the last coordinate of a spec named "const" is constant. Stored [coord][chain][draw]. */
static double *make_draws(const spec *s, uint64_t seed) {
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    double *x = malloc(s->dim * s->nc * s->nd * sizeof *x);
    for (size_t j = 0; j < s->dim; j++) {
        double rho = 0.2 * (double)(j % 4), scale = 1.0 + (double)j, mu = (double)j - 1.0;
        int constant = strcmp(s->names[j], "const") == 0;
        for (size_t c = 0; c < s->nc; c++) {
            double y = gauss() / sqrt(1 - rho * rho);
            for (size_t d = 0; d < s->nd; d++) {
                y = rho * y + gauss();
                x[(j * s->nc + c) * s->nd + d] = constant ? 1.25 : mu + scale * y;
            }
        }
    }
    return x;
}

static double stat_value(size_t k, size_t c, size_t d) {
    switch (k) {
    case 0:
        return -0.5 * (double)((c * 7 + d * 3) % 11);
    case 1:
        return (double)((c + d) % 5) / 5.0;
    default:
        return 0.25;
    }
}

static int write_run(const char *path, const spec *s, const double *x) {
    hb_out_layout L = {0};
    L.n_chains = s->nc;
    L.chain0 = 0;
    L.n_local = s->nc;
    L.n_draws = s->nd;
    L.dim = s->dim;
    L.coord_names = s->names;
    L.n_stats = N_STATS;
    L.stats = stats_spec;
    /* about a megabyte per chunk, as the run loop chooses */
    L.chunk_chains = ((size_t)1 << 20) / (8 * s->batch * s->dim);
    if (L.chunk_chains < 1) L.chunk_chains = 1;
    if (L.chunk_chains > s->nc) L.chunk_chains = s->nc;
    L.chunk_draws = s->batch;
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, path, &L, &err);
    if (rc == HB_OK && s->algorithm) rc = hb_h5out_attr_string(o, "algorithm", s->algorithm, &err);
    if (rc == HB_OK && s->config) rc = hb_h5out_attr_string(o, "config", s->config, &err);
    if (rc == HB_OK && s->with_times) {
        rc = hb_h5out_attr_double(o, "wall_time_sampling", 2.0, &err);
        if (rc == HB_OK) rc = hb_h5out_attr_int(o, "gradient_evals_sampling", 123, &err);
    }
    for (size_t d0 = 0; rc == HB_OK && d0 < s->n_write; d0 += s->batch) {
        size_t nb = s->n_write - d0 < s->batch ? s->n_write - d0 : s->batch, n = s->nc * nb;
        double *pos = malloc(n * s->dim * sizeof *pos), *lp = malloc(n * sizeof *lp);
        double *acc = malloc(n * sizeof *acc), *step = malloc(n * sizeof *step);
        int8_t *dv = malloc(n);
        int64_t *ns = malloc(n * sizeof *ns);
        for (size_t c = 0; c < s->nc; c++)
            for (size_t d = 0; d < nb; d++) {
                size_t r = c * nb + d, gd = d0 + d;
                for (size_t j = 0; j < s->dim; j++)
                    pos[r * s->dim + j] = x[(j * s->nc + c) * s->nd + gd];
                lp[r] = stat_value(0, c, gd);
                acc[r] = stat_value(1, c, gd);
                step[r] = stat_value(2, c, gd);
                dv[r] = (int8_t)((c + gd) % 50 == 0);
                ns[r] = 3;
            }
        const void *st[N_STATS] = {lp, acc, step, dv, ns};
        rc = hb_h5out_write_draws(o, d0, nb, pos, st, &err);
        free(pos);
        free(lp);
        free(acc);
        free(step);
        free(dv);
        free(ns);
    }
    int crc = o ? hb_h5out_close(o, &err) : rc;
    if (rc || crc) fprintf(stderr, "writing %s: %s\n", path, err.msg);
    return rc ? rc : crc;
}

static char *tpath(const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", hbt_tmpdir(), name) < 0) abort();
    return p;
}

/* ---- reading the program's output ---- */

/* Parse `--format csv` output: rows of name and numbers (NA -> NaN); returns the row count. */
typedef struct csv_row {
    char name[64];
    double v[11];
    int nv;
} csv_row;

static int parse_csv(const char *text, csv_row *rows, int max) {
    int n = -1; /* skip the header */
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && *p != '#' && strncmp(p, "heartbeat", 9) != 0) {
            if (n >= 0 && n < max) {
                csv_row *r = &rows[n];
                memset(r, 0, sizeof *r);
                const char *q = p;
                if (*q == '"') q++;
                size_t k = 0;
                while (*q && *q != '"' && *q != ',' && k + 1 < sizeof r->name) r->name[k++] = *q++;
                while (*q && *q != ',' && *q != '\n') q++;
                while (*q == ',' && r->nv < 11) {
                    q++;
                    if (strncmp(q, "NA", 2) == 0) {
                        r->v[r->nv++] = NAN;
                        q += 2;
                    } else {
                        char *end;
                        r->v[r->nv++] = strtod(q, &end);
                        q = end;
                    }
                }
            }
            n++;
        }
        p = e ? e + 1 : NULL;
    }
    return n;
}

static int close_rel(double a, double b, double tol) {
    if (isnan(a) && isnan(b)) return 1;
    return fabs(a - b) <= tol * fmax(fabs(b), 1e-300);
}

/* The CSV rows of coordinates (lp__ skipped) against hb_diag_compute on the first nd_used
   draws of each coordinate. */
static void check_csv_numbers(const char *out, const spec *s, const double *x, size_t nd_used) {
    csv_row rows[32];
    int n = parse_csv(out, rows, 32);
    CU_ASSERT_EQUAL_FATAL(n, (int)s->dim + 1);
    CU_ASSERT_STRING_EQUAL(rows[0].name, "lp__");
    hb_diag_ctx *ctx;
    hb_diag_work *w;
    CU_ASSERT_EQUAL_FATAL(hb_diag_ctx_create(&ctx, s->nc, nd_used, NULL), HB_OK);
    CU_ASSERT_EQUAL_FATAL(hb_diag_work_create(&w, ctx), HB_OK);
    double *buf = malloc(s->nc * nd_used * sizeof *buf);
    for (size_t j = 0; j < s->dim; j++) {
        for (size_t c = 0; c < s->nc; c++)
            memcpy(buf + c * nd_used, x + (j * s->nc + c) * s->nd, nd_used * sizeof *buf);
        hb_diag_stats st;
        unsigned what = HB_DIAG_RANK | HB_DIAG_MEAN | (s->nc >= 16 ? HB_DIAG_NESTED : 0u);
        CU_ASSERT_EQUAL(hb_diag_compute(ctx, w, buf, what, &st), HB_OK);
        double want[11] = {st.mean, st.mcse_mean, st.sd,       st.mad,  st.q05,        st.q50,
                           st.q95,  st.ess_bulk,  st.ess_tail, st.rhat, st.rhat_nested};
        const csv_row *r = &rows[j + 1];
        CU_ASSERT_STRING_EQUAL(r->name, s->names[j]);
        CU_ASSERT_EQUAL(r->nv, s->nc >= 16 ? 11 : 10);
        for (int k = 0; k < r->nv; k++) {
            int ok = close_rel(r->v[k], want[k], 1e-13);
            if (!ok)
                fprintf(stderr, "  %s column %d: printed %.17g, library %.17g\n", r->name, k,
                        r->v[k], want[k]);
            CU_ASSERT(ok);
        }
    }
    free(buf);
    hb_diag_work_free(w);
    hb_diag_ctx_free(ctx);
}

/* ---- cases ---- */

static const char *const names5[] = {"mu", "theta[1]", "theta[2]", "theta[3]", "const"};
static const char *const names_mat[] = {"a[1,1]", "a[1,2]", "a[2,1]", "a[2,2]", "b"};

static void test_formats(void) {
    spec s = {16, 200, 200, 50, names5, 5, "mala", NULL, 1};
    double *x = make_draws(&s, 1);
    char *p = tpath("good.h5"), *out = NULL;
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);

    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    printf("\n%s", out);
    const char *must[] = {"Mean",
                          "MCSE",
                          "StdDev",
                          "MAD",
                          "5%",
                          "50%",
                          "95%",
                          "ESS_bulk",
                          "ESS_tail",
                          "R_hat",
                          "nR_hat",
                          "lp__",
                          "theta[3]",
                          "divergences",
                          "mean acceptance",
                          "step size",
                          "gradient evaluations",
                          "ESS_bulk per second",
                          "per 1000 gradient evaluations",
                          "constant draws"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!strstr(out, must[i])) fprintf(stderr, "  table lacks '%s'\n", must[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, must[i]));
    }
    CU_ASSERT_PTR_NULL(strstr(out, " nan"));
    CU_ASSERT_PTR_NULL(strstr(out, " -nan"));
    free(out);

    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv 2>/dev/null", g_bin, p), 0);
    check_csv_numbers(out, &s, x, s.nd);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "name,Mean,MCSE,StdDev,MAD,5%,50%,95%,ESS_bulk,ESS_tail,"
                                       "R_hat,nR_hat\n"));
    free(out);

    /* JSON: valid (Python's parser), NaN as null */
    const char *py = hbt_env("HB_PYTHON");
    CU_ASSERT_EQUAL(hbt_sh(&out,
                           "%s summary %s --format json 2>/dev/null | %s -c 'import json,sys; "
                           "d=json.load(sys.stdin); v=d[\"variables\"]; "
                           "print(len(v), v[1][\"name\"], v[-1][\"ess_bulk\"], "
                           "d[\"sample_stats\"][\"divergences\"], d[\"complete\"])'",
                           g_bin, p, py),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 mu None 64 True"));
    if (!strstr(out, "6 mu None 64 True")) fprintf(stderr, "  json check: %s\n", out);
    free(out);

    /* --vars: variables, coordinates, lp__; unknown names are usage errors */
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv --vars theta", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"theta[2]\""));
    CU_ASSERT_PTR_NULL(strstr(out, "\"mu\""));
    CU_ASSERT_PTR_NULL(strstr(out, "lp__"));
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format=csv --vars=theta[2],lp__", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"theta[2]\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"lp__\""));
    CU_ASSERT_PTR_NULL(strstr(out, "\"theta[1]\""));
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --vars nope", g_bin, p), HB_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "nope"));
    free(out);

    /* superchains: a divisor is accepted and reported, a non-divisor is a usage error */
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --superchain-size 8", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 superchains of 8"));
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --superchain-size 5", g_bin, p), HB_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "does not divide"));
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format xml", g_bin, p), HB_ERR_USAGE);
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --bogus", g_bin, p), HB_ERR_USAGE);
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary", g_bin), HB_ERR_USAGE);
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary --help", g_bin), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--superchain-size"));
    free(out);
    free(p);
    free(x);
}

static void test_matrix_names(void) {
    /* a 2-d variable: coordinate names with commas, selectable with --vars */
    spec s = {4, 60, 60, 60, names_mat, 5, "mala", NULL, 0};
    double *x = make_draws(&s, 9);
    char *p = tpath("matrix.h5"), *out = NULL;
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv --vars 'a[1,2],b' 2>&1", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"a[1,2]\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"b\""));
    CU_ASSERT_PTR_NULL(strstr(out, "\"a[2,1]\""));
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv --vars a 2>&1", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"a[2,2]\""));
    CU_ASSERT_PTR_NULL(strstr(out, "\"b\""));
    free(out);
    free(p);
    free(x);
}

static void test_partial_file(void) {
    /* a run interrupted after 120 of 200 draws: only those are summarised, and it says so */
    spec s = {8, 200, 120, 40, names5, 4, "mala", NULL, 0};
    double *x = make_draws(&s, 2);
    char *p = tpath("partial.h5"), *out = NULL;
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "120 committed draws of 200"));
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv 2>/dev/null", g_bin, p), 0);
    check_csv_numbers(out, &s, x, 120);
    CU_ASSERT_PTR_NULL(strstr(out, "nR_hat")); /* fewer than 16 chains */
    free(out);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format json 2>&1 >/dev/null", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "committed"));
    free(out);
    free(p);
    free(x);
}

static void test_unadjusted_warning(void) {
    spec s = {4, 40, 40, 40, names5, 2, "ula", NULL, 0};
    double *x = make_draws(&s, 3);
    char *p = tpath("ula.h5"), *out = NULL;
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unadjusted sampler (ula)"));
    free(out);
    free(p);
    s.algorithm = "heartbeat";
    s.config = "[run]\nchains = 4\n[heartbeat]\nsubchain_length = 8\nadjust = none ; original\n";
    p = tpath("hb_none.h5");
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "heartbeat with adjust = none"));
    free(out);
    free(p);
    /* the mode as the sampler reports it: attribute adjust of /adaptation */
    s.config = "[heartbeat]\n";
    p = tpath("hb_adapt_none.h5");
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    hid_t h = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gcreate2(h, "/adaptation", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    hid_t a = H5Acreate2(g, "adjust", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(H5Awrite(a, st, "none") >= 0);
    H5Aclose(a);
    H5Tclose(st);
    H5Sclose(sp);
    H5Gclose(g);
    H5Fclose(h);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "heartbeat with adjust = none"));
    free(out);
    free(p);
    /* adjusted heartbeat, and a file without the attributes: no warning */
    s.config = "[heartbeat]\nadjust = mala\n";
    p = tpath("hb_mala.h5");
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "unadjusted"));
    free(out);
    free(p);
    s.algorithm = NULL;
    s.config = NULL;
    p = tpath("noattr.h5");
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s, x), HB_OK);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s", g_bin, p), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "unadjusted"));
    free(out);
    free(p);
    free(x);
}

/* ---- broken files ---- */

static void copy_file(const char *from, const char *to) {
    char *out = NULL;
    CU_ASSERT_EQUAL(hbt_sh(&out, "cp '%s' '%s'", from, to), 0);
    free(out);
}

static void overwrite(const char *path, long off, size_t len, unsigned char byte) {
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, off, SEEK_SET);
    for (size_t i = 0; i < len; i++) fputc(byte ^ (unsigned char)(i * 37), f);
    fclose(f);
}

static void expect_io_error(const char *path, const char *what, const char *msg_part) {
    char *out = NULL;
    int rc = hbt_sh(&out, "%s summary %s", g_bin, path);
    if (rc != HB_ERR_IO || (msg_part && !strstr(out, msg_part)))
        fprintf(stderr, "  %s: exit %d, output: %s\n", what, rc, out);
    CU_ASSERT_EQUAL(rc, HB_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "heartbeat summary: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, path)); /* names the file */
    if (msg_part) CU_ASSERT_PTR_NOT_NULL(strstr(out, msg_part));
    free(out);
}

static void set_root_int(const char *path, const char *name, long long v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CU_ASSERT(a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0);
    H5Aclose(a);
    H5Fclose(f);
}

static void test_bad_files(void) {
    spec s = {8, 100, 100, 50, names5, 3, "mala", NULL, 0};
    double *x = make_draws(&s, 4);
    char *good = tpath("ref.h5"), *p = tpath("bad.h5");
    CU_ASSERT_EQUAL_FATAL(write_run(good, &s, x), HB_OK);

    expect_io_error("/nonexistent-dir/run.h5", "missing file", "No such file");

    copy_file(good, p); /* garbage over the superblock signature */
    overwrite(p, 0, 4096, 0x5a);
    expect_io_error(p, "corrupt signature", "not an HDF5 file");

    copy_file(good, p); /* signature intact, superblock and root object header garbage */
    overwrite(p, 8, 2040, 0xa5);
    expect_io_error(p, "corrupt header", NULL);

    copy_file(good, p); /* truncated to a third */
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CU_ASSERT_EQUAL(truncate(p, size / 3), 0);
    expect_io_error(p, "truncated", NULL);

    /* a heartbeat file without /posterior */
    hid_t h = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 9);
    hid_t a = H5Acreate2(h, "inference_library", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, "heartbeat");
    H5Aclose(a);
    long long zero = 0;
    a = H5Acreate2(h, "draws_committed", H5T_NATIVE_LLONG, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &zero);
    H5Aclose(a);
    H5Gclose(H5Gcreate2(h, "/sample_stats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Tclose(st);
    H5Sclose(sp);
    H5Fclose(h);
    expect_io_error(p, "missing /posterior", "missing group /posterior");

    /* an HDF5 file that is not a run file */
    h = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    expect_io_error(p, "foreign HDF5", "not a heartbeat run file");

    /* a run file that has not committed a draw yet */
    copy_file(good, p);
    set_root_int(p, "draws_committed", 0);
    expect_io_error(p, "no committed draws", "draws_committed = 0");

    free(good);
    free(p);
    free(x);
}

/* ---- big shapes through the program ---- */

/* A minimal run file written with plain HDF5 (the layout of DESIGN.md 4: root attributes,
   /posterior/chain, /posterior/draw, /posterior/mu (chain, draw)). The 10^6-chain file is
   written this way because the parallel writer takes ~40 s for it (MPI datatypes per chain
   block); the summary reads it through the same reader as any run file. */
static void write_minimal(const char *path, size_t nc, size_t nd, const double *x) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 9);
    hid_t a = H5Acreate2(f, "inference_library", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, "heartbeat");
    H5Aclose(a);
    long long committed = (long long)nd;
    a = H5Acreate2(f, "draws_committed", H5T_NATIVE_LLONG, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &committed);
    H5Aclose(a);
    H5Tclose(st);
    H5Sclose(sp);
    hid_t g = H5Gcreate2(f, "/posterior", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    size_t len[2] = {nc, nd};
    const char *axis[2] = {"chain", "draw"};
    for (int k = 0; k < 2; k++) {
        hsize_t n = len[k];
        long long *v = malloc(n * sizeof *v);
        for (hsize_t i = 0; i < n; i++) v[i] = (long long)i;
        hid_t s1 = H5Screate_simple(1, &n, NULL);
        hid_t d =
            H5Dcreate2(g, axis[k], H5T_NATIVE_LLONG, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
        H5Sclose(s1);
        free(v);
    }
    hsize_t dims[2] = {nc, nd};
    hid_t s2 = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(g, "mu", H5T_NATIVE_DOUBLE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    H5Sclose(s2);
    H5Gclose(g);
    H5Fclose(f);
}

static void test_big_shapes(void) {
    static const char *const one[] = {"mu"};
    spec s1 = {1000000, 10, 10, 10, one, 1, "rwmh", NULL, 0};
    double *x = make_draws(&s1, 5);
    char *p = tpath("wide.h5"), *out = NULL;
    write_minimal(p, s1.nc, s1.nd, x);
    free(x);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv", g_bin, p), 0);
    csv_row rows[4];
    CU_ASSERT_EQUAL(parse_csv(out, rows, 4), 1); /* no lp__ in the minimal file */
    rows[1] = rows[0];
    CU_ASSERT(fabs(rows[1].v[7] - 5e6) < 1e-6 * 5e6); /* ESS_bulk = S'/2 for 5-draw halves */
    CU_ASSERT(fabs(rows[1].v[9] - 1) < 0.01);         /* R_hat */
    CU_ASSERT(fabs(rows[1].v[10] - 1) < 0.01);        /* nR_hat, 4000 superchains of 250 */
    free(out);
    unlink(p);
    free(p);

    spec s2 = {4, 100000, 100000, 25000, one, 1, "mala", NULL, 0};
    x = make_draws(&s2, 6);
    p = tpath("long.h5");
    CU_ASSERT_EQUAL_FATAL(write_run(p, &s2, x), HB_OK);
    free(x);
    CU_ASSERT_EQUAL(hbt_sh(&out, "%s summary %s --format csv", g_bin, p), 0);
    CU_ASSERT_EQUAL(parse_csv(out, rows, 4), 2);
    CU_ASSERT(fabs(rows[1].v[7] / 4e5 - 1) < 0.12); /* iid: ESS close to S (5 sd) */
    free(out);
    unlink(p);
    free(p);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    g_bin = hbt_env("HB_BIN");
    static const hbt_case cases[] = {
        {"table, csv, json, --vars, --superchain-size", test_formats},
        {"matrix-valued variable names", test_matrix_names},
        {"partial file: committed draws only", test_partial_file},
        {"unadjusted-sampler warning", test_unadjusted_warning},
        {"corrupt, truncated, foreign, missing group: exit 4", test_bad_files},
        {"10^6 chains x 10 draws and 4 chains x 10^5 draws", test_big_shapes},
    };
    int rc = hbt_run_suite("diag_summary", cases, sizeof cases / sizeof cases[0]);
    char *out = NULL;
    hbt_sh(&out, "rm -rf '%s'", hbt_tmpdir());
    free(out);
    MPI_Finalize();
    return rc;
}
