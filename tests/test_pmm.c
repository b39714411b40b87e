/* The Poisson midpoint method (ALGORITHMS.md §4), overdamped and underdamped.
 *
 * 1. The spec's regressions (§4.6) on the 1-D mixture 1/2 N(-2, 1) + 1/2 N(2, 1) (E x^2 = 5,
 *    E x^4 = 43), chains from x = 0: overdamped a = 0.25, K = 16, 40,000 chains, 400 steps,
 *    moments over the last 200 (spec: 5.035 / 44.09 at 1.94 gradients per step; ULA at a:
 *    5.060); underdamped gamma = 2, a = 0.5, K = 16, moments over the last 300 of 600 steps
 *    (spec: 5.009 / 43.38).
 * 2. The bias, exactly, on a Gaussian: for g(x) = -lambda x the PMM step is a random linear
 *    map (random through the heads) plus Gaussian noise, so its stationary variance solves a
 *    small linear (Lyapunov-type) equation. We build that map from the spec's *naive* K
 *    sub-step recursion (§4.2: A_h, G_h, Gamma_h, the fine chain and the frozen-drift
 *    midpoints driven by the same increments), as linear functionals of (X0, Z_0..Z_{K-1}),
 *    independently of the compressed form the sampler implements. The heads' contributions
 *    add, so with F = F_0 + sum_i H_i D_i (noise parts N_0, N_i) and p = 1/K:
 *      S = Fb S Fb' + p(1-p) sum_i Dx_i S Dx_i' + Nb Nb' + p(1-p) sum_i N_i N_i',
 *    Fb = F_0 + p sum_i D_i (x parts Fx; Nb its noise part). p = 0 gives the base scheme
 *    (ULA, or ULMC, the frozen-force exponential integrator) at the coarse step.
 *    Measured on iid N(0, 1) (metric identity, fixed steps), with many chains: PMM's variance
 *    is the exact one within 4 MCSE; its bias over ULA's at the same step is the exact ratio
 *    (0.26 at a = 0.25, K = 16) and clearly below 1/2; the exact bias tends to that of the
 *    small-step LMC(a/K) it emulates as a -> 0 (ratio 1 + O(a K)), which the measurement
 *    at a = 0.2, K = 2 shows too (exact ratio 1.12 to LMC(0.1), ULA(0.2) has 1.9x).
 * 3. The 10-d correlated Gaussian with the warmup's step and diagonal metric, both variants:
 *    every mean 0 and every variance the exact PMM variance at the adapted (a, M) (through the
 *    eigen-decomposition of M^1/2 Sigma^-1 M^1/2), within 4 MCSE.
 * 4. Underdamped: determinism, bitwise 1x1 = 2x1 = 1x2 ranks x threads, and an interrupted
 *    run resumed from its checkpoint equal to the uninterrupted one (the velocities live in
 *    the per-chain state). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

/* ---- exact stationary variances of the linear recursions ---- */

/* Cholesky of one Brownian piece of length t for the kinetic Langevin functionals:
   I = p1 z1, J = q1 z1 + q2 z2 (§4.4 covariances). */
static void klmc_piece(double g, double t, double *p1, double *q1, double *q2) {
    const double e = exp(-g * t);
    const double vi = (1 - e * e) / (2 * g), c = (1 - e) * (1 - e) / (2 * g * g);
    const double vj = (t - 2 * (1 - e) / g + (1 - e * e) / (2 * g)) / (g * g);
    *p1 = sqrt(vi);
    *q1 = c / *p1;
    *q2 = sqrt(fmax(vj - *q1 * *q1, 0));
}

/* The naive §4.2 coarse step with at most one head (head < 0: none) on g(x) = -lam x, as
   coefficient rows over (X0, Z): out[r * n + k] for state component r (overdamped: x;
   underdamped: u, v). n = ds + K (overdamped) or ds + 2K (underdamped). */
static void naive_step(int under, double lam, double a, int K, double gam, int head, double *out) {
    const double h = a / K;
    if (!under) {
        const int n = 1 + K;
        double *xt = calloc((size_t)(2 * n), sizeof *xt), *xp = xt + n;
        xt[0] = xp[0] = 1;
        for (int i = 0; i < K; i++) {
            /* drift b0 + K H_i (b(X+_i) - b0), b = -lam x; then the shared increment */
            for (int k = 0; k < n; k++) {
                const double b0 = k == 0 ? -lam : 0, bp = -lam * xp[k];
                xt[k] += h * (b0 + (i == head ? K * (bp - b0) : 0));
                xp[k] += h * b0;
            }
            xt[1 + i] += sqrt(2 * h);
            xp[1 + i] += sqrt(2 * h);
        }
        memcpy(out, xt, (size_t)n * sizeof *out);
        free(xt);
        return;
    }
    const int n = 2 + 2 * K;
    const double e = exp(-gam * h), k1 = (1 - e) / gam, ph = (h - k1) / gam, sg = sqrt(2 * gam);
    double p1, q1, q2;
    klmc_piece(gam, h, &p1, &q1, &q2);
    double *u = calloc((size_t)(4 * n), sizeof *u), *v = u + n, *up = v + n, *vp = up + n;
    u[0] = up[0] = 1;
    v[1] = vp[1] = 1;
    for (int i = 0; i < K; i++)
        for (int k = 0; k < n; k++) {
            const double c0 = k == 0 ? -lam : 0, cp = -lam * up[k];
            const double c = c0 + (i == head ? K * (cp - c0) : 0);
            const double I = k == 2 + 2 * i ? p1 : 0;
            const double J = k == 2 + 2 * i ? q1 : k == 3 + 2 * i ? q2 : 0;
            /* X <- A_h X + G_h c + Gamma_h Z for the fine chain and the midpoints */
            const double un = u[k] + k1 * v[k], vn = e * v[k];
            u[k] = un + ph * c + sg * J;
            v[k] = vn + k1 * c + sg * I;
            const double upn = up[k] + k1 * vp[k], vpn = e * vp[k];
            up[k] = upn + ph * c0 + sg * J;
            vp[k] = vpn + k1 * c0 + sg * I;
        }
    memcpy(out, u, (size_t)n * sizeof *out);
    memcpy(out + n, v, (size_t)n * sizeof *out);
    free(u);
}

/* Solve A x = b (n <= 4) by Gaussian elimination with partial pivoting. */
static void solve_small(int n, double A[16], double b[4]) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        for (int k = 0; k < n; k++) {
            double t = A[c * n + k];
            A[c * n + k] = A[p * n + k];
            A[p * n + k] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++) A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        for (int k = r + 1; k < n; k++) b[r] -= A[r * n + k] * b[k];
        b[r] /= A[r * n + r];
    }
}

/* Stationary variance of the position: PMM (p = 1/K) or the base scheme at step a (p = 0,
   pass K = 1), for the whitened eigenvalue lam. */
static double exact_var(int under, double lam, double a, int K, double gam, double p) {
    const int ds = under ? 2 : 1, n = ds + (under ? 2 : 1) * K, nn = ds * n;
    double *F0 = malloc((size_t)(nn * (K + 2)) * sizeof *F0), *Fb = F0 + nn, *D = Fb + nn;
    naive_step(under, lam, a, K, gam, -1, F0);
    memcpy(Fb, F0, (size_t)nn * sizeof *Fb);
    for (int i = 0; i < K; i++) {
        double *Di = D + (size_t)i * nn;
        naive_step(under, lam, a, K, gam, i, Di);
        for (int k = 0; k < nn; k++) {
            Di[k] -= F0[k];
            Fb[k] += p * Di[k];
        }
    }
    /* (I - Fx (x) Fx - p(1-p) sum Dx (x) Dx) vec S = vec Q */
    double A[16] = {0}, q[4] = {0};
    const double w = p * (1 - p);
    for (int r = 0; r < ds; r++)
        for (int s = 0; s < ds; s++) {
            const int row = r * ds + s;
            for (int k = ds; k < n; k++) q[row] += Fb[r * n + k] * Fb[s * n + k];
            for (int i = 0; i < K; i++) {
                const double *Di = D + (size_t)i * nn;
                for (int k = ds; k < n; k++) q[row] += w * Di[r * n + k] * Di[s * n + k];
            }
            for (int t = 0; t < ds; t++)
                for (int u = 0; u < ds; u++) {
                    double c = Fb[r * n + t] * Fb[s * n + u];
                    for (int i = 0; i < K; i++) {
                        const double *Di = D + (size_t)i * nn;
                        c += w * Di[r * n + t] * Di[s * n + u];
                    }
                    A[row * ds * ds + t * ds + u] = (row == t * ds + u) - c;
                }
        }
    solve_small(ds * ds, A, q);
    free(F0);
    return q[0];
}

/* Eigen-decomposition of a symmetric n x n matrix by cyclic Jacobi: A is destroyed (its
   diagonal becomes the eigenvalues, copied to ev), V gets the eigenvectors as columns. */
static void jacobi_eigen(int n, double *A, double *V, double *ev) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) V[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) off += A[i * n + j] * A[i * n + j];
        if (off < 1e-30) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (fabs(A[p * n + q]) < 1e-300) continue;
                const double th = (A[q * n + q] - A[p * n + p]) / (2 * A[p * n + q]);
                const double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                const double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* A <- A J */
                    const double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* A <- J' A */
                    const double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    const double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++) ev[i] = A[i * n + i];
}

/* ---- running the sampler ---- */

static char *out_path(const char *tag) {
    char *out = NULL;
    if (asprintf(&out, "%s/pmm_%s.h5", hbt_tmpdir(), tag) < 0) abort();
    return out;
}

/* Run the config text (its [run] output is set here); returns the output path or NULL. */
static char *run_text(const char *tag, const char *text, int ranks, int threads,
                      const char *suffix) {
    char name[128], *out = NULL, *log = NULL;
    snprintf(name, sizeof name, "pmm_%s.ini", tag);
    char *cfg = hbt_write_file(name, text);
    if (asprintf(&out, "%s/pmm_%s%s.h5", hbt_tmpdir(), tag, suffix) < 0) abort();
    int rc = hbt_sh(&log,
                    "OMP_NUM_THREADS=%d %s -n %d --oversubscribe --bind-to none %s run %s "
                    "--output %s --quiet",
                    threads, hbt_env("HB_MPIEXEC"), ranks, hbt_env("HB_BIN"), cfg, out);
    if (rc != 0) fprintf(stderr, "  %s: exit %d: %s\n", tag, rc, log ? log : "");
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    free(cfg);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- 1. the spec's mixture checks ---- */

enum { MIX_DRAWS_O = 400, MIX_KEEP_O = 200, MIX_DRAWS_U = 600, MIX_KEEP_U = 300 };

/* Per-chain averages of x^2 and x^4 over the last `keep` draws: their means and standard
   errors (independent chains), and the mean gradients per step. */
static void run_mixture(const char *tag, int chains, int draws, int keep, const char *sampler,
                        double m[2], double se[2], double *grads) {
    char text[1024];
    char *out = out_path(tag);
    snprintf(text, sizeof text,
             "[run]\nseed = 7\nchains = %d\nwarmup = 0\ndraws = %d\ninit_radius = 0\n"
             "output = %s\n[model]\nname = mixture\ndim = 1\nweights = 0.5, 0.5\n"
             "locations = -2, 2\nscales = 1, 1\n[sampler]\n%s",
             chains, draws, out, sampler);
    char *cfg = hbt_write_file("pmm_mix.ini", text), *log = NULL;
    CU_ASSERT_EQUAL_FATAL(
        hbt_sh(&log, "OMP_NUM_THREADS=2 %s run %s --quiet", hbt_env("HB_BIN"), cfg), 0);
    free(log);
    size_t n;
    double *x = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    double *st = hbt_read_dataset(out, "/sample_stats/n_steps", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    const size_t C = (size_t)chains, D = (size_t)draws, KP = (size_t)keep;
    double *v2 = malloc(C * KP * sizeof *v2), *v4 = malloc(C * KP * sizeof *v4), g = 0;
    for (size_t c = 0; c < C; c++)
        for (size_t j = 0; j < KP; j++) {
            double t = x[c * D + D - KP + j];
            v2[c * KP + j] = t * t;
            v4[c * KP + j] = t * t * t * t;
        }
    for (size_t k = 0; k < n; k++) g += st[k];
    *grads = g / (double)n;
    se[0] = hbt_mcse_chain_means(v2, C, KP, &m[0]);
    se[1] = hbt_mcse_chain_means(v4, C, KP, &m[1]);
    free(v2);
    free(v4);
    free(x);
    free(st);
    free(cfg);
    remove(out);
    free(out);
}

static void test_overdamped_vs_spec_and_ula(void) {
    double mp[2], sp[2], gp, mu[2], su[2], gu;
    run_mixture("mix_o", 40000, MIX_DRAWS_O, MIX_KEEP_O,
                "algorithm = pmm\nstep_size = 0.25\n[pmm]\nK = 16\n", mp, sp, &gp);
    run_mixture("mix_ula", 40000, MIX_DRAWS_O, MIX_KEEP_O, "algorithm = ula\nstep_size = 0.25\n",
                mu, su, &gu);
    printf("\n  PMM: E x2 %.4f (se %.4f), E x4 %.3f (se %.3f), %.3f gradients/step"
           "\n  ULA: E x2 %.4f (se %.4f), E x4 %.3f (se %.3f), %.3f gradients/step\n",
           mp[0], sp[0], mp[1], sp[1], gp, mu[0], su[0], mu[1], su[1], gu);
    /* the spec's values carry MC errors of 0.01 (E x^2) and 0.15 (E x^4) */
    HBT_ASSERT_Z("PMM E x^2 vs ALGORITHMS.md 4.6", mp[0], 5.035, sqrt(sp[0] * sp[0] + 1e-4), 4.0);
    HBT_ASSERT_Z("PMM E x^4 vs ALGORITHMS.md 4.6", mp[1], 44.09, sqrt(sp[1] * sp[1] + 0.0225), 4.0);
    HBT_ASSERT_Z("ULA E x^2 vs ALGORITHMS.md 4.6", mu[0], 5.060, sqrt(su[0] * su[0] + 1e-4), 4.0);
    /* cost: 1 + Binomial(K - 1, 1/K) gradients, mean 1 + 15/16 */
    CU_ASSERT(fabs(gp - (1 + 15.0 / 16)) < 0.01);
    CU_ASSERT(fabs(gu - 1) < 1e-12);
    /* the bias (truth 5, 43) is clearly smaller than ULA's at the same step: in E x^4 by
       about 25 standard errors; in E x^2 the expected gap (0.025) is only about 4 of them, so
       there only its sign is asserted (the exact Gaussian test below measures the ratio) */
    CU_ASSERT(mp[0] < mu[0]);
    CU_ASSERT((mu[1] - 43) - (mp[1] - 43) > 4 * sqrt(sp[1] * sp[1] + su[1] * su[1]));
    CU_ASSERT(mp[0] - 5 > 0); /* and still there: PMM is unadjusted */
}

static void test_underdamped_vs_spec(void) {
    double m[2], se[2], g;
    run_mixture("mix_u", 10000, MIX_DRAWS_U, MIX_KEEP_U,
                "algorithm = pmm\nstep_size = 0.5\n[pmm]\nK = 16\nvariant = underdamped\n"
                "gamma = 2\n",
                m, se, &g);
    printf("\n  PMM underdamped: E x2 %.4f (se %.4f), E x4 %.3f (se %.3f), %.3f gradients/step\n",
           m[0], se[0], m[1], se[1], g);
    /* the spec's values carry MC errors of 0.015 (E x^2) and 0.2 (E x^4) */
    HBT_ASSERT_Z("PMM-ULMC E x^2 vs ALGORITHMS.md 4.6", m[0], 5.009,
                 sqrt(se[0] * se[0] + 0.015 * 0.015), 4.0);
    HBT_ASSERT_Z("PMM-ULMC E x^4 vs ALGORITHMS.md 4.6", m[1], 43.38, sqrt(se[1] * se[1] + 0.04),
                 4.0);
    CU_ASSERT(fabs(g - (1 + 15.0 / 16)) < 0.01);
}

/* ---- 2. the exact bias on iid N(0, 1) ---- */

enum { G_DIM = 16, G_CHAINS = 2048, G_DRAWS = 200, G_BURN = 50 };

/* Mean over coordinates and kept draws of x^2 (the stationary variance), with its MCSE from
   the spread of the chains' averages. */
static double gauss_var_run(const char *tag, const char *sampler, double *se) {
    char text[1024];
    snprintf(text, sizeof text,
             "[run]\nseed = 11\nchains = %d\nwarmup = 0\ndraws = %d\n[model]\nname = gaussian\n"
             "dim = %d\n[sampler]\nmetric = identity\n%s",
             G_CHAINS, G_DRAWS, G_DIM, sampler);
    char *out = run_text(tag, text, 1, 2, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    size_t n;
    double *x = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_FATAL(n == (size_t)G_CHAINS * G_DRAWS * G_DIM);
    const size_t keep = G_DRAWS - G_BURN;
    double *v = malloc((size_t)G_CHAINS * keep * sizeof *v), m;
    for (size_t c = 0; c < G_CHAINS; c++)
        for (size_t j = 0; j < keep; j++) {
            const double *xr = x + (c * G_DRAWS + G_BURN + j) * G_DIM;
            double s = 0;
            for (size_t i = 0; i < G_DIM; i++) s += xr[i] * xr[i];
            v[c * keep + j] = s / G_DIM;
        }
    *se = hbt_mcse_chain_means(v, G_CHAINS, keep, &m);
    free(v);
    free(x);
    remove(out);
    free(out);
    return m;
}

static void test_exact_bias_gaussian(void) {
    /* the exact laws (whitened eigenvalue 1) */
    const double pmm25 = exact_var(0, 1, 0.25, 16, 0, 1.0 / 16);
    const double ula25 = exact_var(0, 1, 0.25, 1, 0, 0),
                 lmc25 = exact_var(0, 1, 0.25 / 16, 1, 0, 0);
    const double pmm20 = exact_var(0, 1, 0.2, 2, 0, 0.5), lmc10 = exact_var(0, 1, 0.1, 1, 0, 0);
    const double ula20 = exact_var(0, 1, 0.2, 1, 0, 0);
    const double und = exact_var(1, 1, 0.5, 16, 2, 1.0 / 16), ulmc = exact_var(1, 1, 0.5, 1, 2, 0);
    const double ulmc_fine = exact_var(1, 1, 0.5 / 16, 1, 2, 0);
    printf("\n  exact stationary variances on N(0, 1):"
           "\n    overdamped a = 0.25, K = 16: PMM %.5f, ULA(a) %.5f, LMC(a/K) %.5f"
           "\n    overdamped a = 0.2, K = 2:   PMM %.5f, ULA(a) %.5f, LMC(a/K) %.5f"
           "\n    underdamped gamma = 2, a = 0.5, K = 16: PMM %.5f, ULMC(a) %.5f, ULMC(a/K) %.5f\n",
           pmm25, ula25, lmc25, pmm20, ula20, lmc10, und, ulmc, ulmc_fine);
    /* the formula against the closed forms it must reproduce: ULA's 1/(1 - a/2) (p = 0),
       and the kinetic integrator's exact OU limit (variance -> 1 as a -> 0) */
    CU_ASSERT(fabs(ula25 - 1 / (1 - 0.125)) < 1e-12);
    CU_ASSERT(fabs(exact_var(1, 1, 1e-4, 1, 2, 0) - 1) < 1e-3);
    /* PMM's bias tends to that of the LMC(a/K) it emulates: ratio 1 + O(a K) */
    for (int k = 0; k < 3; k++) {
        const double a = 1e-2 * pow(0.1, k);
        const double r =
            (exact_var(0, 1, a, 16, 0, 1.0 / 16) - 1) / (exact_var(0, 1, a / 16, 1, 0, 0) - 1);
        printf("    a = %g, K = 16: PMM bias / LMC(a/K) bias = %.5f\n", a, r);
        CU_ASSERT(fabs(r - 1) < 12 * a);
    }
    /* measured */
    double s1, s2, s3, s4;
    const double v1 =
        gauss_var_run("g_pmm25", "algorithm = pmm\nstep_size = 0.25\n[pmm]\nK = 16\n", &s1);
    const double v2 = gauss_var_run("g_ula25", "algorithm = ula\nstep_size = 0.25\n", &s2);
    const double v3 =
        gauss_var_run("g_pmm20", "algorithm = pmm\nstep_size = 0.2\n[pmm]\nK = 2\n", &s3);
    const double v4 = gauss_var_run(
        "g_und", "algorithm = pmm\nstep_size = 0.5\n[pmm]\nK = 16\nvariant = underdamped\n", &s4);
    printf("  measured: PMM(0.25, 16) %.5f (se %.5f), ULA(0.25) %.5f (se %.5f), PMM(0.2, 2) "
           "%.5f (se %.5f), underdamped PMM(0.5, 16) %.5f (se %.5f)\n",
           v1, s1, v2, s2, v3, s3, v4, s4);
    HBT_ASSERT_Z("PMM a=0.25 K=16 variance vs exact", v1, pmm25, s1, 4.0);
    HBT_ASSERT_Z("ULA a=0.25 variance vs exact", v2, ula25, s2, 4.0);
    HBT_ASSERT_Z("PMM a=0.2 K=2 variance vs exact", v3, pmm20, s3, 4.0);
    HBT_ASSERT_Z("PMM underdamped a=0.5 K=16 variance vs exact", v4, und, s4, 4.0);
    /* the bias ratio to ULA at the same step, measured against exact */
    const double r = (v1 - 1) / (v2 - 1), rx = (pmm25 - 1) / (ula25 - 1);
    const double sr = sqrt(s1 * s1 + r * r * s2 * s2) / (v2 - 1);
    printf("  PMM / ULA bias at a = 0.25: measured %.4f (se %.4f), exact %.4f\n", r, sr, rx);
    HBT_ASSERT_Z("PMM/ULA bias ratio vs exact", r, rx, sr, 4.0);
    CU_ASSERT(r + 4 * sr < 0.5); /* clearly smaller than ULA's */
    /* at K = 2 the bias is near LMC(a/2)'s and well below ULA(a)'s */
    const double r2 = (v3 - 1) / (lmc10 - 1), s_r2 = s3 / (lmc10 - 1);
    printf("  PMM(0.2, 2) / LMC(0.1) bias: measured %.4f (se %.4f), exact %.4f; ULA(0.2) / "
           "LMC(0.1): %.4f\n",
           r2, s_r2, (pmm20 - 1) / (lmc10 - 1), (ula20 - 1) / (lmc10 - 1));
    HBT_ASSERT_Z("PMM(0.2, 2)/LMC(0.1) bias ratio vs exact", r2, (pmm20 - 1) / (lmc10 - 1), s_r2,
                 4.0);
    CU_ASSERT(v3 + 4 * s3 < ula20);
    /* underdamped: a tenth of the frozen-force integrator's bias */
    CU_ASSERT(v4 - 1 + 4 * s4 < 0.25 * (ulmc - 1));
}

/* ---- 3. the 10-d correlated Gaussian with the warmup's step and metric ---- */

enum { C_DIM = 10, C_CHAINS = 256, C_DRAWS = 400 };
static const double KAPPA = 10.0, RHO = 0.5;

static const char *corr_config(const char *variant) {
    static char text[1024];
    snprintf(text, sizeof text,
             "[run]\nseed = 2718\nchains = %d\nwarmup = 400\ndraws = %d\n[model]\n"
             "name = gaussian\ndim = %d\ncondition_number = %g\ncorrelation = %g\n"
             "[sampler]\nalgorithm = pmm\n[pmm]\nvariant = %s\n",
             C_CHAINS, C_DRAWS, C_DIM, KAPPA, RHO, variant);
    return text;
}

/* Exact stationary variances of x_i at step a and metric m: Var x_i = m_i sum_k U_ik^2
   v(lambda_k), lambda, U the eigen-pairs of M^1/2 Sigma^-1 M^1/2. */
static void corr_exact(int under, double a, const double *m, double *out) {
    enum { D = C_DIM };
    double sd[D], A[D * D], V[D * D], ev[D];
    for (int i = 0; i < D; i++) sd[i] = sqrt(pow(KAPPA, (double)i / (D - 1)));
    /* Sigma^-1 = D^-1/2 R^-1 D^-1/2, R^-1 = (I - c 11') / (1 - rho), c = rho/(1 + (d-1) rho) */
    const double c = RHO / (1 + (D - 1) * RHO);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++)
            A[i * D + j] = ((i == j) - c) / (1 - RHO) / (sd[i] * sd[j]) * sqrt(m[i] * m[j]);
    jacobi_eigen(D, A, V, ev);
    double v[D];
    for (int k = 0; k < D; k++) v[k] = exact_var(under, ev[k], a, 16, 2.0, 1.0 / 16);
    for (int i = 0; i < D; i++) {
        double s = 0;
        for (int k = 0; k < D; k++) s += V[i * D + k] * V[i * D + k] * v[k];
        out[i] = m[i] * s;
    }
}

static void corr_case(const char *variant) {
    const int under = strcmp(variant, "underdamped") == 0;
    char *out = run_text(variant, corr_config(variant), 1, 2, "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    size_t n, nm, nh;
    double *x = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    double *m = hbt_read_dataset(out, "/adaptation/inv_metric", &nm, NULL, NULL);
    double *h = hbt_read_dataset(out, "/sample_stats/step_size", &nh, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_FATAL(n == (size_t)C_CHAINS * C_DRAWS * C_DIM && nm == C_DIM);
    double target[C_DIM];
    corr_exact(under, h[0], m, target);
    printf("\n  %s: adapted step %.4f; exact variance / target variance:", variant, h[0]);
    double *v = malloc((size_t)C_CHAINS * C_DRAWS * sizeof *v);
    double *sq = malloc((size_t)C_CHAINS * C_DRAWS * sizeof *sq);
    for (int i = 0; i < C_DIM; i++) {
        const double truth = pow(KAPPA, (double)i / (C_DIM - 1));
        printf(" %.4f", target[i] / truth);
        for (size_t k = 0; k < (size_t)C_CHAINS * C_DRAWS; k++) {
            v[k] = x[k * C_DIM + i];
            sq[k] = v[k] * v[k];
        }
        double mean, m2, se = hbt_mcse_chain_means(v, C_CHAINS, C_DRAWS, &mean);
        double se2 = hbt_mcse_chain_means(sq, C_CHAINS, C_DRAWS, &m2);
        char what[128];
        snprintf(what, sizeof what, "pmm %s x[%d] mean", variant, i + 1);
        HBT_ASSERT_Z(what, mean, 0.0, se, 4.0);
        snprintf(what, sizeof what, "pmm %s x[%d] variance vs its exact law", variant, i + 1);
        HBT_ASSERT_Z(what, m2, target[i], se2, 4.0);
        CU_ASSERT(target[i] > truth); /* the bias is there, and accounted for */
    }
    printf("\n");
    free(v);
    free(sq);
    free(x);
    free(m);
    free(h);
    remove(out);
    free(out);
}

static void test_corr_overdamped(void) {
    corr_case("overdamped");
}

static void test_corr_underdamped(void) {
    corr_case("underdamped");
}

/* ---- 4. underdamped: determinism, decompositions, checkpoint ---- */

static int same_bytes(const char *f1, const char *f2) {
    size_t n1, n2;
    char *b1 = hbt_read_run_bytes(f1, &n1), *b2 = hbt_read_run_bytes(f2, &n2);
    int same = b1 && b2 && n1 == n2 && n1 > 1000 && memcmp(b1, b2, n1) == 0;
    free(b1);
    free(b2);
    return same;
}

static void test_underdamped_invariance_resume(void) {
    const char *text =
        "[run]\nseed = 5\nchains = 20\nwarmup = 150\ndraws = 120\nwrite_batch = 16\n[model]\n"
        "name = gaussian\ndim = 5\ncorrelation = 0.3\ncondition_number = 4\n[sampler]\n"
        "algorithm = pmm\n[pmm]\nvariant = underdamped\nK = 8\ngamma = 1.5\n";
    char *ref = run_text("inv", text, 1, 1, "_ref");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    const int shapes[][2] = {{1, 1}, {2, 1}, {1, 2}};
    for (int k = 0; k < 3; k++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "_%dx%d", shapes[k][0], shapes[k][1]);
        char *o = run_text("inv", text, shapes[k][0], shapes[k][1], suffix);
        if (!o) continue;
        int same = same_bytes(ref, o);
        if (!same)
            fprintf(stderr, "  underdamped pmm: %d x %d differs from 1 x 1\n", shapes[k][0],
                    shapes[k][1]);
        CU_ASSERT(same);
        remove(o);
        free(o);
    }
    /* interrupted in sampling on 2 x 1, resumed on 1 x 2 */
    char *cfg = hbt_write_file("pmm_ck.ini", text), *log = NULL, out[512];
    snprintf(out, sizeof out, "%s/pmm_ck.h5", hbt_tmpdir());
    const char *fmt = "%s OMP_NUM_THREADS=%d %s -n %d --oversubscribe --bind-to none %s run %s "
                      "--output %s --quiet %s";
    int rc = hbt_sh(&log, fmt, "HB_INTERRUPT_AT=sampling:48", 1, hbt_env("HB_MPIEXEC"), 2,
                    hbt_env("HB_BIN"), cfg, out, "");
    CU_ASSERT_EQUAL(rc, 5);
    free(log);
    rc =
        hbt_sh(&log, fmt, "", 2, hbt_env("HB_MPIEXEC"), 1, hbt_env("HB_BIN"), cfg, out, "--resume");
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    CU_ASSERT(same_bytes(ref, out));
    remove(out);
    remove(ref);
    free(ref);
    free(cfg);
}

int main(void) {
    static const hbt_case cases[] = {
        {"overdamped on the 1-d mixture: ALGORITHMS.md 4.6 moments and cost, bias below ULA's",
         test_overdamped_vs_spec_and_ula},
        {"underdamped on the 1-d mixture: ALGORITHMS.md 4.6 moments and cost",
         test_underdamped_vs_spec},
        {"exact stationary variances on N(0, 1): PMM, its bias against ULA's and LMC(a/K)'s",
         test_exact_bias_gaussian},
        {"overdamped on the 10-d correlated Gaussian: means, variances at the adapted step",
         test_corr_overdamped},
        {"underdamped on the 10-d correlated Gaussian: means, variances at the adapted step",
         test_corr_underdamped},
        {"underdamped: 1x1 = 2x1 = 1x2 ranks x threads, resume from a checkpoint",
         test_underdamped_invariance_resume},
    };
    return hbt_run_suite("pmm", cases, sizeof cases / sizeof *cases);
}
