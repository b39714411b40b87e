/* Vectorised random-walk Metropolis (ALGORITHMS.md §3): Gaussian proposals scaled by the
 * pooled diagonal metric, proposal scale adapted by dual averaging. */
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

static size_t no_state(const void *self, size_t dim) {
    (void)self;
    (void)dim;
    return 0;
}

static size_t rwmh_ws(const void *self, size_t dim) {
    (void)self;
    return 2 * dim * HB_LANES + 4 * HB_LANES + 2 * dim;
}

static void rwmh_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    enum { L = HB_LANES };
    const hb_basic *s = ctx->self;
    const size_t d = ctx->dim;
    double *y = ws, *gy = ws + d * L, *lpy = gy + d * L, *u = lpy + L, *acc = u + L, *tmp = acc + L,
           *model_ws = tmp + L;
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, y);
    for (size_t i = 0; i < d; i++) {
        const double sc = s->h * s->sm[i];
        const double *x_i = b->x + i * L;
        double *y_i = y + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) y_i[c] = x_i[c] + sc * y_i[c];
    }
    /* The ABI has no log-density-only entry: the gradient is computed and dropped. */
    hb_model_eval_lanes(ctx->model, y, lpy, gy, model_ws);
    hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_ACCEPT, 1, u);
    int take[L];
    double sum_acc = 0;
    for (int c = 0; c < L; c++) {
        double delta = lpy[c] - b->lp[c];
        if (!isfinite(lpy[c]) || !(delta == delta)) delta = -INFINITY;
        tmp[c] = delta < 0 ? delta : 0;
        out->stats[HB_BASIC_DIVERGING * L + c] = !isfinite(lpy[c]);
        out->n_grad[c] = 0;
    }
    hb_vexp(acc, tmp);
    /* Accept iff u < exp(min(delta, 0)): the same event as log u < delta, one log fewer;
       the exponent is never above 0, and a non-finite delta gives acc = 0. */
    for (int c = 0; c < L; c++) take[c] = u[c] < acc[c];
    for (size_t i = 0; i < d; i++) {
        double *x_i = b->x + i * L;
        const double *y_i = y + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) x_i[c] = take[c] ? y_i[c] : x_i[c];
    }
    for (int c = 0; c < L; c++) {
        if (take[c]) b->lp[c] = lpy[c];
        out->stats[HB_BASIC_LP * L + c] = b->lp[c];
        out->stats[HB_BASIC_ACCEPT * L + c] = acc[c];
        out->stats[HB_BASIC_STEP * L + c] = s->h;
        if (c < b->n_real) sum_acc += acc[c];
    }
    if (out->red) {
        out->red[0] = sum_acc;
        out->red[1] = b->n_real;
    }
}

const hb_sampler_type hb_sampler_rwmh = {
    .name = "rwmh",
    .summary = "random-walk Metropolis, vectorised over chains; proposal scale and diagonal "
               "metric from pooled warmup",
    .create = rwmh_create,
    .destroy = rwmh_free,
    .state_doubles = no_state,
    .workspace_doubles = rwmh_ws,
    .step = rwmh_step,
    HB_BASIC_HOOKS,
};
