/* The `gaussian` built-in: a zero-mean multivariate normal with a geometric spread of
 * variances (condition number) and equal correlations, evaluated in O(d) per point through
 * the closed-form inverse of the equicorrelation matrix. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/vmath.h"
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
    double *gc;     /* rho = 0: grad_i = gc_i x_i with gc_i = -c / sd_i^2 */
    char **names;
} gaussian;

static void gaussian_destroy(void *p) {
    gaussian *g = p;
    if (!g) return;
    free(g->inv_sd);
    free(g->gc);
    free(g->names);
    free(g);
}

static size_t gaussian_dim(const void *p) {
    return ((const gaussian *)p)->d;
}

static const char *gaussian_coord_name(const void *p, size_t i) {
    return ((const gaussian *)p)->names[i];
}

#ifdef HB_VMATH_AVX512
/* Chains in chunks of 8 (a partial chunk through masked loads and stores, so every chain goes
   through the same operations wherever it sits: results are bitwise independent of n and ld).
   Sums over coordinates in four interleaved partial sums (the adds' latency would otherwise
   bound the loop). With rho = 0 (a = 0) one pass gives lp and the gradient (gc_i x_i). */
static int gaussian_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                          double *grad) {
    const gaussian *m = p;
    const size_t d = m->d;
    const double *inv_sd = m->inv_sd, *gc = m->gc;
    const int one_pass = m->a == 0.0;
    const __m512d av = _mm512_set1_pd(m->a);
    for (size_t c0 = 0; c0 < n; c0 += 8) {
        const size_t w = n - c0 < 8 ? n - c0 : 8;
        const int full = w == 8; /* (masked loads and stores only for a partial chunk) */
        const __mmask8 k = (__mmask8)(full ? 0xff : (1u << w) - 1);
        __m512d sv[4], qv[4];
        for (int j = 0; j < 4; j++) sv[j] = qv[j] = _mm512_setzero_pd();
        for (size_t i0 = 0; i0 < d; i0 += 4)
            for (int j = 0; j < 4; j++) { /* coordinate i goes to partial sum i % 4 */
                const size_t i = i0 + (size_t)j;
                if (i >= d) break;
                const __m512d xv = full ? _mm512_loadu_pd(x + i * ld + c0)
                                        : _mm512_maskz_loadu_pd(k, x + i * ld + c0);
                const __m512d z = _mm512_mul_pd(xv, _mm512_set1_pd(inv_sd[i]));
                qv[j] = _mm512_fmadd_pd(z, z, qv[j]);
                if (one_pass && full)
                    _mm512_storeu_pd(grad + i * ld + c0, _mm512_mul_pd(xv, _mm512_set1_pd(gc[i])));
                else if (one_pass)
                    _mm512_mask_storeu_pd(grad + i * ld + c0, k,
                                          _mm512_mul_pd(xv, _mm512_set1_pd(gc[i])));
                else
                    sv[j] = _mm512_add_pd(sv[j], z);
            }
        const __m512d s = _mm512_add_pd(_mm512_add_pd(sv[0], sv[1]), _mm512_add_pd(sv[2], sv[3]));
        const __m512d q = _mm512_add_pd(_mm512_add_pd(qv[0], qv[1]), _mm512_add_pd(qv[2], qv[3]));
        /* lp = lognorm - 0.5 c (q - a s^2) */
        const __m512d quad = _mm512_fnmadd_pd(_mm512_mul_pd(av, s), s, q);
        _mm512_mask_storeu_pd(
            lp + c0, k,
            _mm512_fnmadd_pd(_mm512_set1_pd(0.5 * m->c), quad, _mm512_set1_pd(m->lognorm)));
        if (one_pass) continue;
        /* grad_i = -c (z_i - a s) / sd_i */
        const __m512d as = _mm512_mul_pd(av, s), ncc = _mm512_set1_pd(-m->c);
        for (size_t i = 0; i < d; i++) {
            const __m512d is = _mm512_set1_pd(inv_sd[i]);
            const __m512d z = _mm512_mul_pd(_mm512_maskz_loadu_pd(k, x + i * ld + c0), is);
            _mm512_mask_storeu_pd(grad + i * ld + c0, k,
                                  _mm512_mul_pd(_mm512_mul_pd(_mm512_sub_pd(z, as), ncc), is));
        }
    }
    return 0;
}
#else
/* Portable: chains in chunks of HB_LANES with the chains innermost: each chain's arithmetic is the
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

#endif

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
    m->gc = malloc(d * sizeof *m->gc);
    m->names = hb_coord_names("x", 1, d);
    if (!m->inv_sd || !m->gc || !m->names) {
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
        m->gc[i] = -m->c * m->inv_sd[i] * m->inv_sd[i];
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
