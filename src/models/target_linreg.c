/* Four posteriordb reference targets that are Gaussian linear regressions — arK-arK,
 * diamonds-diamonds, kidiq-kidscore_interaction, kilpisjarvi_mod-kilpisjarvi — on one engine
 * that works from a QR factorisation of the centred design, so a gradient costs O(p^2), not
 * O(N p). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/data.h"
#include "models/data_models.h"
#include "models/target_util.h"

#define LINREG_MAX_P 64

/* y ~ normal(X beta, sigma), coordinates (beta_1..beta_p, log sigma). With column means m,
   ybar, centred Xc, yc and a Householder QR of Xc (Q^T Xc = R, z = first p entries of
   Q^T yc, rss0 = the squared rest):
     sum r^2 = rss0 + |z - R beta|^2 + n (ybar - m.beta)^2,
     X^T r   = R^T (z - R beta) + m n (ybar - m.beta).
   Unlike a Gram matrix (beta^T G beta - 2 beta.c + y.y), this has no catastrophic
   cancellation: on diamonds the Gram form loses 7 digits, here the residual is formed
   directly in a p-dimensional rotated space. */
typedef struct linreg {
    hb_mhead h;
    size_t p;
    double n;
    double *R; /* p x p upper triangular (row-major) */
    double *z; /* p */
    double *m; /* p, column means */
    double ybar, rss0;
    hb_prior coef[LINREG_MAX_P];
    hb_prior sigma; /* on sigma > 0 (location 0), or flat */
} linreg;

static void linreg_destroy(void *model) {
    linreg *r = model;
    if (!r) return;
    hb_mhead_free(&r->h);
    free(r->R);
    free(r->z);
    free(r->m);
    free(r);
}

static int linreg_constrain(const void *model, const double *x, double *out) {
    const linreg *r = model;
    for (size_t i = 0; i < r->p; i++) out[i] = x[i];
    out[r->p] = exp(x[r->p]);
    return isfinite(out[r->p]) ? 0 : 1;
}

/* X is n x p row-major (the design as the model writes it), y length n. */
static linreg *linreg_new(size_t n, size_t p, const double *X, const double *y) {
    linreg *r = calloc(1, sizeof *r);
    if (!r) abort();
    hb_mhead_init(&r->h, p + 1, p + 1);
    r->h.constrain = linreg_constrain;
    r->p = p;
    r->n = (double)n;
    r->R = calloc(p * p, sizeof *r->R);
    r->z = calloc(p, sizeof *r->z);
    r->m = calloc(p, sizeof *r->m);
    double *A = malloc((n * p + n + 1) * sizeof *A), *b = A + n * p;
    if (!r->R || !r->z || !r->m || !A) abort();
    double ysum = 0;
    for (size_t k = 0; k < n; k++) {
        ysum += y[k];
        for (size_t i = 0; i < p; i++) r->m[i] += X[k * p + i];
    }
    r->ybar = n ? ysum / (double)n : 0.0;
    for (size_t i = 0; i < p; i++) r->m[i] = n ? r->m[i] / (double)n : 0.0;
    for (size_t k = 0; k < n; k++) {
        b[k] = y[k] - r->ybar;
        for (size_t i = 0; i < p; i++) A[k * p + i] = X[k * p + i] - r->m[i];
    }
    /* Householder QR of A, applied to b as well. A column with nothing left below the
       diagonal (e.g. the intercept, zero once centred) is skipped: R_jj = 0 is fine. */
    size_t q = n < p ? n : p;
    for (size_t j = 0; j < q; j++) {
        double norm2 = 0;
        for (size_t k = j; k < n; k++) norm2 += A[k * p + j] * A[k * p + j];
        if (norm2 == 0) continue;
        double ajj = A[j * p + j], alpha = ajj > 0 ? -sqrt(norm2) : sqrt(norm2);
        double v0 = ajj - alpha, vnorm2 = norm2 - ajj * ajj + v0 * v0;
        /* v = (v0, A[j+1.., j]); H = I - 2 v v^T / |v|^2 */
        for (size_t col = j + 1; col <= p; col++) {
            double *colp = col < p ? A + col : b; /* column col of A, or b */
            size_t stride = col < p ? p : 1;
            double dot = v0 * colp[j * stride];
            for (size_t k = j + 1; k < n; k++) dot += A[k * p + j] * colp[k * stride];
            double f = 2.0 * dot / vnorm2;
            colp[j * stride] -= f * v0;
            for (size_t k = j + 1; k < n; k++) colp[k * stride] -= f * A[k * p + j];
        }
        A[j * p + j] = alpha;
    }
    for (size_t i = 0; i < q; i++) {
        for (size_t j = i; j < p; j++) r->R[i * p + j] = A[i * p + j];
        r->z[i] = b[i];
    }
    for (size_t k = q; k < n; k++) r->rss0 += b[k] * b[k];
    free(A);
    return r;
}

static HB_ALWAYS_INLINE void linreg_kernel(const linreg *r, size_t L, size_t ld, const double *x,
                                           double *lp, double *g) {
    const size_t p = r->p;
    const double n = r->n;
    double lam[HB_LANES], s[HB_LANES], inv2[HB_LANES], d[HB_LANES], ss[HB_LANES], m2l[HB_LANES];
    double w[LINREG_MAX_P * HB_LANES];
    HB_LANES_FOR(c, L) {
        lam[c] = x[p * ld + c];
        m2l[c] = -2.0 * lam[c];
        d[c] = r->ybar;
        ss[c] = r->rss0;
    }
    hb_lanes_exp(s, lam, L);
    hb_lanes_exp(inv2, m2l, L); /* 1/sigma^2 */
    for (size_t i = 0; i < p; i++) HB_LANES_FOR(c, L) d[c] -= r->m[i] * x[i * ld + c];
    /* w = z - R beta */
    for (size_t i = 0; i < p; i++) {
        double *wi = w + i * L;
        HB_LANES_FOR(c, L) wi[c] = r->z[i];
        for (size_t j = i; j < p; j++) {
            double rij = r->R[i * p + j];
            HB_LANES_FOR(c, L) wi[c] -= rij * x[j * ld + c];
        }
        HB_LANES_FOR(c, L) ss[c] += wi[c] * wi[c];
    }
    HB_LANES_FOR(c, L) {
        ss[c] += n * d[c] * d[c];
        lp[c] = -n * lam[c] - 0.5 * ss[c] * inv2[c] + lam[c];
        g[p * ld + c] = -n + ss[c] * inv2[c] + 1.0;
    }
    /* X^T r = R^T w + m n d, then / sigma^2 */
    for (size_t j = 0; j < p; j++) {
        double mn = r->m[j] * n, *gj = g + j * ld;
        HB_LANES_FOR(c, L) gj[c] = mn * d[c];
        for (size_t i = 0; i <= j; i++) {
            double rij = r->R[i * p + j];
            HB_LANES_FOR(c, L) gj[c] += rij * w[i * L + c];
        }
        HB_LANES_FOR(c, L) gj[c] *= inv2[c];
        hb_prior_lanes(&r->coef[j], L, x + j * ld, NULL, lp, gj);
    }
    hb_prior_lanes(&r->sigma, L, s, s, lp, g + p * ld);
}

HB_LANE_MODEL_ENTRIES(linreg, linreg_kernel)

static int too_many(size_t p, hb_error *err) {
    return hb_fail(err, HB_ERR_MODEL, "model: %zu regression coefficients (at most %d)", p,
                   LINREG_MAX_P);
}

/* ---- arK-arK: y_t ~ normal(alpha + sum_k beta_k y_{t-k}, sigma), t > K ---- */

static int ark_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t K, T;
    size_t nT;
    const double *y;
    if ((rc = hb_data_int(d, "K", 1, INT32_MAX, &K, err)) != HB_OK ||
        (rc = hb_data_int(d, "T", K + 1, INT32_MAX, &T, err)) != HB_OK)
        goto done;
    nT = (size_t)T;
    if ((rc = hb_data_vector(d, "y", &nT, &y, err)) != HB_OK) goto done;
    size_t p = (size_t)K + 1, n = (size_t)(T - K);
    if (p > LINREG_MAX_P) {
        rc = too_many(p, err);
        goto done;
    }
    double *X = malloc(n * p * sizeof *X);
    if (!X) abort();
    for (size_t t = 0; t < n; t++) {
        X[t * p] = 1.0;
        for (size_t k = 1; k <= (size_t)K; k++) X[t * p + k] = y[t + (size_t)K - k];
    }
    linreg *r = linreg_new(n, p, X, y + K);
    free(X);
    for (size_t i = 0; i < p; i++) r->coef[i] = (hb_prior){HB_PRIOR_NORMAL, 0.0, 10.0, 0.0};
    r->sigma = (hb_prior){HB_PRIOR_STUDENT_T, 0.0, 2.5, 1.0}; /* half-Cauchy(0, 2.5) */
    hb_mhead_name(&r->h.coord[0], "alpha");
    hb_mhead_name(&r->h.out[0], "alpha");
    for (size_t k = 1; k <= (size_t)K; k++) {
        hb_mhead_name(&r->h.coord[k], "beta[%zu]", k);
        hb_mhead_name(&r->h.out[k], "beta[%zu]", k);
    }
    hb_mhead_name(&r->h.coord[p], "log(sigma)");
    hb_mhead_name(&r->h.out[p], "sigma");
    *impl = r;
done:
    hb_data_close(d);
    return rc;
}

/* ---- diamonds-diamonds: brms linear model on centred predictors ---- */

static int diamonds_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t N, K;
    size_t nN, rows, cols;
    const double *X, *Y;
    if ((rc = hb_data_int(d, "N", 1, INT32_MAX, &N, err)) != HB_OK ||
        (rc = hb_data_int(d, "K", 1, INT32_MAX, &K, err)) != HB_OK)
        goto done;
    nN = rows = (size_t)N;
    cols = (size_t)K;
    if ((rc = hb_data_vector(d, "Y", &nN, &Y, err)) != HB_OK ||
        (rc = hb_data_matrix(d, "X", &rows, &cols, &X, err)) != HB_OK)
        goto done;
    size_t Kc = cols - 1, p = Kc + 1, n = rows; /* slopes, then the intercept */
    if (p > LINREG_MAX_P) {
        rc = too_many(p, err);
        goto done;
    }
    double *mean = calloc(Kc ? Kc : 1, sizeof *mean), *Xd = calloc(n * p, sizeof *Xd);
    if (!mean || !Xd) abort();
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < Kc; j++) mean[j] += X[k * cols + j + 1];
    for (size_t j = 0; j < Kc; j++) mean[j] /= (double)n;
    for (size_t k = 0; k < n; k++) {
        for (size_t j = 0; j < Kc; j++) Xd[k * p + j] = X[k * cols + j + 1] - mean[j];
        Xd[k * p + Kc] = 1.0;
    }
    linreg *r = linreg_new(n, p, Xd, Y);
    free(Xd);
    free(mean);
    for (size_t j = 0; j < Kc; j++) {
        r->coef[j] = (hb_prior){HB_PRIOR_NORMAL, 0.0, 1.0, 0.0};
        hb_mhead_name(&r->h.coord[j], "b[%zu]", j + 1);
        hb_mhead_name(&r->h.out[j], "b[%zu]", j + 1);
    }
    r->coef[Kc] = (hb_prior){HB_PRIOR_STUDENT_T, 8.0, 10.0, 3.0};
    r->sigma = (hb_prior){HB_PRIOR_STUDENT_T, 0.0, 10.0, 3.0};
    hb_mhead_name(&r->h.coord[Kc], "Intercept");
    hb_mhead_name(&r->h.out[Kc], "Intercept");
    hb_mhead_name(&r->h.coord[p], "log(sigma)");
    hb_mhead_name(&r->h.out[p], "sigma");
    *impl = r;
done:
    hb_data_close(d);
    return rc;
}

/* ---- kidiq-kidscore_interaction: design (1, mom_hs, mom_iq, mom_hs * mom_iq) ---- */

static int kidiq_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t N;
    size_t n1, n2, n3;
    const double *ks, *hs, *iq;
    if ((rc = hb_data_int(d, "N", 1, INT32_MAX, &N, err)) != HB_OK) goto done;
    n1 = n2 = n3 = (size_t)N;
    if ((rc = hb_data_vector(d, "kid_score", &n1, &ks, err)) != HB_OK ||
        (rc = hb_data_vector(d, "mom_hs", &n2, &hs, err)) != HB_OK ||
        (rc = hb_data_vector(d, "mom_iq", &n3, &iq, err)) != HB_OK)
        goto done;
    size_t n = (size_t)N, p = 4;
    double *X = malloc(n * p * sizeof *X);
    if (!X) abort();
    for (size_t k = 0; k < n; k++) {
        X[k * p] = 1.0;
        X[k * p + 1] = hs[k];
        X[k * p + 2] = iq[k];
        X[k * p + 3] = hs[k] * iq[k];
    }
    linreg *r = linreg_new(n, p, X, ks);
    free(X);
    for (size_t i = 0; i < p; i++) {
        r->coef[i] = (hb_prior){HB_PRIOR_FLAT, 0.0, 1.0, 0.0};
        hb_mhead_name(&r->h.coord[i], "beta[%zu]", i + 1);
        hb_mhead_name(&r->h.out[i], "beta[%zu]", i + 1);
    }
    r->sigma = (hb_prior){HB_PRIOR_STUDENT_T, 0.0, 2.5, 1.0};
    hb_mhead_name(&r->h.coord[p], "log(sigma)");
    hb_mhead_name(&r->h.out[p], "sigma");
    *impl = r;
done:
    hb_data_close(d);
    return rc;
}

/* ---- kilpisjarvi_mod-kilpisjarvi: y ~ normal(alpha + beta x, sigma), flat on sigma ---- */

static int kilpisjarvi_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t N;
    size_t n1, n2;
    const double *x, *y;
    double pma, psa, pmb, psb;
    if ((rc = hb_data_int(d, "N", 1, INT32_MAX, &N, err)) != HB_OK) goto done;
    n1 = n2 = (size_t)N;
    if ((rc = hb_data_vector(d, "x", &n1, &x, err)) != HB_OK ||
        (rc = hb_data_vector(d, "y", &n2, &y, err)) != HB_OK ||
        (rc = hb_data_real(d, "pmualpha", &pma, err)) != HB_OK ||
        (rc = hb_data_real(d, "psalpha", &psa, err)) != HB_OK ||
        (rc = hb_data_real(d, "pmubeta", &pmb, err)) != HB_OK ||
        (rc = hb_data_real(d, "psbeta", &psb, err)) != HB_OK)
        goto done;
    if (!(psa > 0) || !(psb > 0)) {
        rc = hb_fail(err, HB_ERR_MODEL, "%s: data fields 'psalpha', 'psbeta' must be > 0",
                     hb_data_path(d));
        goto done;
    }
    size_t n = (size_t)N, p = 2;
    double *X = malloc(n * p * sizeof *X);
    if (!X) abort();
    for (size_t k = 0; k < n; k++) {
        X[2 * k] = 1.0;
        X[2 * k + 1] = x[k];
    }
    linreg *r = linreg_new(n, p, X, y);
    free(X);
    r->coef[0] = (hb_prior){HB_PRIOR_NORMAL, pma, psa, 0.0};
    r->coef[1] = (hb_prior){HB_PRIOR_NORMAL, pmb, psb, 0.0};
    r->sigma = (hb_prior){HB_PRIOR_FLAT, 0.0, 1.0, 0.0};
    hb_mhead_name(&r->h.coord[0], "alpha");
    hb_mhead_name(&r->h.out[0], "alpha");
    hb_mhead_name(&r->h.coord[1], "beta");
    hb_mhead_name(&r->h.out[1], "beta");
    hb_mhead_name(&r->h.coord[2], "log(sigma)");
    hb_mhead_name(&r->h.out[2], "sigma");
    *impl = r;
done:
    hb_data_close(d);
    return rc;
}

#define DATA_OPTION(name)                                                                          \
    "data = (required) ; the target's data: CmdStan JSON or HDF5, e.g. "                           \
    "$HB_SHARED_DIR/targets/" name "/data.json\n"

HB_LANE_MODEL_VTABLE(ark_vt, "arK-arK", linreg_kernel, linreg_destroy);
HB_LANE_MODEL_VTABLE(diamonds_vt, "diamonds-diamonds", linreg_kernel, linreg_destroy);
HB_LANE_MODEL_VTABLE(kidiq_vt, "kidiq-kidscore_interaction", linreg_kernel, linreg_destroy);
HB_LANE_MODEL_VTABLE(kilpisjarvi_vt, "kilpisjarvi_mod-kilpisjarvi", linreg_kernel, linreg_destroy);

const hb_builtin_model hb_builtin_arK = {
    "arK-arK", "posteriordb arK: AR(5) time series with intercept (dim 7)", DATA_OPTION("arK-arK"),
    ark_create, &ark_vt};
const hb_builtin_model hb_builtin_diamonds = {
    "diamonds-diamonds",
    "posteriordb diamonds: linear regression, 24 correlated predictors, N = 5000 (dim 26)",
    DATA_OPTION("diamonds-diamonds"), diamonds_create, &diamonds_vt};
const hb_builtin_model hb_builtin_kidiq = {
    "kidiq-kidscore_interaction",
    "posteriordb kidscore_interaction: regression with uncentred interaction (dim 5)",
    DATA_OPTION("kidiq-kidscore_interaction"), kidiq_create, &kidiq_vt};
const hb_builtin_model hb_builtin_kilpisjarvi = {
    "kilpisjarvi_mod-kilpisjarvi",
    "posteriordb kilpisjarvi: regression on an uncentred year, corr -0.99999 (dim 3)",
    DATA_OPTION("kilpisjarvi_mod-kilpisjarvi"), kilpisjarvi_create, &kilpisjarvi_vt};
