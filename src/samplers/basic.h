/* Shared adaptation for the one-step samplers (rwmh, ula, mala): a step size adapted by
 * dual averaging on the pooled mean acceptance, and a diagonal metric from the pooled
 * cross-chain moments at the ends of Stan's slow windows. */
#ifndef HB_SAMPLERS_BASIC_H
#define HB_SAMPLERS_BASIC_H

#include "adapt/adapt.h"
#include "samplers/sampler.h"

typedef struct hb_basic {
    size_t dim;
    long warmup;
    double h;    /* step size in whitened units (RWMH: proposal sd) */
    int h_fixed; /* [sampler] step_size given: never adapted */
    double target;
    hb_dual_avg da;
    hb_windows win;
    int metric_diag;  /* 0: identity metric */
    int metric_dense; /* [sampler] metric = dense (mala, ula): pooled covariance */
    int dense_active; /* a dense metric has been set (before: the diagonal m) */
    int no_gauge;     /* ula, [ula] gauge = false: unadjusted moves report acceptance 1 (taken)
                         or 0 (a non-finite proposal, kept) instead of the MALA gauge */
    double *m;        /* inverse metric (variances), [dim] */
    double *sm;       /* sqrt(m) */
    double *S, *Lc;   /* dense only: inverse metric [dim*dim] and its lower Cholesky factor */
    /* The Langevin kernel's per-coordinate scales h m and sqrt(2 h m) [2][dim], set by
       every hb_basic_* function that changes h or m, for the step size scales_h; a kernel that
       finds scales_h != h (a sampler set h itself) computes them in its workspace instead. */
    double *scales;
    double scales_h;
} hb_basic;

/* Read [sampler] step_size, metric, adapt_init_buffer, adapt_term_buffer, adapt_window and
   [section] target_accept (default default_target); h0 is the initial step size when auto.
   metric = dense is accepted for the Langevin samplers (sections "mala" and "ula") only. */
int hb_basic_create(hb_basic *s, hb_config *cfg, const char *section, double default_target,
                    double h0, size_t dim, long warmup, hb_error *err);
void hb_basic_destroy(hb_basic *s);

/* Hook implementations shared by the three samplers (self points to an hb_basic first
   member). */
void hb_basic_plan(void *self, long k, hb_iter_plan *plan);
void hb_basic_adapt(void *self, long k, const double *red);
int hb_basic_set_moments(void *self, const double *moments, hb_error *err);
void hb_basic_end_warmup(void *self);
double hb_basic_step_size(const void *self);
size_t hb_basic_report(const void *self, hb_adapt_item *items, size_t max);
size_t hb_basic_checkpoint_bytes(const void *self);
void hb_basic_save(const void *self, void *blob);
int hb_basic_restore(void *self, const void *blob, hb_error *err);

/* The hook members shared by the three samplers, for their type tables. */
#define HB_BASIC_HOOKS                                                                             \
    .stats = hb_basic_stats, .n_stats = HB_BASIC_NSTATS, .n_red = 2, .plan = hb_basic_plan,        \
    .adapt = hb_basic_adapt, .set_moments = hb_basic_set_moments,                                  \
    .end_warmup = hb_basic_end_warmup, .step_size = hb_basic_step_size, .report = hb_basic_report, \
    .checkpoint_bytes = hb_basic_checkpoint_bytes, .save = hb_basic_save,                          \
    .restore = hb_basic_restore

/* The stats the three samplers report, in this order. */
enum { HB_BASIC_LP, HB_BASIC_ACCEPT, HB_BASIC_STEP, HB_BASIC_DIVERGING, HB_BASIC_NSTATS };
extern const hb_stat_spec hb_basic_stats[HB_BASIC_NSTATS];

/* Metropolis-adjusted or unadjusted Langevin step on one batch (the MALA/ULA kernel).
   adjusted = 0 moves to every finite proposal; the MALA acceptance probability is reported
   either way ([ula] gauge = false, or ctx->stats_unread: 1 for a move, 0 for a proposal
   kept). adjusted = 0 needs the batch's x_alt, g_alt (the sampler type's alt_buffers): the
   AVX-512 kernel builds the proposal there and swaps the pairs. ws needs
   hb_langevin_workspace(dim) doubles. */
void hb_langevin_step(const hb_step_ctx *ctx, const hb_basic *s, int adjusted, hb_batch *b,
                      double *ws, hb_step_out *out);
/* Whether a Langevin step skips the acceptance gauge: an unadjusted step (whose moves do not
   depend on it) with [ula] gauge = false, or whose stats nobody reads (ctx->stats_unread). */
static inline int hb_langevin_no_gauge(const hb_step_ctx *ctx, const hb_basic *s, int adjusted) {
    return !adjusted && (s->no_gauge || ctx->stats_unread);
}
size_t hb_langevin_workspace(size_t dim);

/* The same step with a dense metric M = Lc Lc^T (s->dense_active): proposal
   y = x + h M g + sqrt(2h) Lc xi. Until the first dense estimate it calls hb_langevin_step.
   ws needs hb_langevin_dense_workspace(dim) doubles. */
void hb_langevin_step_dense(const hb_step_ctx *ctx, const hb_basic *s, int adjusted, hb_batch *b,
                            double *ws, hb_step_out *out);
size_t hb_langevin_dense_workspace(size_t dim);

#endif
