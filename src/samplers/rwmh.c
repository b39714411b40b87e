/* Vectorised random-walk Metropolis (ALGORITHMS.md §3): Gaussian proposals scaled by the
 * pooled diagonal metric, proposal scale adapted by dual averaging. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/vmath.h"
#include "samplers/basic.h"

/* Optimal acceptance by dimension (Gelman, Roberts & Gilks 1996): 0.44 in 1-d falling to
   0.234 as d grows. */
static double rwmh_target(size_t d) {
    static const double t[] = {0, 0.44, 0.35, 0.32, 0.30, 0.28};
    return d <= 5 ? t[d] : 0.234;
}

static int rwmh_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                       hb_error *err) {
    hb_basic *s = malloc(sizeof *s);
    if (!s) abort();
    size_t d = model->dim;
    if (hb_basic_create(s, cfg, "rwmh", rwmh_target(d), 2.38 / sqrt((double)d), d, warmup, err)) {
        hb_basic_destroy(s);
        free(s);
        return err->code;
    }
    *self = s;
    return HB_OK;
}

static void rwmh_free(void *self) {
    hb_basic_destroy(self);
    free(self);
}

/* 1-d: the variates of the odd iteration of a pair, kept from the even one (walk1 below):
   [tag][z][u] per lane, tag = that odd iteration + 1 (0, the initial value, matches none). */
enum { W1_TAG = 0, W1_Z = 1, W1_U = 2, W1_STATE = 3 };

static size_t rwmh_state(const void *self, size_t dim) {
    (void)self;
    return dim == 1 ? W1_STATE : 0;
}

/* Workspace for a group of HB_STEP_GROUP batches: proposals and their gradients [d][nl],
   log densities, uniforms and acceptance probabilities [nl], proposal scales [d], and the
   model's scratch (hb_model_eval_wide). */
static size_t rwmh_ws(const void *self, size_t dim) {
    (void)self;
    const size_t nl = HB_STEP_GROUP * HB_LANES;
    return 2 * dim * nl + 3 * nl + dim + 2 * dim * HB_LANES + 2 * dim;
}

/* The 1-d proposal y = x + sc z and uniform u of n batches. Iterations 2s and 2s + 1 share
   one Philox block (hb_rng_walk_pair_wide): the even iteration generates it and keeps the odd
   iteration's half in the batch state, which the odd iteration takes when its tag matches (it
   always does within a run; a mismatch only regenerates the same values, so the draws never
   depend on it). */
static void walk1(const hb_step_ctx *ctx, hb_batch *const *bs, int n, double sc, double *y,
                  double *u) {
    enum { L = HB_LANES };
    const int odd = (int)(ctx->iter & 1);
    int hit = odd;
    for (int k = 0; k < n && hit; k++) hit = bs[k]->state[W1_TAG * L] == (double)(ctx->iter + 1);
    if (hit) {
        for (int k = 0; k < n; k++) {
            const double *st = bs[k]->state, *x = bs[k]->x;
#pragma omp simd
            for (int c = 0; c < L; c++) {
                y[k * L + c] = fma(sc, st[W1_Z * L + c], x[c]);
                u[k * L + c] = st[W1_U * L + c];
            }
        }
        return;
    }
    const double *xv[HB_STEP_GROUP];
    double *zk[HB_STEP_GROUP], *uk[HB_STEP_GROUP];
    for (int k = 0; k < n; k++) {
        xv[k] = bs[k]->x;
        zk[k] = bs[k]->state + W1_Z * L;
        uk[k] = bs[k]->state + W1_U * L;
        if (odd) continue;
        for (int c = 0; c < L; c++) bs[k]->state[W1_TAG * L + c] = (double)(ctx->iter + 2);
    }
    const hb_walk_pair p = {.half = odd,
                            .xv = xv,
                            .s = sc,
                            .y = y,
                            .u = u,
                            .zk = odd ? NULL : zk,
                            .uk = odd ? NULL : uk};
    hb_rng_walk_pair_wide(ctx->seed, bs[0]->chain0, (size_t)n * L, ctx->iter >> 1, HB_RNG_WALK_PAIR,
                          &p);
}

/* One iteration for n consecutive batches (n = 1: the plain step). Normals, the model and
   the uniforms are computed for all nl = n * HB_LANES chains at once, so that the latency
   chains of independent batches (Philox rounds, polynomials) overlap; each chain's values are
   bitwise what it gets alone. */
static void rwmh_group(const hb_step_ctx *ctx, hb_batch *const *bs, int n, double *ws,
                       hb_step_out *out) {
    enum { L = HB_LANES };
    const hb_basic *s = ctx->self;
    const size_t d = ctx->dim, nl = (size_t)n * L;
    /* step_group's contract (sampler.h): consecutive batches, as the run loop hands them */
    for (int k = 1; k < n; k++) assert(bs[k]->chain0 == bs[0]->chain0 + (uint64_t)k * L);
    double *y = ws, *gy = y + d * nl, *lpy = gy + d * nl, *u = lpy + nl, *acc = u + nl;
    double *sc = acc + nl, *model_ws = sc + d;
    const double *xv[HB_STEP_GROUP] = {0};
    for (int k = 0; k < n; k++) xv[k] = bs[k]->x;
    for (size_t i = 0; i < d; i++) sc[i] = s->h * s->sm[i];
    /* y = x + sc z and the Metropolis uniforms, from the one proposal stream (rng.h); in 1-d
       from a block shared by two iterations */
    if (d == 1)
        walk1(ctx, bs, n, sc[0], y, u);
    else
        hb_rng_walk_wide(ctx->seed, bs[0]->chain0, nl, ctx->iter, HB_RNG_PROPOSAL, d, xv, sc, y, u);
    /* log densities only (the model's logp_batch, or its gradient computed and dropped) */
    hb_model_eval_logp_wide(ctx->model, nl, y, lpy, gy, model_ws);
    /* Accept iff u < exp(min(delta, 0)): the same event as log u < delta, one log fewer; the
       exponent is never above 0, and a non-finite lp(y) or a NaN delta gives acc = 0. */
    for (int k = 0; k < n; k++) {
        hb_batch *b = bs[k];
        double *st = out[k].stats, *lpk = lpy + (size_t)k * L, *uk = u + (size_t)k * L;
        double *acck = acc + (size_t)k * L;
        int take[L];
#if defined(HB_VMATH_AVX512) && HB_LANES == 8
        const __m512d lpyv = _mm512_loadu_pd(lpk), lpx = _mm512_loadu_pd(b->lp);
        __m512d delta = _mm512_sub_pd(lpyv, lpx);
        const __mmask8 finite = (__mmask8)~_mm512_fpclass_pd_mask(lpyv, 0x99) &
                                _mm512_cmp_pd_mask(delta, delta, _CMP_ORD_Q);
        delta = _mm512_mask_blend_pd(finite, _mm512_set1_pd(-INFINITY), delta);
        const __m512d accv = hb_exp8_t16s(_mm512_mul_pd(_mm512_min_pd(delta, _mm512_setzero_pd()),
                                                        _mm512_set1_pd(16 * HB_LOG2E)));
        const __mmask8 tk = _mm512_cmp_pd_mask(_mm512_loadu_pd(uk), accv, _CMP_LT_OQ);
        const __m512d lpn = _mm512_mask_blend_pd(tk, lpx, lpyv);
        _mm512_storeu_pd(b->lp, lpn);
        if (out[k].red) _mm512_storeu_pd(acck, accv); /* for the pooled sum below */
        _mm512_storeu_pd(st + HB_BASIC_LP * L, lpn);
        _mm512_storeu_pd(st + HB_BASIC_ACCEPT * L, accv);
        _mm512_storeu_pd(st + HB_BASIC_STEP * L, _mm512_set1_pd(s->h));
        _mm512_storeu_pd(
            st + HB_BASIC_DIVERGING * L,
            _mm512_maskz_mov_pd(_mm512_fpclass_pd_mask(lpyv, 0x99), _mm512_set1_pd(1.0)));
        for (int c = 0; c < L; c++) take[c] = tk >> c & 1;
        for (size_t i = 0; i < d; i++) {
            double *x_i = b->x + i * L;
            _mm512_storeu_pd(x_i,
                             _mm512_mask_blend_pd(tk, _mm512_loadu_pd(x_i),
                                                  _mm512_loadu_pd(y + i * nl + (size_t)k * L)));
        }
#else
        double tmp[L];
        for (int c = 0; c < L; c++) {
            double delta = lpk[c] - b->lp[c];
            if (!isfinite(lpk[c]) || !(delta == delta)) delta = -INFINITY;
            tmp[c] = delta < 0 ? delta : 0;
            st[HB_BASIC_DIVERGING * L + c] = !isfinite(lpk[c]);
        }
        hb_vexp_ih(acck, tmp);
        for (int c = 0; c < L; c++) take[c] = uk[c] < acck[c];
        for (size_t i = 0; i < d; i++) {
            double *x_i = b->x + i * L;
            const double *y_i = y + i * nl + (size_t)k * L;
#pragma omp simd
            for (int c = 0; c < L; c++) x_i[c] = take[c] ? y_i[c] : x_i[c];
        }
        for (int c = 0; c < L; c++) {
            if (take[c]) b->lp[c] = lpk[c];
            st[HB_BASIC_LP * L + c] = b->lp[c];
            st[HB_BASIC_ACCEPT * L + c] = acck[c];
            st[HB_BASIC_STEP * L + c] = s->h;
        }
#endif
        (void)take;
        for (int c = 0; c < L; c++) out[k].n_grad[c] = 0;
        if (out[k].red) {
            double sum_acc = 0;
            for (int c = 0; c < b->n_real; c++) sum_acc += acck[c];
            out[k].red[0] = sum_acc;
            out[k].red[1] = b->n_real;
        }
    }
}

static void rwmh_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    rwmh_group(ctx, &b, 1, ws, out);
}

const hb_sampler_type hb_sampler_rwmh = {
    .name = "rwmh",
    .summary = "random-walk Metropolis, vectorised over chains; proposal scale and diagonal "
               "metric from pooled warmup",
    .create = rwmh_create,
    .destroy = rwmh_free,
    .state_doubles = rwmh_state,
    .workspace_doubles = rwmh_ws,
    .step = rwmh_step,
    .step_group = rwmh_group,
    HB_BASIC_HOOKS,
};
