/* hb_model_eval_lanes: what samplers call to get log densities and gradients of one batch of
 * HB_LANES chains, through the model's SIMD entry or a per-chain fallback, with invalid
 * points sanitised so that no NaN reaches a sampler. */
#include <math.h>

#include "models/models.h"

/* An invalid lane gets lp = -inf and a zero gradient: samplers reject it through lp, and a
   zero gradient keeps NaN out of any arithmetic done before the rejection. */
static void invalidate(size_t dim, double *lp, double *g, int c) {
    lp[c] = -INFINITY;
    for (size_t i = 0; i < dim; i++) g[i * HB_LANES + (size_t)c] = 0.0;
}

void hb_model_eval_lanes(const hb_model *m, const double *x, double *lp, double *g, double *ws) {
    const size_t d = m->dim;
    if (m->vt->logp_grad_batch) {
        int rc = m->vt->logp_grad_batch(m->impl, HB_LANES, HB_LANES, x, lp, g);
        /* g * 0 is 0 for finite g and NaN for inf or NaN: one vectorised pass finds the lanes
           with a non-finite gradient. */
        double bad[HB_LANES] = {0};
        for (size_t i = 0; i < d; i++) {
            const double *gi = g + i * HB_LANES;
#pragma omp simd
            for (int c = 0; c < HB_LANES; c++) bad[c] += gi[c] * 0.0;
        }
        for (int c = 0; c < HB_LANES; c++)
            if (!(rc == 0 && isfinite(lp[c]) && bad[c] == 0.0)) invalidate(d, lp, g, c);
        return;
    }
    /* Fallback: gather one chain into ws[0..d), gradient into ws[d..2d), scatter back. */
    double *xc = ws, *gc = ws + d;
    for (int c = 0; c < HB_LANES; c++) {
        for (size_t i = 0; i < d; i++) xc[i] = x[i * HB_LANES + (size_t)c];
        double l = -INFINITY;
        int ok = m->vt->logp_grad(m->impl, xc, &l, gc) == 0 && isfinite(l);
        for (size_t i = 0; ok && i < d; i++) ok = isfinite(gc[i]);
        if (!ok) {
            invalidate(d, lp, g, c);
            continue;
        }
        lp[c] = l;
        for (size_t i = 0; i < d; i++) g[i * HB_LANES + (size_t)c] = gc[i];
    }
}

double hb_model_eval_one(const hb_model *m, const double *x, double *g) {
    const size_t d = m->dim;
    double l = -INFINITY, bad = 0.0;
    int rc = m->vt->logp_grad(m->impl, x, &l, g);
    for (size_t i = 0; i < d; i++) bad += g[i] * 0.0;
    if (rc == 0 && isfinite(l) && bad == 0.0) return l;
    for (size_t i = 0; i < d; i++) g[i] = 0.0;
    return -INFINITY;
}
