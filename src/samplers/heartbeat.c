/* The Heartbeat sampler (HEARTBEAT.md v1.1): a three-stage warmup pooled over all chains
 * (Adam-drift exploration, pooled preconditioner, dual-averaged step_max / step_min), then
 * beats of subchain_length Langevin steps whose step size falls along a schedule; only the
 * beat's last state is kept. All per-chain work is lane-wise over the 8 chains of a batch.
 * [heartbeat] init = lbfgs replaces the exploration stage by L-BFGS per chain (lbfgs.c), a
 * Laplace metric from the Hessian at the best chain's optimum and importance-resampled
 * Laplace draws (README, "init = lbfgs"). */
#include "samplers/heartbeat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/adapt.h"
#include "adapt/dense.h"
#include "core/rng.h"
#include "core/vmath.h"
#include "samplers/lbfgs.h"
#include "samplers/sampler.h"

enum { L = HB_LANES };

/* Choices, in the order of their config words. */
enum { ADJ_MALA, ADJ_HYBRID, ADJ_NONE };
enum { MET_DIAG, MET_IDENTITY, MET_AUTO, MET_DENSE };
/* STAGE_OPT (init = lbfgs, warmup iteration 0): L-BFGS per chain; STAGE_LAP (iteration 1):
   each chain moves from its optimum by a draw of the Laplace approximation. */
enum { STAGE_A, STAGE_B, STAGE_C, STAGE_DONE, STAGE_OPT, STAGE_LAP };
enum { INIT_ADAM, INIT_LBFGS };
static const char *const init_words[] = {"adam", "lbfgs", NULL};
static const char *const schedule_words[] = {"quadratic", "cosine", "linear", "constant", NULL};
static const char *const adjust_words[] = {"mala", "hybrid", "none", NULL};
static const char *const metric_words[] = {"diag", "identity", "auto", "dense", NULL};

/* Per-draw statistics (n_steps is added by the run loop). */
enum { ST_LP, ST_STEP, ST_ACC, ST_ACC_LARGE, ST_DIV, N_STATS };
static const hb_stat_spec heartbeat_stats[N_STATS] = {
    {"lp", HB_STAT_F64},
    {"step_size", HB_STAT_F64},
    {"acceptance_rate", HB_STAT_F64},
    {"acceptance_rate_large", HB_STAT_F64},
    {"diverging", HB_STAT_BOOL},
};

/* Pooled reduction per block: acceptance sum (stage A: moves taken), real chains, the
   histogram of lp, the sum of lp, then the sum of Adam's P per coordinate (stage A). */
enum { RED_ACC = 0, RED_N = 1, RED_HIST = 2 };
enum { RED_LPSUM = RED_HIST + HB_LP_HIST_BINS, RED_PSUM = RED_LPSUM + 1 };
/* warmup = auto appends, at RED_PSUM + dim: the number of superchains (full batches) checked,
   then per quantity q (coordinates, then lp) the superchain mean, its square, B~_k + W~_k
   and B~_k (ALGORITHMS.md 10.3). init = lbfgs appends, at red_best: two sums over chains (the
   L-BFGS batch evaluations, or in the Laplace iteration the restarted chains; the Laplace
   candidates' importance ESS), then the argmax section [lp, global chain index, x [d]] of the
   chain with the highest lp (hb_combine_red: ties go to the lowest index). */
enum { BEST_EVALS = 0, BEST_ESS = 1, BEST_LP = 2, BEST_CHAIN = 3, BEST_X = 4 };

static const double ADAM_EPS = 1e-8;
static const double MALA_TARGET = 0.574; /* stage B */
static const double DIVERGENCE = 1000.0; /* log-density drop that counts as a divergence */
static const long STALL = 20;            /* stage A ends when the median stalls this long */
/* warmup = auto (README, "warmup = auto"): stage C is checked at the end of every window of
   AUTO_WINDOW iterations; it stops when the dual-averaged log step_min and log step_max each
   moved less than AUTO_STEP_TOL over the last window and the nested R-hat of lp and of every
   coordinate over the window (superchains = SIMD batches started from one point) is below
   AUTO_RHAT. Stage B lasts AUTO_B_FACTOR times stage A, at least AUTO_B_MIN. */
enum { AUTO_WINDOW = 20 };
static const double AUTO_RHAT = 1.01, AUTO_STEP_TOL = 0.02;
static const long AUTO_B_FACTOR = 3, AUTO_B_MIN = 30;
/* init = lbfgs with fewer than 10 chains per dimension: metric = auto is decided from the
   Laplace covariance up to this dimension (laplace_metric: dense when a variance inflation
   factor is at least LBFGS_DENSE_VIF), above it diag */
enum { LBFGS_DENSE_D = 200 };
static const double LBFGS_DENSE_VIF = 10.0;
/* init = lbfgs: a chain whose optimum is more than LBFGS_MODE_GAP + d below the best chain's
   has climbed a mode whose mass is negligible unless its volume were e^gap times larger (a
   local mode or a degenerate corner of a mixture): it restarts from the best optimum, as
   Pathfinder's importance resampling drops poor paths. LBFGS_SIR: Laplace candidates per
   chain (lap_step). */
static const double LBFGS_MODE_GAP = 100.0;
enum { LBFGS_SIR = 8 };

/* Everything warmup changes: plain data, saved as is in checkpoints. */
typedef struct hb_adapt_state {
    int stage;
    int dense_active;    /* the preconditioner is the dense covariance */
    double fallback;     /* 1: a dense estimate failed its Cholesky, diag used instead */
    long b_start;        /* first stage-B iteration */
    long est[2], window; /* iterations of the two metric estimates, positions pooled */
    double a_iters;      /* stage-A iterations run (reported) */
    double h, h_b;       /* stage-B step size (current, final) */
    double step_min, step_max;
    hb_dual_avg da_b, da_min, da_max;
    int med_init;
    long med_best_k;
    double med_center, med_best;
    long c_start; /* first stage-C iteration (warmup = auto sets it at the end of A) */
    int done;     /* warmup = auto: the rule has stopped warmup */
    long used;    /* warmup iterations used (set when warmup ends) */
    long n_win;   /* warmup = auto: stage-C windows checked */
    double prev_lmax, prev_lmin; /* log of the averaged step sizes at the last check */
    double rhat, dstep;          /* last check: max nested R-hat, max change of log step */
    /* init = lbfgs */
    int lap_ok; /* the Laplace metric is in use (else stage A's fallback) */
    double best_lp, best_chain;
    double lbfgs_fallback; /* 0 Laplace metric, 1 its diagonal (Cholesky failed), 2 stage A */
    double fd_evals;       /* gradient evaluations of the finite-difference Hessian */
    double lbfgs_evals;    /* mean L-BFGS gradient evaluations per chain */
    int metric_auto;       /* metric = auto decided after the optimisation: 1 + MET_... */
    double moved;          /* chains restarted from the best optimum (lap_step) */
    double lap_ess;        /* mean over chains of the importance ESS of their LBFGS_SIR
                              Laplace candidates, (sum w)^2 / sum w^2 in [1, LBFGS_SIR]: near
                              LBFGS_SIR where the Laplace approximation fits (lap_step) */
} hb_adapt_state;

typedef struct hb_heartbeat {
    size_t dim;
    long warmup;
    int64_t chains;
    int n_sub, schedule, adjust, metric; /* metric resolved: MET_DIAG, MET_IDENTITY, MET_DENSE */
    int min_fixed, max_fixed;
    double cfg_min, cfg_max, target_min, target_max, rate0, beta1, beta2;
    long n_a, c_start;     /* longest stage A; first stage-C iteration (latest, with auto) */
    int autow;             /* [run] warmup = auto (warmup is then the cap W_max) */
    double n_sub_d;        /* subchain_length, for the report */
    double used_d;         /* warmup iterations used, for the report */
    double *m, *sm;        /* diagonal of the metric and its square root */
    double *S, *Lc;        /* dense covariance and its lower Cholesky factor (dense only) */
    double *tmp;           /* [dim] scratch of set_moments */
    int init;              /* INIT_ADAM or INIT_LBFGS */
    long lbfgs_iters;      /* L-BFGS iterations per chain at most */
    const hb_model *model; /* init = lbfgs: the Hessian is computed in adapt */
    double *H, *lap;       /* init = lbfgs: Laplace covariance (d x d) and its Cholesky factor */
    double *fdws;          /* init = lbfgs: workspace of the finite-difference Hessian */
    double *xbest;         /* init = lbfgs: the best chain\'s optimum */
    hb_adapt_state a;
} hb_heartbeat;

/* ---- schedules, purposes, histogram ---- */

double hb_beat_schedule_value(hb_beat_schedule s, double t) {
    switch (s) {
    case HB_SCHEDULE_QUADRATIC:
        return (1 - t) * (1 - t);
    case HB_SCHEDULE_COSINE:
        return 0.5 * (1 + cos(3.14159265358979323846 * t));
    case HB_SCHEDULE_LINEAR:
        return 1 - t;
    case HB_SCHEDULE_CONSTANT:
    default:
        return 0;
    }
}

double hb_beat_step_size(hb_beat_schedule s, double step_min, double step_max, int k, int n) {
    if (k >= n - 1) return step_min;
    double t = (double)k / (double)(n - 1);
    return step_min + (step_max - step_min) * hb_beat_schedule_value(s, t);
}

uint32_t hb_beat_purpose(int k, uint32_t base) {
    return base + 256u * (uint32_t)(k + 1);
}

int hb_lp_hist_bin(double lp, double center, double scale) {
    double t = (lp - center) / scale;
    if (t != t) return 0;
    double a = fabs(t), edge = 1; /* edge = 2^j */
    int j = 0;
    while (j < HB_LP_HIST_K && a >= 2 * edge - 1) {
        edge *= 2;
        j++;
    }
    return t >= 0 ? HB_LP_HIST_K + 1 + j : HB_LP_HIST_K - j;
}

double hb_lp_hist_median(const double *counts, double center, double scale) {
    const double top = ldexp(1, HB_LP_HIST_K) - 1;
    double n = 0, cum = 0;
    for (int i = 0; i < HB_LP_HIST_BINS; i++) n += counts[i];
    double half = 0.5 * n;
    for (int i = 0; i < HB_LP_HIST_BINS; i++) {
        double c = counts[i];
        if (c <= 0 || cum + c < half) {
            cum += c;
            continue;
        }
        double lo, hi;
        if (i == 0) return center - scale * top;
        if (i == HB_LP_HIST_BINS - 1) return center + scale * top;
        if (i <= HB_LP_HIST_K) {
            int j = HB_LP_HIST_K - i;
            lo = -(ldexp(1, j + 1) - 1);
            hi = -(ldexp(1, j) - 1);
        } else {
            int j = i - HB_LP_HIST_K - 1;
            lo = ldexp(1, j) - 1;
            hi = ldexp(1, j + 1) - 1;
        }
        return center + scale * (lo + (half - cum) / c * (hi - lo));
    }
    return center;
}

int hb_heartbeat_stage(const void *self) {
    return ((const hb_heartbeat *)self)->a.stage;
}

/* ---- preconditioner products over lanes: the metric is M = F F^T, F = diag(sqrt m) or the
   Cholesky factor of the dense covariance ---- */

/* out = F v */
static void factor_apply(const hb_heartbeat *s, const double *v, double *out) {
    const size_t d = s->dim;
    if (!s->a.dense_active) {
        for (size_t i = 0; i < d; i++) {
            const double f = s->sm[i];
#pragma omp simd
            for (int c = 0; c < L; c++) out[i * L + c] = f * v[i * L + c];
        }
        return;
    }
    hb_lanes_lower_mul(s->Lc, d, v, out);
}

/* out = F^T g */
static void factor_apply_t(const hb_heartbeat *s, const double *g, double *out) {
    const size_t d = s->dim;
    if (!s->a.dense_active) {
        for (size_t i = 0; i < d; i++) {
            const double f = s->sm[i];
#pragma omp simd
            for (int c = 0; c < L; c++) out[i * L + c] = f * g[i * L + c];
        }
        return;
    }
    hb_lanes_lower_mul_t(s->Lc, d, g, out);
}

static void sq_norm(size_t d, const double *w, double *out) {
    for (int c = 0; c < L; c++) out[c] = 0;
    for (size_t i = 0; i < d; i++)
#pragma omp simd
        for (int c = 0; c < L; c++) out[c] += w[i * L + c] * w[i * L + c];
}

/* ---- kernels ---- */

/* Workspace of one Langevin step: xi, v, y, gy, wy (d x L each), then the model's scratch. */
static size_t step_ws(size_t d) {
    return 5 * d * L + 2 * d + 8;
}

/* One preconditioned Langevin step at step size h for the lanes of b:
   y = x + F (h w + sqrt(2h) xi) with w = F^T g(x) (so the drift is h M g), then
   adjusted: Metropolis with log q(x|y) - log q(y|x) = -(y-x).(g(x)+g(y))/2
   - (h/4)(|F^T g(y)|^2 - |F^T g(x)|^2) (ALGORITHMS.md §2.1, stable form, valid for any
   symmetric M); unadjusted: move to every proposal that is not a divergence. wx and wx2
   (F^T g and its squared norm at x) are kept up to date. acc gets the MALA acceptance
   probability (applied or not; an unadjusted step with gauge = 0, whose acc nobody reads,
   skips it and leaves acc unset), div the divergence flags. */
static void langevin_lanes(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b, double h,
                           int adjusted, int gauge, uint32_t p_noise, uint32_t p_accept, double *wx,
                           double *wx2, double *ws, double *acc, int *div) {
    const size_t d = s->dim, n = d * L;
    double *xi = ws, *v = xi + n, *y = v + n, *gy = y + n, *wy = gy + n, *mws = wy + n;
    double lpy[L], wy2[L], dot[L], delta[L], la[L], logu[L];
    const double sq = sqrt(2.0 * h);
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, p_noise, d, xi);
#pragma omp simd
    for (size_t k = 0; k < n; k++) v[k] = h * wx[k] + sq * xi[k];
    factor_apply(s, v, y);
#pragma omp simd
    for (size_t k = 0; k < n; k++) y[k] += b->x[k];
    hb_model_eval_lanes(ctx->model, y, lpy, gy, mws);
    factor_apply_t(s, gy, wy);
    sq_norm(d, wy, wy2);
    gauge |= adjusted;
    for (int c = 0; c < L; c++) dot[c] = 0;
    for (size_t i = 0; gauge && i < d; i++) {
        const double *x_i = b->x + i * L, *g_i = b->g + i * L, *y_i = y + i * L, *gy_i = gy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) dot[c] += (y_i[c] - x_i[c]) * (g_i[c] + gy_i[c]);
    }
    for (int c = 0; c < L; c++) {
        double dl = lpy[c] - b->lp[c] - 0.5 * dot[c] - 0.25 * h * (wy2[c] - wx2[c]);
        if (!isfinite(lpy[c]) || !isfinite(dl)) dl = -INFINITY;
        delta[c] = dl;
        la[c] = dl < 0 ? dl : 0;
        div[c] = !isfinite(lpy[c]) || b->lp[c] - lpy[c] > DIVERGENCE;
    }
    if (gauge) hb_vexp(acc, la);
    int take[L];
    if (adjusted) {
        hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, p_accept, 1, logu);
        hb_vlog(logu, logu);
        for (int c = 0; c < L; c++) take[c] = !div[c] && logu[c] < delta[c];
    } else {
        for (int c = 0; c < L; c++) take[c] = !div[c];
    }
    for (size_t i = 0; i < d; i++) {
        double *x_i = b->x + i * L, *g_i = b->g + i * L, *w_i = wx + i * L;
        const double *y_i = y + i * L, *gy_i = gy + i * L, *wy_i = wy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            x_i[c] = take[c] ? y_i[c] : x_i[c];
            g_i[c] = take[c] ? gy_i[c] : g_i[c];
            w_i[c] = take[c] ? wy_i[c] : w_i[c];
        }
    }
    for (int c = 0; c < L; c++)
        if (take[c]) {
            b->lp[c] = lpy[c];
            wx2[c] = wy2[c];
        }
}

/* Stage A: Adam-drift Langevin with the per-chain "bold driver" rate (HEARTBEAT.md). State
   per chain: Adam's m [d], v [d], then eta. */
static void stage_a_step(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b, double *ws,
                         hb_step_out *out) {
    const size_t d = s->dim, n = d * L;
    double *xi = ws, *y = xi + n, *gy = y + n, *mws = gy + n;
    double *mom = b->state, *vel = b->state + n, *eta = b->state + 2 * n;
    double lpy[L], P[L];
    const double kk = (double)ctx->iter + 1, b1 = s->beta1, b2 = s->beta2;
    const double c1 = 1.0 / (1.0 - pow(b1, kk)), c2 = 1.0 / (1.0 - pow(b2, kk));
    double *psum = out->red ? out->red + RED_PSUM : NULL;
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, xi);
    for (size_t i = 0; i < d; i++) {
        double *m_i = mom + i * L, *v_i = vel + i * L;
        const double *g_i = b->g + i * L, *x_i = b->x + i * L, *xi_i = xi + i * L;
        double *y_i = y + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            const double g = g_i[c];
            m_i[c] = b1 * m_i[c] + (1 - b1) * g;
            v_i[c] = b2 * v_i[c] + (1 - b2) * g * g;
            P[c] = 1.0 / (sqrt(v_i[c] * c2) + ADAM_EPS);
            y_i[c] = x_i[c] + eta[c] * P[c] * m_i[c] * c1 + sqrt(2.0 * eta[c] * P[c]) * xi_i[c];
        }
        if (psum) {
            double sum = 0;
            for (int c = 0; c < b->n_real; c++) sum += P[c];
            psum[i] = sum;
        }
    }
    hb_model_eval_lanes(ctx->model, y, lpy, gy, mws);
    const double tol = sqrt((double)d);
    int take[L];
    double taken = 0;
    for (int c = 0; c < L; c++) {
        take[c] = isfinite(lpy[c]) && lpy[c] > b->lp[c] - tol;
        eta[c] = take[c] ? fmin(1.25 * eta[c], 1e100) : fmax(0.5 * eta[c], 1e-300);
        out->stats[ST_DIV * L + c] = !isfinite(lpy[c]);
        out->stats[ST_ACC * L + c] = out->stats[ST_ACC_LARGE * L + c] = take[c];
        out->stats[ST_STEP * L + c] = eta[c];
        out->n_grad[c] = 1;
        if (c < b->n_real) taken += take[c];
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
        out->stats[ST_LP * L + c] = b->lp[c];
    }
    if (out->red) {
        double *r = out->red;
        r[RED_ACC] = taken;
        r[RED_N] = b->n_real;
        const double scale = 0.25 * sqrt((double)d);
        double lpsum = 0;
        for (int c = 0; c < b->n_real; c++) {
            r[RED_HIST + hb_lp_hist_bin(b->lp[c], s->a.med_center, scale)] += 1;
            lpsum += b->lp[c];
        }
        r[RED_LPSUM] = lpsum;
    }
}

/* Doubles of the reduction per block. */
static size_t red_best(const hb_heartbeat *s) {
    return RED_PSUM + s->dim + (s->autow ? 1 + 4 * (s->dim + 1) : 0);
}

static size_t red_count(const hb_heartbeat *s) {
    return red_best(s) + (s->init == INIT_LBFGS ? BEST_X + s->dim : 0);
}

/* The reduction's combine: sums, except the argmax section of init = lbfgs (the chain with
   the highest lp, ties to the lowest global chain index: the same result whatever the
   order in which blocks meet). */
static void hb_combine_red(double *left, const double *right, size_t k, const void *self) {
    const hb_heartbeat *s = self;
    const size_t nsum = s->init == INIT_LBFGS ? red_best(s) + BEST_LP : k;
    for (size_t i = 0; i < nsum; i++) left[i] += right[i];
    if (nsum == k) return;
    const double *r = right + red_best(s), *l = left + red_best(s);
    if (r[BEST_LP] > l[BEST_LP] || (r[BEST_LP] == l[BEST_LP] && r[BEST_CHAIN] < l[BEST_CHAIN]))
        memcpy(left + nsum, right + nsum, (k - nsum) * sizeof *left);
}

/* warmup = auto, after a stage-C step: per chain, the window sums of every coordinate and of
   lp, shifted by the value at the window's first iteration (state after Adam's m, v, eta:
   shift [d+1], sum [d+1], sum of squares [d+1], lane-wise). At the window's last iteration
   a full batch (one superchain: its 8 chains started from one point) adds its nested-R-hat
   terms to the reduction: superchain mean, its square, B~_k + W~_k, B~_k. */
static void auto_window(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b,
                        hb_step_out *out) {
    const size_t d = s->dim, nq = d + 1;
    double *x0 = b->state + (2 * d + 1) * L, *s1 = x0 + nq * L, *s2 = s1 + nq * L;
    const long t = ((long)ctx->iter - s->a.c_start) % AUTO_WINDOW;
    for (size_t q = 0; q < nq; q++) {
        const double *v = q < d ? b->x + q * L : b->lp;
        double *x0q = x0 + q * L, *s1q = s1 + q * L, *s2q = s2 + q * L;
        for (int c = 0; c < L; c++) {
            if (t == 0) {
                x0q[c] = v[c];
                s1q[c] = s2q[c] = 0;
            }
            const double dl = v[c] - x0q[c];
            s1q[c] += dl;
            s2q[c] += dl * dl;
        }
    }
    if (t != AUTO_WINDOW - 1 || !out->red || b->n_real < L) return;
    double *r = out->red + RED_PSUM + d;
    const double n = AUTO_WINDOW;
    r[0] = 1;
    for (size_t q = 0; q < nq; q++) {
        const double *x0q = x0 + q * L, *s1q = s1 + q * L, *s2q = s2 + q * L;
        double m[L], mean = 0, bt = 0, wt = 0;
        for (int c = 0; c < L; c++) {
            m[c] = x0q[c] + s1q[c] / n;
            mean += m[c] / L;
            wt += (s2q[c] - s1q[c] * s1q[c] / n) / (n - 1) / L;
        }
        for (int c = 0; c < L; c++) bt += (m[c] - mean) * (m[c] - mean) / (L - 1);
        r[1 + 4 * q] = mean;
        r[2 + 4 * q] = mean * mean;
        r[3 + 4 * q] = bt + wt;
        r[4 + 4 * q] = bt;
    }
}

/* Stages B and C: one Metropolis-adjusted step at the stage's step size. */
static void warmup_mala_step(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b, double *ws,
                             hb_step_out *out) {
    const size_t d = s->dim;
    double h = s->a.h;
    if (s->a.stage == STAGE_C)
        h = ((long)ctx->iter - s->a.c_start) % 2 == 0 ? s->a.step_max : s->a.step_min;
    double *wx = ws, wx2[L], acc[L];
    int div[L];
    factor_apply_t(s, b->g, wx);
    sq_norm(d, wx, wx2);
    langevin_lanes(s, ctx, b, h, 1, 1, HB_RNG_PROPOSAL, HB_RNG_ACCEPT, wx, wx2, ws + d * L, acc,
                   div);
    double sum = 0;
    for (int c = 0; c < L; c++) {
        out->stats[ST_LP * L + c] = b->lp[c];
        out->stats[ST_STEP * L + c] = h;
        out->stats[ST_ACC * L + c] = out->stats[ST_ACC_LARGE * L + c] = acc[c];
        out->stats[ST_DIV * L + c] = div[c];
        out->n_grad[c] = 1;
        if (c < b->n_real) sum += acc[c];
    }
    if (out->red) {
        out->red[RED_ACC] = sum;
        out->red[RED_N] = b->n_real;
    }
    if (s->autow && s->a.stage == STAGE_C) auto_window(s, ctx, b, out);
}

/* Sampling: one beat of n_sub steps from step_max down to step_min; the last state is the
   draw. */
static void beat(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b, double *ws,
                 hb_step_out *out) {
    const size_t d = s->dim;
    const int n = s->n_sub, q = n / 4 > 1 ? n / 4 : 1;
    double *wx = ws, wx2[L], acc[L] = {0}, first[L] = {0}, last[L] = {0};
    int div[L], any[L] = {0};
    factor_apply_t(s, b->g, wx);
    sq_norm(d, wx, wx2);
    for (int k = 0; k < n; k++) {
        double h = hb_beat_step_size(s->schedule, s->a.step_min, s->a.step_max, k, n);
        int adjusted = s->adjust == ADJ_MALA || (s->adjust == ADJ_HYBRID && h > 2 * s->a.step_min);
        /* the gauge of an unadjusted step feeds only the stats of the first and last q */
        int gauge = !ctx->stats_unread && (k < q || k >= n - q);
        langevin_lanes(s, ctx, b, h, adjusted, gauge, hb_beat_purpose(k, HB_RNG_PROPOSAL),
                       hb_beat_purpose(k, HB_RNG_ACCEPT), wx, wx2, ws + d * L, acc, div);
        for (int c = 0; c < L; c++) {
            if (k < q) first[c] += acc[c];
            if (k >= n - q) last[c] += acc[c];
            any[c] |= div[c];
        }
    }
    for (int c = 0; c < L; c++) {
        out->stats[ST_LP * L + c] = b->lp[c];
        out->stats[ST_STEP * L + c] = s->a.step_min;
        out->stats[ST_ACC * L + c] = last[c] / q;
        out->stats[ST_ACC_LARGE * L + c] = first[c] / q;
        out->stats[ST_DIV * L + c] = any[c];
        out->n_grad[c] = n;
    }
}

/* init = lbfgs, warmup iteration 0: every chain of the batch climbs to a local maximum of
   the log density by L-BFGS (lock step over the lanes; lbfgs.h). Every lane is charged
   every batch evaluation (the lock step computes them all). The block reports its best
   chain (argmax section) for the pooled Hessian. */
static void opt_step(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b, double *ws,
                     hb_step_out *out) {
    (void)ctx;
    const long evals =
        hb_lbfgs_lanes(s->model, s->dim, b->n_real, s->lbfgs_iters, b->x, b->g, b->lp, ws, NULL);
    for (int c = 0; c < L; c++) {
        out->stats[ST_LP * L + c] = b->lp[c];
        out->stats[ST_STEP * L + c] = 0;
        out->stats[ST_ACC * L + c] = out->stats[ST_ACC_LARGE * L + c] = 1;
        out->stats[ST_DIV * L + c] = 0;
        out->n_grad[c] = evals;
    }
    if (!out->red) return;
    out->red[RED_ACC] = out->red[RED_N] = b->n_real;
    double *r = out->red + red_best(s);
    r[BEST_EVALS] = (double)evals * b->n_real;
    int best = -1;
    for (int c = 0; c < b->n_real; c++)
        if (b->lp[c] > (best < 0 ? -INFINITY : b->lp[best])) best = c;
    if (best < 0) return;
    r[BEST_LP] = b->lp[best];
    r[BEST_CHAIN] = (double)(b->chain0 + (uint64_t)best);
    for (size_t i = 0; i < s->dim; i++) r[BEST_X + i] = b->x[i * L + best];
}

/* init = lbfgs, warmup iteration 1: each chain draws LBFGS_SIR candidates y_k = x0 + F xi_k
   of the Laplace approximation q = N(x0, F F^T) (F F^T the inverse of the negative Hessian
   at the best chain's optimum; x0 the chain's own optimum, or the best chain's when its own
   is more than LBFGS_MODE_GAP + d below it) and keeps one with probability proportional to
   its importance weight pi(y_k) / q(y_k) = exp(lp(y_k) + |xi_k|^2 / 2) (sampling importance
   resampling, as Pathfinder's draws): on a Gaussian target the weights are equal and the
   draw is q's; where q is a poor fit (eight schools: the mode's tau is in the posterior's
   tail) the weights pull the draws towards the mass. A streaming weighted choice: candidate
   k replaces the kept one with probability w_k / (w_1 + .. + w_k), one uniform of the
   chain's own accept stream per candidate; normals of candidate k from the chain's proposal
   stream with purpose hb_beat_purpose(k, HB_RNG_PROPOSAL). If no candidate is finite the
   chain stays at x0 (a last batch evaluation there when x0 is the best chain's optimum). */
static void lap_step(const hb_heartbeat *s, const hb_step_ctx *ctx, hb_batch *b, double *ws,
                     hb_step_out *out) {
    const size_t d = s->dim, n = d * L;
    double *xi = ws, *y = xi + n, *gy = y + n, *xb = gy + n, *ysel = xb + n, *gsel = ysel + n;
    double *mws = gsel + n, lpy[L], nrm[L], u[L], logw[L], logw2[L], lpsel[L];
    const double gap = LBFGS_MODE_GAP + (double)d;
    int moved[L], take[L], again = 0;
    for (int c = 0; c < L; c++) {
        moved[c] = c < b->n_real && !(b->lp[c] >= s->a.best_lp - gap);
        logw[c] = logw2[c] = -INFINITY;
        take[c] = 0;
    }
    for (size_t i = 0; i < d; i++)
        for (int c = 0; c < L; c++) xb[i * L + c] = moved[c] ? s->xbest[i] : b->x[i * L + c];
    for (int k = 0; k < LBFGS_SIR; k++) {
        hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, hb_beat_purpose(k, HB_RNG_PROPOSAL),
                             d, xi);
        hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, hb_beat_purpose(k, HB_RNG_ACCEPT), 1,
                              u);
        hb_vlog(u, u);
        hb_lanes_lower_mul(s->lap, d, xi, y);
        for (size_t q = 0; q < n; q++) y[q] += xb[q];
        sq_norm(d, xi, nrm);
        hb_model_eval_lanes(ctx->model, y, lpy, gy, mws);
        int rep[L];
        for (int c = 0; c < L; c++) {
            const double lw = isfinite(lpy[c]) ? lpy[c] + 0.5 * nrm[c] : -INFINITY;
            rep[c] = 0;
            if (!(lw > -INFINITY)) continue;
            const double hi = fmax(logw[c], lw);
            const double tot = hi + log(exp(logw[c] - hi) + exp(lw - hi));
            const double hi2 = fmax(logw2[c], 2 * lw);
            logw2[c] = hi2 + log(exp(logw2[c] - hi2) + exp(2 * lw - hi2));
            rep[c] = u[c] < lw - tot;
            logw[c] = tot;
        }
        for (size_t i = 0; i < d; i++)
            for (int c = 0; c < L; c++)
                if (rep[c]) {
                    ysel[i * L + c] = y[i * L + c];
                    gsel[i * L + c] = gy[i * L + c];
                }
        for (int c = 0; c < L; c++)
            if (rep[c]) {
                lpsel[c] = lpy[c];
                take[c] = 1;
            }
    }
    double taken = 0, nmoved = 0, ess = 0;
    for (int c = 0; c < L; c++) {
        again |= moved[c] && !take[c];
        if (c < b->n_real) {
            taken += take[c];
            nmoved += moved[c];
            if (take[c]) ess += exp(2 * logw[c] - logw2[c]); /* (sum w)^2 / sum w^2 */
        }
    }
    for (size_t i = 0; i < d; i++) {
        double *x_i = b->x + i * L, *g_i = b->g + i * L;
        const double *y_i = ysel + i * L, *gy_i = gsel + i * L, *xb_i = xb + i * L;
        for (int c = 0; c < L; c++) {
            x_i[c] = take[c] ? y_i[c] : xb_i[c];
            g_i[c] = take[c] ? gy_i[c] : g_i[c];
        }
    }
    for (int c = 0; c < L; c++)
        if (take[c]) b->lp[c] = lpsel[c];
    if (again) {
        /* restarted chains with no finite candidate sit at the best optimum: evaluate there
           (the other lanes evaluate their own positions, kept only where moved) */
        hb_model_eval_lanes(ctx->model, b->x, lpy, gy, mws);
        for (int c = 0; c < L; c++) {
            if (!moved[c] || take[c]) continue;
            b->lp[c] = lpy[c];
            for (size_t i = 0; i < d; i++) b->g[i * L + c] = gy[i * L + c];
        }
    }
    for (int c = 0; c < L; c++) {
        out->stats[ST_LP * L + c] = b->lp[c];
        out->stats[ST_STEP * L + c] = 1;
        out->stats[ST_ACC * L + c] = out->stats[ST_ACC_LARGE * L + c] = take[c];
        out->stats[ST_DIV * L + c] = !take[c];
        out->n_grad[c] = LBFGS_SIR + again;
    }
    if (out->red) {
        out->red[RED_ACC] = taken;
        out->red[RED_N] = b->n_real;
        out->red[red_best(s) + BEST_EVALS] = nmoved;
        out->red[red_best(s) + BEST_ESS] = ess;
    }
}

static void hb_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const hb_heartbeat *s = ctx->self;
    if (out->red) {
        memset(out->red, 0, red_count(s) * sizeof *out->red);
        if (s->init == INIT_LBFGS) {
            out->red[red_best(s) + BEST_LP] = -INFINITY;
            out->red[red_best(s) + BEST_CHAIN] = INFINITY;
        }
    }
    if (!ctx->warmup)
        beat(s, ctx, b, ws, out);
    else if (s->a.stage == STAGE_OPT)
        opt_step(s, ctx, b, ws, out);
    else if (s->a.stage == STAGE_LAP)
        lap_step(s, ctx, b, ws, out);
    else if (s->a.stage == STAGE_A)
        stage_a_step(s, ctx, b, ws, out);
    else
        warmup_mala_step(s, ctx, b, ws, out);
    /* the Hessian (computed once, in adapt after iteration 0) is charged to the best chain */
    if (s->init == INIT_LBFGS && ctx->warmup && ctx->iter == 1) {
        const double bc = s->a.best_chain, c0 = (double)b->chain0;
        if (bc >= c0 && bc < c0 + b->n_real) out->n_grad[(int)(bc - c0)] += (int64_t)s->a.fd_evals;
    }
}

static void hb_init_batch(const hb_step_ctx *ctx, hb_batch *b) {
    const hb_heartbeat *s = ctx->self;
    const size_t n = s->dim * L;
    memset(b->state, 0, 2 * n * sizeof *b->state);
    for (int c = 0; c < L; c++) b->state[2 * n + c] = s->rate0;
    if (!s->autow) return;
    /* warmup = auto: the batch is a superchain of nested R-hat, its chains start from one
       point (lane 0's) and differ by their random numbers only (ALGORITHMS.md 10.3). */
    memset(b->state + (2 * n + L), 0, 3 * (s->dim + 1) * L * sizeof *b->state);
    for (size_t i = 0; i < s->dim; i++)
        for (int c = 1; c < L; c++) {
            b->x[i * L + c] = b->x[i * L];
            b->g[i * L + c] = b->g[i * L];
        }
    for (int c = 1; c < L; c++) b->lp[c] = b->lp[0];
}

/* ---- adaptation ---- */

static void enter_b(hb_heartbeat *s, long k_next, const double *red) {
    hb_adapt_state *a = &s->a;
    const size_t d = s->dim;
    const double n = red[RED_N];
    /* P_pool = (mean P)^2: Adam's P ~ 1/|g| estimates a standard deviation. (init = lbfgs:
       the Laplace metric is already in place.) */
    if (s->metric != MET_IDENTITY && n > 0 && !a->lap_ok)
        for (size_t i = 0; i < d; i++) {
            double p = red[RED_PSUM + i] / n, m = p * p;
            s->m[i] = isfinite(m) && m > 0 ? m : 1.0;
            s->sm[i] = sqrt(s->m[i]);
        }
    a->stage = STAGE_B;
    a->b_start = k_next;
    a->a_iters = (double)k_next;
    a->h = 1.0;
    hb_dual_avg_init(&a->da_b, a->h, MALA_TARGET);
    if (s->autow) {
        /* auto: stage B lasts AUTO_B_FACTOR x stage A (the fixed schedule's 45% / 15%), so a
           stage A that ran to its cap gives the fixed schedule of W_max */
        long nb_auto = AUTO_B_FACTOR * k_next > AUTO_B_MIN ? AUTO_B_FACTOR * k_next : AUTO_B_MIN;
        a->c_start = k_next + nb_auto < s->c_start ? k_next + nb_auto : s->c_start;
    }
    long nb = a->c_start - k_next;
    a->est[0] = k_next + nb / 3 - 1;
    a->est[1] = a->c_start - 1;
    /* Pool positions over enough iterations for n >= 10 d (dense) or n >= 100 (diag). */
    double need = s->metric == MET_DENSE ? 10.0 * (double)d : 100.0;
    long w = (long)ceil(need / (double)s->chains);
    long cap = nb / 3 > 1 ? nb / 3 : 1;
    a->window = w < 1 ? 1 : (w > cap ? cap : w);
}

static void enter_c(hb_heartbeat *s) {
    hb_adapt_state *a = &s->a;
    a->h_b = a->da_b.t > 0 ? hb_dual_avg_final(&a->da_b) : a->h;
    a->step_max = s->max_fixed ? s->cfg_max : 2.0 * a->h_b;
    a->step_min = s->min_fixed ? s->cfg_min : 0.5 * a->h_b;
    hb_dual_avg_init(&a->da_max, a->step_max, s->target_max);
    hb_dual_avg_init(&a->da_min, a->step_min, s->target_min);
    a->stage = STAGE_C;
}

static void hb_plan(void *self, long k, hb_iter_plan *p) {
    const hb_heartbeat *s = self;
    p->reduce_stats = 1;
    p->moments = s->metric == MET_DENSE ? HB_MOMENTS_DENSE : HB_MOMENTS_DIAG;
    p->accumulate_moments = p->update_metric = 0;
    if (s->a.stage != STAGE_B || s->metric == MET_IDENTITY) return;
    for (int e = 0; e < 2; e++)
        if (k > s->a.est[e] - s->a.window && k <= s->a.est[e]) {
            p->accumulate_moments = 1;
            p->update_metric = k == s->a.est[e];
        }
}

/* warmup = auto, at the end of a stage-C window: nested R-hat (ALGORITHMS.md 10.3: K
   superchains of M = 8 chains, N = AUTO_WINDOW draws) of every coordinate and of lp, with
   its stationarity floor removed: B^ - mean_k(B~_k)/M estimates the variance of superchain
   means beyond what M independent chains give, so nR^ = sqrt(1 + max(0, B^ - B~/M) / W^) is
   ~1 for chains that forgot their shared start whatever M and their autocorrelation (the
   uncorrected floor sqrt(1 + 1/(M ESS)) is out of reach of 1.01 with M = 8). Warmup stops
   when the max over quantities is below AUTO_RHAT and both averaged log step sizes moved
   less than AUTO_STEP_TOL since the previous window. Pooled sums only: identical on every
   rank. */
static void auto_check(hb_heartbeat *s, long k, const double *red) {
    hb_adapt_state *a = &s->a;
    const size_t d = s->dim;
    const double *r = red + RED_PSUM + d, K = r[0];
    /* excess ratio (B^ - B~/M) / W^ of quantity q; NaN when it cannot be computed */
    double rx = 0, rl = NAN;
    for (size_t q = 0; K >= 2 && q <= d; q++) {
        const double sm = r[1 + 4 * q], sq = r[2 + 4 * q], wv = r[3 + 4 * q] / K;
        const double bv = (sq - sm * sm / K) / (K - 1), bbar = r[4 + 4 * q] / K;
        const double ex = bv - bbar / L, ratio = ex <= 0 ? ex / (wv > 0 ? wv : 1) : ex / wv;
        if (q < d)
            rx += ratio / (double)d;
        else
            rl = ratio;
    }
    if (K < 2) rx = NAN;
    /* lp, and the coordinates through the mean of their ratios (one noisy max over d
       coordinates would sit above 1.01 at stationarity: each ratio has the noise of a
       variance over K - 1 degrees of freedom) */
    const double rh_lp = rl > 0 ? sqrt(1 + rl) : rl <= 0 ? 1.0 : INFINITY;
    const double rh_x = rx > 0 ? sqrt(1 + rx) : rx <= 0 ? 1.0 : INFINITY;
    const double rmax = fmax(rh_lp, rh_x);
    double lmax =
        log(!s->max_fixed && a->da_max.t > 0 ? hb_dual_avg_final(&a->da_max) : a->step_max);
    double lmin =
        log(!s->min_fixed && a->da_min.t > 0 ? hb_dual_avg_final(&a->da_min) : a->step_min);
    double ds =
        a->n_win > 0 ? fmax(fabs(lmax - a->prev_lmax), fabs(lmin - a->prev_lmin)) : INFINITY;
    a->prev_lmax = lmax;
    a->prev_lmin = lmin;
    a->n_win++;
    a->rhat = rmax;
    a->dstep = ds;
    if (rmax < AUTO_RHAT && ds < AUTO_STEP_TOL) {
        a->done = 1;
        a->used = k + 1;
    }
}

/* init = lbfgs: the Laplace covariance from the negative Hessian Hn in s->H (symmetric):
   Hn = R R^T (Cholesky), M = Hn^{-1} = R^{-T} R^{-1}, then s->H <- M and s->lap <- its
   Cholesky factor. If Hn is not positive definite (a saddle, or finite-difference noise),
   the diagonal 1/Hn_ii is used when it is positive (returns 1); 2 if neither works. The
   preconditioner becomes M (dense metric), diag(M) (diag), or stays I (identity). */
static int laplace_metric(hb_heartbeat *s) {
    const size_t d = s->dim;
    double *H = s->H, *R = s->lap, *hn = s->fdws; /* hn: Hn's diagonal */
    int rc = 0;
    for (size_t i = 0; i < d; i++) hn[i] = H[i * d + i];
    memcpy(R, H, d * d * sizeof *R);
    if (hb_cholesky(R, d) == 0) {
        /* H <- R^{-1} (lower triangular), then R <- M = R^{-T} R^{-1} */
        for (size_t j = 0; j < d; j++) {
            for (size_t i = 0; i < j; i++) H[i * d + j] = 0;
            H[j * d + j] = 1.0 / R[j * d + j];
            for (size_t i = j + 1; i < d; i++) {
                double acc = 0;
                for (size_t q = j; q < i; q++) acc += R[i * d + q] * H[q * d + j];
                H[i * d + j] = -acc / R[i * d + i];
            }
        }
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j <= i; j++) {
                double acc = 0;
                for (size_t q = i; q < d; q++) acc += H[q * d + i] * H[q * d + j];
                R[i * d + j] = R[j * d + i] = acc;
            }
        memcpy(H, R, d * d * sizeof *H);
        if (hb_cholesky(R, d) != 0) {
            rc = 1; /* M's diagonal */
            for (size_t i = 0; i < d; i++) s->tmp[i] = H[i * d + i];
        }
    } else {
        rc = 1; /* the conditional variances 1 / Hn_ii */
        for (size_t i = 0; i < d; i++) s->tmp[i] = 1.0 / H[i * d + i];
    }
    if (rc == 1) {
        memset(H, 0, d * d * sizeof *H);
        memset(R, 0, d * d * sizeof *R);
        for (size_t i = 0; i < d; i++) {
            H[i * d + i] = s->tmp[i];
            R[i * d + i] = sqrt(s->tmp[i]);
        }
    }
    for (size_t i = 0; i < d; i++) {
        double v = H[i * d + i];
        if (!isfinite(v) || !(v > 0)) return 2;
    }
    /* metric = auto with fewer than 10 chains per dimension: dense when some coordinate's
       variance inflation factor M_ii Hn_ii = 1 / (1 - R_i^2) (marginal over conditional
       variance) is at least LBFGS_DENSE_VIF, the usual collinearity threshold (a diagonal
       metric's condition number is at least the largest one), else diag (the dense
       products cost 2 d^2 per step for nothing). */
    if (s->metric == MET_AUTO) {
        double vif = 0;
        for (size_t i = 0; i < d && rc == 0; i++) vif = fmax(vif, H[i * d + i] * hn[i]);
        s->metric = vif >= LBFGS_DENSE_VIF ? MET_DENSE : MET_DIAG;
        s->a.metric_auto = 1 + s->metric;
    }
    if (s->metric == MET_IDENTITY) return rc;
    for (size_t i = 0; i < d; i++) {
        s->m[i] = H[i * d + i];
        s->sm[i] = sqrt(s->m[i]);
    }
    if (s->metric == MET_DENSE && rc == 0) {
        memcpy(s->S, H, d * d * sizeof *s->S);
        memcpy(s->Lc, R, d * d * sizeof *s->Lc);
        s->a.dense_active = 1;
    }
    return rc;
}

/* init = lbfgs, after iteration 0: the best chain's optimum (pooled argmax), the Hessian
   there, the Laplace metric; stage A's fallback if that fails. */
static void after_opt(hb_heartbeat *s, const double *red) {
    hb_adapt_state *a = &s->a;
    const double *r = red + red_best(s), n = red[RED_N];
    a->best_lp = r[BEST_LP];
    a->best_chain = r[BEST_CHAIN];
    a->lbfgs_evals = n > 0 ? r[BEST_EVALS] / n : 0;
    int rc = 2;
    if (isfinite(a->best_lp)) {
        long evals = 0;
        if (hb_fd_hessian(s->model, s->dim, r + BEST_X, s->H, s->fdws, &evals) == 0)
            rc = laplace_metric(s);
        a->fd_evals = (double)evals;
        memcpy(s->xbest, r + BEST_X, s->dim * sizeof *s->xbest);
    }
    a->lbfgs_fallback = rc;
    if (s->metric == MET_AUTO) {
        s->metric = MET_DIAG; /* stage A's fallback: the rule without the Laplace metric */
        a->metric_auto = 1 + s->metric;
    }
    if (rc == 2) {
        /* stage A from the optima, then the fixed schedule (the first Adam update is that
           of iteration 1: bias correction as if two had been made, a small bias of
           exploration that nothing keeps) */
        for (size_t i = 0; i < s->dim; i++) s->m[i] = s->sm[i] = 1.0;
        a->stage = STAGE_A;
        return;
    }
    a->lap_ok = 1;
    a->stage = STAGE_LAP;
}

static void hb_adapt(void *self, long k, const double *red) {
    hb_heartbeat *s = self;
    hb_adapt_state *a = &s->a;
    const double n = red[RED_N], acc = n > 0 ? red[RED_ACC] / n : 0;
    switch (a->stage) {
    case STAGE_OPT:
        after_opt(s, red);
        break;
    case STAGE_LAP:
        a->moved = red[red_best(s) + BEST_EVALS];
        a->lap_ess = n > 0 ? red[red_best(s) + BEST_ESS] / n : 0;
        enter_b(s, k + 1, red);
        a->a_iters = 0;
        break;
    case STAGE_A: {
        double med;
        if (!a->med_init) {
            med = n > 0 ? red[RED_LPSUM] / n : 0;
            a->med_init = 1;
            a->med_best = med;
            a->med_best_k = k;
        } else {
            med = hb_lp_hist_median(red + RED_HIST, a->med_center, 0.25 * sqrt((double)s->dim));
            if (med > a->med_best) {
                a->med_best = med;
                a->med_best_k = k;
            }
        }
        a->med_center = med;
        a->a_iters = (double)(k + 1);
        int stalled = s->warmup >= 20 && k - a->med_best_k >= STALL;
        if (k + 1 >= s->n_a || stalled) {
            enter_b(s, k + 1, red);
            if (k + 1 >= a->c_start) a->stage = STAGE_A; /* no stages B, C (short warmup) */
        }
        break;
    }
    case STAGE_B:
        a->h = hb_dual_avg_update(&a->da_b, acc);
        if (k + 1 >= a->c_start) enter_c(s);
        break;
    case STAGE_C:
        if ((k - a->c_start) % 2 == 0) {
            if (!s->max_fixed) a->step_max = hb_dual_avg_update(&a->da_max, acc);
        } else if (!s->min_fixed) {
            a->step_min = hb_dual_avg_update(&a->da_min, acc);
        }
        if (s->autow && (k - a->c_start) % AUTO_WINDOW == AUTO_WINDOW - 1) auto_check(s, k, red);
        break;
    default:
        break;
    }
}

static int cmp_double(const void *pa, const void *pb) {
    double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

/* New metric in stage B: restart dual averaging from the averaged step size (as Stan). */
static void restart_b(hb_heartbeat *s) {
    hb_adapt_state *a = &s->a;
    if (a->stage == STAGE_B) {
        if (a->da_b.t > 0) a->h = hb_dual_avg_final(&a->da_b);
        hb_dual_avg_init(&a->da_b, a->h, MALA_TARGET);
    }
}

/* Coordinate i of a new metric estimate: m must be a positive finite variance. */
static int set_metric_diag(hb_heartbeat *s, size_t i, double m, hb_error *err) {
    if (!isfinite(m) || !(m > 0))
        return hb_fail(err, HB_ERR_MODEL,
                       "warmup: the pooled variance of coordinate %zu is not finite or not "
                       "positive (the chains diverged or are stuck)",
                       i + 1);
    s->m[i] = m;
    s->sm[i] = sqrt(m);
    return HB_OK;
}

/* Factor the dense estimate in s->S; a failed Cholesky falls back to the diagonal. */
static void factor_dense(hb_heartbeat *s) {
    const size_t d = s->dim;
    memcpy(s->Lc, s->S, d * d * sizeof *s->Lc);
    s->a.dense_active = hb_cholesky(s->Lc, d) == 0;
    if (!s->a.dense_active) s->a.fallback = 1;
}

/* init = lbfgs: a metric estimate shrunk towards the current metric P (the Laplace
   covariance, then the previous estimate) instead of towards its own diagonal:
   M = (n/(n+5)) cov + (5/(n+5)) P. Shrinking a needle's covariance towards its diagonal
   keeps a whitened condition number of about (1 - rho)^-1 n / 5: about 1900 on kilpisjarvi
   (correlation -0.99999, n = 256), which stage B's MALA never crosses; P already has the
   needle's shape, so shrinking towards it costs nothing there. s->tmp holds the
   variances on entry. */
static int set_moments_toward(hb_heartbeat *s, const double *mom, hb_error *err) {
    hb_adapt_state *a = &s->a;
    const size_t d = s->dim;
    const double n = mom[0], w = n / (n + 5.0);
    const int dense = s->metric == MET_DENSE;
    if (s->metric == MET_IDENTITY) return HB_OK;
    /* P into s->H (free after the Laplace stage) */
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            s->H[i * d + j] = a->dense_active ? s->S[i * d + j] : i == j ? s->m[i] : 0;
    for (size_t i = 0; i < d; i++)
        if (set_metric_diag(s, i, w * s->tmp[i] + (1 - w) * s->H[i * d + i], err)) return err->code;
    if (dense) {
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++)
                s->S[i * d + j] =
                    i == j ? s->m[i]
                           : w * mom[1 + d + i * d + j] / (n - 1) + (1 - w) * s->H[i * d + j];
        factor_dense(s);
    }
    restart_b(s);
    return HB_OK;
}

/* A metric estimate from the pooled positions (HEARTBEAT.md stage B): variances shrunk in a
   scale-free way, M = (n/(n+5)) var + (5/(n+5)) 1e-3 median(var); dense: the covariance
   with its off-diagonal part shrunk by n/(n+5) towards that diagonal, then factored. */
static int hb_set_moments(void *self, const double *mom, hb_error *err) {
    hb_heartbeat *s = self;
    hb_adapt_state *a = &s->a;
    const size_t d = s->dim;
    const double n = mom[0];
    const int dense = s->metric == MET_DENSE;
    if (n < 2)
        return hb_fail(err, HB_ERR_INTERNAL, "heartbeat: metric estimate from %g positions", n);
    for (size_t i = 0; i < d; i++) {
        double q = dense ? mom[1 + d + i * d + i] : mom[1 + d + i];
        s->tmp[i] = q / (n - 1);
    }
    if (a->lap_ok) return set_moments_toward(s, mom, err);
    double *var = s->m;
    memcpy(var, s->tmp, d * sizeof *var);
    qsort(s->tmp, d, sizeof *s->tmp, cmp_double);
    double med = d % 2 ? s->tmp[d / 2] : 0.5 * (s->tmp[d / 2 - 1] + s->tmp[d / 2]);
    const double w = n / (n + 5.0), reg = 5.0 / (n + 5.0) * 1e-3 * med;
    for (size_t i = 0; i < d; i++)
        if (set_metric_diag(s, i, w * var[i] + reg, err)) return err->code;
    if (dense) {
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++)
                s->S[i * d + j] = i == j ? s->m[i] : w * mom[1 + d + i * d + j] / (n - 1);
        factor_dense(s);
    }
    restart_b(s);
    return HB_OK;
}

static void hb_end_warmup(void *self) {
    hb_heartbeat *s = self;
    hb_adapt_state *a = &s->a;
    if (a->stage == STAGE_C) {
        if (!s->max_fixed && a->da_max.t > 0) a->step_max = hb_dual_avg_final(&a->da_max);
        if (!s->min_fixed && a->da_min.t > 0) a->step_min = hb_dual_avg_final(&a->da_min);
    } else {
        /* No stage C ran (short warmup): the step sizes are fixed (checked in create). */
        a->step_min = s->cfg_min;
        a->step_max = s->cfg_max;
    }
    if (a->step_max < a->step_min) a->step_max = a->step_min;
    if (!a->done) a->used = s->warmup;
    s->used_d = (double)a->used;
    a->stage = STAGE_DONE;
}

static int hb_warmup_auto(void *self, hb_error *err) {
    hb_heartbeat *s = self;
    (void)err;
    s->autow = 1;
    return HB_OK;
}

static long hb_warmup_used(const void *self) {
    const hb_heartbeat *s = self;
    return s->a.done || s->a.stage == STAGE_DONE ? s->a.used : 0;
}

static double hb_step_size(const void *self) {
    const hb_heartbeat *s = self;
    switch (s->a.stage) {
    case STAGE_A:
        return s->rate0;
    case STAGE_OPT:
    case STAGE_LAP:
        return 1.0;
    case STAGE_B:
        return s->a.h;
    default:
        return s->a.step_min;
    }
}

static size_t hb_report(const void *self, hb_adapt_item *it, size_t max) {
    const hb_heartbeat *s = self;
    const hb_adapt_state *a = &s->a;
    if (max < 22) return 0;
    size_t n = 0;
#define SCALAR(nm, p) it[n++] = (hb_adapt_item){.name = (nm), .data = (p), .rows = 1, .cols = 1}
#define TEXT(nm, t)                                                                                \
    it[n++] = (hb_adapt_item) {                                                                    \
        .name = (nm), .text = (t)                                                                  \
    }
    SCALAR("step_size", &a->step_min);
    it[n++] = (hb_adapt_item){.name = "inv_metric", .data = s->m, .rows = s->dim, .cols = 1};
    SCALAR("step_min", &a->step_min);
    SCALAR("step_max", &a->step_max);
    SCALAR("step_size_stage_b", &a->h_b);
    SCALAR("stage_a_iterations", &a->a_iters);
    SCALAR("subchain_length", &s->n_sub_d);
    SCALAR("dense_fallback", &a->fallback);
    SCALAR("warmup_used", &s->used_d);
    if (s->autow) {
        SCALAR("warmup_rhat", &a->rhat);
        SCALAR("warmup_step_change", &a->dstep);
    }
    TEXT("init", init_words[s->init]);
    if (s->init == INIT_LBFGS) {
        SCALAR("lbfgs_best_lp", &a->best_lp);
        SCALAR("lbfgs_best_chain", &a->best_chain);
        SCALAR("lbfgs_fallback", &a->lbfgs_fallback);
        SCALAR("lbfgs_evals_mean", &a->lbfgs_evals);
        SCALAR("lbfgs_hessian_evals", &a->fd_evals);
        SCALAR("lbfgs_restarted", &a->moved);
        SCALAR("lbfgs_laplace_ess", &a->lap_ess);
    }
    TEXT("adjust", adjust_words[s->adjust]);
    TEXT("schedule", schedule_words[s->schedule]);
    TEXT("metric", a->dense_active ? "dense" : s->metric == MET_IDENTITY ? "identity" : "diag");
    if (a->dense_active)
        it[n++] = (hb_adapt_item){
            .name = "inv_metric_dense", .data = s->S, .rows = s->dim, .cols = s->dim};
#undef SCALAR
#undef TEXT
    return n;
}

/* Checkpoint blob: the adaptation state, the diagonal metric, then (dense) S and its factor. */
static size_t hb_checkpoint_bytes(const void *self) {
    const hb_heartbeat *s = self;
    size_t d = s->dim;
    return sizeof s->a + d * sizeof(double) + (s->S ? 2 * d * d * sizeof(double) : 0) +
           (s->lap ? (2 * d * d + d) * sizeof(double) : 0);
}

static void hb_save(const void *self, void *blob) {
    const hb_heartbeat *s = self;
    size_t d = s->dim;
    char *p = blob;
    memcpy(p, &s->a, sizeof s->a);
    p += sizeof s->a;
    memcpy(p, s->m, d * sizeof *s->m);
    p += d * sizeof *s->m;
    if (s->S) {
        memcpy(p, s->S, d * d * sizeof *s->S);
        memcpy(p + d * d * sizeof *s->S, s->Lc, d * d * sizeof *s->Lc);
        p += 2 * d * d * sizeof *s->S;
    }
    if (s->lap) {
        memcpy(p, s->H, d * d * sizeof *s->H);
        memcpy(p + d * d * sizeof *s->H, s->lap, d * d * sizeof *s->lap);
        memcpy(p + 2 * d * d * sizeof *s->H, s->xbest, d * sizeof *s->xbest);
    }
}

static int hb_restore(void *self, const void *blob, hb_error *err) {
    hb_heartbeat *s = self;
    size_t d = s->dim;
    const char *p = blob;
    (void)err;
    memcpy(&s->a, p, sizeof s->a);
    p += sizeof s->a;
    memcpy(s->m, p, d * sizeof *s->m);
    p += d * sizeof *s->m;
    for (size_t i = 0; i < d; i++) s->sm[i] = sqrt(s->m[i]);
    s->used_d = (double)s->a.used;
    if (s->S) {
        memcpy(s->S, p, d * d * sizeof *s->S);
        memcpy(s->Lc, p + d * d * sizeof *s->S, d * d * sizeof *s->Lc);
        p += 2 * d * d * sizeof *s->S;
    }
    if (s->lap) {
        memcpy(s->H, p, d * d * sizeof *s->H);
        memcpy(s->lap, p + d * d * sizeof *s->H, d * d * sizeof *s->lap);
        memcpy(s->xbest, p + 2 * d * d * sizeof *s->H, d * sizeof *s->xbest);
    }
    if (s->a.metric_auto) s->metric = s->a.metric_auto - 1; /* decided after the optimisation */
    return HB_OK;
}

/* ---- creation ---- */

static void hb_destroy(void *self) {
    hb_heartbeat *s = self;
    if (!s) return;
    free(s->m);
    free(s->sm);
    free(s->S);
    free(s->Lc);
    free(s->tmp);
    free(s->H);
    free(s->lap);
    free(s->fdws);
    free(s->xbest);
    free(s);
}

static int read_config(hb_heartbeat *s, hb_config *cfg, hb_error *err) {
    const char *path = hb_config_path(cfg);
    const char *H = "heartbeat";
    if (hb_cfg_has(cfg, "sampler", "step_size"))
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [sampler] step_size: the heartbeat sampler has two step sizes; set "
                       "[heartbeat] step_min and step_max instead",
                       path);
    /* Defaults tuned on the issue-3 benchmark (README, "The Heartbeat sampler"): L = 4 beat
       L = 8 on every target with adjust = mala (fewer discarded states per draw). */
    int64_t def = 4, v;
    if (hb_cfg_int(cfg, H, "subchain_length", &def, 2, 1 << 20, &v, err)) return err->code;
    s->n_sub = (int)v;
    s->n_sub_d = (double)v;
    def = 64; /* the run loop's default */
    if (hb_cfg_int(cfg, "run", "chains", &def, 1, (int64_t)1 << 36, &s->chains, err))
        return err->code;
    if (hb_cfg_choice(cfg, H, "schedule", "quadratic", schedule_words, &s->schedule, err) ||
        hb_cfg_choice(cfg, H, "adjust", "mala", adjust_words, &s->adjust, err) ||
        hb_cfg_choice(cfg, "sampler", "metric", "auto", metric_words, &s->metric, err))
        return err->code;
    int min_auto = 1, max_auto = 1;
    if (hb_cfg_double_or_auto(cfg, H, "step_min", 1, NULL, 1e-300, 1e300, &s->cfg_min, &min_auto,
                              err) ||
        hb_cfg_double_or_auto(cfg, H, "step_max", 1, NULL, 1e-300, 1e300, &s->cfg_max, &max_auto,
                              err))
        return err->code;
    s->min_fixed = !min_auto;
    s->max_fixed = !max_auto;
    /* target_accept_min: with adjust = mala step_min only sets efficiency (0.8 needed fewer
       gradients than 0.95 on every target); with hybrid or none it sets the bias (0.95).
       adam_beta1 0.3 and warmup_rate 0.2 (HEARTBEAT.md: 0.9, 0.05): Adam's momentum made
       chains started 100 sd away overshoot and stay over-dispersed (|z|^2/d 1.8 instead of
       1.2 after stage A). */
    double t_min = s->adjust == ADJ_MALA ? 0.8 : 0.95;
    double t_max = 0.10, rate = 0.2, b1 = 0.3, b2 = 0.999;
    int64_t def_iters = 200, iters;
    if (hb_cfg_choice(cfg, H, "init", "adam", init_words, &s->init, err) ||
        hb_cfg_int(cfg, H, "lbfgs_iters", &def_iters, 1, 1000000, &iters, err))
        return err->code;
    s->lbfgs_iters = (long)iters;
    if (hb_cfg_double(cfg, H, "target_accept_min", &t_min, 0.01, 0.999, &s->target_min, err) ||
        hb_cfg_double(cfg, H, "target_accept_max", &t_max, 0.001, 0.99, &s->target_max, err) ||
        hb_cfg_double(cfg, H, "warmup_rate", &rate, 1e-12, 1e12, &s->rate0, err) ||
        hb_cfg_double(cfg, H, "adam_beta1", &b1, 0, 0.9999, &s->beta1, err) ||
        hb_cfg_double(cfg, H, "adam_beta2", &b2, 0, 0.999999, &s->beta2, err))
        return err->code;
    if (s->target_max >= s->target_min)
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [heartbeat] target_accept_max (%g) must be below target_accept_min "
                       "(%g): step_max is the large step",
                       path, s->target_max, s->target_min);
    if (s->min_fixed && s->max_fixed && s->cfg_max < s->cfg_min)
        return hb_fail(err, HB_ERR_USAGE, "%s: [heartbeat] step_max (%g) is below step_min (%g)",
                       path, s->cfg_max, s->cfg_min);
    if (s->dim > HB_DENSE_MAX_DIM && (s->metric == MET_DENSE || s->init == INIT_LBFGS)) {
        const int lb = s->init == INIT_LBFGS;
        char where[256];
        hb_cfg_where(cfg, lb ? H : "sampler", lb ? "init" : "metric", where, sizeof where);
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: %s keeps d x d matrices; the model has dimension %zu, above %d: use "
                       "%s",
                       where, lb ? "[heartbeat] init = lbfgs" : "[sampler] metric = dense", s->dim,
                       HB_DENSE_MAX_DIM, lb ? "init = adam" : "metric = diag");
    }
    if (s->warmup < 20 && s->init == INIT_LBFGS) {
        char where[256];
        hb_cfg_where(cfg, H, "init", where, sizeof where);
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [heartbeat] init = lbfgs needs [run] warmup >= 20 (it is %ld): the "
                       "optimisation, the Laplace draw and stages B and C",
                       where, s->warmup);
    }
    if (s->warmup < 20) {
        if (!s->min_fixed || !s->max_fixed || s->metric != MET_IDENTITY)
            return hb_fail(err, HB_ERR_USAGE,
                           "%s: [run] warmup = %ld is too short for the heartbeat sampler's "
                           "three-stage warmup (at least 20), unless [heartbeat] step_min and "
                           "step_max are numbers and [sampler] metric = identity",
                           path, s->warmup);
    }
    return HB_OK;
}

static int hb_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                     hb_error *err) {
    hb_heartbeat *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->dim = model->dim;
    s->warmup = warmup;
    if (read_config(s, cfg, err)) {
        hb_destroy(s);
        return err->code;
    }
    const size_t d = s->dim;
    /* auto: dense when there are at least 10 chains per dimension (HEARTBEAT.md stage B). */
    /* init = lbfgs with fewer chains: the Laplace covariance is a full-rank estimate whatever
       the number of chains, so up to d = LBFGS_DENSE_D auto is decided after the
       optimisation, from it (laplace_metric: dense when a correlation is strong). */
    if (s->metric == MET_AUTO) {
        if (d > 1 && d <= HB_DENSE_MAX_DIM && (double)s->chains >= 10.0 * (double)d)
            s->metric = MET_DENSE;
        else if (!(s->init == INIT_LBFGS && d > 1 && d <= LBFGS_DENSE_D))
            s->metric = MET_DIAG;
    }
    if (s->metric == MET_DENSE && d == 1) s->metric = MET_DIAG;
    if (warmup >= 20) {
        s->n_a = (long)(0.15 * (double)warmup);
        long n_c = (long)(0.40 * (double)warmup);
        s->c_start = warmup - n_c;
    } else {
        s->n_a = s->c_start = warmup; /* stage A only */
    }
    if (s->n_a < 1) s->n_a = 1;
    if (s->init == INIT_LBFGS) {
        /* iterations 0 and 1 are the optimisation and the Laplace draw; stages B and C
           share the rest as 45 : 40 (HEARTBEAT.md's fractions without stage A) */
        s->c_start = warmup - (long)(40.0 / 85.0 * (double)(warmup - 2));
        s->model = model;
        s->H = calloc(d * d, sizeof *s->H);
        s->lap = calloc(d * d, sizeof *s->lap);
        s->fdws = calloc(hb_fd_hessian_ws(d), sizeof *s->fdws);
        s->xbest = calloc(d, sizeof *s->xbest);
        if (!s->H || !s->lap || !s->fdws || !s->xbest) abort();
    }
    s->m = malloc(d * sizeof *s->m);
    s->sm = malloc(d * sizeof *s->sm);
    s->tmp = malloc(d * sizeof *s->tmp);
    if (!s->m || !s->sm || !s->tmp) abort();
    for (size_t i = 0; i < d; i++) s->m[i] = s->sm[i] = 1.0;
    if (s->metric == MET_DENSE || s->metric == MET_AUTO) {
        s->S = calloc(d * d, sizeof *s->S);
        s->Lc = calloc(d * d, sizeof *s->Lc);
        if (!s->S || !s->Lc) abort();
    }
    s->a.stage = s->init == INIT_LBFGS ? STAGE_OPT : STAGE_A;
    s->a.c_start = s->c_start;
    s->a.rhat = s->a.dstep = INFINITY;
    s->a.h = s->a.h_b = 1.0;
    s->a.step_min = s->min_fixed ? s->cfg_min : 0.0;
    s->a.step_max = s->max_fixed ? s->cfg_max : 0.0;
    *self = s;
    return HB_OK;
}

static size_t hb_state_doubles(const void *self, size_t dim) {
    const hb_heartbeat *s = self;
    return 2 * dim + 1 + (s->autow ? 3 * (dim + 1) : 0); /* auto: window sums */
}

static size_t hb_workspace_doubles(const void *self, size_t dim) {
    const hb_heartbeat *s = self;
    size_t n = dim * L + step_ws(dim);
    if (s->init == INIT_LBFGS && hb_lbfgs_ws(dim) > n) n = hb_lbfgs_ws(dim);
    return n;
}

static size_t hb_red_doubles(const void *self, size_t dim) {
    (void)dim;
    return red_count(self);
}

const hb_sampler_type hb_sampler_heartbeat = {
    .name = "heartbeat",
    .summary = "Heartbeat: pooled three-stage warmup (Adam-drift exploration, pooled metric, "
               "step_min/step_max), then annealed Langevin beats keeping the last state",
    .create = hb_create,
    .destroy = hb_destroy,
    .state_doubles = hb_state_doubles,
    .workspace_doubles = hb_workspace_doubles,
    .stats = heartbeat_stats,
    .n_stats = N_STATS,
    .n_red = RED_PSUM,
    .red_doubles = hb_red_doubles,
    .init_batch = hb_init_batch,
    .combine = hb_combine_red,
    .plan = hb_plan,
    .step = hb_step,
    .adapt = hb_adapt,
    .set_moments = hb_set_moments,
    .warmup_auto = hb_warmup_auto,
    .warmup_used = hb_warmup_used,
    .end_warmup = hb_end_warmup,
    .step_size = hb_step_size,
    .report = hb_report,
    .checkpoint_bytes = hb_checkpoint_bytes,
    .save = hb_save,
    .restore = hb_restore,
};
