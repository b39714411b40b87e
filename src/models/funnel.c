/* The `funnel` built-in: Neal's funnel, v ~ N(0, 3^2) and x_i | v ~ N(0, exp(v)), the
 * standard test of a sampler's behaviour under strongly varying scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/vmath.h"
#include "models/builtin.h"
#include "models/models.h"

/* With n = d - 1 and S = sum x_i^2:
   log p = lognorm - v^2/18 - n v/2 - S exp(-v)/2
   d/dv = -v/9 - n/2 + S exp(-v)/2,  d/dx_i = -x_i exp(-v). */
typedef struct funnel {
    size_t d;
    double lognorm; /* -(1/2) log(2 pi 9) - (n/2) log(2 pi) */
    char **names;   /* "v", "x[1]", ..., "x[d-1]" */
} funnel;

static void funnel_destroy(void *p) {
    funnel *m = p;
    if (!m) return;
    free(m->names);
    free(m);
}

static size_t funnel_dim(const void *p) {
    return ((const funnel *)p)->d;
}

static const char *funnel_coord_name(const void *p, size_t i) {
    return ((const funnel *)p)->names[i];
}

/* Chunks of HB_LANES chains; exp(-v) through SLEEF on a full register (unused lanes hold
   0), so a chain's result is independent of its batch position. */
static int funnel_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                        double *grad) {
    const funnel *m = p;
    const double nx = (double)(m->d - 1);
    for (size_t c0 = 0; c0 < n; c0 += HB_LANES) {
        size_t w = n - c0 < HB_LANES ? n - c0 : HB_LANES;
        const double *v = x + c0;
        double nv[HB_LANES] = {0}, e[HB_LANES], s[HB_LANES] = {0};
        for (size_t c = 0; c < w; c++) nv[c] = -v[c];
        hb_vexp(e, nv);
        for (size_t i = 1; i < m->d; i++) {
            const double *xi = x + i * ld + c0;
            double *gi = grad + i * ld + c0;
#pragma omp simd
            for (size_t c = 0; c < w; c++) {
                s[c] += xi[c] * xi[c];
                gi[c] = -xi[c] * e[c];
            }
        }
        double *gv = grad + c0;
        for (size_t c = 0; c < w; c++) {
            double half_se = 0.5 * s[c] * e[c];
            lp[c0 + c] = m->lognorm - v[c] * v[c] / 18.0 - 0.5 * nx * v[c] - half_se;
            gv[c] = -v[c] / 9.0 - 0.5 * nx + half_se;
        }
    }
    return 0;
}

/* One point is a batch of one, so the single and batch paths agree bitwise. */
static int funnel_logp_grad(const void *p, const double *x, double *lp, double *grad) {
    return funnel_batch(p, 1, 1, x, lp, grad);
}

static const hb_model_vtable funnel_vtable = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "funnel",
    .create = NULL,
    .destroy = funnel_destroy,
    .dim = funnel_dim,
    .coord_name = funnel_coord_name,
    .logp_grad = funnel_logp_grad,
    .logp_grad_batch = funnel_batch,
};

static int funnel_create(hb_config *cfg, void **impl, hb_error *err) {
    const int64_t def_dim = 10;
    int64_t dim;
    if (hb_cfg_int(cfg, "model", "dim", &def_dim, 2, 100000000, &dim, err)) return err->code;
    funnel *m = calloc(1, sizeof *m);
    if (!m) return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    m->d = (size_t)dim;
    /* names[0] is "v"; the rest reuse the indexed-name helper with one spare entry. */
    m->names = hb_coord_names("x", 0, m->d);
    if (!m->names) {
        funnel_destroy(m);
        return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    }
    m->names[0][0] = 'v';
    m->names[0][1] = '\0';
    m->lognorm = -0.5 * (HB_LOG_2PI + log(9.0)) - 0.5 * (double)(m->d - 1) * HB_LOG_2PI;
    *impl = m;
    return HB_OK;
}

const hb_builtin_model hb_builtin_funnel = {
    .name = "funnel",
    .summary = "Neal's funnel: v ~ N(0, 3^2), x_i | v ~ N(0, exp(v)); coordinates v, x[1].. "
               "x[dim-1]",
    .options = "dim = 10 ; total dimension including v (>= 2)\n",
    .create = funnel_create,
    .vtable = &funnel_vtable,
};
