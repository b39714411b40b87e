/* The `mixture` built-in: a mixture of isotropic normals whose centres lie on the diagonal,
 * by default the 4-component 1-D mixture of the random-walk Metropolis benchmarks. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/vmath.h"
#include "models/builtin.h"
#include "models/models.h"

/* p(x) = sum_k w_k prod_i N(x_i | loc_k, scale_k^2). */
typedef struct mixture {
    size_t d, k;
    double *loc;    /* loc_k */
    double *prec;   /* 1 / scale_k^2 */
    double *lconst; /* log w_k - d log scale_k - (d/2) log(2 pi) */
    char **names;
} mixture;

static void mixture_destroy(void *p) {
    mixture *m = p;
    if (!m) return;
    free(m->loc);
    free(m->prec);
    free(m->lconst);
    free(m->names);
    free(m);
}

static size_t mixture_dim(const void *p) {
    return ((const mixture *)p)->d;
}

static const char *mixture_coord_name(const void *p, size_t i) {
    return ((const mixture *)p)->names[i];
}

/* Log-sum-exp over components in two passes over chunks of components: with t_k the log of
   component k's term, M = max_k t_k, e_k = exp(t_k - M), S = sum e_k, A = sum e_k loc_k
   prec_k, B = sum e_k prec_k; then log p = M + log S and d log p / dx_i = (A - x_i B) / S.
   Components are taken MIX_CHUNK at a time (one exp per component; across chunks the sums
   are rescaled by exp(M_old - M_new), one extra exp per chunk). Chains go in chunks of
   HB_LANES through SLEEF's vector exp/log on full registers, so a chain's result is
   independent of its batch position. */
enum { MIX_CHUNK = 16 };

static int mixture_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                         double *grad) {
    enum { L = HB_LANES };
    const mixture *m = p;
    for (size_t c0 = 0; c0 < n; c0 += L) {
        size_t w = n - c0 < L ? n - c0 : L;
        double xs[L] = {0}, mx[L], s[L] = {0}, a[L] = {0}, b[L] = {0}, f[L], u[L];
        double t[MIX_CHUNK][L];
        for (int c = 0; c < L; c++) mx[c] = -INFINITY;
        for (size_t k0 = 0; k0 < m->k; k0 += MIX_CHUNK) {
            size_t nk = m->k - k0 < MIX_CHUNK ? m->k - k0 : MIX_CHUNK;
            double cm[L];
            for (int c = 0; c < L; c++) cm[c] = mx[c];
            for (size_t k = 0; k < nk; k++) {
                const double loc = m->loc[k0 + k], prec = m->prec[k0 + k];
                double r2[L] = {0};
                for (size_t i = 0; i < m->d; i++) {
                    const double *xi = x + i * ld + c0;
                    if (w == L) {
#pragma omp simd
                        for (int c = 0; c < L; c++) r2[c] += (xi[c] - loc) * (xi[c] - loc);
                    } else {
                        for (size_t c = 0; c < w; c++) xs[c] = xi[c];
#pragma omp simd
                        for (int c = 0; c < L; c++) r2[c] += (xs[c] - loc) * (xs[c] - loc);
                    }
                }
#pragma omp simd
                for (int c = 0; c < L; c++) {
                    t[k][c] = m->lconst[k0 + k] - 0.5 * prec * r2[c];
                    cm[c] = t[k][c] > cm[c] ? t[k][c] : cm[c];
                }
            }
            if (k0 > 0) {
                /* rescale the sums of earlier chunks to the new maximum */
                for (int c = 0; c < L; c++) u[c] = mx[c] - cm[c];
                hb_vexp(f, u);
                for (int c = 0; c < L; c++) {
                    s[c] *= f[c];
                    a[c] *= f[c];
                    b[c] *= f[c];
                }
            }
            for (int c = 0; c < L; c++) mx[c] = cm[c];
            for (size_t k = 0; k < nk; k++) {
                const double lp_k = m->loc[k0 + k] * m->prec[k0 + k], pk = m->prec[k0 + k];
                for (int c = 0; c < L; c++) u[c] = t[k][c] - mx[c];
                hb_vexp(f, u);
#pragma omp simd
                for (int c = 0; c < L; c++) {
                    s[c] += f[c];
                    a[c] += f[c] * lp_k;
                    b[c] += f[c] * pk;
                }
            }
        }
        hb_vlog(u, s);
        for (size_t c = 0; c < w; c++) {
            lp[c0 + c] = mx[c] + u[c];
            s[c] = 1.0 / s[c];
        }
        for (size_t i = 0; i < m->d; i++) {
            const double *xi = x + i * ld + c0;
            double *gi = grad + i * ld + c0;
#pragma omp simd
            for (size_t c = 0; c < w; c++) gi[c] = (a[c] - xi[c] * b[c]) * s[c];
        }
    }
    return 0;
}

/* One point is a batch of one, so the single and batch paths agree bitwise. */
static int mixture_logp_grad(const void *p, const double *x, double *lp, double *grad) {
    return mixture_batch(p, 1, 1, x, lp, grad);
}

static const hb_model_vtable mixture_vtable = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "mixture",
    .create = NULL,
    .destroy = mixture_destroy,
    .dim = mixture_dim,
    .coord_name = mixture_coord_name,
    .logp_grad = mixture_logp_grad,
    .logp_grad_batch = mixture_batch,
};

static int mixture_create(hb_config *cfg, void **impl, hb_error *err) {
    const int64_t def_dim = 1;
    int64_t dim;
    double *wt = NULL, *loc = NULL, *sc = NULL;
    size_t nw = 0, nl = 0, ns = 0;
    const char *path = hb_config_path(cfg);
    mixture *m = NULL;
    if (hb_cfg_int(cfg, "model", "dim", &def_dim, 1, 100000000, &dim, err) ||
        hb_cfg_double_list(cfg, "model", "weights", "0.2, 0.3, 0.1, 0.4", -DBL_MAX, DBL_MAX, &wt,
                           &nw, err) ||
        hb_cfg_double_list(cfg, "model", "locations", "-2, 0, 3.2, 2.5", -DBL_MAX, DBL_MAX, &loc,
                           &nl, err) ||
        hb_cfg_double_list(cfg, "model", "scales", "1.2, 1, 5, 2.8", -DBL_MAX, DBL_MAX, &sc, &ns,
                           err))
        goto fail;
    if (nw != nl || nw != ns) {
        hb_fail(err, HB_ERR_USAGE,
                "%s: [model] weights, locations, scales: need one value per component in each "
                "list, got %zu, %zu and %zu",
                path, nw, nl, ns);
        goto fail;
    }
    double wsum = 0.0;
    for (size_t k = 0; k < nw; k++) {
        if (!(wt[k] > 0.0)) {
            hb_fail(err, HB_ERR_USAGE, "%s: [model] weights: weight %zu is %g; must be > 0", path,
                    k + 1, wt[k]);
            goto fail;
        }
        if (!(sc[k] > 0.0)) {
            hb_fail(err, HB_ERR_USAGE, "%s: [model] scales: scale %zu is %g; must be > 0", path,
                    k + 1, sc[k]);
            goto fail;
        }
        wsum += wt[k];
    }
    m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->d = (size_t)dim;
    m->k = nw;
    m->loc = loc;
    loc = NULL;
    m->prec = malloc(nw * sizeof *m->prec);
    m->lconst = malloc(nw * sizeof *m->lconst);
    m->names = hb_coord_names("x", 1, m->d);
    if (!m->prec || !m->lconst || !m->names) goto oom;
    /* Weights are normalised: only their ratios matter, so "1, 1" means equal weights. */
    for (size_t k = 0; k < nw; k++) {
        m->prec[k] = 1.0 / (sc[k] * sc[k]);
        m->lconst[k] = log(wt[k] / wsum) - (double)m->d * (log(sc[k]) + 0.5 * HB_LOG_2PI);
    }
    free(wt);
    free(sc);
    *impl = m;
    return HB_OK;
oom:
    hb_fail(err, HB_ERR_INTERNAL, "out of memory");
fail:
    free(wt);
    free(loc);
    free(sc);
    mixture_destroy(m);
    return err->code;
}

const hb_builtin_model hb_builtin_mixture = {
    .name = "mixture",
    .summary = "mixture of isotropic normals centred at (loc_k, ..., loc_k); default: the 1-D "
               "4-component RWMH benchmark",
    .options = "dim = 1 ; dimension (>= 1)\n"
               "weights = 0.2, 0.3, 0.1, 0.4 ; component weights (> 0, normalised)\n"
               "locations = -2, 0, 3.2, 2.5 ; component k is centred at (loc_k, ..., loc_k)\n"
               "scales = 1.2, 1, 5, 2.8 ; standard deviation of component k in every "
               "coordinate (> 0)\n",
    .create = mixture_create,
    .vtable = &mixture_vtable,
};
