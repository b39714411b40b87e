/* The `gaussian` built-in: a zero-mean multivariate normal with a geometric spread of
 * variances (condition number) and equal correlations, evaluated in O(d) per point through
 * the closed-form inverse of the equicorrelation matrix. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/builtin.h"
#include "models/models.h"

/* Sigma = D^(1/2) R D^(1/2), D = diag(kappa^(i/(d-1))), R = (1-rho) I + rho 11'.
   R^(-1) = (I - a 11') / (1-rho) with a = rho / (1 + (d-1) rho), so with z = D^(-1/2) x:
   x' Sigma^(-1) x = (z'z - a (sum z)^2) / (1-rho). */
typedef struct gaussian {
    size_t d;
    double a;       /* rho / (1 + (d-1) rho) */
    double c;       /* 1 / (1 - rho) */
    double lognorm; /* -(d/2) log(2 pi) - (1/2) log det Sigma */
    double *inv_sd; /* D^(-1/2) */
    char **names;
} gaussian;

static void gaussian_destroy(void *p) {
    gaussian *g = p;
    if (!g) return;
    free(g->inv_sd);
    free(g->names);
    free(g);
}

static size_t gaussian_dim(const void *p) {
    return ((const gaussian *)p)->d;
}

static const char *gaussian_coord_name(const void *p, size_t i) {
    return ((const gaussian *)p)->names[i];
}

/* Chains in chunks of HB_LANES with the chains innermost: each chain's arithmetic is the
   same sequence of operations wherever it sits in the batch (no FMA contraction in ISO C
   mode), so results are bitwise independent of n and ld. */
static int gaussian_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                          double *grad) {
    const gaussian *m = p;
    const double a = m->a, cc = m->c;
    for (size_t c0 = 0; c0 < n; c0 += HB_LANES) {
        size_t w = n - c0 < HB_LANES ? n - c0 : HB_LANES;
        double s[HB_LANES] = {0}, q[HB_LANES] = {0};
        for (size_t i = 0; i < m->d; i++) {
            const double *xi = x + i * ld + c0;
            const double is = m->inv_sd[i];
#pragma omp simd
            for (size_t c = 0; c < w; c++) {
                double z = xi[c] * is;
                s[c] += z;
                q[c] += z * z;
            }
        }
        for (size_t c = 0; c < w; c++)
            lp[c0 + c] = m->lognorm - 0.5 * cc * (q[c] - a * s[c] * s[c]);
        for (size_t i = 0; i < m->d; i++) {
            const double *xi = x + i * ld + c0;
            double *gi = grad + i * ld + c0;
            const double is = m->inv_sd[i];
#pragma omp simd
            for (size_t c = 0; c < w; c++) gi[c] = -cc * (xi[c] * is - a * s[c]) * is;
        }
    }
    return 0;
}

/* One point is a batch of one (ld = 1 makes the SoA layout a plain vector), so the single
   and batch paths agree bitwise. */
static int gaussian_logp_grad(const void *p, const double *x, double *lp, double *grad) {
    return gaussian_batch(p, 1, 1, x, lp, grad);
}

static const hb_model_vtable gaussian_vtable = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "gaussian",
    .create = NULL,
    .destroy = gaussian_destroy,
    .dim = gaussian_dim,
    .coord_name = gaussian_coord_name,
    .logp_grad = gaussian_logp_grad,
    .logp_grad_batch = gaussian_batch,
};

static int gaussian_create(hb_config *cfg, void **impl, hb_error *err) {
    const int64_t def_dim = 10;
    const double def_kappa = 1.0, def_rho = 0.0;
    int64_t dim;
    double kappa, rho;
    if (hb_cfg_int(cfg, "model", "dim", &def_dim, 1, 100000000, &dim, err) ||
        hb_cfg_double(cfg, "model", "condition_number", &def_kappa, 1.0, DBL_MAX, &kappa, err) ||
        hb_cfg_double(cfg, "model", "correlation", &def_rho, -1.0, 1.0, &rho, err))
        return err->code;
    size_t d = (size_t)dim;
    double rho_lo = d > 1 ? -1.0 / (double)(d - 1) : -1.0;
    if (!(rho > rho_lo && rho < 1.0))
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [model] correlation: %g does not keep the correlation matrix "
                       "positive definite in dimension %zu (need %g < correlation < 1)",
                       hb_config_path(cfg), rho, d, rho_lo);

    gaussian *m = calloc(1, sizeof *m);
    if (!m) return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    m->d = d;
    m->inv_sd = malloc(d * sizeof *m->inv_sd);
    m->names = hb_coord_names("x", 1, d);
    if (!m->inv_sd || !m->names) {
        gaussian_destroy(m);
        return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    }
    m->a = rho / (1.0 + (double)(d - 1) * rho);
    m->c = 1.0 / (1.0 - rho);
    /* log det R = (d-1) log(1-rho) + log(1 + (d-1) rho). */
    double logdet = (double)(d - 1) * log1p(-rho) + log1p((double)(d - 1) * rho);
    for (size_t i = 0; i < d; i++) {
        double e = d > 1 ? (double)i / (double)(d - 1) : 0.0; /* variance kappa^e */
        m->inv_sd[i] = pow(kappa, -0.5 * e);
        logdet += e * log(kappa);
    }
    m->lognorm = -0.5 * (double)d * HB_LOG_2PI - 0.5 * logdet;
    *impl = m;
    return HB_OK;
}

const hb_builtin_model hb_builtin_gaussian = {
    .name = "gaussian",
    .summary = "zero-mean normal: variances spread over a condition number, equal correlations",
    .options = "dim = 10 ; dimension (>= 1)\n"
               "condition_number = 1 ; ratio of largest to smallest variance: coordinate i "
               "(0-based) has variance kappa^(i/(dim-1))\n"
               "correlation = 0 ; correlation between every pair of coordinates, "
               "-1/(dim-1) < rho < 1\n",
    .create = gaussian_create,
    .vtable = &gaussian_vtable,
};
