/* Gradient throughput per core of the data-driven models: each reference target and
 * logistic regression (10^4 x 50 by default), batch (SIMD over HB_LANES chains, and BLAS for
 * logistic) against one chain at a time.
 * Usage: bench_grad [SHARED_DIR] [seconds per measurement] [N K]
 * Built with OpenBLAS (HB_BENCH_BLAS), it also times the logistic batch gradient done with
 * two dgemm calls per row chunk, the alternative the library's blocked kernel was chosen over. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "core/vmath.h"
#include "io/config.h"
#include "models/data_models.h"
#include "models/logistic.h"

#ifdef HB_BENCH_BLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);

/* The logistic batch gradient (HB_LANES chains, SoA x with ld = HB_LANES) through OpenBLAS:
   E = X B and G = X^T sigma(E) per chunk of rows. Same priors as the model's defaults
   (normal(0, 2.5) on beta, normal(0, 10) on alpha). */
#define BLAS_CHUNK 256
static void blas_logistic(size_t N, size_t K, const double *X, const double *y, const double *x,
                          double *lp, double *g) {
    double *E = malloc(BLAS_CHUNK * HB_LANES * sizeof *E),
           *S = malloc(BLAS_CHUNK * HB_LANES * sizeof *S);
    double *G = calloc(K * HB_LANES, sizeof *G), sp[HB_LANES] = {0}, ssum[HB_LANES] = {0};
    const double *B = x + HB_LANES;
    for (size_t c = 0; c < HB_LANES; c++) lp[c] = 0;
    for (size_t n0 = 0; n0 < N; n0 += BLAS_CHUNK) {
        size_t rows = N - n0 < BLAS_CHUNK ? N - n0 : BLAS_CHUNK;
        for (size_t r = 0; r < rows; r++) memcpy(E + r * HB_LANES, x, HB_LANES * sizeof *E);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, HB_LANES, (int)K, 1.0,
                    X + n0 * K, (int)K, B, HB_LANES, 1.0, E, HB_LANES);
        double prod[HB_LANES], t[HB_LANES], e[HB_LANES], l[HB_LANES];
        for (size_t c = 0; c < HB_LANES; c++) prod[c] = 1.0;
        for (size_t r = 0; r < rows; r++) {
            double *er = E + r * HB_LANES;
            for (size_t c = 0; c < HB_LANES; c++) t[c] = -fabs(er[c]);
            hb_vexp(e, t);
            for (size_t c = 0; c < HB_LANES; c++) {
                double op = 1.0 + e[c], ip = 1.0 / op, sg = er[c] >= 0 ? ip : e[c] * ip;
                S[r * HB_LANES + c] = y[n0 + r] - sg;
                ssum[c] += y[n0 + r] - sg;
                sp[c] += y[n0 + r] * er[c] - (er[c] > 0 ? er[c] : 0.0);
                prod[c] *= op;
            }
        }
        hb_vlog(l, prod);
        for (size_t c = 0; c < HB_LANES; c++) sp[c] -= l[c];
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, HB_LANES, (int)rows, 1.0,
                    X + n0 * K, (int)K, S, HB_LANES, 1.0, G, HB_LANES);
    }
    for (size_t c = 0; c < HB_LANES; c++) {
        lp[c] = sp[c] - x[c] * x[c] / 200.0;
        g[c] = ssum[c] - x[c] / 100.0;
    }
    for (size_t k = 0; k < K; k++)
        for (size_t c = 0; c < HB_LANES; c++) {
            double b = B[k * HB_LANES + c];
            lp[c] -= b * b / 12.5;
            g[(k + 1) * HB_LANES + c] = G[k * HB_LANES + c] - b / 6.25;
        }
    free(E);
    free(S);
    free(G);
}
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile double sink;

/* Gradients per second through logp_grad_batch on HB_LANES points (x jittered around x0). */
static double rate_batch(const hb_model_vtable *vt, void *m, size_t D, const double *x0,
                         double secs) {
    double *x = malloc(D * HB_LANES * sizeof *x), *g = malloc(D * HB_LANES * sizeof *g);
    double lp[HB_LANES], z[HB_LANES];
    for (size_t i = 0; i < D; i++) {
        hb_rng_normals(11, i, 0, HB_RNG_TEST, HB_LANES, z);
        for (size_t c = 0; c < HB_LANES; c++) x[i * HB_LANES + c] = x0[i] + 1e-3 * z[c];
    }
    size_t calls = 0;
    double t0 = now(), t;
    do {
        for (int r = 0; r < 8; r++) {
            vt->logp_grad_batch(m, HB_LANES, HB_LANES, x, lp, g);
            sink += lp[0];
        }
        calls += 8;
    } while ((t = now() - t0) < secs);
    free(x);
    free(g);
    return (double)(calls * HB_LANES) / t;
}

static double rate_one(const hb_model_vtable *vt, void *m, size_t D, const double *x0,
                       double secs) {
    double *x = malloc(D * sizeof *x), *g = malloc(D * sizeof *g), lp;
    memcpy(x, x0, D * sizeof *x);
    size_t calls = 0;
    double t0 = now(), t;
    do {
        for (int r = 0; r < 8; r++) {
            x[0] = x0[0] + 1e-6 * r;
            vt->logp_grad(m, x, &lp, g);
            sink += lp;
        }
        calls += 8;
    } while ((t = now() - t0) < secs);
    free(x);
    free(g);
    return (double)calls / t;
}

/* A point in the bulk of each target: the reference posterior mean of the unconstrained
   coordinates, read from reference.json with the data layer would need nested objects, so
   a plain zero point nudged to valid values is used instead (cost does not depend on it). */
static void target_point(size_t D, double *x) {
    for (size_t i = 0; i < D; i++) x[i] = 0.1 * (double)(i % 3);
}

int main(int argc, char **argv) {
    const char *shared = argc > 1 ? argv[1] : getenv("HB_SHARED_DIR");
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    size_t N = argc > 4 ? (size_t)atol(argv[3]) : 10000, K = argc > 4 ? (size_t)atol(argv[4]) : 50;
    if (!shared) shared = "../shared";
    printf("gradient evaluations per second, one core, HB_LANES = %d, SIMD %s\n", HB_LANES,
           HB_VMATH_ISA);
    printf("%-42s %5s %14s %14s %14s %8s\n", "model", "dim", "one chain", "batch", "batch BLAS",
           "speedup");

    const hb_builtin_model *all[] = {&hb_builtin_eight_schools, &hb_builtin_diamonds,
                                     &hb_builtin_kilpisjarvi,   &hb_builtin_kidiq,
                                     &hb_builtin_arK,           &hb_builtin_garch,
                                     &hb_builtin_gp_regr,       &hb_builtin_gauss_mix};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        char text[2048];
        snprintf(text, sizeof text, "[model]\ndata = %s/targets/%s/data.json\n", shared,
                 all[i]->name);
        hb_config *cfg;
        hb_error err;
        hb_error_clear(&err);
        void *m;
        if (hb_config_load_string(&cfg, "bench.ini", text, &err) != HB_OK ||
            all[i]->create(cfg, &m, &err) != HB_OK) {
            fprintf(stderr, "%s: %s\n", all[i]->name, err.msg);
            return 1;
        }
        const hb_model_vtable *vt = all[i]->vtable;
        size_t D = vt->dim(m);
        double *x = malloc(D * sizeof *x);
        target_point(D, x);
        double r1 = rate_one(vt, m, D, x, secs), rb = rate_batch(vt, m, D, x, secs);
        printf("%-42s %5zu %14.4g %14.4g %14s %7.2fx\n", all[i]->name, D, r1, rb, "-", rb / r1);
        fflush(stdout);
        free(x);
        vt->destroy(m);
        hb_config_free(cfg);
    }

    /* Logistic regression on simulated data. */
    double *X = malloc(N * K * sizeof *X), *y = malloc(N * sizeof *y), *u = malloc(N * sizeof *u);
    double *beta = malloc((K + 1) * sizeof *beta);
    hb_rng_normals(5, 0, 0, HB_RNG_TEST, N * K, X);
    hb_rng_normals(5, 1, 0, HB_RNG_TEST, K + 1, beta);
    hb_rng_uniforms(5, 2, 0, HB_RNG_TEST, N, u);
    for (size_t k = 0; k <= K; k++) beta[k] *= 0.3;
    for (size_t n = 0; n < N; n++) {
        double eta = beta[0];
        for (size_t k = 0; k < K; k++) eta += X[n * K + k] * beta[k + 1];
        y[n] = u[n] < 1 / (1 + exp(-eta));
    }
    hb_logistic_options o = {HB_LOGISTIC_NORMAL, 2.5, 3.0, 10.0};
    void *m;
    hb_error err;
    hb_error_clear(&err);
    if (hb_logistic_new(&m, N, K, X, y, &o, &err) != HB_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const hb_model_vtable *vt = hb_builtin_logistic.vtable;
    double r1 = rate_one(vt, m, K + 1, beta, secs);
    double rb = rate_batch(vt, m, K + 1, beta, secs);
    char name[64], blas[32] = "-";
    snprintf(name, sizeof name, "logistic N=%zu K=%zu", N, K);
    double flops = 4.0 * (double)N * (double)K; /* two multiply-adds per X element */
#ifdef HB_BENCH_BLAS
    openblas_set_num_threads(1);
    {
        double *xb = malloc((K + 1) * HB_LANES * sizeof *xb),
               *gb = malloc((K + 1) * HB_LANES * sizeof *gb);
        double *gm = malloc((K + 1) * HB_LANES * sizeof *gm), lp[HB_LANES], lpm[HB_LANES],
               z[HB_LANES];
        for (size_t i = 0; i <= K; i++) {
            hb_rng_normals(11, i, 0, HB_RNG_TEST, HB_LANES, z);
            for (size_t c = 0; c < HB_LANES; c++) xb[i * HB_LANES + c] = beta[i] + 1e-3 * z[c];
        }
        /* Same numbers as the model (up to the constant in lp), or the timing means nothing. */
        vt->logp_grad_batch(m, HB_LANES, HB_LANES, xb, lpm, gm);
        blas_logistic(N, K, X, y, xb, lp, gb);
        double worst = 0;
        for (size_t i = 0; i < (K + 1) * HB_LANES; i++)
            worst = fmax(worst, fabs(gb[i] - gm[i]) / fmax(1.0, fabs(gm[i])));
        size_t calls = 0;
        double t0 = now(), t;
        do {
            blas_logistic(N, K, X, y, xb, lp, gb);
            sink += lp[0];
            calls++;
        } while ((t = now() - t0) < secs);
        double rblas = (double)(calls * HB_LANES) / t;
        snprintf(blas, sizeof blas, "%.4g", rblas);
        printf("%-42s %5zu %14.4g %14.4g %14s %7.2fx\n", name, K + 1, r1, rb, blas, rb / r1);
        printf("  logistic: %.2f GFLOP/s blocked, %.2f GFLOP/s OpenBLAS dgemm (gradients agree to "
               "%.1e)\n",
               rb * flops * 1e-9, rblas * flops * 1e-9, worst);
        free(xb);
        free(gb);
        free(gm);
    }
#else
    printf("%-42s %5zu %14.4g %14.4g %14s %7.2fx\n", name, K + 1, r1, rb, blas, rb / r1);
    printf("  logistic: %.2f GFLOP/s blocked (4 N K flops per gradient)\n", rb * flops * 1e-9);
#endif
    vt->destroy(m);
    free(X);
    free(y);
    free(u);
    free(beta);
    return 0;
}
