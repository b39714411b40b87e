/* hb_model_eval_lanes: what samplers call to get log densities and gradients of one batch of
 * HB_LANES chains, through the model's SIMD entry or a per-chain fallback, with invalid
 * points sanitised so that no NaN reaches a sampler. */
#include <math.h>

#include "core/vmath.h"
#include "models/models.h"

/* An invalid lane gets lp = -inf and a zero gradient: samplers reject it through lp, and a
   zero gradient keeps NaN out of any arithmetic done before the rejection. */
static void invalidate(size_t dim, size_t ld, double *lp, double *g, size_t c) {
    lp[c] = -INFINITY;
    for (size_t i = 0; i < dim; i++) g[i * ld + c] = 0.0;
}

/* After a batch call over nl lanes (stride nl) that returned rc: invalidate the lanes whose
   lp or gradient is not finite. */
static void sanitize(size_t d, size_t nl, int rc, double *lp, double *g) {
    for (size_t v = 0; v < nl; v += HB_LANES) {
#if defined(HB_VMATH_AVX512) && HB_LANES == 8
        /* One pass ORs the lanes whose gradient has an infinity or a NaN (fpclass). */
        __mmask8 badm = _mm512_fpclass_pd_mask(_mm512_loadu_pd(lp + v), 0x99);
        for (size_t i = 0; i < d; i++)
            badm |= _mm512_fpclass_pd_mask(_mm512_loadu_pd(g + i * nl + v), 0x99);
        if (rc != 0) badm = 0xff;
        for (unsigned bits = badm; bits; bits &= bits - 1) /* only the bad lanes */
            invalidate(d, nl, lp, g, v + (size_t)__builtin_ctz(bits));
#else
        /* g * 0 is 0 for finite g and NaN for inf or NaN: one vectorised pass finds the lanes
           with a non-finite gradient. */
        double bad[HB_LANES] = {0};
        for (size_t i = 0; i < d; i++) {
            const double *gi = g + i * nl + v;
#pragma omp simd
            for (int c = 0; c < HB_LANES; c++) bad[c] += gi[c] * 0.0;
        }
        for (int c = 0; c < HB_LANES; c++)
            if (!(rc == 0 && isfinite(lp[v + c]) && bad[c] == 0.0)) invalidate(d, nl, lp, g, v + c);
#endif
    }
}

void hb_model_eval_lanes(const hb_model *m, const double *x, double *lp, double *g, double *ws) {
    const size_t d = m->dim;
    if (m->vt->logp_grad_batch) {
        int rc = m->vt->logp_grad_batch(m->impl, HB_LANES, HB_LANES, x, lp, g);
        sanitize(d, HB_LANES, rc, lp, g);
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
            invalidate(d, HB_LANES, lp, g, (size_t)c);
            continue;
        }
        lp[c] = l;
        for (size_t i = 0; i < d; i++) g[i * HB_LANES + (size_t)c] = gc[i];
    }
}

unsigned hb_model_eval_lanes_raw(const hb_model *m, const double *x, double *lp, double *g,
                                 double *ws) {
    if (m->vt->logp_grad_batch)
        return m->vt->logp_grad_batch(m->impl, HB_LANES, HB_LANES, x, lp, g) != 0
                   ? (1u << HB_LANES) - 1
                   : 0u;
    hb_model_eval_lanes(m, x, lp, g, ws);
    return 0;
}

void hb_model_eval_wide(const hb_model *m, size_t nl, const double *x, double *lp, double *g,
                        double *ws) {
    const size_t d = m->dim, L = HB_LANES;
    if (nl == L) {
        hb_model_eval_lanes(m, x, lp, g, ws);
        return;
    }
    if (!m->dl && m->vt->logp_grad_batch) {
        /* A built-in: one call over all lanes (its results do not depend on the batch shape;
           tests/test_models.c checks that bitwise). */
        int rc = m->vt->logp_grad_batch(m->impl, nl, nl, x, lp, g);
        sanitize(d, nl, rc, lp, g);
        return;
    }
    /* A plugin, whose results might depend on the shape of the call: batch by batch exactly
       as hb_model_eval_lanes, through a contiguous copy. */
    double *xb = ws, *gb = ws + d * L, *rest = gb + d * L;
    for (size_t v = 0; v < nl; v += L) {
        for (size_t i = 0; i < d; i++)
            for (size_t c = 0; c < L; c++) xb[i * L + c] = x[i * nl + v + c];
        hb_model_eval_lanes(m, xb, lp + v, gb, rest);
        for (size_t i = 0; i < d; i++)
            for (size_t c = 0; c < L; c++) g[i * nl + v + c] = gb[i * L + c];
    }
}

void hb_model_eval_logp_wide(const hb_model *m, size_t nl, const double *x, double *lp, double *g,
                             double *ws) {
    const size_t d = m->dim, L = HB_LANES;
    if (!HB_MODEL_HAS(m->vt, logp_batch)) {
        hb_model_eval_wide(m, nl, x, lp, g, ws);
        return;
    }
    /* A built-in takes all lanes in one call; a plugin one call per HB_LANES chains through a
       contiguous copy, as hb_model_eval_wide does. */
    const size_t step = m->dl ? L : nl;
    for (size_t v = 0; v < nl; v += step) {
        int rc;
        if (!m->dl) {
            rc = m->vt->logp_batch(m->impl, nl, nl, x, lp);
        } else {
            for (size_t i = 0; i < d; i++)
                for (size_t c = 0; c < L; c++) ws[i * L + c] = x[i * nl + v + c];
            rc = m->vt->logp_batch(m->impl, L, L, ws, lp + v);
        }
#if defined(HB_VMATH_AVX512) && HB_LANES == 8
        for (size_t c = v; c < v + step; c += L) { /* a mask per 8 lanes: no branches */
            const __mmask8 bad =
                rc != 0 ? 0xff : _mm512_fpclass_pd_mask(_mm512_loadu_pd(lp + c), 0x99);
            _mm512_mask_storeu_pd(lp + c, bad, _mm512_set1_pd(-INFINITY));
        }
#else
        for (size_t c = v; c < v + step; c++)
            if (rc != 0 || !isfinite(lp[c])) lp[c] = -INFINITY;
#endif
    }
}

double hb_model_eval_one(const hb_model *m, const double *x, double *g) {
    const size_t d = m->dim;
    double l = -INFINITY;
    int rc = m->vt->logp_grad(m->impl, x, &l, g);
    if (rc == 0 && isfinite(l)) {
        /* g * 0 is +-0 for finite g and NaN for inf or NaN, so the sum is 0 exactly when
           the gradient is finite, in any order: a vectorised reduction (not a chain of
           dependent additions, which cost as much as a cheap model's gradient). */
        double bad = 0.0;
#pragma omp simd reduction(+ : bad)
        for (size_t i = 0; i < d; i++) bad += g[i] * 0.0;
        if (bad == 0.0) return l;
    }
    for (size_t i = 0; i < d; i++) g[i] = 0.0;
    return -INFINITY;
}
