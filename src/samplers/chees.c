/* ChEES-HMC (Hoffman, Radul & Sountsov 2021; ALGORITHMS.md §7.1): HMC with one step size and
 * one jittered number of leapfrog steps shared by all chains of an iteration, so the lanes of
 * a batch move in lock-step SIMD. Warmup adapts the trajectory length T by the normalised
 * (RMSProp-style, TFP constants) gradient of the ChEES criterion pooled over all chains of all
 * ranks, with iterate averaging of log T; the step size by dual averaging on the pooled
 * harmonic-mean acceptance (target 0.651, BlackJAX); the diagonal metric by Stan's windows
 * (hb_basic). L_t = max(1, ceil(u_t T / h)), u_t the base-2 Halton sequence (10 bits, TFP) or,
 * with [chees] jitter = uniform, a uniform keyed by the iteration alone.
 *
 * The pooled gradient. With centres x = (1/C) sum_c q_c and x* = sum_c a_c q*_c / sum_c a_c,
 *   G = sum_c a_c u (|q*_c - x*|^2 - |q_c - x|^2) ((q*_c - x*) . v*_c) / sum_c a_c.
 * Expanding the product in powers of the centres leaves terms such as
 * x*' (sum_c a_c q*_c v*_c') x*, so a one-pass reduction would need the d x d moment matrices
 * sum a q* v*' and sum a q* q*' (and third-order sums): O(d^2) doubles per iteration and an
 * ill-conditioned difference of large sums. We take the two-pass route instead, with the two
 * passes one iteration apart: the reduction of iteration t gives the centres (sum_c q_c,
 * sum_c a_c q*_c, sum_c a_c: O(d)); each chain keeps its iteration-t move (q, q*, v*, a_c, u_t)
 * in its per-chain state and contributes a_c G_c, now with the exact centres, to the reduction
 * of iteration t + 1 (sums of a_c G_c and a_c). T is thus updated with TFP's exact G_t one
 * iteration late; the last warmup iteration's G is not used. All sums go through the run
 * loop's fixed-order tree reduction, so T is the same for any ranks x threads, and the state
 * is checkpointed with the chains. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "samplers/basic.h"

enum { L = HB_LANES };

/* Per-chain state rows: a_c and the jitter u_t of the last warmup move, then q (before), q*
   (proposal), v* (velocity). */
enum { S_ACC, S_U, S_Q };

/* Reduction: this iteration's sum a and chains (their ratio is the progress line's
   acceptance), harmonic-mean sums (sum 1/a over non-divergent chains, their count), lagged
   sum a G and sum a, then sum q [d] and sum a q* [d]. */
enum { R_A, R_N, R_INV, R_NOK, R_AG, R_ALAG, R_Q };

typedef struct chees {
    hb_basic b; /* first member: step size, metric, windows */
    double T, log_tbar, s_rms;
    double max_leapfrog, rate;
    int uniform;     /* jitter = uniform (else the Halton sequence) */
    long t;          /* adaptation steps of T taken */
    int have_prev;   /* centres of the previous iteration are set */
    double *xbar;    /* centre of the previous iteration's positions before the move [d] */
    double *xbar_p;  /* acceptance-weighted centre of its proposals [d] */
    double acc_mean; /* harmonic mean acceptance (progress) */
} chees;

static double halton(uint64_t t) {
    double u = 0;
    for (int b = 0; b < 10; b++)
        if (((t + 1) >> b) & 1) u += ldexp(1.0, -(b + 1));
    return u;
}

static void chees_destroy(void *self) {
    chees *s = self;
    if (!s) return;
    hb_basic_destroy(&s->b);
    free(s->xbar);
    free(s->xbar_p);
    free(s);
}

static int chees_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                        hb_error *err) {
    chees *s = calloc(1, sizeof *s);
    if (!s) abort();
    int rc = hb_basic_create(&s->b, cfg, "chees", 0.651, 0.1, model->dim, warmup, err);
    static const char *const jitters[] = {"halton", "uniform", NULL};
    double T0 = 1.0, maxl = 1000, rate = 0.025;
    if (rc == HB_OK &&
        (hb_cfg_double(cfg, "chees", "initial_trajectory", &T0, 1e-300, 1e300, &s->T, err) ||
         hb_cfg_double(cfg, "chees", "max_leapfrog", &maxl, 1, 1e6, &s->max_leapfrog, err) ||
         hb_cfg_double(cfg, "chees", "adaptation_rate", &rate, 1e-6, 10, &s->rate, err) ||
         hb_cfg_choice(cfg, "chees", "jitter", "halton", jitters, &s->uniform, err)))
        rc = err->code;
    s->max_leapfrog = floor(s->max_leapfrog);
    if (rc) {
        chees_destroy(s);
        return rc;
    }
    s->log_tbar = log(s->T);
    s->xbar = calloc(model->dim ? model->dim : 1, sizeof *s->xbar);
    s->xbar_p = calloc(model->dim ? model->dim : 1, sizeof *s->xbar_p);
    if (!s->xbar || !s->xbar_p) abort();
    *self = s;
    return HB_OK;
}

static size_t chees_state(const void *self, size_t dim) {
    (void)self;
    return 2 + 3 * dim;
}

static size_t chees_ws(const void *self, size_t dim) {
    (void)self;
    return 4 * dim * L + 8 * L + 2 * dim;
}

static size_t chees_red(const void *self, size_t dim) {
    (void)self;
    return R_Q + 2 * dim;
}

/* The jitter u_t of iteration t, the same for every chain: the Halton sequence, or a uniform
   from a stream keyed by the iteration alone (chain 0's AUX2 purpose, unused otherwise). */
static double jitter(const chees *s, const hb_step_ctx *ctx) {
    if (!s->uniform) return halton(ctx->iter);
    double u;
    hb_rng_uniforms(ctx->seed, 0, ctx->iter, HB_RNG_AUX2, 1, &u);
    return u;
}

static int64_t steps(const chees *s, double u) {
    double n = ceil(u * s->T / s->b.h);
    if (!(n >= 1)) return 1;
    return n > s->max_leapfrog ? (int64_t)s->max_leapfrog : (int64_t)n;
}

static void chees_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const chees *s = ctx->self;
    const hb_basic *bs = &s->b;
    const size_t d = ctx->dim;
    double *p = ws, *y = ws + d * L, *gy = ws + 2 * d * L, *xi = ws + 3 * d * L;
    double *lpy = xi + d * L, *u = lpy + L, *h0 = u + L, *h1 = h0 + L, *mws = h1 + L;
    double *st_acc = b->state + S_ACC * L, *st_u = b->state + S_U * L;
    double *st_q = b->state + S_Q * L, *st_y = st_q + d * L, *st_v = st_y + d * L;
    const double ut = jitter(s, ctx);
    const int64_t n = steps(s, ut);
    const double eps = bs->h;
    const int keep = ctx->warmup; /* the move's q, q*, v* for the criterion (warmup only) */

    /* the previous iteration's criterion gradient, now that its centres are known */
    double ag = 0, alag = 0;
    if (ctx->warmup && s->have_prev)
        for (int c = 0; c < b->n_real; c++) {
            double a = st_acc[c], dq = 0, dy = 0, yv = 0;
            for (size_t i = 0; i < d; i++) {
                double e = st_q[i * L + c] - s->xbar[i], f = st_y[i * L + c] - s->xbar_p[i];
                dq += e * e;
                dy += f * f;
                yv += f * st_v[i * L + c];
            }
            double g = st_u[c] * (dy - dq) * yv;
            if (!(a > 1e-4) || !isfinite(g)) g = 0;
            ag += a * g;
            alag += a;
        }

    /* HMC move: p = xi / sqrt(m), n leapfrog steps of size eps in lock-step */
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, xi);
    for (int c = 0; c < L; c++) h0[c] = 0;
    for (size_t i = 0; i < d; i++) {
        const double r = 1.0 / bs->sm[i], mi = bs->m[i];
        double *p_i = p + i * L, *y_i = y + i * L, *gy_i = gy + i * L, *q_i = st_q + i * L;
        const double *xi_i = xi + i * L, *x_i = b->x + i * L, *g_i = b->g + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            p_i[c] = xi_i[c] * r;
            h0[c] += mi * p_i[c] * p_i[c];
            y_i[c] = x_i[c];
            gy_i[c] = g_i[c];
        }
        if (keep) memcpy(q_i, x_i, L * sizeof *q_i);
    }
    for (int c = 0; c < L; c++) h0[c] = -b->lp[c] + 0.5 * h0[c];
    for (int64_t l = 0; l < n; l++) {
        const double kick = l == 0 ? 0.5 * eps : eps;
        for (size_t i = 0; i < d; i++) {
            const double em = eps * bs->m[i];
            double *p_i = p + i * L, *y_i = y + i * L;
            const double *gy_i = gy + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++) {
                p_i[c] += kick * gy_i[c];
                y_i[c] += em * p_i[c];
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
            p_i[c] += 0.5 * eps * gy_i[c];
            h1[c] += mi * p_i[c] * p_i[c];
        }
        if (keep) {
            double *v_i = st_v + i * L;
#pragma omp simd
            for (int c = 0; c < L; c++) v_i[c] = mi * p_i[c];
            memcpy(st_y + i * L, y + i * L, L * sizeof *st_y);
        }
    }
    hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_ACCEPT, 1, u);
    int take[L];
    double inv = 0, nok = 0, asum = 0;
    for (int c = 0; c < L; c++) {
        double delta = h0[c] - (-lpy[c] + 0.5 * h1[c]);
        if (!isfinite(lpy[c]) || isnan(delta)) delta = -INFINITY;
        double acc = delta >= 0 ? 1.0 : exp(delta);
        int div = -delta > 1000.0;
        take[c] = u[c] < acc;
        if (keep) {
            st_acc[c] = acc;
            st_u[c] = ut;
        }
        out->stats[HB_BASIC_ACCEPT * L + c] = acc;
        out->stats[HB_BASIC_STEP * L + c] = eps;
        out->stats[HB_BASIC_DIVERGING * L + c] = div;
        out->n_grad[c] = n;
        if (c < b->n_real) {
            asum += acc;
            if (!div && acc > 0) {
                inv += 1.0 / acc;
                nok += 1;
            }
        }
    }
    /* the proposals' contributions to the centres (non-finite proposals count as 0) */
    if (out->red) {
        double *r = out->red;
        memset(r, 0, chees_red(s, d) * sizeof *r);
        for (size_t i = 0; i < d; i++)
            for (int c = 0; c < b->n_real; c++) {
                double yc = st_y[i * L + c];
                r[R_Q + i] += st_q[i * L + c];
                r[R_Q + d + i] += isfinite(yc) ? st_acc[c] * yc : 0.0;
            }
        r[R_INV] = inv;
        r[R_NOK] = nok;
        r[R_N] = b->n_real;
        r[R_AG] = ag;
        r[R_ALAG] = alag;
        r[R_A] = asum;
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
}

static void chees_plan(void *self, long k, hb_iter_plan *plan) {
    chees *s = self;
    hb_basic_plan(&s->b, k, plan);
    plan->reduce_stats = 1; /* T adapts even with a fixed step size */
}

static void chees_adapt(void *self, long k, const double *red) {
    chees *s = self;
    const size_t d = s->b.dim;
    if (red[R_NOK] > 0) s->acc_mean = red[R_NOK] / red[R_INV];
    if (!s->b.h_fixed && red[R_N] > 0)
        s->b.h = hb_dual_avg_update(&s->b.da, red[R_NOK] > 0 ? s->acc_mean : 0.0);
    /* T from the previous iteration's pooled gradient (TFP's normalised step on log T) */
    if (s->have_prev && red[R_ALAG] > 0) {
        double G = red[R_AG] / (red[R_ALAG] + 1e-20);
        s->s_rms = 0.95 * s->s_rms + 0.05 * G * G;
        double shat = s->s_rms / (1.0 - pow(0.95, (double)(s->t + 1)));
        double lambda = s->rate / sqrt(shat + 1e-20);
        double step = lambda * G;
        step = step > 0.35 ? 0.35 : step < -0.35 ? -0.35 : step;
        double logT = log(s->T) + step;
        double w = 1.0 / sqrt((double)(s->t + 1));
        s->log_tbar = w * logT + (1 - w) * log(exp(s->log_tbar) + 1e-10);
        s->T = exp(logT);
        s->t++;
    }
    double tmax = s->b.h * s->max_leapfrog;
    if (s->T > tmax) s->T = tmax;
    if (s->T < s->b.h) s->T = s->b.h;
    /* this iteration's centres, for its gradient next iteration */
    if (red[R_N] > 0)
        for (size_t i = 0; i < d; i++) {
            s->xbar[i] = red[R_Q + i] / red[R_N];
            s->xbar_p[i] = red[R_Q + d + i] / (red[R_A] + 1e-20);
        }
    (void)k;
    s->have_prev = 1;
}

static void chees_end_warmup(void *self) {
    chees *s = self;
    hb_basic_end_warmup(&s->b);
    if (s->t > 0) s->T = exp(s->log_tbar);
    double tmax = s->b.h * s->max_leapfrog;
    if (s->T > tmax) s->T = tmax;
    if (s->T < s->b.h) s->T = s->b.h;
}

static size_t chees_report(const void *self, hb_adapt_item *items, size_t max) {
    const chees *s = self;
    size_t n = hb_basic_report(&s->b, items, max);
    if (n < max) items[n++] = (hb_adapt_item){"trajectory_length", &s->T, 1, 1, NULL};
    return n;
}

/* Blob: the hb_basic blob, then T, log_tbar, s_rms, t, have_prev, acc_mean, xbar, xbar_p. */
static size_t chees_ckpt_bytes(const void *self) {
    const chees *s = self;
    return hb_basic_checkpoint_bytes(&s->b) + sizeof(double) * (6 + 2 * s->b.dim);
}

static void chees_save(const void *self, void *blob) {
    const chees *s = self;
    char *p = blob;
    hb_basic_save(&s->b, p);
    p += hb_basic_checkpoint_bytes(&s->b);
    double v[6] = {s->T, s->log_tbar, s->s_rms, (double)s->t, s->have_prev, s->acc_mean};
    memcpy(p, v, sizeof v);
    p += sizeof v;
    memcpy(p, s->xbar, s->b.dim * sizeof(double));
    memcpy(p + s->b.dim * sizeof(double), s->xbar_p, s->b.dim * sizeof(double));
}

static int chees_restore(void *self, const void *blob, hb_error *err) {
    chees *s = self;
    const char *p = blob;
    if (hb_basic_restore(&s->b, p, err)) return err->code;
    p += hb_basic_checkpoint_bytes(&s->b);
    double v[6];
    memcpy(v, p, sizeof v);
    p += sizeof v;
    s->T = v[0];
    s->log_tbar = v[1];
    s->s_rms = v[2];
    s->t = (long)v[3];
    s->have_prev = v[4] != 0;
    s->acc_mean = v[5];
    memcpy(s->xbar, p, s->b.dim * sizeof(double));
    memcpy(s->xbar_p, p + s->b.dim * sizeof(double), s->b.dim * sizeof(double));
    return HB_OK;
}

const hb_sampler_type hb_sampler_chees = {
    .name = "chees",
    .summary = "ChEES-HMC: lock-step HMC, jittered trajectory length adapted by the pooled ChEES "
               "criterion, step size by the pooled harmonic-mean acceptance",
    .create = chees_create,
    .destroy = chees_destroy,
    .state_doubles = chees_state,
    .workspace_doubles = chees_ws,
    .stats = hb_basic_stats,
    .n_stats = HB_BASIC_NSTATS,
    .n_red = R_Q,
    .red_doubles = chees_red,
    .plan = chees_plan,
    .step = chees_step,
    .adapt = chees_adapt,
    .set_moments = hb_basic_set_moments,
    .end_warmup = chees_end_warmup,
    .step_size = hb_basic_step_size,
    .report = chees_report,
    .checkpoint_bytes = chees_ckpt_bytes,
    .save = chees_save,
    .restore = chees_restore,
};
