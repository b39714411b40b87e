/* Convergence diagnostics of MCMC draws (ESS, R-hat, nested R-hat, MCSE, quantiles), computed
 * as the R package posterior 1.4 computes them (Vehtari et al. 2021; Margossian et al. 2024).
 *
 * Draws of one scalar quantity are passed as a [chain][draw] array:
 *     draws[c * n_draws + d],  chain c < n_chains, draw d < n_draws.
 * Every function returns HB_OK, HB_ERR_USAGE (a bad argument: no draws, p outside [0, 1],
 * a superchain size that does not divide n_chains) or HB_ERR_INTERNAL (out of memory), and
 * writes NaN where posterior returns NA: non-finite draws, constant draws (range below
 * DBL_EPSILON) for ESS / R-hat / MCSE, fewer than 3 draws per split chain for ESS, fewer
 * than 2 chains after splitting for R-hat. Quantiles, mean, sd and MAD are defined for
 * constant draws.
 *
 * None of these functions uses MPI or does I/O. All are thread-safe (FFTW planning is
 * serialised inside); when called outside an OpenMP parallel region they may run their
 * chain blocks on OpenMP threads. Results do not depend on the number of threads. */
#ifndef HEARTBEAT_DIAG_H
#define HEARTBEAT_DIAG_H

#include <stddef.h>

#include "heartbeat/heartbeat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- one statistic at a time ---- */

/* Bulk-ESS: ESS of the rank-normalised split chains. */
int hb_ess_bulk(const double *draws, size_t n_chains, size_t n_draws, double *ess);
/* Tail-ESS: min of the ESS of the 5% and 95% quantile indicators. */
int hb_ess_tail(const double *draws, size_t n_chains, size_t n_draws, double *ess);
/* ESS of the mean: ESS of the split chains themselves (posterior's ess_mean / ess_basic). */
int hb_ess_mean(const double *draws, size_t n_chains, size_t n_draws, double *ess);
/* ESS of the sd: ESS of |x - mean(x)| over split chains (posterior 1.4's ess_sd). */
int hb_ess_sd(const double *draws, size_t n_chains, size_t n_draws, double *ess);
/* ESS of the p-quantile: ESS of the split indicator x <= q_p (q_p: type-7 quantile). */
int hb_ess_quantile(const double *draws, size_t n_chains, size_t n_draws, double p, double *ess);

/* R-hat: max of the rank-normalised split R-hat and the rank-normalised folded split R-hat
   (folded: |x - median|). */
int hb_rhat(const double *draws, size_t n_chains, size_t n_draws, double *rhat);
/* Classic split R-hat (no ranks, no folding). */
int hb_rhat_basic(const double *draws, size_t n_chains, size_t n_draws, double *rhat);
/* Nested R-hat (posterior's rhat_nested: no splitting, no ranks) for K superchains of equal
   size. superchain_ids == NULL: consecutive groups of superchain_size chains (chain c in
   superchain c / superchain_size; superchain_size must divide n_chains; 0 picks
   hb_diag_default_superchain_size). Otherwise chain c belongs to superchain_ids[c]
   (ids 0..K-1, superchain_size ignored); unequal superchain sizes give NaN. */
int hb_rhat_nested(const double *draws, size_t n_chains, size_t n_draws, size_t superchain_size,
                   const size_t *superchain_ids, double *rhat);
/* The default superchain size for n_chains chains: the largest M <= 256 that divides
   n_chains and leaves at least 4 superchains (M = 1 when n_chains < 8 or no such M > 1
   exists). E.g. 16 chains -> 4, 4096 -> 256, 10^6 -> 250. */
size_t hb_diag_default_superchain_size(size_t n_chains);

/* MCSE of the mean: sd / sqrt(ess_mean). */
int hb_mcse_mean(const double *draws, size_t n_chains, size_t n_draws, double *mcse);
/* MCSE of the sd (Kenney & Keeping 1951 variance of the variance, no normality assumed). */
int hb_mcse_sd(const double *draws, size_t n_chains, size_t n_draws, double *mcse);
/* MCSE of the p-quantile (Beta interval on the quantile indicator ESS). */
int hb_mcse_quantile(const double *draws, size_t n_chains, size_t n_draws, double p, double *mcse);

/* R's quantile(x, p) (type 7) of n values in any order (NaN if one is NaN). */
int hb_quantile(const double *x, size_t n, double p, double *q);
/* R's mad(x): 1.4826 * median(|x - median(x)|). */
int hb_mad(const double *x, size_t n, double *mad);

/* ---- everything at once, for many quantities of the same shape ----
   One sort of the draws serves quantiles, MAD, both rank normalisations and the folding;
   the ESS kernel sums the power spectra of all chains and inverts once. */

/* What to compute (bit mask). Mean, sd, MAD, q05/q50/q95 are always computed. */
enum hb_diag_what {
    HB_DIAG_RANK = 1u << 0,   /* ess_bulk, ess_tail, ess_q05, ess_q95, rhat (+ bulk, tail) */
    HB_DIAG_MEAN = 1u << 1,   /* ess_mean, mcse_mean, rhat_basic */
    HB_DIAG_SD = 1u << 2,     /* ess_sd, mcse_sd */
    HB_DIAG_MCSE_Q = 1u << 3, /* mcse_q05, mcse_q50, mcse_q95 (and ess_q05/q50/q95) */
    HB_DIAG_NESTED = 1u << 4, /* rhat_nested */
    HB_DIAG_ALL = 0x1fu
};

/* Flags describing the draws of one quantity. */
enum hb_diag_flag {
    HB_DIAG_F_NONFINITE = 1u << 0, /* a draw is NaN or infinite: everything is NaN */
    HB_DIAG_F_CONSTANT = 1u << 1,  /* all draws equal (range < DBL_EPSILON): ESS, R-hat,
                                      MCSE are NaN */
    HB_DIAG_F_CAPPED = 1u << 2     /* an ESS hit posterior's cap S log10(S) (antithetic
                                      chains); posterior warns in that case */
};

/* Variant of nested R-hat: posterior's raw formula (default), or arviz-stats' "rank":
   split chains, rank-normalise, max of bulk and folded (needs >= 4 draws per chain). */
enum hb_nested_variant { HB_NESTED_RAW = 0, HB_NESTED_RANK = 1 };

typedef struct hb_diag_options {
    size_t superchain_size; /* chains per superchain (consecutive chains); 0 = default */
    int nested_variant;     /* enum hb_nested_variant */
} hb_diag_options;

/* The statistics of one quantity; NaN where not computed or not defined. */
typedef struct hb_diag_stats {
    double mean, sd, mad, q05, q50, q95;
    double mcse_mean, mcse_sd, mcse_q05, mcse_q50, mcse_q95;
    double ess_bulk, ess_tail, ess_mean, ess_sd, ess_q05, ess_q50, ess_q95;
    double rhat, rhat_bulk, rhat_tail, rhat_basic, rhat_nested;
    unsigned flags; /* enum hb_diag_flag */
} hb_diag_stats;

/* Shared, read-only after creation: the shape (chains x draws), FFT plans and the table of
   normal scores for untied ranks. One context serves any number of threads. */
typedef struct hb_diag_ctx hb_diag_ctx;
/* Per-thread scratch (about 32 bytes per draw): one per thread that calls hb_diag_compute. */
typedef struct hb_diag_work hb_diag_work;

/* opt may be NULL (defaults). Fails with HB_ERR_USAGE if n_chains * n_draws is 0 or above
   2^32 - 1, or the superchain size does not divide n_chains. */
int hb_diag_ctx_create(hb_diag_ctx **out, size_t n_chains, size_t n_draws,
                       const hb_diag_options *opt);
void hb_diag_ctx_free(hb_diag_ctx *ctx);
size_t hb_diag_ctx_superchain_size(const hb_diag_ctx *ctx);

int hb_diag_work_create(hb_diag_work **out, const hb_diag_ctx *ctx);
void hb_diag_work_free(hb_diag_work *w);

/* Compute the statistics selected by `what` for one quantity's draws (shape of ctx). */
int hb_diag_compute(const hb_diag_ctx *ctx, hb_diag_work *w, const double *draws, unsigned what,
                    hb_diag_stats *out);

#ifdef __cplusplus
}
#endif
#endif
