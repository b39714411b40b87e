/* The `rosenbrock` built-in: the banana of the MCHMC benchmarks, d/2 independent pairs with
 * x_a ~ N(1, 1) and x_b | x_a ~ N(x_a^2, Q). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/builtin.h"
#include "models/models.h"

/* Per pair (a, b) = (x[2j], x[2j+1]):
     log p = -(a - 1)^2/2 - (b - a^2)^2/(2Q) - log(2 pi) - (1/2) log Q
     d/da = -(a - 1) + 2 a (b - a^2)/Q,  d/db = -(b - a^2)/Q.
   Known moments (tests use them): E a = 1, Var a = 1; E b = E a^2 = 2,
   Var b = Q + Var(a^2) = Q + (E a^4 - 4) = Q + 6 (a = 1 + z: E a^4 = 1 + 6 + 3 = 10). */
typedef struct rosenbrock {
    size_t d;
    double inv_q;
    double lognorm; /* (d/2) (-log(2 pi) - (1/2) log Q) */
    char **names;
} rosenbrock;

static void rosenbrock_destroy(void *p) {
    rosenbrock *m = p;
    if (!m) return;
    free(m->names);
    free(m);
}

static size_t rosenbrock_dim(const void *p) {
    return ((const rosenbrock *)p)->d;
}

static const char *rosenbrock_coord_name(const void *p, size_t i) {
    return ((const rosenbrock *)p)->names[i];
}

/* Chunks of HB_LANES chains, chains innermost; plain arithmetic, so each chain's result is
   bitwise independent of its batch position. */
static int rosenbrock_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                            double *grad) {
    const rosenbrock *m = p;
    const double iq = m->inv_q;
    for (size_t c0 = 0; c0 < n; c0 += HB_LANES) {
        size_t w = n - c0 < HB_LANES ? n - c0 : HB_LANES;
        double acc[HB_LANES] = {0};
        for (size_t j = 0; j < m->d; j += 2) {
            const double *xa = x + j * ld + c0, *xb = xa + ld;
            double *ga = grad + j * ld + c0, *gb = ga + ld;
#pragma omp simd
            for (size_t c = 0; c < w; c++) {
                double a = xa[c], am1 = a - 1.0, r = xb[c] - a * a;
                acc[c] += 0.5 * am1 * am1 + 0.5 * iq * r * r;
                ga[c] = -am1 + 2.0 * a * r * iq;
                gb[c] = -r * iq;
            }
        }
        for (size_t c = 0; c < w; c++) lp[c0 + c] = m->lognorm - acc[c];
    }
    return 0;
}

/* One point is a batch of one, so the single and batch paths agree bitwise. */
static int rosenbrock_logp_grad(const void *p, const double *x, double *lp, double *grad) {
    return rosenbrock_batch(p, 1, 1, x, lp, grad);
}

static const hb_model_vtable rosenbrock_vtable = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "rosenbrock",
    .create = NULL,
    .destroy = rosenbrock_destroy,
    .dim = rosenbrock_dim,
    .coord_name = rosenbrock_coord_name,
    .logp_grad = rosenbrock_logp_grad,
    .logp_grad_batch = rosenbrock_batch,
};

static int rosenbrock_create(hb_config *cfg, void **impl, hb_error *err) {
    const int64_t def_dim = 2;
    const double def_q = 0.1;
    int64_t dim;
    double q;
    if (hb_cfg_int(cfg, "model", "dim", &def_dim, 2, 100000000, &dim, err) ||
        hb_cfg_double(cfg, "model", "Q", &def_q, 0.0, DBL_MAX, &q, err))
        return err->code;
    if (dim % 2 != 0)
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [model] dim: rosenbrock is made of pairs; dim must be even, got %lld",
                       hb_config_path(cfg), (long long)dim);
    if (!(q > 0.0))
        return hb_fail(err, HB_ERR_USAGE, "%s: [model] Q: must be > 0, got %g", hb_config_path(cfg),
                       q);
    rosenbrock *m = calloc(1, sizeof *m);
    if (!m) return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    m->d = (size_t)dim;
    m->inv_q = 1.0 / q;
    m->lognorm = 0.5 * (double)m->d * (-HB_LOG_2PI - 0.5 * log(q));
    m->names = hb_coord_names("x", 1, m->d);
    if (!m->names) {
        rosenbrock_destroy(m);
        return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    }
    *impl = m;
    return HB_OK;
}

const hb_builtin_model hb_builtin_rosenbrock = {
    .name = "rosenbrock",
    .summary = "banana (MCHMC benchmark): dim/2 pairs, x_a ~ N(1, 1), x_b | x_a ~ N(x_a^2, Q)",
    .options = "dim = 2 ; dimension (even)\n"
               "Q = 0.1 ; conditional variance of x_b given x_a (> 0); E x_b = 2, "
               "Var x_b = Q + 6\n",
    .create = rosenbrock_create,
    .vtable = &rosenbrock_vtable,
};
