/* The built-in `logistic` model: Bayesian logistic regression on a design matrix from the
 * data file, with a batch gradient that reads X once for all chains of a batch (X times a
 * K x lanes coefficient block, then X^T times the residual block, row block by row block). */
#include "models/logistic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/data.h"
#include "models/data_models.h"
#include "models/target_util.h"

typedef struct logistic {
    hb_mhead h;
    size_t N, K;
    double *X;   /* N x K row-major */
    double *Xty; /* K: X^T y */
    double sy;   /* sum y */
    hb_prior coef, icpt;
} logistic;

/* Rows per block: the eta/residual blocks (RB x lanes) and the rows of X they came from
   stay in L1 between the two products, so X is read from memory once per batch.
   (OpenBLAS dgemm on 256-row chunks was measured too and is 2.3x slower at N = 10^4,
   K = 50, and slower at K = 10..1000: skinny products with 8 columns are not its case;
   bench/bench_grad.c keeps that variant for comparison.) */
#define LG_RB 32

static void lg_destroy(void *model) {
    logistic *m = model;
    if (!m) return;
    hb_mhead_free(&m->h);
    free(m->X);
    free(m->Xty);
    free(m);
}

static int lg_constrain(const void *model, const double *x, double *out) {
    const logistic *m = model;
    memcpy(out, x, m->h.dim * sizeof *out);
    return 0;
}

/* Priors and the data terms that need no pass over X: lp = alpha sy + beta.X^T y
   - sum softplus(eta) + priors; grad = (sy, X^T y) - (sum sigma, X^T sigma) + prior'. */
static HB_ALWAYS_INLINE void lg_finish(const logistic *m, size_t L, size_t ld, const double *x,
                                       const double *sp, const double *ssum, const double *G,
                                       double *lp, double *g) {
    HB_LANES_FOR(c, L) {
        lp[c] = x[c] * m->sy - sp[c];
        g[c] = m->sy - ssum[c];
    }
    hb_prior_lanes(&m->icpt, L, x, NULL, lp, g);
    for (size_t k = 0; k < m->K; k++) {
        const double *xk = x + (k + 1) * ld;
        double *gk = g + (k + 1) * ld;
        HB_LANES_FOR(c, L) {
            lp[c] += xk[c] * m->Xty[k];
            gk[c] = m->Xty[k] - G[k * L + c];
        }
        hb_prior_lanes(&m->coef, L, xk, NULL, lp, gk);
    }
}

/* From a block of eta (rows x lanes): the residual weights sigma(eta) into S, and the
   softplus and sigma sums. softplus = max(eta, 0) + log1p(exp(-|eta|)); the log1p terms
   are summed as the log of their product (factors in (1, 2], at most LG_RB of them). */
static inline void lg_link8(const double *E, size_t rows, double *S, double *sp, double *ssum) {
    double prod[HB_LANES], lg[HB_LANES];
    HB_LANES_FOR(c, HB_LANES) prod[c] = 1.0;
    for (size_t r = 0; r < rows; r++) {
        const double *er = E + r * HB_LANES;
        double t[HB_LANES], e[HB_LANES];
        HB_LANES_FOR(c, HB_LANES) t[c] = -fabs(er[c]);
        hb_vexp(e, t);
        HB_LANES_FOR(c, HB_LANES) {
            double op = 1.0 + e[c], ip = 1.0 / op;
            double s = er[c] >= 0 ? ip : e[c] * ip;
            S[r * HB_LANES + c] = s;
            ssum[c] += s;
            sp[c] += (er[c] > 0.0 ? er[c] : 0.0);
            prod[c] *= op;
        }
    }
    hb_vlog(lg, prod);
    HB_LANES_FOR(c, HB_LANES) sp[c] += lg[c];
}

/* Eight lanes of doubles as one GCC/Clang vector: the accumulators of the two products
   then live in registers (arrays under `omp simd` were kept in memory, 2x slower). */
typedef double lg_v8 __attribute__((vector_size(HB_LANES * sizeof(double))));
/* The helpers below are static, so their vector ABI never crosses a translation unit: GCC's
   note that it differs with and without AVX-512 (-Wpsabi) does not apply (portable builds). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

static inline lg_v8 lg_load(const double *p) {
    lg_v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void lg_store(double *p, lg_v8 v) {
    memcpy(p, &v, sizeof v);
}

/* E (rows x 8) = alpha + Xb (rows x K) B (K x 8), LG_U rows at a time. */
#define LG_U 8
static void lg_eta8(const double *restrict Xb, size_t rows, size_t K, const double *restrict B,
                    const double *restrict alpha, double *restrict E) {
    const lg_v8 va = lg_load(alpha);
    size_t r = 0;
    for (; r + LG_U <= rows; r += LG_U) {
        lg_v8 a[LG_U];
        for (int u = 0; u < LG_U; u++) a[u] = va;
        const double *x0 = Xb + r * K;
        for (size_t k = 0; k < K; k++) {
            const lg_v8 bk = lg_load(B + k * HB_LANES);
            for (int u = 0; u < LG_U; u++) a[u] += x0[(size_t)u * K + k] * bk;
        }
        for (int u = 0; u < LG_U; u++) lg_store(E + (r + (size_t)u) * HB_LANES, a[u]);
    }
    for (; r < rows; r++) {
        lg_v8 a0 = va;
        const double *x0 = Xb + r * K;
        for (size_t k = 0; k < K; k++) a0 += x0[k] * lg_load(B + k * HB_LANES);
        lg_store(E + r * HB_LANES, a0);
    }
}

/* G (K x 8) += Xb^T (K x rows) S (rows x 8), LG_U coefficients at a time. */
static void lg_grad8(const double *restrict Xb, size_t rows, size_t K, const double *restrict S,
                     double *restrict G) {
    size_t k = 0;
    for (; k + LG_U <= K; k += LG_U) {
        lg_v8 g[LG_U];
        for (int u = 0; u < LG_U; u++) g[u] = lg_load(G + (k + (size_t)u) * HB_LANES);
        for (size_t r = 0; r < rows; r++) {
            const double *xr = Xb + r * K + k;
            const lg_v8 s = lg_load(S + r * HB_LANES);
            for (int u = 0; u < LG_U; u++) g[u] += xr[u] * s;
        }
        for (int u = 0; u < LG_U; u++) lg_store(G + (k + (size_t)u) * HB_LANES, g[u]);
    }
    for (; k < K; k++) {
        lg_v8 g0 = lg_load(G + k * HB_LANES);
        for (size_t r = 0; r < rows; r++) g0 += Xb[r * K + k] * lg_load(S + r * HB_LANES);
        lg_store(G + k * HB_LANES, g0);
    }
}

static void lg_lanes(const void *model, size_t ld, const double *x, double *lp, double *g) {
    const logistic *m = model;
    const size_t K = m->K, N = m->N;
    double *B = malloc((2 * K * HB_LANES + 2 * LG_RB * HB_LANES + 1) * sizeof *B);
    if (!B) abort();
    double *G = B + K * HB_LANES, *E = G + K * HB_LANES, *S = E + LG_RB * HB_LANES;
    double alpha[HB_LANES], sp[HB_LANES], ssum[HB_LANES];
    HB_LANES_FOR(c, HB_LANES) {
        alpha[c] = x[c];
        sp[c] = ssum[c] = 0.0;
    }
    for (size_t k = 0; k < K; k++)
        HB_LANES_FOR(c, HB_LANES) B[k * HB_LANES + c] = x[(k + 1) * ld + c];
    memset(G, 0, K * HB_LANES * sizeof *G);
    for (size_t n0 = 0; n0 < N; n0 += LG_RB) {
        size_t rows = N - n0 < LG_RB ? N - n0 : LG_RB;
        const double *Xb = m->X + n0 * K;
        lg_eta8(Xb, rows, K, B, alpha, E);
        lg_link8(E, rows, S, sp, ssum);
        lg_grad8(Xb, rows, K, S, G);
    }
    lg_finish(m, HB_LANES, ld, x, sp, ssum, G, lp, g);
    free(B);
}

/* One chain: rows eight at a time so exp runs as one SIMD call over the eight rows. */
static int lg_one(const void *model, const double *x, double *lp, double *g) {
    const logistic *m = model;
    const size_t K = m->K, N = m->N;
    double *G = calloc(K ? K : 1, sizeof *G);
    if (!G) abort();
    const double *beta = x + 1;
    double sp = 0.0, ssum = 0.0, prod = 1.0;
    for (size_t n0 = 0; n0 < N; n0 += HB_LANES) {
        size_t rows = N - n0 < HB_LANES ? N - n0 : HB_LANES;
        double eta[HB_LANES] = {0}, t[HB_LANES] = {0}, e[HB_LANES];
        for (size_t r = 0; r < rows; r++) {
            const double *xr = m->X + (n0 + r) * K;
            double s = x[0];
#pragma omp simd reduction(+ : s)
            for (size_t k = 0; k < K; k++) s += xr[k] * beta[k];
            eta[r] = s;
            t[r] = -fabs(s);
        }
        hb_vexp(e, t);
        for (size_t r = 0; r < rows; r++) {
            const double *xr = m->X + (n0 + r) * K;
            double op = 1.0 + e[r], ip = 1.0 / op, s = eta[r] >= 0 ? ip : e[r] * ip;
            ssum += s;
            sp += (eta[r] > 0.0 ? eta[r] : 0.0);
            prod *= op;
#pragma omp simd
            for (size_t k = 0; k < K; k++) G[k] += s * xr[k];
        }
        if ((n0 / HB_LANES) % 32 == 31) { /* at most 256 factors in (1, 2] */
            sp += log(prod);
            prod = 1.0;
        }
    }
    sp += log(prod);
    lg_finish(m, 1, 1, x, &sp, &ssum, G, lp, g);
    free(G);
    return isfinite(*lp) ? 0 : 1;
}

static int lg_batch(const void *m, size_t n, size_t ld, const double *x, double *lp, double *g) {
    return hb_batch_by_lanes(m, ((const logistic *)m)->h.dim, lg_lanes, n, ld, x, lp, g);
}

int hb_logistic_new(void **impl, size_t N, size_t K, const double *X, const double *y,
                    const hb_logistic_options *opt, hb_error *err) {
    *impl = NULL;
    if (!(opt->prior_scale > 0) || !(opt->intercept_scale > 0) ||
        (opt->prior == HB_LOGISTIC_STUDENT_T && !(opt->prior_df > 0)))
        return hb_fail(err, HB_ERR_USAGE, "logistic: prior scales and df must be > 0");
    if ((double)N * (double)K > 1e10 || K > 1000000)
        return hb_fail(err, HB_ERR_MODEL, "logistic: data too large (N = %zu, K = %zu)", N, K);
    logistic *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->N = N;
    m->K = K;
    m->X = malloc((N * K + 1) * sizeof *m->X);
    m->Xty = calloc(K ? K : 1, sizeof *m->Xty);
    if (!m->X || !m->Xty) abort();
    if (N > 0 && K > 0) memcpy(m->X, X, N * K * sizeof *m->X);
    for (size_t n = 0; n < N; n++) {
        m->sy += y[n];
        for (size_t k = 0; k < K; k++) m->Xty[k] += y[n] * X[n * K + k];
    }
    m->coef = opt->prior == HB_LOGISTIC_STUDENT_T
                  ? (hb_prior){HB_PRIOR_STUDENT_T, 0.0, opt->prior_scale, opt->prior_df}
                  : (hb_prior){HB_PRIOR_NORMAL, 0.0, opt->prior_scale, 0.0};
    m->icpt = (hb_prior){HB_PRIOR_NORMAL, 0.0, opt->intercept_scale, 0.0};
    hb_mhead_init(&m->h, K + 1, K + 1);
    m->h.constrain = lg_constrain;
    hb_mhead_name(&m->h.coord[0], "alpha");
    hb_mhead_name(&m->h.out[0], "alpha");
    for (size_t k = 0; k < K; k++) {
        hb_mhead_name(&m->h.coord[k + 1], "beta[%zu]", k + 1);
        hb_mhead_name(&m->h.out[k + 1], "beta[%zu]", k + 1);
    }
    *impl = m;
    return HB_OK;
}

static int lg_create(hb_config *cfg, void **impl, hb_error *err) {
    static const char *const priors[] = {"normal", "student_t", NULL};
    hb_logistic_options o;
    int prior = 0, rc;
    const double d_scale = 2.5, d_df = 3.0, d_icpt = 10.0;
    if ((rc = hb_cfg_choice(cfg, "model", "prior", "normal", priors, &prior, err)) != HB_OK ||
        (rc = hb_cfg_double(cfg, "model", "prior_scale", &d_scale, 1e-300, 1e300, &o.prior_scale,
                            err)) != HB_OK ||
        (rc = hb_cfg_double(cfg, "model", "prior_df", &d_df, 1e-300, 1e300, &o.prior_df, err)) !=
            HB_OK ||
        (rc = hb_cfg_double(cfg, "model", "intercept_scale", &d_icpt, 1e-300, 1e300,
                            &o.intercept_scale, err)) != HB_OK)
        return rc;
    o.prior = prior == 1 ? HB_LOGISTIC_STUDENT_T : HB_LOGISTIC_NORMAL;
    hb_data *d;
    if ((rc = hb_data_open_cfg(&d, cfg, err)) != HB_OK) return rc;
    int64_t N, K;
    size_t ny, rows, cols;
    const double *X, *y;
    if ((rc = hb_data_int(d, "N", 1, INT32_MAX, &N, err)) != HB_OK ||
        (rc = hb_data_int(d, "K", 0, INT32_MAX, &K, err)) != HB_OK)
        goto done;
    ny = rows = (size_t)N;
    cols = (size_t)K;
    if ((rc = hb_data_matrix(d, "X", &rows, &cols, &X, err)) != HB_OK ||
        (rc = hb_data_int_vector(d, "y", &ny, 0, 1, &y, err)) != HB_OK)
        goto done;
    rc = hb_logistic_new(impl, rows, cols, X, y, &o, err);
done:
    hb_data_close(d);
    return rc;
}

static const hb_model_vtable lg_vt = {.abi_version = HB_MODEL_ABI_VERSION,
                                      .struct_size = sizeof(hb_model_vtable),
                                      .name = "logistic",
                                      .create = NULL,
                                      .destroy = lg_destroy,
                                      .dim = hb_mhead_dim,
                                      .coord_name = hb_mhead_coord,
                                      .logp_grad = lg_one,
                                      .logp_grad_batch = lg_batch,
                                      .n_constrained = hb_mhead_n_out,
                                      .constrained_name = hb_mhead_out,
                                      .constrained = hb_mhead_constrained,
                                      .constrained_batch = hb_mhead_constrained_batch};

const hb_builtin_model hb_builtin_logistic = {
    "logistic",
    "Bayesian logistic regression: y[n] ~ bernoulli_logit(alpha + X[n] . beta), data N, K, "
    "X (N x K), y (0/1)",
    "data = (required) ; CmdStan JSON or HDF5 with N, K, X (N x K), y (N, 0/1)\n"
    "prior = normal ; prior on each beta[k]: normal | student_t (location 0)\n"
    "prior_scale = 2.5 ; scale of that prior\n"
    "prior_df = 3 ; degrees of freedom of the student_t prior\n"
    "intercept_scale = 10 ; alpha ~ normal(0, intercept_scale)\n",
    lg_create, &lg_vt};
