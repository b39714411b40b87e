/* Shared plumbing for the data-driven built-in models (logistic and the posteriordb
 * targets): coordinate and output names, priors, lane-wise math, and the wrappers that turn
 * one lane-generic kernel into the scalar, batch and constrained-output ABI entries. */
#ifndef HB_MODELS_TARGET_UTIL_H
#define HB_MODELS_TARGET_UTIL_H

#include <math.h>
#include <stddef.h>

#include "core/vmath.h"
#include "heartbeat/heartbeat.h"

/* Every model here starts with this header, so the name and dimension entries of the
   vtable can be shared. */
typedef struct hb_mhead {
    size_t dim;   /* unconstrained coordinates */
    size_t n_out; /* constrained outputs (parameters, then derived quantities) */
    char **coord; /* dim names, e.g. "log(tau)" */
    char **out;   /* n_out names, e.g. "tau" */
    /* One point: x (dim) -> out (n_out). */
    int (*constrain)(const void *model, const double *x, double *out);
} hb_mhead;

void hb_mhead_init(hb_mhead *h, size_t dim, size_t n_out);
void hb_mhead_free(hb_mhead *h);
/* Set a name (printf-style), e.g. hb_mhead_name(&h->coord[i], "beta[%zu]", i + 1). */
void hb_mhead_name(char **slot, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* vtable entries for any model that starts with hb_mhead. */
size_t hb_mhead_dim(const void *model);
const char *hb_mhead_coord(const void *model, size_t i);
size_t hb_mhead_n_out(const void *model);
const char *hb_mhead_out(const void *model, size_t j);
int hb_mhead_constrained(const void *model, const double *x, double *out);
int hb_mhead_constrained_batch(const void *model, size_t n, size_t ld, const double *x,
                               double *out);

/* A kernel for exactly HB_LANES points, coordinate i of lane c at x[i*ld + c]; writes
   lp[c] and g[i*ld + c]. */
typedef void (*hb_lanes_kernel)(const void *model, size_t ld, const double *x, double *lp,
                                double *g);
/* logp_grad_batch for any n and ld on top of an HB_LANES kernel: full groups of lanes are
   evaluated in place, a remainder through a padded copy. Returns 0. */
int hb_batch_by_lanes(const void *model, size_t dim, hb_lanes_kernel k, size_t n, size_t ld,
                      const double *x, double *lp, double *g);

/* ---- priors: log density up to a constant, and its derivative ---- */
typedef enum hb_prior_kind { HB_PRIOR_FLAT = 0, HB_PRIOR_NORMAL, HB_PRIOR_STUDENT_T } hb_prior_kind;
typedef struct hb_prior {
    hb_prior_kind kind;
    double loc, scale, df;
} hb_prior;

/* ---- lane-wise transcendental functions: SLEEF over HB_LANES, libm for one lane ---- */
static inline void hb_lanes_exp(double *out, const double *in, size_t L) {
    if (L == HB_LANES)
        hb_vexp(out, in);
    else
        for (size_t c = 0; c < L; c++) out[c] = exp(in[c]);
}
static inline void hb_lanes_log(double *out, const double *in, size_t L) {
    if (L == HB_LANES)
        hb_vlog(out, in);
    else
        for (size_t c = 0; c < L; c++) out[c] = log(in[c]);
}
static inline void hb_lanes_log1p(double *out, const double *in, size_t L) {
    if (L == HB_LANES)
        hb_vlog1p(out, in);
    else
        for (size_t c = 0; c < L; c++) out[c] = log1p(in[c]);
}

#define HB_ALWAYS_INLINE inline __attribute__((always_inline))

/* A loop over the lanes of a batch. GCC fully unrolls an 8-trip loop and then often fails
   to re-vectorise it (5x slower on the mixture target); `omp simd` keeps it one vector
   loop. Use only for loops without calls; max/min as ternaries (fmax does not vectorise). */
#define HB_LANES_FOR(c, L) _Pragma("omp simd") for (size_t c = 0; c < (L); c++)

/* Prior p on L lanes of a coordinate: lp[c] += log p(v[c]) (up to a constant) and
   gout[c] += d log p / dv at v[c], times jac[c] when jac is not NULL (chain rule, e.g.
   v = exp(u) for a scale). */
static HB_ALWAYS_INLINE void hb_prior_lanes(const hb_prior *p, size_t L, const double *v,
                                            const double *jac, double *lp, double *gout) {
    const double is = 1.0 / p->scale, loc = p->loc;
    if (p->kind == HB_PRIOR_NORMAL) {
        HB_LANES_FOR(c, L) {
            double z = (v[c] - loc) * is, d = -z * is;
            lp[c] -= 0.5 * z * z;
            gout[c] += jac ? d * jac[c] : d;
        }
    } else if (p->kind == HB_PRIOR_STUDENT_T) {
        const double df = p->df, idf = 1.0 / df, h = 0.5 * (df + 1.0), k = (df + 1.0) * idf * is;
        double t[HB_LANES], l[HB_LANES];
        HB_LANES_FOR(c, L) {
            double z = (v[c] - loc) * is;
            t[c] = z * z * idf;
        }
        hb_lanes_log1p(l, t, L);
        HB_LANES_FOR(c, L) {
            double z = (v[c] - loc) * is, d = -k * z / (1.0 + t[c]);
            lp[c] -= h * l[c];
            gout[c] += jac ? d * jac[c] : d;
        }
    }
}

/* Define static logp_grad, logp_grad_batch for a model whose kernel is
   `static HB_ALWAYS_INLINE void KERNEL(const M *m, size_t L, size_t ld, const double *x,
   double *lp, double *g)` and whose struct (type M) starts with hb_mhead h. */
#define HB_LANE_MODEL_ENTRIES(M, KERNEL)                                                           \
    static void KERNEL##_lanes(const void *m, size_t ld, const double *x, double *lp, double *g) { \
        KERNEL((const M *)m, HB_LANES, ld, x, lp, g);                                              \
    }                                                                                              \
    static int KERNEL##_one(const void *m, const double *x, double *lp, double *g) {               \
        KERNEL((const M *)m, 1, 1, x, lp, g);                                                      \
        return isfinite(*lp) ? 0 : 1;                                                              \
    }                                                                                              \
    static int KERNEL##_batch(const void *m, size_t n, size_t ld, const double *x, double *lp,     \
                              double *g) {                                                         \
        return hb_batch_by_lanes(m, ((const M *)m)->h.dim, KERNEL##_lanes, n, ld, x, lp, g);       \
    }

/* The vtable of such a model (ABI v2, with constrained outputs). */
#define HB_LANE_MODEL_VTABLE(VT, NAME, KERNEL, DESTROY)                                            \
    static const hb_model_vtable VT = {.abi_version = HB_MODEL_ABI_VERSION,                        \
                                       .struct_size = sizeof(hb_model_vtable),                     \
                                       .name = NAME,                                               \
                                       .create = NULL,                                             \
                                       .destroy = DESTROY,                                         \
                                       .dim = hb_mhead_dim,                                        \
                                       .coord_name = hb_mhead_coord,                               \
                                       .logp_grad = KERNEL##_one,                                  \
                                       .logp_grad_batch = KERNEL##_batch,                          \
                                       .n_constrained = hb_mhead_n_out,                            \
                                       .constrained_name = hb_mhead_out,                           \
                                       .constrained = hb_mhead_constrained,                        \
                                       .constrained_batch = hb_mhead_constrained_batch}

#endif
