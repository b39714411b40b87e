/* Heartbeat's `[heartbeat] init = lbfgs`: the lock-step L-BFGS reaches the mode of a 10-d
 * Gaussian needle started far away (in process, on the model) and the finite-difference
 * Hessian there is the exact precision; end to end, the needle's draws are right within
 * 4 MCSE, kilpisjarvi (correlation -0.99999, where init = adam ends far off the reference)
 * validates against its reference, the bimodal mixture keeps its mode weight; bad values
 * of init and lbfgs_iters are rejected naming the key; draws are bitwise the same over
 * ranks x threads (also with warmup = auto). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"
#include "io/config.h"
#include "models/models.h"
#include "samplers/lbfgs.h"

enum { L = HB_LANES };

static const char *NEEDLE = "name = gaussian\ndim = 10\ncondition_number = 100\n"
                            "correlation = 0.99\n";

static double needle_sd(size_t i) {
    return sqrt(pow(100.0, (double)i / 9.0));
}

/* ---- in process: the optimiser and the Hessian on the model ---- */

static void test_optimiser_reaches_mode(void) {
    const size_t d = 10;
    char ini[256];
    snprintf(ini, sizeof ini, "[model]\n%s", NEEDLE);
    hb_config *cfg = NULL;
    hb_model m;
    hb_error err;
    hb_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(hb_config_load_string(&cfg, "t.ini", ini, &err), HB_OK);
    CU_ASSERT_EQUAL_FATAL(hb_model_open(&m, cfg, &err), HB_OK);
    CU_ASSERT_EQUAL_FATAL(m.dim, d);
    double *x = malloc(d * L * sizeof *x), *g = malloc(d * L * sizeof *g), lp[L], lp0[L];
    double *ws = malloc(hb_lbfgs_ws(d) * sizeof *ws);
    /* lanes start 100 to 800 sd away along different directions; lanes 6, 7 are padding */
    for (size_t i = 0; i < d; i++)
        for (int c = 0; c < L; c++)
            x[i * L + c] = 100.0 * (c + 1) * needle_sd(i) * ((i + (size_t)c) % 3 ? 1 : -1);
    hb_model_eval_lanes(&m, x, lp, g, ws);
    memcpy(lp0, lp, sizeof lp);
    long iters[L];
    long evals = hb_lbfgs_lanes(&m, d, 6, 200, x, g, lp, ws, iters);
    fprintf(stderr, "  L-BFGS: %ld batch evaluations; iterations", evals);
    for (int c = 0; c < 6; c++) fprintf(stderr, " %ld", iters[c]);
    fprintf(stderr, "\n");
    CU_ASSERT(evals > 0 && evals < 400);
    double worst = 0;
    for (int c = 0; c < 6; c++) {
        CU_ASSERT(lp[c] > lp0[c]);
        CU_ASSERT(iters[c] < 200); /* stopped by its tolerance, not the cap */
        for (size_t i = 0; i < d; i++) worst = fmax(worst, fabs(x[i * L + c]) / needle_sd(i));
    }
    fprintf(stderr, "  max |x_i - mode_i| / sd_i = %.3g\n", worst);
    CU_ASSERT(worst < 1e-3);
    /* padding lanes are left alone */
    CU_ASSERT_DOUBLE_EQUAL(lp[7], lp0[7], 0);
    /* Hessian at the mode: H Sigma = I, Sigma = D^1/2 R D^1/2 */
    double *H = malloc(d * d * sizeof *H), *fws = malloc(hb_fd_hessian_ws(d) * sizeof *fws);
    double x0[10] = {0};
    long fe = 0;
    CU_ASSERT_EQUAL(hb_fd_hessian(&m, d, x0, H, fws, &fe), 0);
    CU_ASSERT_EQUAL(fe, 2 * 8 * ((long)(d + 3) / 4));
    double err_max = 0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double acc = 0;
            for (size_t k = 0; k < d; k++) {
                double sig = needle_sd(k) * needle_sd(j) * (k == j ? 1 : 0.99);
                acc += H[i * d + k] * sig;
            }
            err_max = fmax(err_max, fabs(acc - (i == j)));
        }
    fprintf(stderr, "  max |H Sigma - I| = %.3g\n", err_max);
    CU_ASSERT(err_max < 1e-5);
    free(H);
    free(fws);
    free(x);
    free(g);
    free(ws);
    hb_model_close(&m);
    hb_config_free(cfg);
}

/* ---- end to end ---- */

/* hbt_run_cfg with this file's seed, --quiet. */
static char *run_cfg(const char *tag, const char *run_keys, const char *body, const char *launch) {
    return hbt_run_cfg(tag, 20261203, run_keys, body, launch, NULL);
}

/* |mean of v - truth| <= 4 MCSE (per-chain means: chains are independent). */
static int within(const char *what, const double *v, size_t nc, size_t nd, double truth) {
    double mean, se = hbt_mcse_chain_means(v, nc, nd, &mean);
    int ok = fabs(mean - truth) <= 4 * se;
    if (!ok) fprintf(stderr, "  %s: %.6g vs %.6g (mcse %.3g)\n", what, mean, truth, se);
    return ok;
}

/* The needle started 1000 away (init_offset): every mean and E x^2 within 4 MCSE; the
   optimisation reached the mode (the best chain's lp is the mode's); the Laplace metric was
   used (no fallback); the gradient count includes the optimisation. */
static void test_needle_end_to_end(void) {
    const size_t nc = 256, nd = 200, d = 10;
    char body[512];
    snprintf(body, sizeof body,
             "[model]\n%s[sampler]\nalgorithm = heartbeat\n[heartbeat]\n"
             "init = lbfgs\n",
             NEEDLE);
    char *out = run_cfg("needle", "chains = 256\nwarmup = 200\ndraws = 200\ninit_offset = 1000",
                        body, NULL);
    if (!out) return;
    /* lp at the mode: -(d/2) log 2 pi - (1/2) log det Sigma, log det R = 9 log(0.01) +
       log(1 + 9 * 0.99) (equicorrelation), log det D = sum_i (i/9) log 100 */
    double logdet = 9 * log(0.01) + log(1 + 9 * 0.99);
    for (size_t i = 0; i < d; i++) logdet += (double)i / 9.0 * log(100.0);
    double lp_mode = -0.5 * (double)d * log(2 * M_PI) - 0.5 * logdet;
    double best = hbt_read_adaptation_attr(out, "lbfgs_best_lp");
    fprintf(stderr, "  best lp %.9g, mode %.9g; L-BFGS %.1f evaluations per chain\n", best, lp_mode,
            hbt_read_adaptation_attr(out, "lbfgs_evals_mean"));
    CU_ASSERT(fabs(best - lp_mode) < 1e-6);
    CU_ASSERT_EQUAL(hbt_read_adaptation_attr(out, "lbfgs_fallback"), 0);
    CU_ASSERT(hbt_read_adaptation_attr(out, "lbfgs_hessian_evals") > 0);
    long long gw = hbt_read_attr_int(out, "gradient_evals_warmup");
    CU_ASSERT(gw > (long long)(nc * 200));
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    CU_ASSERT_EQUAL_FATAL(n, nc * nd * d);
    int bad = 0;
    double *v = malloc(nc * nd * sizeof *v);
    for (size_t i = 0; i < d; i++) {
        for (int f = 0; f < 2; f++) {
            for (size_t k = 0; k < nc * nd; k++) {
                double xx = all[k * d + i];
                v[k] = f ? xx * xx : xx;
            }
            bad += !within(f ? "needle E x^2" : "needle mean", v, nc, nd,
                           f ? needle_sd(i) * needle_sd(i) : 0);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(v);
    free(all);
    free(out);
}

/* kilpisjarvi: means within 4 se and b^2 < 0.01 against the reference (hb_validate_run).
   With init = adam and the same settings the run ends at alpha = -0.25 (reference -60.7, z
   179, b^2 1.06): stage A never finds the needle, see README. */
static void test_kilpisjarvi(void) {
    const char *t = "kilpisjarvi_mod-kilpisjarvi", *shared = hbt_env("HB_SHARED_DIR");
    char *body = NULL, *ref = NULL;
    if (asprintf(&body,
                 "[model]\nname = %s\ndata = %s/targets/%s/data.json\n[sampler]\n"
                 "algorithm = heartbeat\n[heartbeat]\ninit = lbfgs\n",
                 t, shared, t) < 0 ||
        asprintf(&ref, "%s/targets/%s/reference.json", shared, t) < 0)
        exit(1);
    char *out = run_cfg("kilpisjarvi", "chains = 256\nwarmup = 400\ndraws = 1000", body, NULL);
    if (out) hbt_validate_run_file(t, out, ref, 256, 1000);
    free(out);
    free(body);
    free(ref);
}

/* The bimodal mixture (0.3 / 0.7 at -4 / 4): each chain climbs to the mode of its own basin
   (about half the chains to each), yet the mode weight P(x_1 > 0) of the draws is right
   within 4 MCSE: the beats' large adjusted steps move chains between modes. */
static void test_mixture_weight(void) {
    const size_t nc = 1024, nd = 400;
    char *out = run_cfg("mixture", "chains = 1024\nwarmup = 400\ndraws = 400",
                        "[model]\nname = mixture\ndim = 2\nweights = 0.3, 0.7\n"
                        "locations = -4, 4\nscales = 1, 1\n[sampler]\nalgorithm = heartbeat\n"
                        "[heartbeat]\ninit = lbfgs\n",
                        NULL);
    if (!out) return;
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    const double w = 0.7 * 0.5 * erfc(-4 / sqrt(2.0)) + 0.3 * 0.5 * erfc(4 / sqrt(2.0));
    double *v = malloc(nc * nd * sizeof *v);
    for (size_t i = 0; i < 2; i++) {
        for (size_t k = 0; k < nc * nd; k++) v[k] = all[k * 2 + i] > 0;
        CU_ASSERT(within(i ? "mode weight x[2] > 0" : "mode weight x[1] > 0", v, nc, nd, w));
        for (size_t k = 0; k < nc * nd; k++) v[k] = all[k * 2 + i];
        CU_ASSERT(within("mixture mean", v, nc, nd, 1.6));
    }
    free(v);
    free(all);
    free(out);
}

/* ---- config ---- */

static void test_bad_config(void) {
    static const struct {
        const char *extra, *needle;
    } cases[] = {
        {"init = foo", "init"},
        {"init = LBFGS", "init"},
        {"lbfgs_iters = 0", "lbfgs_iters"},
        {"lbfgs_iters = -1", "lbfgs_iters"},
        {"lbfgs_iters = abc", "lbfgs_iters"},
        {"lbfgs_iters = 2.5", "lbfgs_iters"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char ini[512], name[32];
        snprintf(ini, sizeof ini,
                 "[run]\nseed = 1\nchains = 16\nwarmup = 40\ndraws = 5\noutput = none\n"
                 "[model]\nname = gaussian\n[sampler]\nalgorithm = heartbeat\n[heartbeat]\n"
                 "init = lbfgs\n%s\n",
                 cases[k].extra);
        /* the case's key replaces the init line when it is init itself */
        if (strncmp(cases[k].extra, "init", 4) == 0)
            snprintf(ini, sizeof ini,
                     "[run]\nseed = 1\nchains = 16\nwarmup = 40\ndraws = 5\noutput = none\n"
                     "[model]\nname = gaussian\n[sampler]\nalgorithm = heartbeat\n[heartbeat]\n"
                     "%s\n",
                     cases[k].extra);
        snprintf(name, sizeof name, "bad%zu.ini", k);
        /* the message cites file:line of the key (line 12 after [heartbeat]; 13 when the
           case follows the init line) */
        char where[64];
        snprintf(where, sizeof where, "bad%zu.ini:%d", k,
                 strncmp(cases[k].extra, "init", 4) == 0 ? 12 : 13);
        hbt_expect_config_error(name, ini, cases[k].needle, where);
    }
    /* init = lbfgs with a warmup below 20 */
    char *cfg = hbt_write_file("short.ini", "[run]\nseed = 1\nchains = 16\nwarmup = 10\n"
                                            "draws = 5\noutput = none\n[model]\nname = gaussian\n"
                                            "[sampler]\nalgorithm = heartbeat\nmetric = identity\n"
                                            "[heartbeat]\nstep_min = 0.1\nstep_max = 0.5\n"
                                            "init = lbfgs\n");
    char *log = NULL;
    CU_ASSERT_EQUAL(hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg), 2);
    CU_ASSERT(log && strstr(log, "init") && strstr(log, "short.ini:15"));
    free(log);
    free(cfg);
}

/* ---- bitwise invariance ---- */

static void invariance(const char *tag, const char *run_keys, const char *extra) {
    char body[512];
    snprintf(body, sizeof body,
             "[model]\nname = gaussian\ndim = 5\ncondition_number = 20\ncorrelation = 0.3\n"
             "[sampler]\nalgorithm = heartbeat\n%s[heartbeat]\ninit = lbfgs\n",
             extra);
    const char *launch[3][2] = {{"1", "1"}, {"2", "1"}, {"1", "2"}};
    char *ref = NULL;
    size_t ref_len = 0;
    for (int k = 0; k < 3; k++) {
        char name[64], cmd[512];
        snprintf(name, sizeof name, "%s_%sx%s", tag, launch[k][0], launch[k][1]);
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%s %s -n %s --oversubscribe --bind-to none",
                 launch[k][1], hbt_env("HB_MPIEXEC"), launch[k][0]);
        char *out = run_cfg(name, run_keys, body, cmd);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        size_t len;
        char *bytes = hbt_read_run_bytes(out, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
        if (k == 0) {
            ref = bytes;
            ref_len = len;
        } else {
            int same = len == ref_len && memcmp(bytes, ref, len) == 0;
            if (!same)
                fprintf(stderr, "  %s: %s ranks x %s threads differs from 1 x 1\n", tag,
                        launch[k][0], launch[k][1]);
            CU_ASSERT(same);
            free(bytes);
        }
        free(out);
    }
    free(ref);
}

static void test_invariance(void) {
    invariance("inv_dense", "chains = 100\nwarmup = 150\ndraws = 30", "");
    invariance("inv_diag", "chains = 100\nwarmup = 150\ndraws = 30", "metric = diag\n");
    invariance("inv_auto", "chains = 100\nwarmup = auto\nwarmup_max = 400\ndraws = 30", "");
}

int main(void) {
    static const hbt_case cases[] = {
        {"L-BFGS reaches the needle's mode from far away; the FD Hessian is its precision",
         test_optimiser_reaches_mode},
        {"init = lbfgs on the needle started 1000 away: moments within 4 MCSE",
         test_needle_end_to_end},
        {"init = lbfgs on kilpisjarvi validates against the reference", test_kilpisjarvi},
        {"init = lbfgs on the bimodal mixture: mode weight within 4 MCSE", test_mixture_weight},
        {"bad init / lbfgs_iters: exit 2 naming the key", test_bad_config},
        {"init = lbfgs: 1x1 = 2x1 = 1x2 (dense, diag, warmup = auto)", test_invariance},
    };
    return hbt_run_suite("heartbeat_lbfgs", cases, sizeof cases / sizeof *cases);
}
