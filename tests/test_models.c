/* Tests of the models layer: every built-in and the example plugin against finite
 * differences and independent formulas, batch vs single point, the plugin loader's error
 * paths, the eval wrapper's invalid-lane handling, and the `models` / `check-grad` commands. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "hbtest.h"
#include "io/config.h"
#include "models/models.h"

#define LOG_2PI 1.83787706640934548356065947281123527

/* ---- helpers ---- */

/* Open the model of an INI text; all keys must be consumed (hb_cfg_finish). The config is
   freed before returning so that a model keeping borrowed config strings shows up in ASan. */
static int open_ini(hb_model *m, const char *ini, hb_error *err) {
    hb_config *c = NULL;
    hb_error_clear(err);
    int rc = hb_config_load_string(&c, "test.ini", ini, err);
    if (rc == HB_OK) rc = hb_model_open(m, c, err);
    if (rc == HB_OK) {
        rc = hb_cfg_finish(c, err);
        if (rc != HB_OK) hb_model_close(m);
    }
    hb_config_free(c);
    return rc;
}

static int open_ok(hb_model *m, const char *ini) {
    hb_error err;
    int rc = open_ini(m, ini, &err);
    if (rc != HB_OK) fprintf(stderr, "\n  open failed: %s\n  config:\n%s\n", err.msg, ini);
    CU_ASSERT_EQUAL(rc, HB_OK);
    return rc == HB_OK;
}

/* Expect open to fail with code and a message containing each of the needles. */
static void open_fails(const char *ini, int code, const char *needle1, const char *needle2) {
    hb_model m;
    hb_error err;
    int rc = open_ini(&m, ini, &err);
    if (rc != code || !strstr(err.msg, needle1) || (needle2 && !strstr(err.msg, needle2)))
        fprintf(stderr, "\n  expected code %d with '%s'%s%s, got %d: %s\n", code, needle1,
                needle2 ? " and " : "", needle2 ? needle2 : "", rc, err.msg);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle1));
    if (needle2) CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle2));
    if (rc == HB_OK) hb_model_close(&m);
}

static double eval1(const hb_model *m, const double *x, double *g) {
    double lp = NAN;
    CU_ASSERT_EQUAL(m->vt->logp_grad(m->impl, x, &lp, g), 0);
    return lp;
}

/* Analytic gradient vs central differences at npts points scale * N(0, I): the best of
   three steps must agree to 1e-6 (1 + |g|). */
static void check_fd(const hb_model *m, size_t npts, double scale, uint32_t seed) {
    size_t d = m->dim;
    double *x = malloc(d * sizeof *x), *g = malloc(d * sizeof *g), *gw = malloc(d * sizeof *gw);
    for (size_t p = 0; p < npts; p++) {
        hb_rng_normals(seed, p, 0, HB_RNG_TEST, d, x);
        for (size_t i = 0; i < d; i++) x[i] *= scale;
        double f0 = eval1(m, x, g);
        CU_ASSERT(isfinite(f0));
        for (size_t i = 0; i < d; i++) {
            double xi = x[i], best = INFINITY, bestfd = NAN;
            for (double h0 = 1e-4; h0 >= 1e-6; h0 /= 10) {
                double h = h0 * fmax(1.0, fabs(xi)), xp = xi + h, xm = xi - h;
                x[i] = xp;
                double fp = eval1(m, x, gw);
                x[i] = xm;
                double fm = eval1(m, x, gw);
                x[i] = xi;
                double fd = (fp - fm) / (xp - xm);
                if (fabs(fd - g[i]) < best) {
                    best = fabs(fd - g[i]);
                    bestfd = fd;
                }
            }
            if (!(best <= 1e-6 * (1.0 + fabs(g[i]))))
                fprintf(stderr, "\n  %s point %zu %s: analytic %.12g finite diff %.12g\n", m->name,
                        p, m->vt->coord_name(m->impl, i), g[i], bestfd);
            CU_ASSERT(best <= 1e-6 * (1.0 + fabs(g[i])));
        }
    }
    free(x);
    free(g);
    free(gw);
}

#define SENTINEL 12345.678

/* Batch with n points at stride ld vs single points: agreement to 1e-12 relative; slots
   c >= n untouched. Points are stored at slots off .. off+n-1 of a batch of size off+n
   when off > 0, to check that a chain's result does not depend on its slot (bitwise). */
static void check_batch(const hb_model *m, size_t n, size_t ld, double scale) {
    size_t d = m->dim, off = 3, nb = n + off, ldb = ld + off;
    double *xs = malloc(n * d * sizeof *xs), *gs = malloc(n * d * sizeof *gs);
    double *fs = malloc(n * sizeof *fs);
    double *x = malloc(d * ld * sizeof *x), *g = malloc(d * ld * sizeof *g);
    double *lp = malloc(ld * sizeof *lp);
    double *xb = malloc(d * ldb * sizeof *xb), *gb = malloc(d * ldb * sizeof *gb);
    double *lpb = malloc(ldb * sizeof *lpb);
    for (size_t c = 0; c < n; c++) {
        hb_rng_normals(7, c, 0, HB_RNG_TEST, d, xs + c * d);
        for (size_t i = 0; i < d; i++) xs[c * d + i] *= scale;
        fs[c] = eval1(m, xs + c * d, gs + c * d);
    }
    for (size_t k = 0; k < d * ld; k++) {
        x[k] = NAN; /* padding a model must not depend on */
        g[k] = SENTINEL;
    }
    for (size_t c = 0; c < ld; c++) lp[c] = SENTINEL;
    for (size_t c = 0; c < n; c++)
        for (size_t i = 0; i < d; i++) x[i * ld + c] = xs[c * d + i];
    CU_ASSERT_EQUAL(m->vt->logp_grad_batch(m->impl, n, ld, x, lp, g), 0);
    int ok = 1;
    for (size_t c = 0; c < ld; c++) {
        if (c >= n) {
            ok &= lp[c] == SENTINEL;
            for (size_t i = 0; i < d; i++) ok &= g[i * ld + c] == SENTINEL;
            continue;
        }
        ok &= fabs(lp[c] - fs[c]) <= 1e-12 * fmax(1.0, fabs(fs[c]));
        for (size_t i = 0; i < d; i++)
            ok &= fabs(g[i * ld + c] - gs[c * d + i]) <= 1e-12 * fmax(1.0, fabs(gs[c * d + i]));
    }
    if (!ok)
        fprintf(stderr, "\n  %s: batch n=%zu ld=%zu differs from single points\n", m->name, n, ld);
    CU_ASSERT(ok);

    /* The same points shifted by off slots, other slots holding other points. */
    for (size_t c = 0; c < nb; c++) {
        double *tmp = malloc(d * sizeof *tmp);
        hb_rng_normals(8, c, 0, HB_RNG_TEST, d, tmp);
        for (size_t i = 0; i < d; i++)
            xb[i * ldb + c] = c >= off ? xs[(c - off) * d + i] : scale * tmp[i];
        free(tmp);
    }
    CU_ASSERT_EQUAL(m->vt->logp_grad_batch(m->impl, nb, ldb, xb, lpb, gb), 0);
    int same = 1;
    for (size_t c = 0; c < n; c++) {
        same &= memcmp(&lpb[c + off], &lp[c], sizeof(double)) == 0;
        for (size_t i = 0; i < d; i++)
            same &= memcmp(&gb[i * ldb + c + off], &g[i * ld + c], sizeof(double)) == 0;
    }
    if (!same) fprintf(stderr, "\n  %s: batch result depends on the batch position\n", m->name);
    CU_ASSERT(same);
    /* A log-density-only entry (ABI 3) gives bitwise the log densities of the batch entry,
       and leaves other slots alone. */
    if (HB_MODEL_HAS(m->vt, logp_batch)) {
        for (size_t c = 0; c < ldb; c++) gb[c] = SENTINEL;
        CU_ASSERT_EQUAL(m->vt->logp_batch(m->impl, nb, ldb, xb, gb), 0);
        int lp_same = 1;
        for (size_t c = 0; c < ldb; c++)
            lp_same &= c < nb ? memcmp(&gb[c], &lpb[c], sizeof(double)) == 0 : gb[c] == SENTINEL;
        if (!lp_same) fprintf(stderr, "\n  %s: logp_batch differs from logp_grad_batch\n", m->name);
        CU_ASSERT(lp_same);
    }
    free(xs);
    free(gs);
    free(fs);
    free(x);
    free(g);
    free(lp);
    free(xb);
    free(gb);
    free(lpb);
}

/* FD, batch shapes (8/8, 5/8, 13/16, 35/40: kernels that take 2 or 4 chunks of 8 at once)
   for one model given as INI text. */
static void check_model(const char *ini, double scale) {
    hb_model m;
    if (!open_ok(&m, ini)) return;
    CU_ASSERT_PTR_NOT_NULL(m.vt->logp_grad_batch);
    check_fd(&m, 5, scale, 11);
    if (m.vt->logp_grad_batch) {
        check_batch(&m, 8, 8, scale);
        check_batch(&m, 5, 8, scale);
        check_batch(&m, 13, 16, scale);
        check_batch(&m, 35, 40, scale);
    }
    for (size_t i = 0; i < m.dim; i++) CU_ASSERT_PTR_NOT_NULL(m.vt->coord_name(m.impl, i));
    hb_model_close(&m);
}

static void assert_close(const char *what, double got, double want, double rtol) {
    int ok = fabs(got - want) <= rtol * fmax(1.0, fabs(want));
    if (!ok) fprintf(stderr, "\n  %s: got %.17g want %.17g\n", what, got, want);
    CU_ASSERT(ok);
}

static double normal_lpdf(double x, double mu, double sd) {
    double z = (x - mu) / sd;
    return -0.5 * z * z - log(sd) - 0.5 * LOG_2PI;
}

/* ---- built-ins: finite differences and batch ---- */

static void test_gaussian_fd_batch(void) {
    check_model("[model]\nname = gaussian\n", 1.0);
    check_model("[model]\nname = gaussian\ndim = 7\ncondition_number = 100\ncorrelation = 0.5\n",
                1.0);
    check_model("[model]\nname = gaussian\ndim = 4\ncondition_number = 10\ncorrelation = -0.3\n",
                1.0);
    check_model("[model]\nname = gaussian\ndim = 1\n", 1.0);
}

static void test_mixture_fd_batch(void) {
    check_model("[model]\nname = mixture\n", 3.0);
    check_model("[model]\nname = mixture\ndim = 2\nweights = 1, 3\nlocations = -1, 2\n"
                "scales = 0.5, 1.5\n",
                2.0);
}

static void test_funnel_fd_batch(void) {
    check_model("[model]\nname = funnel\n", 1.0);
    check_model("[model]\nname = funnel\ndim = 2\n", 1.5);
}

static void test_rosenbrock_fd_batch(void) {
    check_model("[model]\nname = rosenbrock\n", 1.0);
    check_model("[model]\nname = rosenbrock\ndim = 4\nQ = 0.5\n", 1.0);
}

static void test_plugin_fd_batch(void) {
    char *ini = NULL;
    CU_ASSERT(asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", hbt_env("HB_PLUGIN")) > 0);
    check_model(ini, 1.5);
    free(ini);
}

/* ---- built-ins: values against independent formulas ---- */

/* Dense inverse and log determinant by Gauss-Jordan with partial pivoting. */
static double invert(size_t d, double *a, double *inv) {
    double logdet = 0.0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) inv[i * d + j] = i == j;
    for (size_t k = 0; k < d; k++) {
        size_t p = k;
        for (size_t i = k + 1; i < d; i++)
            if (fabs(a[i * d + k]) > fabs(a[p * d + k])) p = i;
        for (size_t j = 0; j < d; j++) {
            double t = a[k * d + j];
            a[k * d + j] = a[p * d + j];
            a[p * d + j] = t;
            t = inv[k * d + j];
            inv[k * d + j] = inv[p * d + j];
            inv[p * d + j] = t;
        }
        double piv = a[k * d + k];
        logdet += log(fabs(piv));
        for (size_t j = 0; j < d; j++) {
            a[k * d + j] /= piv;
            inv[k * d + j] /= piv;
        }
        for (size_t i = 0; i < d; i++) {
            if (i == k) continue;
            double f = a[i * d + k];
            for (size_t j = 0; j < d; j++) {
                a[i * d + j] -= f * a[k * d + j];
                inv[i * d + j] -= f * inv[k * d + j];
            }
        }
    }
    return logdet;
}

static void gaussian_value(size_t d, double kappa, double rho) {
    char ini[256];
    snprintf(ini, sizeof ini,
             "[model]\nname = gaussian\ndim = %zu\ncondition_number = %.17g\ncorrelation = %.17g\n",
             d, kappa, rho);
    hb_model m;
    if (!open_ok(&m, ini)) return;
    double *s = malloc(d * d * sizeof *s), *si = malloc(d * d * sizeof *si);
    double *x = malloc(d * sizeof *x), *g = malloc(d * sizeof *g);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double vi = d > 1 ? pow(kappa, (double)i / (double)(d - 1)) : 1.0;
            double vj = d > 1 ? pow(kappa, (double)j / (double)(d - 1)) : 1.0;
            s[i * d + j] = sqrt(vi * vj) * (i == j ? 1.0 : rho);
        }
    double logdet = invert(d, s, si);
    for (int p = 0; p < 3; p++) {
        hb_rng_normals(3, (uint64_t)p, 0, HB_RNG_TEST, d, x);
        double q = 0.0;
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++) q += x[i] * si[i * d + j] * x[j];
        double want = -0.5 * (double)d * LOG_2PI - 0.5 * logdet - 0.5 * q;
        assert_close("gaussian logp", eval1(&m, x, g), want, 1e-11);
        for (size_t i = 0; i < d; i++) {
            double gi = 0.0;
            for (size_t j = 0; j < d; j++) gi -= si[i * d + j] * x[j];
            assert_close("gaussian grad", g[i], gi, 1e-10);
        }
    }
    CU_ASSERT_STRING_EQUAL(m.vt->coord_name(m.impl, 0), "x[1]");
    CU_ASSERT_EQUAL(m.dim, d);
    free(s);
    free(si);
    free(x);
    free(g);
    hb_model_close(&m);
}

static void test_gaussian_values(void) {
    gaussian_value(5, 100.0, 0.5);
    gaussian_value(4, 10.0, -0.3);
    gaussian_value(3, 1.0, 0.0);
    gaussian_value(1, 1.0, 0.0);
    gaussian_value(10, 1e4, 0.9);
}

/* p(x) = sum_k w_k prod_i N(x_i | loc_k, sd_k), straight from the definition. */
static void mixture_value(const char *ini, size_t d, size_t k, const double *w, const double *loc,
                          const double *sd, const double *x) {
    hb_model m;
    if (!open_ok(&m, ini)) return;
    CU_ASSERT_EQUAL(m.dim, d);
    double wsum = 0.0, p = 0.0, dp[8] = {0}, g[8];
    for (size_t j = 0; j < k; j++) wsum += w[j];
    for (size_t j = 0; j < k; j++) {
        double lc = log(w[j] / wsum);
        for (size_t i = 0; i < d; i++) lc += normal_lpdf(x[i], loc[j], sd[j]);
        double pc = exp(lc);
        p += pc;
        for (size_t i = 0; i < d; i++) dp[i] += pc * (loc[j] - x[i]) / (sd[j] * sd[j]);
    }
    assert_close("mixture logp", eval1(&m, x, g), log(p), 1e-12);
    for (size_t i = 0; i < d; i++) assert_close("mixture grad", g[i], dp[i] / p, 1e-11);
    hb_model_close(&m);
}

static void test_mixture_values(void) {
    const double w[] = {0.2, 0.3, 0.1, 0.4}, loc[] = {-2, 0, 3.2, 2.5}, sd[] = {1.2, 1, 5, 2.8};
    const double pts[] = {0.7, -3.1, 5.0, 12.0};
    for (int i = 0; i < 4; i++)
        mixture_value("[model]\nname = mixture\n", 1, 4, w, loc, sd, &pts[i]);
    const double w2[] = {1, 3}, loc2[] = {-1, 2}, sd2[] = {0.5, 1.5}, x2[] = {0.3, -0.4};
    mixture_value("[model]\nname = mixture\ndim = 2\nweights = 1, 3\nlocations = -1, 2\n"
                  "scales = 0.5, 1.5\n",
                  2, 2, w2, loc2, sd2, x2);
    /* Far in the tails, where a naive sum of exponentials underflows (x = 1000, -3e4): compare
       with the log-sum-exp of the same terms. */
    hb_model m;
    if (open_ok(&m, "[model]\nname = mixture\n")) {
        const double xs[3] = {60.0, 1000.0, -3e4};
        for (int q = 0; q < 3; q++) {
            double x = xs[q], g, t[4], mx = -INFINITY, s = 0.0;
            for (int j = 0; j < 4; j++) {
                t[j] = log(w[j]) + normal_lpdf(x, loc[j], sd[j]);
                mx = fmax(mx, t[j]);
            }
            for (int j = 0; j < 4; j++) s += exp(t[j] - mx);
            assert_close("mixture tail logp", eval1(&m, &x, &g), mx + log(s), 1e-12);
            CU_ASSERT(isfinite(g) && (x > 0 ? g < 0.0 : g > 0.0));
        }
        hb_model_close(&m);
    }
}

static void test_funnel_values(void) {
    hb_model m;
    if (!open_ok(&m, "[model]\nname = funnel\ndim = 3\n")) return;
    CU_ASSERT_EQUAL(m.dim, 3);
    CU_ASSERT_STRING_EQUAL(m.vt->coord_name(m.impl, 0), "v");
    CU_ASSERT_STRING_EQUAL(m.vt->coord_name(m.impl, 1), "x[1]");
    CU_ASSERT_STRING_EQUAL(m.vt->coord_name(m.impl, 2), "x[2]");
    const double pts[][3] = {{0.5, 1.0, -2.0}, {-2.0, 0.1, 0.3}, {4.0, -5.0, 7.0}};
    for (int p = 0; p < 3; p++) {
        const double *x = pts[p];
        double g[3], v = x[0], sd = exp(v / 2);
        double want = normal_lpdf(v, 0, 3) + normal_lpdf(x[1], 0, sd) + normal_lpdf(x[2], 0, sd);
        assert_close("funnel logp", eval1(&m, x, g), want, 1e-12);
        double ev = exp(-v);
        assert_close("funnel grad v", g[0], -v / 9 - 1.0 + 0.5 * (x[1] * x[1] + x[2] * x[2]) * ev,
                     1e-12);
        assert_close("funnel grad x1", g[1], -x[1] * ev, 1e-12);
        assert_close("funnel grad x2", g[2], -x[2] * ev, 1e-12);
    }
    hb_model_close(&m);
}

static void test_rosenbrock_values(void) {
    hb_model m;
    if (!open_ok(&m, "[model]\nname = rosenbrock\ndim = 4\nQ = 0.5\n")) return;
    const double x[4] = {0.3, 0.2, -1.0, 2.0};
    double g[4], q = 0.5, want = 0.0;
    for (int j = 0; j < 4; j += 2)
        want += normal_lpdf(x[j], 1.0, 1.0) + normal_lpdf(x[j + 1], x[j] * x[j], sqrt(q));
    assert_close("rosenbrock logp", eval1(&m, x, g), want, 1e-12);
    for (int j = 0; j < 4; j += 2) {
        double r = x[j + 1] - x[j] * x[j];
        assert_close("rosenbrock grad a", g[j], -(x[j] - 1.0) + 2.0 * x[j] * r / q, 1e-12);
        assert_close("rosenbrock grad b", g[j + 1], -r / q, 1e-12);
    }
    CU_ASSERT_STRING_EQUAL(m.vt->coord_name(m.impl, 3), "x[4]");
    hb_model_close(&m);
}

/* The example plugin: differences of log densities (it drops the constant), with the
   default constants and with a data file. */
static void plugin_value(const char *data, double sigma, double b) {
    char *ini = NULL;
    int n = data ? asprintf(&ini, "[model]\nname = plugin\nplugin = %s\ndata = %s\n",
                            hbt_env("HB_PLUGIN"), data)
                 : asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", hbt_env("HB_PLUGIN"));
    CU_ASSERT_FATAL(n > 0);
    hb_model m;
    if (open_ok(&m, ini)) {
        CU_ASSERT_EQUAL(m.dim, 2);
        CU_ASSERT_STRING_EQUAL(m.name, "banana");
        const double x[2] = {1.3, -0.7}, y[2] = {-0.4, 2.1};
        double g[2], gy[2];
        double want =
            normal_lpdf(x[0], 0, sigma) + normal_lpdf(x[1], b * (x[0] * x[0] - sigma * sigma), 1) -
            normal_lpdf(y[0], 0, sigma) - normal_lpdf(y[1], b * (y[0] * y[0] - sigma * sigma), 1);
        assert_close("plugin logp difference", eval1(&m, x, g) - eval1(&m, y, gy), want, 1e-12);
        hb_model_close(&m);
    }
    free(ini);
}

static void test_plugin_values(void) {
    plugin_value(NULL, 2.0, 0.25);
    char *data = hbt_write_file("banana.json", "{\"sigma\": 1.5, \"b\": 0.1}\n");
    plugin_value(data, 1.5, 0.1);
    free(data);
}

/* ---- option validation ---- */

static void test_bad_options(void) {
    open_fails("[model]\nname = nosuch\n", HB_ERR_USAGE, "name", "gaussian");
    open_fails("[model]\nname = nosuch\n", HB_ERR_USAGE, "test.ini:2", "plugin");
    open_fails("[model]\ndim = 3\n", HB_ERR_USAGE, "name", NULL);
    open_fails("[model]\nname = gaussian\ndim = 3\ncorrelation = -0.5\n", HB_ERR_USAGE,
               "correlation", "positive definite");
    open_fails("[model]\nname = gaussian\ncorrelation = 1\n", HB_ERR_USAGE, "correlation", NULL);
    open_fails("[model]\nname = gaussian\ndim = 0\n", HB_ERR_USAGE, "dim", NULL);
    open_fails("[model]\nname = gaussian\ncondition_number = 0.5\n", HB_ERR_USAGE,
               "condition_number", NULL);
    open_fails("[model]\nname = gaussian\nfoo = 1\n", HB_ERR_USAGE, "foo", NULL);
    open_fails("[model]\nname = rosenbrock\ndim = 3\n", HB_ERR_USAGE, "dim", "even");
    open_fails("[model]\nname = rosenbrock\nQ = 0\n", HB_ERR_USAGE, "Q", NULL);
    open_fails("[model]\nname = funnel\ndim = 1\n", HB_ERR_USAGE, "dim", NULL);
    open_fails("[model]\nname = mixture\nweights = 1, 2\nlocations = 0\nscales = 1, 1\n",
               HB_ERR_USAGE, "one value per component", NULL);
    open_fails("[model]\nname = mixture\nweights = 1, -1\nlocations = 0, 1\nscales = 1, 1\n",
               HB_ERR_USAGE, "weights", "> 0");
    open_fails("[model]\nname = mixture\nweights = 1, 1\nlocations = 0, 1\nscales = 1, 0\n",
               HB_ERR_USAGE, "scales", "> 0");
    open_fails("[model]\nname = mixture\nweights = 1, x\n", HB_ERR_USAGE, "weights", NULL);
    open_fails("[model]\nname = plugin\n", HB_ERR_USAGE, "plugin", "missing");
    open_fails("[model]\nname = gaussian\nplugin = x.so\n", HB_ERR_USAGE, "plugin", NULL);
}

/* ---- plugin loader ---- */

static void load_fails(const char *path, const char *data, const char *needle) {
    hb_model m;
    hb_error err = {0};
    int rc = hb_model_load_plugin(&m, path, data, &err);
    if (rc != HB_ERR_MODEL || !strstr(err.msg, needle) || !strstr(err.msg, path))
        fprintf(stderr, "\n  loading %s: expected '%s', got %d: %s\n", path, needle, rc, err.msg);
    CU_ASSERT_EQUAL(rc, HB_ERR_MODEL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NULL(m.vt);
    CU_ASSERT_PTR_NULL(m.dl);
    if (rc == HB_OK) hb_model_close(&m);
}

static void test_plugin_errors(void) {
    load_fails("/nonexistent/libnope.so", NULL, "dlopen failed");
    load_fails(HB_PLUGIN_nosym, NULL, "no symbol hb_model_plugin");
    load_fails(HB_PLUGIN_abi99, NULL, "abi_version 99 is newer than this heartbeat");
    load_fails(HB_PLUGIN_size8, NULL, "struct_size 8");
    load_fails(HB_PLUGIN_nullfn, NULL, "logp_grad is NULL");
    load_fails(HB_PLUGIN_nullvt, NULL, "returned NULL");
    load_fails(HB_PLUGIN_createfail, NULL, "this plugin always refuses to build");
    load_fails(HB_PLUGIN_dim0, NULL, "dim() returned 0");
    load_fails(hbt_env("HB_PLUGIN"), "/nonexistent/data.json", "cannot open data file");
    char *bad = hbt_write_file("bad.json", "{\"sigma\": -1}\n");
    load_fails(hbt_env("HB_PLUGIN"), bad, "sigma must be > 0");
    free(bad);
    /* Through the config: the plugin error is a model error (exit 3), not a usage error. */
    open_fails("[model]\nname = plugin\nplugin = /nonexistent/libnope.so\n", HB_ERR_MODEL,
               "dlopen failed", NULL);
}

/* A plugin built against the version-1 table (shorter struct_size) still loads, and the
   loader's copy of its table reads as NULL beyond what it declared. */
static void test_plugin_v1(void) {
    hb_model m;
    hb_error err = {0};
    int rc = hb_model_load_plugin(&m, HB_PLUGIN_v1, NULL, &err);
    if (rc != HB_OK) fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, HB_OK);
    CU_ASSERT_EQUAL(m.dim, 1);
    CU_ASSERT_PTR_NULL(m.vt->logp_grad_batch);
    const unsigned char *tail = (const unsigned char *)m.vt + m.vt->struct_size;
    int zero = 1;
    for (size_t k = m.vt->struct_size; k < sizeof(hb_model_vtable); k++)
        zero &= tail[k - m.vt->struct_size] == 0;
    CU_ASSERT(zero);
    double x = 1.5, lp, g;
    CU_ASSERT_EQUAL(m.vt->logp_grad(m.impl, &x, &lp, &g), 0);
    CU_ASSERT_DOUBLE_EQUAL(lp, -1.125, 1e-15);
    hb_model_close(&m);
    CU_ASSERT_PTR_NULL(m.vt);
}

/* ---- hb_model_eval_lanes ---- */

/* A 2-D standard normal that rejects x[0] > 2 (nonzero return) and gives a NaN gradient for
   x[1] > 2: for the per-lane fallback. */
static int fake_logp_grad(const void *model, const double *x, double *lp, double *g) {
    (void)model;
    if (x[0] > 2.0) return 1;
    *lp = -0.5 * (x[0] * x[0] + x[1] * x[1]);
    g[0] = -x[0];
    g[1] = x[1] > 2.0 ? NAN : -x[1];
    return 0;
}

static void test_eval_lanes_fallback(void) {
    hb_model_vtable vt = {
        .abi_version = 1, .struct_size = sizeof vt, .name = "fake", .logp_grad = fake_logp_grad};
    hb_model m = {.vt = &vt, .impl = NULL, .dl = NULL, .dim = 2};
    double x[2 * HB_LANES], lp[HB_LANES], g[2 * HB_LANES], ws[4];
    for (int c = 0; c < HB_LANES; c++) {
        x[c] = 0.5 * c - 1.0;                      /* lanes 7: x0 = 2.5 > 2 -> rejected */
        x[HB_LANES + c] = c == 2 ? 3.0 : 0.25 * c; /* lane 2: NaN gradient */
    }
    hb_model_eval_lanes(&m, x, lp, g, ws);
    for (int c = 0; c < HB_LANES; c++) {
        double x0 = x[c], x1 = x[HB_LANES + c];
        if (x0 > 2.0 || x1 > 2.0) {
            CU_ASSERT(lp[c] == -INFINITY);
            CU_ASSERT(g[c] == 0.0 && g[HB_LANES + c] == 0.0);
        } else {
            CU_ASSERT_DOUBLE_EQUAL(lp[c], -0.5 * (x0 * x0 + x1 * x1), 1e-15);
            CU_ASSERT_DOUBLE_EQUAL(g[c], -x0, 1e-15);
            CU_ASSERT_DOUBLE_EQUAL(g[HB_LANES + c], -x1, 1e-15);
        }
    }
}

/* Batch path with invalid lanes (funnel far down the neck: exp(-v) overflows), and the
   fallback on a real model (the example plugin with its batch entry hidden) agreeing with
   its batch entry. */
static void test_eval_lanes_models(void) {
    hb_model m;
    if (open_ok(&m, "[model]\nname = funnel\ndim = 3\n")) {
        double x[3 * HB_LANES], lp[HB_LANES], g[3 * HB_LANES], ws[6], want[HB_LANES], gw[3];
        hb_rng_normals_lanes(5, 0, 0, HB_RNG_TEST, 3, x);
        x[1] = -800.0; /* lane 1: lp = -inf, grad inf */
        x[4] = -800.0; /* lane 4: with x[1] = x[2] = 0 -> 0 * inf = NaN */
        x[HB_LANES + 4] = x[2 * HB_LANES + 4] = 0.0;
        for (int c = 0; c < HB_LANES; c++) {
            double p[3] = {x[c], x[HB_LANES + c], x[2 * HB_LANES + c]};
            m.vt->logp_grad(m.impl, p, &want[c], gw);
        }
        hb_model_eval_lanes(&m, x, lp, g, ws);
        for (int c = 0; c < HB_LANES; c++) {
            if (c == 1 || c == 4) {
                CU_ASSERT(lp[c] == -INFINITY);
                for (int i = 0; i < 3; i++) CU_ASSERT(g[i * HB_LANES + c] == 0.0);
            } else {
                CU_ASSERT(lp[c] == want[c]);
            }
        }
        hb_model_close(&m);
    }
    char *ini = NULL;
    CU_ASSERT(asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", hbt_env("HB_PLUGIN")) > 0);
    if (open_ok(&m, ini)) {
        double x[2 * HB_LANES], lp[HB_LANES], g[2 * HB_LANES], lp2[HB_LANES], g2[2 * HB_LANES],
            ws[4];
        hb_rng_normals_lanes(6, 0, 0, HB_RNG_TEST, 2, x);
        hb_model_eval_lanes(&m, x, lp, g, ws);
        hb_model_vtable nobatch = *m.vt;
        nobatch.logp_grad_batch = NULL;
        hb_model m2 = m;
        m2.vt = &nobatch;
        hb_model_eval_lanes(&m2, x, lp2, g2, ws);
        for (int c = 0; c < HB_LANES; c++) {
            assert_close("fallback lp", lp2[c], lp[c], 1e-12);
            for (int i = 0; i < 2; i++)
                assert_close("fallback grad", g2[i * HB_LANES + c], g[i * HB_LANES + c], 1e-12);
        }
        hb_model_close(&m);
    }
    free(ini);
}

/* Log densities alone for a group of batches: through the mixture's logp_batch and through
   the gradient path (logp_batch hidden) the same values bitwise; NaN points give -inf. */
static void test_eval_logp_wide(void) {
    enum { NL = 4 * HB_LANES, D = 2 };
    hb_model m;
    if (!open_ok(&m, "[model]\nname = mixture\ndim = 2\n")) return;
    CU_ASSERT(HB_MODEL_HAS(m.vt, logp_batch));
    double x[D * NL], lp[NL], lp2[NL], g[D * NL], ws[2 * D * HB_LANES + 2 * D];
    for (int v = 0; v < 4; v++) {
        double xb[D * HB_LANES];
        hb_rng_normals_lanes(3, (uint64_t)v * HB_LANES, 0, HB_RNG_TEST, D, xb);
        for (int i = 0; i < D; i++)
            for (int c = 0; c < HB_LANES; c++)
                x[i * NL + v * HB_LANES + c] = 4.0 * xb[i * HB_LANES + c];
    }
    x[3] = NAN;
    x[NL + 20] = NAN;
    hb_model_eval_logp_wide(&m, NL, x, lp, g, ws);
    hb_model_vtable nolp = *m.vt;
    nolp.logp_batch = NULL;
    hb_model m2 = m;
    m2.vt = &nolp;
    hb_model_eval_logp_wide(&m2, NL, x, lp2, g, ws);
    for (int c = 0; c < NL; c++) {
        CU_ASSERT_EQUAL(memcmp(&lp[c], &lp2[c], sizeof(double)), 0);
        const int bad = c == 3 || c == 20;
        CU_ASSERT(bad ? lp[c] == -INFINITY : isfinite(lp[c]));
    }
    hb_model_close(&m);
}

/* ---- registry ---- */

static void test_registry(void) {
    const hb_builtin_model *const *all = hb_builtin_models();
    size_t n = 0;
    for (; all[n]; n++) {
        CU_ASSERT_PTR_EQUAL(hb_builtin_model_find(all[n]->name), all[n]);
        CU_ASSERT_PTR_NOT_NULL(all[n]->summary);
        CU_ASSERT_PTR_NOT_NULL(all[n]->options);
        CU_ASSERT_PTR_NOT_NULL(all[n]->vtable->logp_grad);
        CU_ASSERT_EQUAL(all[n]->vtable->abi_version, HB_MODEL_ABI_VERSION);
    }
    CU_ASSERT(n >= 4);
    CU_ASSERT_PTR_NULL(hb_builtin_model_find("plugin"));
    CU_ASSERT_PTR_NULL(hb_builtin_model_find("nosuch"));
    const char *names[] = {"gaussian", "mixture", "funnel", "rosenbrock"};
    for (int i = 0; i < 4; i++) CU_ASSERT_PTR_NOT_NULL(hb_builtin_model_find(names[i]));
}

/* ---- the commands ---- */

static void expect_cli(int want, const char *needle, const char *fmt, const char *a1,
                       const char *a2) {
    char *out = NULL;
    int rc = hbt_sh(&out, fmt, a1, a2);
    int ok = rc == want && (!needle || (out && strstr(out, needle)));
    if (!ok) {
        fprintf(stderr, "\n  command: ");
        fprintf(stderr, fmt, a1, a2);
        fprintf(stderr, "\n  exit %d (want %d), expected '%s' in output:\n%s\n", rc, want,
                needle ? needle : "", out ? out : "");
    }
    CU_ASSERT(ok);
    free(out);
}

static void test_cli_models(void) {
    const char *bin = hbt_env("HB_BIN");
    const char *names[] = {"gaussian",   "mixture", "funnel",
                           "rosenbrock", "plugin",  "condition_number"};
    for (int i = 0; i < 6; i++) expect_cli(0, names[i], "%s models%s", bin, "");
    expect_cli(0, "usage", "%s models%s", bin, " --help");
    expect_cli(0, "Q = 0.1", "%s models%s", bin, " rosenbrock");
    expect_cli(2, "valid names", "%s models%s", bin, " nosuch");
}

static void check_grad_cfg(const char *name, const char *ini, int want, const char *needle) {
    char *path = hbt_write_file(name, ini);
    expect_cli(want, needle, "%s check-grad %s", hbt_env("HB_BIN"), path);
    free(path);
}

static void test_cli_check_grad(void) {
    check_grad_cfg("g.ini",
                   "[run]\nseed = 4\nchains = 8\n[model]\nname = gaussian\ndim = 5\n"
                   "condition_number = 100\ncorrelation = 0.5\n[sampler]\nalgorithm = mala\n",
                   0, "check-grad: OK");
    check_grad_cfg("m1.ini", "[model]\nname = mixture\n", 0, "batch entry agrees");
    check_grad_cfg("m2.ini",
                   "[model]\nname = mixture\ndim = 2\nweights = 1, 3\nlocations = -1, 2\n"
                   "scales = 0.5, 1.5\n",
                   0, "check-grad: OK");
    check_grad_cfg("f.ini", "[model]\nname = funnel\ndim = 5\n", 0, "check-grad: OK");
    check_grad_cfg("r.ini", "[model]\nname = rosenbrock\ndim = 4\n", 0, "check-grad: OK");
    char *ini = NULL;
    CU_ASSERT(asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", hbt_env("HB_PLUGIN")) > 0);
    check_grad_cfg("p.ini", ini, 0, "check-grad: OK");
    free(ini);
    CU_ASSERT(asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", HB_PLUGIN_badgrad) > 0);
    check_grad_cfg("bad.ini", ini, 3, "MISMATCH");
    free(ini);
    /* A correct gradient with a noisy log density passes: the noise allowance at work. */
    CU_ASSERT(asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", HB_PLUGIN_noisy) > 0);
    check_grad_cfg("noisy.ini", ini, 0, "check-grad: OK");
    free(ini);
    /* ... but the allowance does not swallow a 1% gradient error. */
    CU_ASSERT(asprintf(&ini, "[model]\nname = plugin\nplugin = %s\n", HB_PLUGIN_noisybad) > 0);
    check_grad_cfg("noisybad.ini", ini, 3, "MISMATCH");
    free(ini);

    const char *bin = hbt_env("HB_BIN");
    char *g = hbt_write_file("g2.ini", "[model]\nname = gaussian\n");
    expect_cli(0, "dimension 3", "%s check-grad %s --set model.dim=3 --points 2 --seed 9", bin, g);
    expect_cli(0, "20 of 300", "%s check-grad %s --set=model.dim=300 --max-coords 20", bin, g);
    expect_cli(2, "correlation", "%s check-grad %s --set model.correlation=2", bin, g);
    expect_cli(2, "unexpected argument", "%s check-grad %s --bogus", bin, g);
    expect_cli(0, "usage", "%s check-grad%s --help", bin, "");
    free(g);
    expect_cli(2, "missing CONFIG", "%s check-grad%s", bin, "");
    expect_cli(2, "cannot open config", "%s check-grad %s", bin, "/nonexistent/x.ini");
    check_grad_cfg("u.ini", "[model]\nname = nosuch\n", 2, "gaussian");
    check_grad_cfg("np.ini", "[model]\nname = plugin\nplugin = /nonexistent/libx.so\n", 3,
                   "dlopen failed");
}

int main(void) {
    static const hbt_case cases[] = {
        {"registry", test_registry},
        {"gaussian: finite differences, batch", test_gaussian_fd_batch},
        {"mixture: finite differences, batch", test_mixture_fd_batch},
        {"funnel: finite differences, batch", test_funnel_fd_batch},
        {"rosenbrock: finite differences, batch", test_rosenbrock_fd_batch},
        {"plugin: finite differences, batch", test_plugin_fd_batch},
        {"gaussian: values vs dense inverse", test_gaussian_values},
        {"mixture: values vs definition", test_mixture_values},
        {"funnel: values vs definition", test_funnel_values},
        {"rosenbrock: values vs definition", test_rosenbrock_values},
        {"plugin: values, data file", test_plugin_values},
        {"bad options", test_bad_options},
        {"plugin loader errors", test_plugin_errors},
        {"plugin with a version-1 table", test_plugin_v1},
        {"eval_lanes: fallback, invalid lanes", test_eval_lanes_fallback},
        {"eval_lanes: models", test_eval_lanes_models},
        {"eval_logp_wide: logp_batch and the gradient path", test_eval_logp_wide},
        {"heartbeat models", test_cli_models},
        {"heartbeat check-grad", test_cli_check_grad},
    };
    return hbt_run_suite("models", cases, sizeof cases / sizeof cases[0]);
}
