/* ChEES-HMC (Hoffman, Radul & Sountsov 2021; ALGORITHMS.md §7.1): HMC with one step size and
 * one jittered number of leapfrog steps shared by all chains of an iteration, so the lanes of
 * a batch move in lock-step SIMD. Warmup adapts the trajectory length T by the normalised
 * (RMSProp-style, TFP constants) gradient of the ChEES criterion pooled over all chains of all
 * ranks, with iterate averaging of log T; the step size by dual averaging on the pooled
 * harmonic-mean acceptance (target 0.651, BlackJAX); the diagonal metric by Stan's windows
 * (hb_basic). L_t = max(1, ceil(u_t T / h)) with u_t the base-2 Halton sequence.
 *
 * The criterion's gradient G_t needs the cross-chain centres of the proposals of iteration t,
 * which are known only after the pooled reduction of t. Each chain therefore keeps its
 * iteration-t quantities (position before the move, proposal, velocity, acceptance) in its
 * state and contributes a_c G_c to the reduction of iteration t + 1, when both centres are
 * known: T is updated with G_t one iteration later (exactly TFP's G, with a one-iteration
 * delay; at the end of warmup the last G is not used). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "samplers/basic.h"

enum { L = HB_LANES };

/* Per-chain state rows: a_c of the last move, then q (before), q* (proposal), v* (velocity). */
enum { S_ACC, S_Q };

/* Reduction: this iteration's sum a and chains (their ratio is the progress line's
   acceptance), harmonic-mean sums (sum 1/a over non-divergent chains, their count), lagged
   sum a G and sum a, then sum q [d] and sum a q* [d]. */
enum { R_A, R_N, R_INV, R_NOK, R_AG, R_ALAG, R_Q };

typedef struct chees {
    hb_basic b; /* first member: step size, metric, windows */
    double T, log_tbar, s_rms;
    double max_leapfrog, rate;
    long t;          /* adaptation steps of T taken */
    double u_prev;   /* jitter of the previous iteration (for the lagged G) */
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
    double T0 = 1.0, maxl = 1000, rate = 0.025;
    if (rc == HB_OK &&
        (hb_cfg_double(cfg, "chees", "initial_trajectory", &T0, 1e-300, 1e300, &s->T, err) ||
         hb_cfg_double(cfg, "chees", "max_leapfrog", &maxl, 1, 1e6, &s->max_leapfrog, err) ||
         hb_cfg_double(cfg, "chees", "adaptation_rate", &rate, 1e-6, 10, &s->rate, err)))
        rc = err->code;
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
    return 1 + 3 * dim;
}

static size_t chees_ws(const void *self, size_t dim) {
    (void)self;
    return 4 * dim * L + 8 * L + 2 * dim;
}

static size_t chees_red(const void *self, size_t dim) {
    (void)self;
    return R_Q + 2 * dim;
}

static int64_t steps(const chees *s, const hb_step_ctx *ctx) {
    double n = ceil(halton(ctx->iter) * s->T / s->b.h);
    if (!(n >= 1)) return 1;
    return n > s->max_leapfrog ? (int64_t)s->max_leapfrog : (int64_t)n;
}

static void chees_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const chees *s = ctx->self;
    const hb_basic *bs = &s->b;
    const size_t d = ctx->dim;
    double *p = ws, *y = ws + d * L, *gy = ws + 2 * d * L, *xi = ws + 3 * d * L;
    double *lpy = xi + d * L, *u = lpy + L, *h0 = u + L, *h1 = h0 + L, *mws = h1 + L;
    double *st_acc = b->state + S_ACC * L;
    double *st_q = b->state + S_Q * L, *st_y = st_q + d * L, *st_v = st_y + d * L;
    const int64_t n = steps(s, ctx);
    const double eps = bs->h;

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
            double g = s->u_prev * (dy - dq) * yv;
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
            q_i[c] = x_i[c];
        }
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
        double *p_i = p + i * L, *v_i = st_v + i * L, *sy_i = st_y + i * L;
        const double *gy_i = gy + i * L, *y_i = y + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            p_i[c] += 0.5 * eps * gy_i[c];
            h1[c] += mi * p_i[c] * p_i[c];
            v_i[c] = mi * p_i[c];
            sy_i[c] = y_i[c];
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
        st_acc[c] = acc;
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
    s->u_prev = halton((uint64_t)k);
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

/* Blob: the hb_basic blob, then T, log_tbar, s_rms, t, u_prev, have_prev, acc_mean, xbar,
   xbar_p. */
static size_t chees_ckpt_bytes(const void *self) {
    const chees *s = self;
    return hb_basic_checkpoint_bytes(&s->b) + sizeof(double) * (7 + 2 * s->b.dim);
}

static void chees_save(const void *self, void *blob) {
    const chees *s = self;
    char *p = blob;
    hb_basic_save(&s->b, p);
    p += hb_basic_checkpoint_bytes(&s->b);
    double v[7] = {s->T, s->log_tbar, s->s_rms, (double)s->t, s->u_prev, s->have_prev, s->acc_mean};
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
    double v[7];
    memcpy(v, p, sizeof v);
    p += sizeof v;
    s->T = v[0];
    s->log_tbar = v[1];
    s->s_rms = v[2];
    s->t = (long)v[3];
    s->u_prev = v[4];
    s->have_prev = v[5] != 0;
    s->acc_mean = v[6];
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
