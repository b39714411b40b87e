/* Samplers end to end through `heartbeat run`: posterior means and variances within 4 Monte
 * Carlo standard errors of the truth on a 10-d correlated Gaussian and on the 1-D mixture
 * (MALA and RWMH exact; ULA against its exact stationary law on the Gaussian and within its
 * O(h) bias on the mixture). MCSEs come from the spread of per-chain means: chains are
 * independent, so this holds whatever the autocorrelation within a chain. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

enum { DIM = 10 };
static const double KAPPA = 10.0, RHO = 0.5;

/* Extra [sampler] lines of the next run_config (e.g. a metric), "" by default. */
static const char *sampler_extra = "";

/* Run a config, return the output path (malloc'd) or NULL. */
static char *run_config(const char *tag, const char *algorithm, const char *model_lines, int chains,
                        int warmup, int draws) {
    char name[128], keys[128], body[1536];
    snprintf(name, sizeof name, "%s_%s", tag, algorithm);
    snprintf(keys, sizeof keys, "chains = %d\nwarmup = %d\ndraws = %d", chains, warmup, draws);
    snprintf(body, sizeof body, "[model]\n%s\n[sampler]\nalgorithm = %s\n%s", model_lines,
             algorithm, sampler_extra);
    return hbt_run_cfg(name, 4242, keys, body, NULL, NULL);
}

/* Draws of coordinate i as [chain][draw] from /posterior/x (chain, draw[, x_dim_0]). */
static double *coord_draws(const double *all, size_t nc, size_t nd, size_t d, size_t i) {
    double *v = malloc(nc * nd * sizeof *v);
    for (size_t c = 0; c < nc; c++)
        for (size_t j = 0; j < nd; j++) v[c * nd + j] = all[(c * nd + j) * d + i];
    return v;
}

/* Mean and variance checks of one coordinate against the truth. rel_bias > 0 is the known
   first-order bias bound of an unadjusted sampler, relative to the variance (ULA on a
   Gaussian inflates it by r / (1 - r) with r = h m / 2v): it widens the variance tolerance
   by that fraction of the variance and the mean tolerance by r standard deviations. */
static void check_coord(const char *what, const double *v, size_t nc, size_t nd, double mu,
                        double var, double rel_bias) {
    double mean, se = hbt_mcse_chain_means(v, nc, nd, &mean);
    double mean_extra = rel_bias * sqrt(var), var_extra = var * rel_bias / (1 - rel_bias);
    int ok = fabs(mean - mu) - mean_extra <= 4 * se;
    if (!ok)
        fprintf(stderr, "  %s mean: %.5g vs %.5g (se %.3g, bias allowance %.3g)\n", what, mean, mu,
                se, mean_extra);
    CU_ASSERT(ok);
    double *sq = malloc(nc * nd * sizeof *sq);
    for (size_t k = 0; k < nc * nd; k++) sq[k] = (v[k] - mu) * (v[k] - mu);
    double m2, se2 = hbt_mcse_chain_means(sq, nc, nd, &m2);
    ok = fabs(m2 - var) - var_extra <= 4 * se2;
    if (!ok)
        fprintf(stderr, "  %s variance: %.5g vs %.5g (se %.3g, bias allowance %.3g)\n", what, m2,
                var, se2, var_extra);
    CU_ASSERT(ok);
    free(sq);
}

static double gauss_var(size_t i) {
    return pow(KAPPA, (double)i / (DIM - 1));
}

/* Solve A X = B in place for small dense systems (Gauss-Jordan with partial pivoting). */
static void solve(size_t n, double *A, double *B, size_t nrhs) {
    for (size_t c = 0; c < n; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        for (size_t k = 0; k < n; k++) {
            double t = A[c * n + k];
            A[c * n + k] = A[p * n + k];
            A[p * n + k] = t;
        }
        for (size_t k = 0; k < nrhs; k++) {
            double t = B[c * nrhs + k];
            B[c * nrhs + k] = B[p * nrhs + k];
            B[p * nrhs + k] = t;
        }
        for (size_t r = 0; r < n; r++) {
            if (r == c) continue;
            double f = A[r * n + c] / A[c * n + c];
            for (size_t k = 0; k < n; k++) A[r * n + k] -= f * A[c * n + k];
            for (size_t k = 0; k < nrhs; k++) B[r * nrhs + k] -= f * B[c * nrhs + k];
        }
    }
    for (size_t r = 0; r < n; r++)
        for (size_t k = 0; k < nrhs; k++) B[r * nrhs + k] /= A[r * n + r];
}

/* Exact stationary marginal variances of ULA with step h and diagonal metric m on
   N(0, Sigma): in whitened z = x / sqrt(m), V_z = S_z (I - (h/2) S_z^{-1})^{-1}, which is
   (S_z^{-1} - (h/2) S_z^{-2})^{-1}. */
static void ula_variances(double h, const double *m, double *out) {
    double S[DIM * DIM], P[DIM * DIM], Q[DIM * DIM], I[DIM * DIM];
    for (size_t a = 0; a < DIM; a++)
        for (size_t b = 0; b < DIM; b++) {
            double cov = (a == b ? 1.0 : RHO) * sqrt(gauss_var(a) * gauss_var(b));
            S[a * DIM + b] = cov / sqrt(m[a] * m[b]);
            I[a * DIM + b] = a == b;
        }
    memcpy(P, S, sizeof S);
    solve(DIM, P, I, DIM); /* I <- S^{-1} */
    memcpy(P, I, sizeof P);
    for (size_t a = 0; a < DIM; a++)
        for (size_t b = 0; b < DIM; b++) {
            double s2 = 0;
            for (size_t k = 0; k < DIM; k++) s2 += P[a * DIM + k] * P[k * DIM + b];
            Q[a * DIM + b] = P[a * DIM + b] - 0.5 * h * s2;
            I[a * DIM + b] = a == b;
        }
    solve(DIM, Q, I, DIM);
    for (size_t a = 0; a < DIM; a++) out[a] = I[a * DIM + a] * m[a];
}

static void gaussian_case(const char *algorithm) {
    char model[256];
    snprintf(model, sizeof model,
             "name = gaussian\ndim = %d\ncondition_number = %g\ncorrelation = %g", DIM, KAPPA, RHO);
    int rw = strcmp(algorithm, "rwmh") == 0;
    size_t nc = 256, nd = rw ? 1000 : 400;
    char *out = run_config("gauss", algorithm, model, (int)nc, 500, (int)nd);
    if (!out) return;
    size_t n, dims[4];
    int rank;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, dims, &rank);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    CU_ASSERT_EQUAL(rank, 3);
    CU_ASSERT(dims[0] == nc && dims[1] == nd && dims[2] == DIM);
    double target[DIM];
    for (size_t i = 0; i < DIM; i++) target[i] = gauss_var(i);
    if (strcmp(algorithm, "ula") == 0) {
        size_t nm;
        double *m = hbt_read_dataset(out, "/adaptation/inv_metric", &nm, NULL, NULL);
        double *h = hbt_read_dataset(out, "/sample_stats/step_size", &n, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        ula_variances(h[0], m, target);
        /* The bias is real: ULA's stationary variance exceeds the target's. */
        CU_ASSERT(target[DIM - 1] > gauss_var(DIM - 1));
        free(m);
        free(h);
    }
    for (size_t i = 0; i < DIM; i++) {
        double *v = coord_draws(all, nc, nd, DIM, i);
        char what[64];
        snprintf(what, sizeof what, "%s gaussian x[%zu]", algorithm, i + 1);
        check_coord(what, v, nc, nd, 0.0, target[i], 0);
        free(v);
    }
    free(all);
    free(out);
}

static void mixture_case(const char *algorithm) {
    /* Default mixture: weights .2 .3 .1 .4, locations -2 0 3.2 2.5, scales 1.2 1 5 2.8. */
    const double w[4] = {0.2, 0.3, 0.1, 0.4}, mu[4] = {-2, 0, 3.2, 2.5}, s[4] = {1.2, 1, 5, 2.8};
    double mean = 0, m2 = 0;
    for (int k = 0; k < 4; k++) {
        mean += w[k] * mu[k];
        m2 += w[k] * (s[k] * s[k] + mu[k] * mu[k]);
    }
    size_t nc = 512, nd = 500;
    char *out = run_config("mix", algorithm, "name = mixture", (int)nc, 500, (int)nd);
    if (!out) return;
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    CU_ASSERT_EQUAL(n, nc * nd);
    double rel_bias = 0;
    if (strcmp(algorithm, "ula") == 0) {
        /* ULA's bias is O(h); bound it by the Gaussian rate r = h m / 2v at the narrowest
           component (v = 1), the worst case over the mixture's components. */
        size_t k;
        double *m = hbt_read_dataset(out, "/adaptation/inv_metric", &k, NULL, NULL);
        double *h = hbt_read_dataset(out, "/sample_stats/step_size", &k, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        rel_bias = h[0] * m[0] / 2.0;
        free(m);
        free(h);
    }
    char what[64];
    snprintf(what, sizeof what, "%s mixture", algorithm);
    check_coord(what, all, nc, nd, mean, m2 - mean * mean, rel_bias);
    free(all);
    free(out);
}

static void test_mala_gaussian(void) {
    gaussian_case("mala");
}

/* The dense metric (pooled covariance, Cholesky-factored proposal): exact as well, and the
   adapted covariance is reported. */
static void test_mala_dense_gaussian(void) {
    sampler_extra = "metric = dense";
    gaussian_case("mala");
    sampler_extra = "";
    char *out;
    if (asprintf(&out, "%s/gauss_mala.h5", hbt_tmpdir()) < 0) exit(1);
    size_t n, dims[4];
    int rank;
    double *S = hbt_read_dataset(out, "/adaptation/inv_metric_dense", &n, dims, &rank);
    CU_ASSERT_PTR_NOT_NULL_FATAL(S);
    CU_ASSERT(rank == 2 && dims[0] == DIM && dims[1] == DIM);
    /* The estimate is near the true covariance: correlation RHO off the diagonal. */
    double r = S[DIM - 1] / sqrt(S[0] * S[DIM * DIM - 1]);
    CU_ASSERT(fabs(r - RHO) < 0.1);
    free(S);
    free(out);
}
static void test_rwmh_gaussian(void) {
    gaussian_case("rwmh");
}
static void test_ula_gaussian(void) {
    gaussian_case("ula");
}
static void test_mala_mixture(void) {
    mixture_case("mala");
}
static void test_rwmh_mixture(void) {
    mixture_case("rwmh");
}
static void test_ula_mixture(void) {
    mixture_case("ula");
}

/* The example plugin samples too (its known moments are in examples/plugin). */
static void test_plugin_runs(void) {
    char model[512];
    snprintf(model, sizeof model, "name = plugin\nplugin = %s", hbt_env("HB_PLUGIN"));
    char *out = run_config("plugin", "mala", model, 64, 200, 100);
    CU_ASSERT_PTR_NOT_NULL(out);
    if (out) CU_ASSERT_EQUAL(hbt_read_attr_int(out, "draws_committed"), 100);
    free(out);
}

/* A real run file (not just the writer's test pattern) opens unchanged in h5py, xarray
   (h5netcdf and netcdf4 engines) and netCDF4, with every axis a dimension. */
static void test_run_file_opens_in_python(void) {
    char *out = run_config("py", "mala", "name = gaussian\ndim = 3", 24, 50, 30);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    char *log = NULL;
    int rc = hbt_sh(&log, "%s %s/tests/py/check_arviz.py %s", hbt_env("HB_PYTHON"),
                    hbt_env("HB_SOURCE_DIR"), out);
    if (rc != 0) fprintf(stderr, "  check_arviz.py: %s\n", log ? log : "");
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    free(out);
}

/* ULA with a step too large for the Rosenbrock density: proposals overflow, and a draw with a
   non-finite proposal keeps the chain where it was (the sampling moves swap the state with the
   proposal's buffers and copy such lanes back, samplers/basic.c), every other draw moves;
   positions and log densities stay finite. */
static void test_ula_divergent(void) {
    sampler_extra = "step_size = 0.05";
    char *out = run_config("ula_div", "ula", "name = rosenbrock", 44, 0, 120);
    sampler_extra = "";
    CU_ASSERT_FATAL(out != NULL);
    size_t n, nl, nv, dims[4];
    int rank;
    double *x = hbt_read_dataset(out, "/posterior/x", &n, dims, &rank);
    double *lp = hbt_read_dataset(out, "/sample_stats/lp", &nl, dims, &rank);
    double *dv = hbt_read_dataset(out, "/sample_stats/diverging", &nv, dims, &rank);
    CU_ASSERT_FATAL(x && lp && dv && n == 44 * 120 * 2 && nl == 44 * 120 && nv == nl);
    size_t div = 0, div0 = 0, kept = 0, moved = 0, still = 0, finite = 1;
    for (size_t c = 0; c < 44; c++)
        for (size_t j = 0; j < 120; j++) {
            const size_t r = c * 120 + j;
            finite &= isfinite(lp[r]) && isfinite(x[2 * r]) && isfinite(x[2 * r + 1]);
            div += dv[r] != 0;
            if (j == 0) {
                div0 += dv[r] != 0;
                continue;
            }
            const int same =
                x[2 * r] == x[2 * r - 2] && x[2 * r + 1] == x[2 * r - 1] && lp[r] == lp[r - 1];
            if (dv[r] != 0)
                kept += same;
            else
                moved += !same, still += same;
        }
    printf("\n  %zu of %zu draws divergent\n", div, nl);
    CU_ASSERT(finite);
    CU_ASSERT(div > nl / 20 && div < nl - nl / 20);
    /* a divergent draw is a non-finite proposal (kept) or a finite one that lost more than 1000
       in lp (moved): most here are the first kind */
    CU_ASSERT(kept > (div - div0) / 2 && kept <= div - div0);
    CU_ASSERT_EQUAL(still, 0); /* every draw that is not divergent moved */
    CU_ASSERT(moved > 0);
    /* [ula] gauge = false: bitwise the same draws; acceptance_rate 1 for a move taken and 0 for
       a proposal kept, where the default reports the MALA gauge (values strictly inside) */
    sampler_extra = "step_size = 0.05\n[ula]\ngauge = false";
    char *out2 = run_config("ula_nogauge", "ula", "name = rosenbrock", 44, 0, 120);
    sampler_extra = "";
    CU_ASSERT_FATAL(out2 != NULL);
    double *x2 = hbt_read_dataset(out2, "/posterior/x", &n, dims, &rank);
    double *lp2 = hbt_read_dataset(out2, "/sample_stats/lp", &nl, dims, &rank);
    double *a1 = hbt_read_dataset(out, "/sample_stats/acceptance_rate", &nv, dims, &rank);
    double *a2 = hbt_read_dataset(out2, "/sample_stats/acceptance_rate", &nv, dims, &rank);
    CU_ASSERT_FATAL(x2 && lp2 && a1 && a2 && nv == 44 * 120);
    CU_ASSERT(memcmp(x, x2, 44 * 120 * 2 * sizeof *x) == 0);
    CU_ASSERT(memcmp(lp, lp2, 44 * 120 * sizeof *lp) == 0);
    size_t wrong = 0, inside = 0;
    for (size_t c = 0; c < 44; c++)
        for (size_t j = 1; j < 120; j++) {
            const size_t r = c * 120 + j;
            const int same = x[2 * r] == x[2 * r - 2] && x[2 * r + 1] == x[2 * r - 1];
            wrong += a2[r] != (same ? 0.0 : 1.0);
            inside += a1[r] > 0.0 && a1[r] < 1.0;
        }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(inside > 100);
    free(x2), free(lp2), free(a1), free(a2), free(out2);
    free(x), free(lp), free(dv), free(out);
}

/* Dataset path of the thinned run `thinned` against every T-th draw of `full` (NC chains,
   D thinned draws, any number of values per draw), bitwise. */
static void thin_compare(const char *tag, const char *full, const char *thinned, const char *path,
                         size_t NC, size_t D, size_t T) {
    size_t n[2], dims[4];
    int rank;
    double *a = hbt_read_dataset(full, path, &n[0], dims, &rank);
    double *b = hbt_read_dataset(thinned, path, &n[1], dims, &rank);
    CU_ASSERT_FATAL(a && b && n[0] == T * n[1] && n[1] % (NC * D) == 0);
    const size_t per = n[1] / (NC * D); /* values per draw */
    size_t differ = 0;
    for (size_t c = 0; c < NC; c++)
        for (size_t j = 0; j < D; j++)
            for (size_t e = 0; e < per; e++)
                differ += b[(c * D + j) * per + e] != a[(c * T * D + T * j + T - 1) * per + e];
    if (differ) fprintf(stderr, "  %s %s: %zu values differ\n", tag, path, differ);
    CU_ASSERT_EQUAL(differ, 0);
    free(a), free(b);
}

/* A run thinned by 3 keeps exactly every third draw of the unthinned run, stats included:
   draw j of thin = 3 is iteration 3j + 2 of thin = 1 (the RNG counter is the iteration), so
   its position and every stat are bitwise those of draw 3j + 2, and its n_steps is the sum
   of draws 3j..3j+2. The iterations a thinned run does not keep skip work that feeds only
   the stats (ULA's and Heartbeat's unapplied acceptance gauge; sampler.h stats_unread):
   this proves the skipping changes neither the moves nor a kept draw's stats. Returns the
   unthinned run's output path (malloc'd). */
static char *thin_case(const char *tag, const char *model, const char *algorithm, const char *extra,
                       const char *const *stats) {
    enum { NC = 20, W = 160, D = 30, T = 3 };
    char name[64], keys[128], body[1024];
    char *out[2];
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof name, "thin%d_%s", k ? T : 1, tag);
        snprintf(keys, sizeof keys, "chains = %d\nwarmup = %d\ndraws = %d\nthin = %d", NC, W,
                 k ? D : T * D, k ? T : 1);
        snprintf(body, sizeof body, "[model]\n%s\n[sampler]\nalgorithm = %s\n%s", model, algorithm,
                 extra);
        out[k] = hbt_run_cfg(name, 777, keys, body, NULL, NULL);
    }
    CU_ASSERT_FATAL(out[0] && out[1]);
    thin_compare(tag, out[0], out[1], "/posterior/x", NC, D, T);
    for (int s = 0; stats[s]; s++) {
        char path[96];
        snprintf(path, sizeof path, "/sample_stats/%s", stats[s]);
        thin_compare(tag, out[0], out[1], path, NC, D, T);
    }
    size_t n[2], dims[4];
    int rank;
    double *a = hbt_read_dataset(out[0], "/sample_stats/n_steps", &n[0], dims, &rank);
    double *b = hbt_read_dataset(out[1], "/sample_stats/n_steps", &n[1], dims, &rank);
    CU_ASSERT_FATAL(a && b && n[0] == T * n[1]);
    size_t differ = 0;
    for (size_t c = 0; c < NC; c++)
        for (size_t j = 0; j < D; j++) {
            const double *t = a + c * T * D + T * j;
            differ += b[c * D + j] != t[0] + t[1] + t[2];
        }
    CU_ASSERT_EQUAL(differ, 0);
    free(a), free(b), free(out[1]);
    return out[0];
}

static void test_thin_keeps_draws_and_stats(void) {
    static const char *const basic[] = {"lp", "acceptance_rate", "step_size", "diverging", NULL};
    static const char *const hb[] = {
        "lp", "step_size", "acceptance_rate", "acceptance_rate_large", "diverging", NULL};
    char model[128];
    snprintf(model, sizeof model,
             "name = gaussian\ndim = %d\ncondition_number = %g\ncorrelation = %g", DIM, KAPPA, RHO);
    const char *cases[][3] = {{"ula", "ula", ""},
                              {"ula_dense", "ula", "metric = dense"},
                              {"ula_dense_nogauge", "ula", "metric = dense\n[ula]\ngauge = false"},
                              {"mala", "mala", ""},
                              {"hb_none", "heartbeat", "[heartbeat]\nadjust = none"},
                              {"hb_hybrid", "heartbeat", "[heartbeat]\nadjust = hybrid"}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *out = thin_case(cases[k][0], model, cases[k][1], cases[k][2],
                              cases[k][1][0] == 'h' ? hb : basic);
        /* the gauge: strictly inside (0, 1) for a good share of draws (about half; the rest
           are 1, a proposal uphill); with [ula] gauge = false (dense too) 1 for every move
           (every proposal is finite here) */
        size_t n, dims[4], inside = 0, ones = 0;
        int rank;
        double *acc = hbt_read_dataset(out, "/sample_stats/acceptance_rate", &n, dims, &rank);
        CU_ASSERT_FATAL(acc != NULL);
        for (size_t i = 0; i < n; i++) inside += acc[i] > 0 && acc[i] < 1, ones += acc[i] == 1;
        if (strstr(cases[k][0], "nogauge")) {
            CU_ASSERT_EQUAL(ones, n);
        } else {
            CU_ASSERT(inside > n / 4);
        }
        free(acc), free(out);
    }
}

/* output = none samples and writes nothing. */
static void test_output_none(void) {
    char *cfg = hbt_write_file("none.ini", "[run]\nseed = 1\nchains = 16\nwarmup = 20\ndraws = 10\n"
                                           "output = none\n[model]\nname = gaussian\n"
                                           "[sampler]\nalgorithm = mala\n");
    char *log = NULL;
    int rc = hbt_sh(&log, "cd %s && %s run %s --quiet && test ! -e none", hbt_tmpdir(),
                    hbt_env("HB_BIN"), cfg);
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    free(cfg);
}

int main(void) {
    static const hbt_case cases[] = {
        {"mala on a correlated 10-d gaussian", test_mala_gaussian},
        {"mala with a dense metric on a correlated 10-d gaussian", test_mala_dense_gaussian},
        {"rwmh on a correlated 10-d gaussian", test_rwmh_gaussian},
        {"ula on a correlated 10-d gaussian (exact ULA law)", test_ula_gaussian},
        {"mala on the 1-d mixture", test_mala_mixture},
        {"rwmh on the 1-d mixture", test_rwmh_mixture},
        {"ula on the 1-d mixture (within O(h) bias)", test_ula_mixture},
        {"a plugin model samples", test_plugin_runs},
        {"a run file opens in h5py, xarray and netCDF4", test_run_file_opens_in_python},
        {"ula: divergent proposals keep the state, the others move; [ula] gauge = false",
         test_ula_divergent},
        {"output = none writes nothing", test_output_none},
        {"thin = 3 keeps every third draw of thin = 1, stats bitwise (ula, dense, heartbeat)",
         test_thin_keeps_draws_and_stats},
    };
    return hbt_run_suite("samplers", cases, sizeof cases / sizeof *cases);
}
