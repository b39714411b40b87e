/* `heartbeat check-grad`: compare a model's analytic gradient with central finite
 * differences at random points, allowing for the round-off noise of the log density, and
 * check that the batch entry agrees with the single-point one. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/rng.h"
#include "heartbeat/heartbeat.h"
#include "io/config.h"
#include "models/models.h"

/* Tolerance. A central difference with step h has truncation error O(h^2 f''') and noise
   error ~ sigma/h, where sigma is the round-off noise of the log density itself (in
   Cholesky-based models measured at 1e-8..4e-6 absolute, far above eps*|f|). So:
     - sigma is measured per point and coordinate from 4th differences of f at 12 points
       spaced 1e-6*max(1,|x_i|) apart (More & Wild's ECnoise idea: at that spacing the
       smooth part of a 4th difference vanishes and Var(D^4 f) = 70 sigma^2), with a floor
       of 2 eps (1 + |f|);
     - step h (one of {1e-2,..,1e-6} * max(1, |x_i|)) allows
           |fd - g| <= rtol (1 + |g|) + 10 sigma / (x+h - (x-h)),
       i.e. rtol plus about five noise standard deviations of the difference;
     - a coordinate passes if at least one *usable* step meets its bound, trying several h
       to cover both truncation (small h) and noise (large h). A step is usable if its
       noise allowance is at most rtol (1 + |g|) or at most 10 times that of the largest
       step: otherwise a tiny step of a noisy density would allow almost any gradient.
       For a noise-free density every step is usable; for a noisy one the check is only as
       sensitive as the allowance printed in the table. */
#define N_STEPS   5
#define N_NOISE   12
#define BATCH_TOL 1e-9
static const double steps[N_STEPS] = {1e-2, 1e-3, 1e-4, 1e-5, 1e-6};

typedef struct row {
    size_t point, coord;
    double x, analytic, fd, err, allowed, ratio;
} row;

typedef struct checker {
    const hb_model *m;
    double *xw, *gw; /* scratch point and gradient */
} checker;

/* log density at xw (NaN if the model rejects the point). */
static double eval(checker *k) {
    double lp = NAN;
    if (k->m->vt->logp_grad(k->m->impl, k->xw, &lp, k->gw) != 0) return NAN;
    return lp;
}

/* Round-off noise of f along coordinate i at x (the point is in k->xw, restored after). */
static double noise_sd(checker *k, size_t i, double f0) {
    double xi = k->xw[i], delta = 1e-6 * fmax(1.0, fabs(xi)), f[N_NOISE];
    f[0] = f0;
    for (int j = 1; j < N_NOISE; j++) {
        k->xw[i] = xi + j * delta;
        f[j] = eval(k);
    }
    k->xw[i] = xi;
    double ss = 0.0;
    int nd = 0;
    for (int j = 0; j + 4 < N_NOISE; j++) {
        double d4 = f[j] - 4.0 * f[j + 1] + 6.0 * f[j + 2] - 4.0 * f[j + 3] + f[j + 4];
        if (isfinite(d4)) {
            ss += d4 * d4;
            nd++;
        }
    }
    double sigma = nd ? sqrt(ss / nd / 70.0) : 0.0;
    return fmax(sigma, 2.0 * DBL_EPSILON * (1.0 + fabs(f0)));
}

/* Best usable step for coordinate i: the row with the smallest err/allowed. */
static row check_coord(checker *k, size_t point, size_t i, double f0, double g, double rtol) {
    double sigma = noise_sd(k, i, f0), xi = k->xw[i];
    double fd[N_STEPS], noise[N_STEPS];
    for (int s = 0; s < N_STEPS; s++) {
        double h = steps[s] * fmax(1.0, fabs(xi));
        /* The step actually taken, after rounding of x +- h. */
        double xp = xi + h, xm = xi - h;
        k->xw[i] = xp;
        double fp = eval(k);
        k->xw[i] = xm;
        double fm = eval(k);
        k->xw[i] = xi;
        fd[s] = (fp - fm) / (xp - xm);
        noise[s] = 10.0 * sigma / (xp - xm);
    }
    double base = rtol * (1.0 + fabs(g)), usable = fmax(base, 10.0 * noise[0]);
    row best = {point, i, xi, g, NAN, INFINITY, base + noise[0], INFINITY};
    for (int s = 0; s < N_STEPS; s++) {
        if (!isfinite(fd[s]) || noise[s] > usable) continue;
        double err = fabs(fd[s] - g), allowed = base + noise[s];
        if (!(err / allowed >= best.ratio)) {
            best.fd = fd[s];
            best.err = err;
            best.allowed = allowed;
            best.ratio = err / allowed;
        }
    }
    return best;
}

static int by_ratio_desc(const void *a, const void *b) {
    double ra = ((const row *)a)->ratio, rb = ((const row *)b)->ratio;
    return (ra < rb) - (ra > rb);
}

static void print_rows(const hb_model *m, const row *rows, size_t n) {
    printf("  %5s  %-16s %13s %15s %15s %10s %10s\n", "point", "coordinate", "x", "analytic",
           "finite diff", "abs err", "allowed");
    for (size_t r = 0; r < n; r++)
        printf("  %5zu  %-16s %13.6g %15.8g %15.8g %10.3g %10.3g\n", rows[r].point,
               m->vt->coord_name(m->impl, rows[r].coord), rows[r].x, rows[r].analytic, rows[r].fd,
               rows[r].err, rows[r].allowed);
}

/* Batch entry vs single point at all points at once, with ld > n so that a model that
   ignores ld is caught. Returns the number of mismatches (printed). */
static size_t check_batch(const hb_model *m, size_t np, const double *xs, const double *fs,
                          const double *gs) {
    const size_t d = m->dim, ld = np + 1;
    double *x = calloc(d * ld, sizeof *x), *g = calloc(d * ld, sizeof *g);
    double *lp = calloc(ld, sizeof *lp);
    if (!x || !g || !lp) {
        free(x);
        free(g);
        free(lp);
        fprintf(stderr, "heartbeat check-grad: out of memory\n");
        return 1;
    }
    for (size_t c = 0; c < np; c++)
        for (size_t i = 0; i < d; i++) x[i * ld + c] = xs[c * d + i];
    size_t bad = 0;
    int rc = m->vt->logp_grad_batch(m->impl, np, ld, x, lp, g);
    if (rc != 0) {
        printf("batch: logp_grad_batch returned %d at points where logp_grad succeeded\n", rc);
        bad = 1;
    }
    double worst = 0.0;
    for (size_t c = 0; c < np && !bad; c++) {
        double e = fabs(lp[c] - fs[c]) / (1.0 + fabs(fs[c]));
        if (!(e <= BATCH_TOL)) {
            printf("batch: point %zu: logp %.17g from the batch entry, %.17g from logp_grad\n", c,
                   lp[c], fs[c]);
            bad++;
        }
        worst = fmax(worst, e);
        for (size_t i = 0; i < d; i++) {
            double a = gs[c * d + i], b = g[i * ld + c];
            e = fabs(a - b) / (1.0 + fabs(a));
            if (!(e <= BATCH_TOL)) {
                if (bad < 20)
                    printf("batch: point %zu %s: gradient %.17g from the batch entry, %.17g "
                           "from logp_grad\n",
                           c, m->vt->coord_name(m->impl, i), b, a);
                bad++;
            }
            worst = fmax(worst, e);
        }
    }
    if (!bad)
        printf("batch entry agrees with logp_grad (largest relative difference %.3g)\n", worst);
    free(x);
    free(g);
    free(lp);
    return bad;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: heartbeat check-grad CONFIG.ini [--set section.key=value]... [--points N]\n"
            "                            [--seed S] [--max-coords M] [--rtol T]\n"
            "\n"
            "Opens the model of CONFIG.ini's [model] section and compares its analytic gradient\n"
            "with central differences at N (default 5) points drawn from N(0, I) in the\n"
            "unconstrained space (seed S, default 1), trying steps 1e-2..1e-6 * max(1, |x_i|)\n"
            "and allowing rtol * (1 + |g|) (default 1e-6) plus the measured round-off noise of\n"
            "the log density over the step. Models with more than M (default 200) coordinates\n"
            "are checked at M evenly spaced coordinates. Also checks that the batch entry, if\n"
            "any, agrees with the single-point one. Other sections of the config are not read\n"
            "(they belong to `heartbeat run`), so unknown keys there are not reported here.\n"
            "Exit status: 0 gradient agrees, 3 mismatch or model error, 2 usage/config error.\n");
}

/* Parse a positive integer option value; 0 on error. */
static unsigned long parse_count(const char *opt, const char *v, unsigned long max) {
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (end == v || *end || n < 1 || n > max) {
        fprintf(stderr, "heartbeat check-grad: %s: expected an integer in [1, %lu], got '%s'\n",
                opt, max, v);
        return 0;
    }
    return n;
}

int hb_cli_check_grad(int argc, char **argv) {
    const char *path = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) return HB_ERR_INTERNAL;
    size_t nsets = 0, npoints = 5, maxc = 200;
    uint32_t seed = 1;
    double rtol = 1e-6;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v = NULL;
        /* "--opt value" and "--opt=value" */
        const char *opts[] = {"--set", "--points", "--seed", "--max-coords", "--rtol"};
        int which = -1;
        for (int o = 0; o < 5 && which < 0; o++) {
            size_t l = strlen(opts[o]);
            if (strncmp(a, opts[o], l) == 0 && (a[l] == '=' || a[l] == '\0')) {
                which = o;
                v = a[l] == '=' ? a + l + 1 : (i + 1 < argc ? argv[++i] : NULL);
            }
        }
        if (which >= 0 && !v) {
            fprintf(stderr, "heartbeat check-grad: %s needs a value\n", a);
            bad = 1;
        } else if (which == 0) {
            sets[nsets++] = v;
        } else if (which == 1) {
            bad = !(npoints = parse_count("--points", v, 1000000));
        } else if (which == 2) {
            unsigned long s = parse_count("--seed", v, 0xffffffffUL);
            bad = !s;
            seed = (uint32_t)s;
        } else if (which == 3) {
            bad = !(maxc = parse_count("--max-coords", v, 100000000));
        } else if (which == 4) {
            char *end;
            rtol = strtod(v, &end);
            if (end == v || *end || !(rtol > 0.0 && rtol < 1.0)) {
                fprintf(stderr, "heartbeat check-grad: --rtol: expected a number in (0, 1)\n");
                bad = 1;
            }
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            free(sets);
            return HB_OK;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            fprintf(stderr, "heartbeat check-grad: unexpected argument '%s'\n", a);
            bad = 1;
        }
    }
    if (!bad && !path) {
        fprintf(stderr, "heartbeat check-grad: missing CONFIG.ini\n");
        bad = 1;
    }
    if (bad) {
        usage(stderr);
        free(sets);
        return HB_ERR_USAGE;
    }

    hb_error err = {0};
    hb_config *cfg = NULL;
    hb_model m = {0};
    int rc = hb_config_load(&cfg, path, &err);
    for (size_t s = 0; rc == HB_OK && s < nsets; s++) rc = hb_config_override(cfg, sets[s], &err);
    /* No hb_cfg_finish: the other sections belong to `run`. */
    if (rc == HB_OK) rc = hb_model_open(&m, cfg, &err);
    free(sets);
    if (rc != HB_OK) {
        fprintf(stderr, "heartbeat check-grad: error: %s\n", err.msg);
        hb_config_free(cfg);
        return rc;
    }

    const size_t d = m.dim, nc = d < maxc ? d : maxc;
    double *xs = malloc(npoints * d * sizeof *xs), *gs = malloc(npoints * d * sizeof *gs);
    double *fs = malloc(npoints * sizeof *fs), *gw = malloc(d * sizeof *gw);
    row *fails = malloc(npoints * nc * sizeof *fails), *all = malloc(npoints * nc * sizeof *all);
    if (!xs || !gs || !fs || !gw || !fails || !all) {
        fprintf(stderr, "heartbeat check-grad: out of memory\n");
        rc = HB_ERR_INTERNAL;
        goto done;
    }
    printf("model %s: dimension %zu; %zu points from N(0, I), seed %u; %zu of %zu coordinates; "
           "rtol %g\n",
           m.name, d, npoints, seed, nc, d, rtol);

    size_t nfail = 0, nall = 0;
    checker k = {&m, NULL, gw};
    for (size_t p = 0; p < npoints; p++) {
        double *x = xs + p * d, *g = gs + p * d;
        hb_rng_normals(seed, p, 0, HB_RNG_TEST, d, x);
        if (m.vt->logp_grad(m.impl, x, &fs[p], g) != 0 || !isfinite(fs[p])) {
            printf("point %zu: the model rejects it (logp_grad failed or gave a non-finite log "
                   "density); check-grad needs valid points\n",
                   p);
            rc = HB_ERR_MODEL;
            goto done;
        }
        /* Perturb a copy: xw is x with one coordinate moved at a time. */
        double *xw = malloc(d * sizeof *xw);
        if (!xw) {
            rc = HB_ERR_INTERNAL;
            goto done;
        }
        memcpy(xw, x, d * sizeof *xw);
        k.xw = xw;
        for (size_t j = 0; j < nc; j++) {
            /* Evenly spaced coordinates, first and last included, when not all are checked. */
            size_t i = nc == d ? j : (nc == 1 ? 0 : j * (d - 1) / (nc - 1));
            row r = check_coord(&k, p, i, fs[p], g[i], rtol);
            all[nall++] = r;
            if (!(r.ratio <= 1.0)) fails[nfail++] = r;
        }
        free(xw);
    }

    qsort(all, nall, sizeof *all, by_ratio_desc);
    size_t nbatch = m.vt->logp_grad_batch ? check_batch(&m, npoints, xs, fs, gs) : 0;
    if (!m.vt->logp_grad_batch) printf("no batch entry (the per-chain fallback will be used)\n");
    if (nfail) {
        qsort(fails, nfail, sizeof *fails, by_ratio_desc);
        size_t show = nfail < 20 ? nfail : 20;
        printf("gradient MISMATCH in %zu of %zu checks%s:\n", nfail, nall,
               show < nfail ? " (20 worst shown)" : "");
        print_rows(&m, fails, show);
    } else {
        size_t show = nall < 5 ? nall : 5;
        printf("worst agreement (error / allowed = %.3g):\n", all[0].ratio);
        print_rows(&m, all, show);
    }
    if (nfail || nbatch) {
        printf("check-grad: FAILED\n");
        rc = HB_ERR_MODEL;
    } else {
        printf("check-grad: OK\n");
        rc = HB_OK;
    }
done:
    free(xs);
    free(gs);
    free(fs);
    free(gw);
    free(fails);
    free(all);
    hb_model_close(&m);
    hb_config_free(cfg);
    return rc;
}
