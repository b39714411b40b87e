/* The built-in `logistic` model on simulated data with known coefficients: gradient against
 * finite differences (both priors), the batch kernel against one chain at a time, config and data
 * errors, and (through `heartbeat run`, MALA) a posterior that covers the true coefficients. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "hbtest.h"
#include "io/config.h"
#include "io/h5in.h"
#include "models/data_models.h"
#include "models/logistic.h"

#define SIM_N 400
#define SIM_K 4
static const double true_alpha = -0.5;
static const double true_beta[SIM_K] = {1.0, -2.0, 0.5, 0.0};

/* Simulated data as CmdStan JSON; returns the malloc'd path. */
static char *simulate(const char *name, size_t N, size_t K, double **Xout, double **yout) {
    double *X = malloc(N * K * sizeof *X), *y = malloc(N * sizeof *y), *u = malloc(N * sizeof *u);
    hb_rng_normals(7, 1, 0, HB_RNG_TEST, N * K, X);
    hb_rng_uniforms(7, 2, 0, HB_RNG_TEST, N, u);
    size_t cap = N * K * 32 + N * 8 + 256, pos = 0;
    char *text = malloc(cap);
    pos +=
        (size_t)snprintf(text + pos, cap - pos, "{\n \"N\": %zu,\n \"K\": %zu,\n \"X\": [", N, K);
    for (size_t n = 0; n < N; n++) {
        double eta = true_alpha;
        pos += (size_t)snprintf(text + pos, cap - pos, "%s[", n ? "," : "");
        for (size_t k = 0; k < K; k++) {
            eta += X[n * K + k] * (k < SIM_K ? true_beta[k] : 0.0);
            pos += (size_t)snprintf(text + pos, cap - pos, "%s%.17g", k ? "," : "", X[n * K + k]);
        }
        pos += (size_t)snprintf(text + pos, cap - pos, "]");
        y[n] = u[n] < 1.0 / (1.0 + exp(-eta)) ? 1.0 : 0.0;
    }
    pos += (size_t)snprintf(text + pos, cap - pos, "],\n \"y\": [");
    for (size_t n = 0; n < N; n++)
        pos += (size_t)snprintf(text + pos, cap - pos, "%s%d", n ? "," : "", (int)y[n]);
    snprintf(text + pos, cap - pos, "]\n}\n");
    char *path = hbt_write_file(name, text);
    free(text);
    free(u);
    if (Xout)
        *Xout = X;
    else
        free(X);
    if (yout)
        *yout = y;
    else
        free(y);
    return path;
}

static void *open_cfg(const char *extra, const char *data, hb_error *err) {
    char text[2048];
    snprintf(text, sizeof text, "[model]\nname = logistic\ndata = %s\n%s", data, extra);
    hb_config *cfg;
    void *impl = NULL;
    hb_error_clear(err);
    if (hb_config_load_string(&cfg, "test.ini", text, err) != HB_OK) return NULL;
    if (hb_builtin_logistic.create(cfg, &impl, err) != HB_OK) impl = NULL;
    hb_config_free(cfg);
    return impl;
}

static double fd_rel_error(const hb_model_vtable *vt, void *m, const double *x, size_t D) {
    double lp, *g = malloc(D * sizeof *g), *gt = malloc(D * sizeof *gt);
    double *xp = malloc(D * sizeof *xp), worst = 0;
    vt->logp_grad(m, x, &lp, g);
    for (size_t i = 0; i < D; i++) {
        double best = INFINITY;
        for (double h = 1e-3; h >= 1e-7; h /= 10) {
            double lpp, lpm;
            memcpy(xp, x, D * sizeof *xp);
            xp[i] = x[i] + h;
            double hi = xp[i];
            vt->logp_grad(m, xp, &lpp, gt);
            xp[i] = x[i] - h;
            double lo = xp[i];
            vt->logp_grad(m, xp, &lpm, gt);
            best = fmin(best, fabs((lpp - lpm) / (hi - lo) - g[i]) / fmax(1.0, fabs(g[i])));
        }
        worst = fmax(worst, best);
    }
    free(g);
    free(gt);
    free(xp);
    return worst;
}

static void t_gradient_fd(void) {
    char *path = simulate("sim.json", SIM_N, SIM_K, NULL, NULL);
    const char *variants[] = {"", "prior = student_t\nprior_df = 4\nprior_scale = 1.5\n",
                              "intercept_scale = 2\nprior_scale = 0.7\n"};
    for (size_t v = 0; v < 3; v++) {
        hb_error err;
        void *m = open_cfg(variants[v], path, &err);
        if (!m) fprintf(stderr, "  %s\n", err.msg);
        CU_ASSERT_FATAL(m != NULL);
        const hb_model_vtable *vt = hb_builtin_logistic.vtable;
        CU_ASSERT(vt->dim(m) == SIM_K + 1);
        CU_ASSERT_STRING_EQUAL(vt->coord_name(m, 0), "alpha");
        CU_ASSERT_STRING_EQUAL(vt->coord_name(m, 2), "beta[2]");
        double pts[3][SIM_K + 1] = {
            {0, 0, 0, 0, 0}, {-0.5, 1.0, -2.0, 0.5, 0.0}, {3.0, -4.0, 2.5, 1.0, -7.0}};
        for (size_t p = 0; p < 3; p++) {
            double e = fd_rel_error(vt, m, pts[p], SIM_K + 1);
            if (!(e < 1e-6)) fprintf(stderr, "  variant %zu point %zu: FD error %g\n", v, p, e);
            CU_ASSERT(e < 1e-6);
        }
        vt->destroy(m);
    }
    free(path);
}

/* The blocked batch kernel agrees with one chain at a time, on a size with remainders in
   every blocking (N not a multiple of 32 rows or 8, K not a multiple of 8). */
static void t_batch_kernels(void) {
    size_t N = 1037, K = 11, D = K + 1;
    double *X, *y;
    free(simulate("sim_batch.json", N, K, &X, &y));
    hb_logistic_options o = {HB_LOGISTIC_STUDENT_T, 2.0, 5.0, 10.0};
    void *m;
    hb_error err;
    hb_error_clear(&err);
    CU_ASSERT_FATAL(hb_logistic_new(&m, N, K, X, y, &o, &err) == HB_OK);
    const hb_model_vtable *vt = hb_builtin_logistic.vtable;
    size_t n = 13, ld = 16;
    double *xb = calloc(D * ld, sizeof *xb), *gb = calloc(D * ld, sizeof *gb), lpb[16];
    double *z = malloc(D * ld * sizeof *z);
    hb_rng_normals(3, 0, 0, HB_RNG_TEST, D * ld, z);
    for (size_t i = 0; i < D * ld; i++) xb[i] = 1.5 * z[i];
    double xs[32], gs[32], lps;
    {
        CU_ASSERT(vt->logp_grad_batch(m, n, ld, xb, lpb, gb) == 0);
        for (size_t c = 0; c < n; c++) {
            for (size_t i = 0; i < D; i++) xs[i] = xb[i * ld + c];
            CU_ASSERT(vt->logp_grad(m, xs, &lps, gs) == 0);
            CU_ASSERT(fabs(lpb[c] - lps) <= 1e-11 * fmax(1.0, fabs(lps)));
            for (size_t i = 0; i < D; i++)
                CU_ASSERT(fabs(gb[i * ld + c] - gs[i]) <= 1e-11 * fmax(1.0, fabs(gs[i])));
        }
    }
    free(xb);
    free(gb);
    free(z);
    free(X);
    free(y);
    vt->destroy(m);
}

/* An exact value: at alpha = beta = 0 every sigma is 1/2, so lp = -N log 2 and the
   gradient is X^T (y - 1/2) (priors are flat at 0 up to their constants). */
static void t_exact_at_zero(void) {
    double *X, *y;
    char *path = simulate("sim0.json", SIM_N, SIM_K, &X, &y);
    hb_error err;
    void *m = open_cfg("", path, &err);
    CU_ASSERT_FATAL(m != NULL);
    double x[SIM_K + 1] = {0}, g[SIM_K + 1], lp;
    hb_builtin_logistic.vtable->logp_grad(m, x, &lp, g);
    CU_ASSERT(fabs(lp + SIM_N * log(2.0)) < 1e-9);
    for (size_t k = 0; k <= SIM_K; k++) {
        double want = 0;
        for (size_t n = 0; n < SIM_N; n++) want += (k ? X[n * SIM_K + k - 1] : 1.0) * (y[n] - 0.5);
        CU_ASSERT(fabs(g[k] - want) < 1e-9 * fmax(1.0, fabs(want)));
    }
    hb_builtin_logistic.vtable->destroy(m);
    free(X);
    free(y);
    free(path);
}

static void t_bad_inputs(void) {
    hb_error err;
    char *bad_y =
        hbt_write_file("bad_y.json", "{\"N\": 2, \"K\": 1, \"X\": [[1],[2]], \"y\": [0, 2]}");
    CU_ASSERT(open_cfg("", bad_y, &err) == NULL);
    CU_ASSERT(err.code == HB_ERR_MODEL && strstr(err.msg, "y[2]") && strstr(err.msg, "[0, 1]"));
    char *bad_x =
        hbt_write_file("bad_x.json", "{\"N\": 2, \"K\": 2, \"X\": [[1,2],[2]], \"y\": [0, 1]}");
    CU_ASSERT(open_cfg("", bad_x, &err) == NULL);
    CU_ASSERT(err.code == HB_ERR_MODEL && strstr(err.msg, "'X'") && strstr(err.msg, "ragged"));
    char *ok = hbt_write_file("ok.json", "{\"N\": 2, \"K\": 1, \"X\": [[1],[2]], \"y\": [0, 1]}");
    CU_ASSERT(open_cfg("prior = cauchy\n", ok, &err) == NULL);
    CU_ASSERT(err.code == HB_ERR_USAGE && strstr(err.msg, "prior"));
    CU_ASSERT(open_cfg("prior_scale = -1\n", ok, &err) == NULL);
    CU_ASSERT(err.code == HB_ERR_USAGE && strstr(err.msg, "prior_scale"));
    free(bad_y);
    free(bad_x);
    free(ok);
}

/* Draws of the coordinate called `name` ([chain][draw], malloc'd), or NULL. */
static double *read_coord(hb_h5in *f, const char *name, size_t *m) {
    char buf[128];
    hb_error err;
    hb_error_clear(&err);
    size_t nc = hb_h5in_n_chains(f), nd = hb_h5in_n_committed(f);
    *m = nc * nd;
    for (size_t i = 0; i < hb_h5in_n_vars(f); i++) {
        const hb_h5in_var *v = hb_h5in_var_info(f, i);
        for (size_t k = 0; k < v->n_coords; k++) {
            hb_h5in_coord_name(f, i, k, buf, sizeof buf);
            if (strcmp(buf, name) != 0) continue;
            double *all = malloc(v->n_coords * *m * sizeof *all);
            if (hb_h5in_read_var(f, i, 0, nc, all, &err) != HB_OK) {
                free(all);
                return NULL;
            }
            memmove(all, all + k * *m, *m * sizeof *all);
            return all;
        }
    }
    return NULL;
}

/* `heartbeat run` with MALA on simulated data: the posterior covers the coefficients the data
   were drawn from (each within 3.5 posterior sd of its posterior mean). */
static void t_posterior_covers_truth(void) {
    char *data = simulate("sim_run.json", SIM_N, SIM_K, NULL, NULL), *cfg_text, *out;
    if (asprintf(&out, "%s/logistic_run.h5", hbt_tmpdir()) < 0 ||
        asprintf(&cfg_text,
                 "[run]\nseed = 5\nchains = 64\nwarmup = 1000\ndraws = 1000\noutput = %s\n\n"
                 "[model]\nname = logistic\ndata = %s\nprior = student_t\nprior_df = 7\n\n"
                 "[sampler]\nalgorithm = mala\n",
                 out, data) < 0)
        exit(1);
    char *cfg = hbt_write_file("logistic_run.ini", cfg_text), *log = NULL;
    int st = hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg);
    if (st != 0) fprintf(stderr, "  heartbeat run exited %d:\n%s\n", st, log);
    CU_ASSERT_FATAL(st == 0);
    hb_h5in *f;
    hb_error err;
    hb_error_clear(&err);
    CU_ASSERT_FATAL(hb_h5in_open(&f, out, &err) == HB_OK);
    for (size_t k = 0; k <= SIM_K; k++) {
        char name[32];
        if (k == 0)
            snprintf(name, sizeof name, "alpha");
        else
            snprintf(name, sizeof name, "beta[%zu]", k);
        size_t m;
        double *x = read_coord(f, name, &m);
        CU_ASSERT_FATAL(x != NULL);
        double mean = 0, var = 0;
        for (size_t t = 0; t < m; t++) mean += x[t];
        mean /= (double)m;
        for (size_t t = 0; t < m; t++) var += (x[t] - mean) * (x[t] - mean);
        double sd = sqrt(var / (double)(m - 1)), truth = k ? true_beta[k - 1] : true_alpha;
        printf("\n    %-8s truth %6.3f  posterior %6.3f +- %.3f", name, truth, mean, sd);
        HBT_ASSERT_Z(name, mean, truth, sd, 3.5);
        CU_ASSERT(sd > 0.02 && sd < 1.0); /* N = 400: informative, not degenerate */
        free(x);
    }
    hb_h5in_close(f);
    free(log);
    free(cfg);
    free(cfg_text);
    free(out);
    free(data);
}

int main(void) {
    static const hbt_case cases[] = {
        {"gradient vs finite differences (normal, student_t priors)", t_gradient_fd},
        {"batch kernel = one chain at a time", t_batch_kernels},
        {"exact value at zero", t_exact_at_zero},
        {"bad data and options", t_bad_inputs},
        {"heartbeat run (MALA): posterior covers the true coefficients", t_posterior_covers_truth},
    };
    return hbt_run_suite("logistic", cases, sizeof cases / sizeof *cases);
}
