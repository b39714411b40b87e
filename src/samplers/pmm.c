/* The Poisson midpoint method (Kandasamy & Nagaraj 2024; ALGORITHMS.md §4), overdamped (§4.3)
 * and underdamped (§4.4), both in the compressed form: one coarse step of size a emulates K
 * Langevin sub-steps of size h = a/K by correcting the frozen drift with the gradients at the
 * randomly selected sub-step times ("heads": each i = 1..K-1 independently with probability
 * 1/K, per chain), at points of the chain's own Brownian path.
 *
 * Overdamped (x' = x + a M g + sqrt(2aM) xi emulated at step a/K):
 *   X+_i = X0 + (i h) M g0 + sqrt(2M) W(i h),   C = sum over heads of g(X+_i) - g0,
 *   X    = X0 + a M (g0 + C) + sqrt(2M) W(a).
 * Underdamped (kinetic Langevin, friction gamma, in whitened coordinates U = x / sqrt(m),
 * velocity V per chain in the state): the exponential integrator with the force c0 frozen at
 * U0, its Brownian functionals (I, J) generated at the heads and at a by concatenating
 * independent pieces, each head's force correction K (c(U+_r) - c0) applied over its sub-step
 * and propagated to a (§4.4 steps 1-6).
 *
 * Heads by geometric gaps: the gap to the next head is 1 + floor(log u / log(1 - 1/K)), so a
 * chain draws one uniform per head (and one to find the end), not K - 1 coins, and the cost no
 * longer depends on K (the heads are exactly i.i.d. Bernoulli(1/K) on 1..K-1). Lock-step SIMD
 * over the 8 lanes: round r evaluates every lane's r-th midpoint under a mask (a lane with
 * fewer heads evaluates at X0 and adds exactly zero), so no lane branches; a batch costs
 * 1 + max heads gradient rounds, n_steps reports each chain's own 1 + heads. A non-finite
 * midpoint or endpoint rejects the whole coarse step (keeps X0, and V0; flagged diverging).
 *
 * Warmup runs MALA moves whose acceptance sets the MALA step h (the ULA gauge, [pmm]
 * target_accept). The overdamped coarse step is a = h. The underdamped one is a = sqrt(2h):
 * a MALA move of step h is one leapfrog step of size sqrt(2h), and a = sqrt(2h) puts the
 * kinetic integrator at the same a sqrt(lambda) as that step. [sampler] step_size fixes a. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "samplers/basic.h"

enum { L = HB_LANES };

typedef struct pmm {
    hb_basic b;   /* b.h: the MALA step of the warmup gauge */
    int64_t K;    /* emulated sub-steps per coarse step */
    int under;    /* variant = underdamped */
    double gamma; /* friction (underdamped), whitened units */
    double a;     /* the coarse step, from b.h */
} pmm;

static void sync_step(pmm *s) {
    s->a = s->under ? sqrt(2.0 * s->b.h) : s->b.h;
}

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
    static const char *const variants[] = {"overdamped", "underdamped", NULL};
    int rc = hb_basic_create(&s->b, cfg, "pmm", 0.95, 0.1, model->dim, warmup, err);
    int64_t K = 16;
    double gamma = 2.0;
    if (rc == HB_OK &&
        (hb_cfg_int(cfg, "pmm", "K", &K, 2, 1000000, &s->K, err) ||
         hb_cfg_choice(cfg, "pmm", "variant", "overdamped", variants, &s->under, err) ||
         hb_cfg_double(cfg, "pmm", "gamma", &gamma, 1e-6, 1e6, &s->gamma, err)))
        rc = err->code;
    if (rc) {
        pmm_destroy(s);
        return rc;
    }
    if (s->under && s->b.h_fixed) { /* step_size is the coarse step a; the gauge's h = a^2/2 */
        s->b.h = 0.5 * s->b.h * s->b.h;
        hb_dual_avg_init(&s->b.da, s->b.h, s->b.target);
    }
    sync_step(s);
    *self = s;
    return HB_OK;
}

static size_t pmm_state(const void *self, size_t dim) {
    const pmm *s = self;
    return s->under ? dim : 0; /* V, whitened */
}

static size_t pmm_ws(const void *self, size_t dim) {
    (void)self;
    size_t a = 8 * dim * L + 8 * L + 2 * dim;
    size_t b = hb_langevin_workspace(dim);
    return a > b ? a : b;
}

/* V ~ N(0, I), the stationary law of the velocity, independent of the position. */
static void pmm_init_batch(const hb_step_ctx *ctx, hb_batch *b) {
    const pmm *s = ctx->self;
    if (s->under) hb_rng_normals_lanes(ctx->seed, b->chain0, 0, HB_RNG_PMM_V0, ctx->dim, b->state);
}

/* Purpose of round r's variates: the base purpose in the low byte, the round above it. */
static uint32_t round_purpose(uint32_t base, int r) {
    return base | ((uint32_t)r << 8);
}

/* (1 - exp(-g t)) / g and (t - (1 - exp(-g t)) / g) / g without cancellation. */
static double kfun(double g, double t) {
    return -expm1(-g * t) / g;
}
static double phifun(double g, double t) {
    const double x = g * t;
    if (x > 0.5) return (t - kfun(g, t)) / g;
    /* t^2 sum_{k>=2} (-x)^(k-2) / k! */
    double term = 0.5, sum = 0;
    for (int k = 2; k < 30 && fabs(term) > 1e-18 * fabs(sum); k++) {
        sum += term;
        term *= -x / (k + 1);
    }
    return t * t * sum;
}
/* Var J(t) = (1/g^2)[t - 2(1-e)/g + (1-e^2)/(2g)], e = exp(-g t), without cancellation. */
static double varj(double g, double t) {
    const double x = g * t;
    if (x > 0.5) {
        const double e = exp(-x);
        return (x - 1.5 + 2 * e - 0.5 * e * e) / (g * g * g);
    }
    /* t^3 sum_{k>=3} (-1)^k (2 - 2^(k-1)) x^(k-3) / k! */
    double sum = 0, xk = 1, fact = 6, p2 = 4;
    for (int k = 3; k < 40; k++) {
        double term = ((k & 1) ? -1.0 : 1.0) * (2 - p2) * xk / fact;
        sum += term;
        if (fabs(term) < 1e-18 * fabs(sum)) break;
        xk *= x;
        fact *= k + 1;
        p2 *= 2;
    }
    return t * t * t * sum;
}

/* Heads of round r: advance each lane's position by a geometric gap; mask[c] = 1 when the
   lane has an r-th head (position < K). Returns whether a real lane has one. */
static int next_heads(const hb_step_ctx *ctx, const hb_batch *b, int K, int r, double *pos,
                      double *u, double *mask) {
    const double inv = 1.0 / log1p(-1.0 / K);
    hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, round_purpose(HB_RNG_AUX2, r), 1, u);
    int any = 0;
    for (int c = 0; c < L; c++) {
        if (pos[c] < K) pos[c] += 1 + floor(log(u[c]) * inv);
        mask[c] = pos[c] < K ? 1.0 : 0.0;
        any |= c < b->n_real && pos[c] < K;
    }
    return any;
}

/* Keep the endpoint (xp, gp, lpp) where finite and no midpoint failed; the stats. */
static void finish(const pmm *s, hb_batch *b, const double *xp, const double *gp, const double *lpp,
                   const int *bad, const int *heads, size_t d, int *take, hb_step_out *out) {
    for (int c = 0; c < L; c++) {
        take[c] = !bad[c] && isfinite(lpp[c]);
        out->stats[HB_BASIC_ACCEPT * L + c] = take[c];
        out->stats[HB_BASIC_STEP * L + c] = s->a;
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

static void step_overdamped(const hb_step_ctx *ctx, const pmm *s, hb_batch *b, double *ws,
                            hb_step_out *out) {
    const hb_basic *bs = &s->b;
    const size_t d = ctx->dim;
    const int K = (int)s->K;
    const double a = s->a, hs = a / K;
    double *W = ws, *C = W + d * L, *xp = C + d * L, *gp = xp + d * L, *xi = gp + d * L;
    double *lpp = xi + d * L, *sprev = lpp + L, *pos = sprev + L, *u = pos + L;
    double *mws = u + L;
    int heads[L] = {0}, bad[L] = {0}, take[L];
    for (int c = 0; c < L; c++) sprev[c] = pos[c] = 0;
    memset(W, 0, 2 * d * L * sizeof *W); /* W and C */
    for (int r = 1;; r++) {
        double sr[L], inc[L], mask[L];
        if (!next_heads(ctx, b, K, r, pos, u, mask)) break;
        for (int c = 0; c < L; c++) {
            sr[c] = mask[c] != 0 ? pos[c] * hs : sprev[c];
            inc[c] = sqrt(sr[c] - sprev[c]);
            sprev[c] = sr[c];
            heads[c] += mask[c] != 0;
        }
        hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, round_purpose(HB_RNG_AUX, r), d, xi);
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
    finish(s, b, xp, gp, lpp, bad, heads, d, take, out);
}

/* Coefficients of one Brownian piece of length t: I = p1 xi1, J = q1 xi1 + q2 xi2; and the
   concatenation factors e = exp(-g t), k = (1 - e)/g. */
typedef struct piece {
    double p1, q1, q2, e, k;
} piece;

static piece make_piece(double g, double t) {
    piece p = {0, 0, 0, 1, 0};
    if (!(t > 0)) return p;
    const double x = g * t;
    const double vi = -expm1(-2 * x) / (2 * g), kt = kfun(g, t), cij = 0.5 * kt * kt;
    const double vj = varj(g, t);
    p.p1 = sqrt(vi);
    p.q1 = cij / p.p1;
    p.q2 = sqrt(fmax(vj - p.q1 * p.q1, 0.0));
    p.e = exp(-x);
    p.k = kt;
    return p;
}

/* Append a piece to the path's (I, J): I <- e I + I2, J <- J + J2 + k I (old I). */
static void append_piece(const piece *pc, size_t d, double *I, double *J, const double *xi) {
    double p1[L], q1[L], q2[L], e[L], k[L];
    for (int c = 0; c < L; c++) {
        p1[c] = pc[c].p1;
        q1[c] = pc[c].q1;
        q2[c] = pc[c].q2;
        e[c] = pc[c].e;
        k[c] = pc[c].k;
    }
    for (size_t i = 0; i < d; i++) {
        double *I_i = I + i * L, *J_i = J + i * L;
        const double *x1 = xi + i * L, *x2 = xi + (d + i) * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            const double i2 = p1[c] * x1[c], j2 = q1[c] * x1[c] + q2[c] * x2[c];
            J_i[c] += j2 + k[c] * I_i[c];
            I_i[c] = e[c] * I_i[c] + i2;
        }
    }
}

static void step_underdamped(const hb_step_ctx *ctx, const pmm *s, hb_batch *b, double *ws,
                             hb_step_out *out) {
    const hb_basic *bs = &s->b;
    const size_t d = ctx->dim;
    const int K = (int)s->K;
    const double a = s->a, hs = a / K, gam = s->gamma, sg = sqrt(2 * gam);
    double *I = ws, *J = I + d * L, *CU = J + d * L, *CV = CU + d * L, *xp = CV + d * L;
    double *gp = xp + d * L, *xi = gp + d * L; /* xi: 2 d L */
    double *lpp = xi + 2 * d * L, *sprev = lpp + L, *pos = sprev + L, *u = pos + L;
    double *mws = u + L;
    double *V = b->state;
    int heads[L] = {0}, bad[L] = {0}, take[L];
    const double kh = kfun(gam, hs), phh = phifun(gam, hs);
    for (int c = 0; c < L; c++) sprev[c] = pos[c] = 0;
    memset(I, 0, 4 * d * L * sizeof *I); /* I, J, CU, CV */
    for (int r = 1;; r++) {
        double mask[L], km[L], phm[L], cu[L], cv[L];
        piece pc[L];
        if (!next_heads(ctx, b, K, r, pos, u, mask)) break;
        for (int c = 0; c < L; c++) {
            const double sr = mask[c] != 0 ? pos[c] * hs : sprev[c];
            pc[c] = make_piece(gam, sr - sprev[c]);
            sprev[c] = sr;
            heads[c] += mask[c] != 0;
            /* the midpoint's frozen-force coefficients at s_r (masked lanes: stay at U0) */
            km[c] = mask[c] * kfun(gam, sr);
            phm[c] = mask[c] * phifun(gam, sr);
            /* the head's correction K (c+ - c0) over its sub-step, propagated to a */
            const double rest = fmax(a - (pos[c] + 1) * hs, 0.0);
            cu[c] = mask[c] * K * (phh + kfun(gam, rest) * kh);
            cv[c] = mask[c] * K * exp(-gam * rest) * kh;
        }
        hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, round_purpose(HB_RNG_AUX, r), 2 * d,
                             xi);
        append_piece(pc, d, I, J, xi);
        for (size_t i = 0; i < d; i++) {
            const double smi = bs->sm[i];
            double *xp_i = xp + i * L;
            const double *x_i = b->x + i * L, *g_i = b->g + i * L, *V_i = V + i * L,
                         *J_i = J + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++)
                xp_i[c] =
                    x_i[c] + smi * (km[c] * V_i[c] + phm[c] * smi * g_i[c] + mask[c] * sg * J_i[c]);
        }
        hb_model_eval_lanes(ctx->model, xp, lpp, gp, mws);
        for (int c = 0; c < L; c++) bad[c] |= mask[c] != 0 && !isfinite(lpp[c]);
        for (size_t i = 0; i < d; i++) {
            const double smi = bs->sm[i];
            double *CU_i = CU + i * L, *CV_i = CV + i * L;
            const double *gp_i = gp + i * L, *g_i = b->g + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++) {
                const double dc = smi * (gp_i[c] - g_i[c]);
                CU_i[c] += cu[c] * dc;
                CV_i[c] += cv[c] * dc;
            }
        }
    }
    /* the endpoint: the last piece to a, the frozen-force move plus the corrections */
    piece pc[L];
    for (int c = 0; c < L; c++) pc[c] = make_piece(gam, a - sprev[c]);
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, 2 * d, xi);
    append_piece(pc, d, I, J, xi);
    const double e = exp(-gam * a), ka = kfun(gam, a), pha = phifun(gam, a);
    double *vn = xi; /* the new velocity (xi is spent) */
    for (size_t i = 0; i < d; i++) {
        const double smi = bs->sm[i];
        double *xp_i = xp + i * L, *vn_i = vn + i * L;
        const double *x_i = b->x + i * L, *g_i = b->g + i * L, *V_i = V + i * L, *I_i = I + i * L,
                     *J_i = J + i * L, *CU_i = CU + i * L, *CV_i = CV + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            const double c0 = smi * g_i[c];
            xp_i[c] = x_i[c] + smi * (ka * V_i[c] + pha * c0 + sg * J_i[c] + CU_i[c]);
            vn_i[c] = e * V_i[c] + ka * c0 + sg * I_i[c] + CV_i[c];
        }
    }
    hb_model_eval_lanes(ctx->model, xp, lpp, gp, mws);
    finish(s, b, xp, gp, lpp, bad, heads, d, take, out);
    for (size_t i = 0; i < d; i++) {
        double *V_i = V + i * L;
        const double *vn_i = vn + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) V_i[c] = take[c] ? vn_i[c] : V_i[c];
    }
}

static void pmm_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const pmm *s = ctx->self;
    if (ctx->warmup) /* the MALA gauge sets the step size */
        hb_langevin_step(ctx, &s->b, 1, b, ws, out);
    else if (s->under)
        step_underdamped(ctx, s, b, ws, out);
    else
        step_overdamped(ctx, s, b, ws, out);
}

static void pmm_adapt(void *self, long k, const double *red) {
    hb_basic_adapt(self, k, red);
    sync_step(self);
}

static int pmm_set_moments(void *self, const double *moments, hb_error *err) {
    int rc = hb_basic_set_moments(self, moments, err);
    sync_step(self);
    return rc;
}

static void pmm_end_warmup(void *self) {
    hb_basic_end_warmup(self);
    sync_step(self);
}

static double pmm_step_size(const void *self) {
    return ((const pmm *)self)->a;
}

static size_t pmm_report(const void *self, hb_adapt_item *items, size_t max) {
    const pmm *s = self;
    size_t n = hb_basic_report(&s->b, items, max);
    if (s->under && n < max)
        items[n++] = (hb_adapt_item){"mala_gauge_step_size", &s->b.h, 1, 1, NULL};
    return n;
}

static int pmm_restore(void *self, const void *blob, hb_error *err) {
    int rc = hb_basic_restore(self, blob, err);
    sync_step(self);
    return rc;
}

const hb_sampler_type hb_sampler_pmm = {
    .name = "pmm",
    .summary = "Poisson midpoint method, overdamped or underdamped ([pmm] variant): K Langevin "
               "sub-steps emulated at ~2 gradients per step; step size set in warmup by a MALA "
               "gauge",
    .create = pmm_create,
    .destroy = pmm_destroy,
    .state_doubles = pmm_state,
    .workspace_doubles = pmm_ws,
    .stats = hb_basic_stats,
    .n_stats = HB_BASIC_NSTATS,
    .n_red = 2,
    .init_batch = pmm_init_batch,
    .plan = hb_basic_plan,
    .step = pmm_step,
    .adapt = pmm_adapt,
    .set_moments = pmm_set_moments,
    .end_warmup = pmm_end_warmup,
    .step_size = pmm_step_size,
    .report = pmm_report,
    .checkpoint_bytes = hb_basic_checkpoint_bytes,
    .save = hb_basic_save,
    .restore = pmm_restore,
};
