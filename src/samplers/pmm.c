/* The Poisson midpoint method for overdamped Langevin (Kandasamy & Nagaraj 2024; ALGORITHMS.md
 * §4.3, compressed form): one coarse step of size a = h emulates K Langevin sub-steps of size
 * a/K by correcting the frozen drift with the gradients at the randomly selected sub-step
 * times (each sub-step i = 1..K-1 is a head with probability 1/K, independently per chain):
 *   X+_i = X0 + (i a/K) M g0 + sqrt(2M) W(i a/K),   C = sum over heads of g(X+_i) - g0,
 *   X    = X0 + a M (g0 + C) + sqrt(2M) W(a),
 * with W the chain's Brownian path sampled at the heads and at a. Lock-step SIMD over the 8
 * lanes: round r evaluates every lane's r-th midpoint, masked (a lane with fewer heads keeps
 * its contribution at zero), so no lane branches; a batch costs 1 + max heads rounds. A
 * non-finite midpoint or endpoint gradient rejects the whole coarse step (keeps X0).
 * Warmup runs MALA moves whose acceptance sets the step size (the ULA gauge, [pmm]
 * target_accept); sampling runs PMM steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "samplers/basic.h"

enum { L = HB_LANES };

typedef struct pmm {
    hb_basic b;
    int64_t K;
} pmm;

static void pmm_destroy(void *self) {
    pmm *s = self;
    if (!s) return;
    hb_basic_destroy(&s->b);
    free(s);
}

static int pmm_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                      hb_error *err) {
    pmm *s = calloc(1, sizeof *s);
    if (!s) abort();
    int rc = hb_basic_create(&s->b, cfg, "pmm", 0.95, 0.1, model->dim, warmup, err);
    int64_t K = 16;
    if (rc == HB_OK && hb_cfg_int(cfg, "pmm", "K", &K, 2, 4096, &s->K, err)) rc = err->code;
    if (rc) {
        pmm_destroy(s);
        return rc;
    }
    *self = s;
    return HB_OK;
}

static size_t no_state(const void *self, size_t dim) {
    (void)self;
    (void)dim;
    return 0;
}

static size_t pmm_ws(const void *self, size_t dim) {
    const pmm *s = self;
    size_t a = 5 * dim * L + (size_t)s->K * L + 8 * L + 2 * dim;
    size_t b = hb_langevin_workspace(dim);
    return a > b ? a : b;
}

/* Purpose of round r's normals: HB_RNG_AUX in the low byte, the round above it. */
static uint32_t round_purpose(int r) {
    return HB_RNG_AUX | ((uint32_t)r << 8);
}

static void pmm_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const pmm *s = ctx->self;
    const hb_basic *bs = &s->b;
    if (ctx->warmup) { /* the MALA gauge sets the step size */
        hb_langevin_step(ctx, bs, 1, b, ws, out);
        return;
    }
    const size_t d = ctx->dim;
    const int K = (int)s->K;
    const double a = bs->h, hs = a / K;
    double *W = ws, *C = W + d * L, *xp = C + d * L, *gp = xp + d * L, *xi = gp + d * L;
    double *coins = xi + d * L, *lpp = coins + (size_t)K * L, *sprev = lpp + L;
    double *mws = sprev + L;
    int heads[L] = {0}, bad[L] = {0}, rounds = 0;
    /* coins: sub-step i (1..K-1) of chain c is a head when its uniform is below 1/K */
    hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_AUX2, (size_t)(K - 1), coins);
    for (int c = 0; c < L; c++) {
        for (int i = 1; i < K; i++) heads[c] += coins[(size_t)(i - 1) * L + c] < 1.0 / K;
        if (c < b->n_real && heads[c] > rounds) rounds = heads[c];
        sprev[c] = 0;
    }
    memset(W, 0, 2 * d * L * sizeof *W); /* W and C */
    /* next head of each lane: scan position */
    int next[L];
    for (int c = 0; c < L; c++) next[c] = 1;
    for (int r = 1; r <= rounds; r++) {
        double sr[L], inc[L], mask[L];
        for (int c = 0; c < L; c++) {
            int i = next[c];
            while (i < K && !(coins[(size_t)(i - 1) * L + c] < 1.0 / K)) i++;
            mask[c] = i < K ? 1.0 : 0.0;
            next[c] = i + 1;
            sr[c] = i < K ? i * hs : sprev[c];
            inc[c] = sqrt(sr[c] - sprev[c]);
            sprev[c] = sr[c];
        }
        hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, round_purpose(r), d, xi);
        for (size_t i = 0; i < d; i++) {
            const double mi = bs->m[i], s2 = sqrt(2.0 * mi);
            double *W_i = W + i * L, *xp_i = xp + i * L;
            const double *x_i = b->x + i * L, *g_i = b->g + i * L, *xi_i = xi + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++) {
                W_i[c] += mask[c] * inc[c] * xi_i[c];
                xp_i[c] = x_i[c] + mask[c] * (sr[c] * mi * g_i[c] + s2 * W_i[c]);
            }
        }
        hb_model_eval_lanes(ctx->model, xp, lpp, gp, mws);
        for (int c = 0; c < L; c++) bad[c] |= mask[c] != 0 && !isfinite(lpp[c]);
        for (size_t i = 0; i < d; i++) {
            double *C_i = C + i * L;
            const double *gp_i = gp + i * L, *g_i = b->g + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++) C_i[c] += mask[c] * (gp_i[c] - g_i[c]);
        }
    }
    /* the endpoint: W(a), then X = X0 + a M (g0 + C) + sqrt(2M) W */
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, xi);
    double inc[L];
    for (int c = 0; c < L; c++) inc[c] = sqrt(a - sprev[c]);
    for (size_t i = 0; i < d; i++) {
        const double mi = bs->m[i], s2 = sqrt(2.0 * mi);
        double *xp_i = xp + i * L;
        const double *W_i = W + i * L, *C_i = C + i * L, *x_i = b->x + i * L, *g_i = b->g + i * L,
                     *xi_i = xi + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++)
            xp_i[c] = x_i[c] + a * mi * (g_i[c] + C_i[c]) + s2 * (W_i[c] + inc[c] * xi_i[c]);
    }
    hb_model_eval_lanes(ctx->model, xp, lpp, gp, mws);
    int take[L];
    for (int c = 0; c < L; c++) {
        take[c] = !bad[c] && isfinite(lpp[c]);
        out->stats[HB_BASIC_ACCEPT * L + c] = take[c];
        out->stats[HB_BASIC_STEP * L + c] = a;
        out->stats[HB_BASIC_DIVERGING * L + c] = !take[c];
        out->n_grad[c] = 1 + heads[c];
    }
    for (size_t i = 0; i < d; i++) {
        double *x_i = b->x + i * L, *g_i = b->g + i * L;
        const double *xp_i = xp + i * L, *gp_i = gp + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            x_i[c] = take[c] ? xp_i[c] : x_i[c];
            g_i[c] = take[c] ? gp_i[c] : g_i[c];
        }
    }
    for (int c = 0; c < L; c++) {
        if (take[c]) b->lp[c] = lpp[c];
        out->stats[HB_BASIC_LP * L + c] = b->lp[c];
    }
}

const hb_sampler_type hb_sampler_pmm = {
    .name = "pmm",
    .summary = "Poisson midpoint method (overdamped Langevin, [pmm] K sub-steps emulated at ~2 "
               "gradients per step); step size set in warmup by a MALA gauge",
    .create = pmm_create,
    .destroy = pmm_destroy,
    .state_doubles = no_state,
    .workspace_doubles = pmm_ws,
    .step = pmm_step,
    HB_BASIC_HOOKS,
};
