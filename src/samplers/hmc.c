/* Static HMC (ALGORITHMS.md §6.2): full momentum refresh, L leapfrog steps, Metropolis
 * accept. Lock-step SIMD over the lanes of a batch: every chain takes the same number of
 * steps (L = floor(integration_time / nominal step), as Stan's base_static_hmc), each with
 * its own jittered step size when [hmc] step_size_jitter > 0. Step size (dual averaging on
 * the pooled acceptance) and diagonal metric (Stan's windows) come from pooled warmup, as
 * for MALA. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "samplers/basic.h"

enum { L = HB_LANES };

typedef struct hmc {
    hb_basic b; /* first member: the shared hooks take it */
    double T;   /* integration time */
    int64_t n_leapfrog, max_leapfrog;
    double jitter;
    int jitter_length; /* L uniform on 1..L per iteration, shared by all chains */
} hmc;

static int hmc_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                      hb_error *err) {
    hmc *s = calloc(1, sizeof *s);
    if (!s) abort();
    int rc = hb_basic_create(&s->b, cfg, "hmc", 0.8, 0.1, model->dim, warmup, err);
    double T = 6.283185307179586, jit = 0; /* 2 pi, as CmdStan */
    int64_t nl = 0, maxl = 1000;
    if (rc == HB_OK &&
        (hb_cfg_double(cfg, "hmc", "integration_time", &T, 1e-300, 1e300, &s->T, err) ||
         hb_cfg_int(cfg, "hmc", "n_leapfrog", &nl, 0, 1000000, &s->n_leapfrog, err) ||
         hb_cfg_int(cfg, "hmc", "max_leapfrog", &maxl, 1, 1000000, &s->max_leapfrog, err) ||
         hb_cfg_double(cfg, "hmc", "step_size_jitter", &jit, 0, 0.999, &s->jitter, err)))
        rc = err->code;
    static const char *const yesno[] = {"true", "false", NULL};
    int jl = 0;
    if (rc == HB_OK && hb_cfg_choice(cfg, "hmc", "jitter_length", "true", yesno, &jl, err))
        rc = err->code;
    s->jitter_length = jl == 0;
    if (rc) {
        hb_basic_destroy(&s->b);
        free(s);
        return rc;
    }
    *self = s;
    return HB_OK;
}

static void hmc_destroy(void *self) {
    hmc *s = self;
    if (!s) return;
    hb_basic_destroy(&s->b);
    free(s);
}

static size_t no_state(const void *self, size_t dim) {
    (void)self;
    (void)dim;
    return 0;
}

static size_t hmc_ws(const void *self, size_t dim) {
    (void)self;
    return 4 * dim * L + 8 * L + 2 * dim;
}

/* Leapfrog steps this iteration: L = n_leapfrog, or floor(T / h) within [1, max_leapfrog];
   with jitter_length, uniform on 1..L from a stream keyed by the iteration alone (chain 0 of
   purpose AUX2), so every chain of every rank takes the same number of steps. */
static int64_t steps(const hmc *s, const hb_step_ctx *ctx) {
    int64_t n = s->n_leapfrog;
    if (n <= 0) {
        double t = floor(s->T / s->b.h);
        n = !(t >= 1) ? 1 : t > (double)s->max_leapfrog ? s->max_leapfrog : (int64_t)t;
    }
    if (s->jitter_length && n > 1) {
        double u;
        hb_rng_uniforms(ctx->seed, 0, ctx->iter, HB_RNG_AUX2, 1, &u);
        n = 1 + (int64_t)(u * (double)n);
    }
    return n;
}

static void hmc_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const hmc *s = ctx->self;
    const hb_basic *bs = &s->b;
    const size_t d = ctx->dim;
    double *p = ws, *y = ws + d * L, *gy = ws + 2 * d * L, *xi = ws + 3 * d * L;
    double *lpy = xi + d * L, *u = lpy + L, *eps = u + L, *h0 = eps + L, *h1 = h0 + L;
    double *mws = h1 + L;
    const int64_t n = steps(s, ctx);

    /* per-lane step sizes h (1 + j (2u - 1)), as Stan's stepsize_jitter */
    for (int c = 0; c < L; c++) eps[c] = bs->h;
    if (s->jitter > 0) {
        hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_AUX, 1, u);
        for (int c = 0; c < L; c++) eps[c] = bs->h * (1.0 + s->jitter * (2.0 * u[c] - 1.0));
    }
    /* momentum p = xi / sqrt(m), H0 = -lp + p.M p / 2 */
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, xi);
    for (int c = 0; c < L; c++) h0[c] = 0;
    for (size_t i = 0; i < d; i++) {
        const double r = 1.0 / bs->sm[i], mi = bs->m[i];
        double *p_i = p + i * L, *y_i = y + i * L, *gy_i = gy + i * L;
        const double *xi_i = xi + i * L, *x_i = b->x + i * L, *g_i = b->g + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            p_i[c] = xi_i[c] * r;
            h0[c] += mi * p_i[c] * p_i[c];
            y_i[c] = x_i[c];
            gy_i[c] = g_i[c];
        }
    }
    for (int c = 0; c < L; c++) h0[c] = -b->lp[c] + 0.5 * h0[c];
    /* n leapfrog steps in lock-step; the half kicks of consecutive steps are merged */
    for (int64_t l = 0; l < n; l++) {
        const double first = l == 0 ? 0.5 : 1.0;
        for (size_t i = 0; i < d; i++) {
            const double mi = bs->m[i];
            double *p_i = p + i * L, *y_i = y + i * L;
            const double *gy_i = gy + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++) {
                p_i[c] += first * eps[c] * gy_i[c];
                y_i[c] += eps[c] * mi * p_i[c];
            }
        }
        hb_model_eval_lanes(ctx->model, y, lpy, gy, mws);
    }
    for (int c = 0; c < L; c++) h1[c] = 0;
    for (size_t i = 0; i < d; i++) {
        const double mi = bs->m[i];
        double *p_i = p + i * L;
        const double *gy_i = gy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            p_i[c] += 0.5 * eps[c] * gy_i[c];
            h1[c] += mi * p_i[c] * p_i[c];
        }
    }
    hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_ACCEPT, 1, u);
    int take[L];
    double sum_acc = 0;
    for (int c = 0; c < L; c++) {
        double H1 = -lpy[c] + 0.5 * h1[c];
        double delta = h0[c] - H1;
        if (!isfinite(lpy[c]) || isnan(delta)) delta = -INFINITY;
        double acc = delta >= 0 ? 1.0 : exp(delta);
        take[c] = u[c] < acc;
        out->stats[HB_BASIC_ACCEPT * L + c] = acc;
        out->stats[HB_BASIC_STEP * L + c] = eps[c];
        out->stats[HB_BASIC_DIVERGING * L + c] = -delta > 1000.0;
        out->n_grad[c] = n;
        if (c < b->n_real) sum_acc += acc;
    }
    for (size_t i = 0; i < d; i++) {
        double *x_i = b->x + i * L, *g_i = b->g + i * L;
        const double *y_i = y + i * L, *gy_i = gy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            x_i[c] = take[c] ? y_i[c] : x_i[c];
            g_i[c] = take[c] ? gy_i[c] : g_i[c];
        }
    }
    for (int c = 0; c < L; c++) {
        if (take[c]) b->lp[c] = lpy[c];
        out->stats[HB_BASIC_LP * L + c] = b->lp[c];
    }
    if (out->red) {
        out->red[0] = sum_acc;
        out->red[1] = b->n_real;
    }
}

const hb_sampler_type hb_sampler_hmc = {
    .name = "hmc",
    .summary = "static HMC (leapfrog, L = integration_time / step size), lock-step SIMD; step "
               "size and diagonal metric from pooled warmup",
    .create = hmc_create,
    .destroy = hmc_destroy,
    .state_doubles = no_state,
    .workspace_doubles = hmc_ws,
    .step = hmc_step,
    HB_BASIC_HOOKS,
};
