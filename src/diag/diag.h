/* Internals of the diagnostics module: special functions, the rank sort, views of split
 * chains and the FFT-based ESS kernel shared by the files of src/diag (public API:
 * heartbeat/diag.h). */
#ifndef HB_DIAG_DIAG_H
#define HB_DIAG_DIAG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "heartbeat/diag.h"

/* ---- special functions (special.c) ---- */

/* Inverse of the standard normal CDF, Wichura's algorithm AS 241 (PPND16), as R's qnorm:
   relative accuracy about 1e-16. p outside [0, 1] gives NaN, 0 and 1 give -inf and +inf. */
double hb_diag_qnorm(double p);
/* Standard normal CDF (via erfc). */
double hb_diag_pnorm(double x);
/* log B(a, b) for a, b > 0, with Stirling corrections for large arguments (no cancellation
   between huge lgamma terms). */
double hb_diag_lbeta(double a, double b);
/* Regularised incomplete beta function I_x(a, b), continued fraction (modified Lentz). */
double hb_diag_pbeta(double x, double a, double b);
/* Its inverse in x (as R's qbeta(alpha, a, b)): Newton steps on I_x inside a bisection
   bracket; relative accuracy about 1e-14. */
double hb_diag_qbeta(double alpha, double a, double b);

/* ---- order statistics (order.c) ---- */

/* Sort n doubles ascending by LSD radix sort on order-preserving 64-bit keys, carrying the
   original positions along. On return vals[i] is the i-th smallest value and pos[i] its
   index in x. scratch_a / scratch_b: 8 n bytes each, malloc'd (any type). x must hold no
   NaN; n < 2^32. */
void hb_diag_sort(const double *x, size_t n, double *vals, uint32_t *pos, void *scratch_a,
                  void *scratch_b);
/* R's quantile(type = 7) of sorted values v[0..n). */
double hb_diag_quantile_sorted(const double *v, size_t n, double p);
/* R's median of sorted values (mean of the two middle values for even n). */
double hb_diag_median_sorted(const double *v, size_t n);

/* ---- split chains ---- */

/* A [chain][draw] array seen as the split chains of posterior's .split_chains: with
   n_draws >= 2, series j < n_chains is the first floor(N/2) draws of chain j and series
   n_chains + j the last floor(N/2) draws of chain j (the middle draw of odd N dropped);
   with one draw, or split = 0, series j is chain j. */
typedef struct hb_diag_view {
    const double *x;
    size_t n_chains, n_draws;
    size_t n_series; /* 2 n_chains when split */
    size_t len;      /* draws per series */
    size_t off2;     /* offset of the second half inside a chain (N - floor(N/2)) */
} hb_diag_view;

hb_diag_view hb_diag_view_make(const double *x, size_t n_chains, size_t n_draws, int split);
/* Pointer to the first draw of series j. */
static inline const double *hb_diag_series(const hb_diag_view *v, size_t j) {
    return j < v->n_chains || v->off2 == 0 ? v->x + j * v->n_draws
                                           : v->x + (j - v->n_chains) * v->n_draws + v->off2;
}
/* Whether draw d of a chain is used by the split view (only the middle one of odd N is not). */
static inline int hb_diag_kept(size_t n_draws, size_t d) {
    return n_draws < 2 || n_draws % 2 == 0 || d != n_draws / 2;
}

/* ---- the ESS kernel (ess.c) ---- */

/* Elementwise map applied to the draws before the ESS, so that no transformed copy of the
   draws is needed: ESS of x, |x - c|, (x - c)^2, or the indicator x <= c. */
typedef enum hb_diag_map { HB_MAP_ID, HB_MAP_ABSDEV, HB_MAP_SQDEV, HB_MAP_LE } hb_diag_map;

/* FFT plans for one series length, shared read-only by threads (fftw_execute_dft_* with
   new arrays is thread-safe; only planning is serialised). */
typedef struct hb_diag_fft {
    size_t len;  /* series length N' */
    size_t nfft; /* 2 * nextn(N'), posterior's padding */
    void *r2c;   /* fftw_plan */
    void *c2r;   /* fftw_plan */
} hb_diag_fft;

int hb_diag_fft_init(hb_diag_fft *f, size_t len);
void hb_diag_fft_free(hb_diag_fft *f);
/* Smallest 2^a 3^b 5^c >= n (R's nextn). */
size_t hb_diag_nextn(size_t n);

/* posterior's .ess() of the mapped view: NaN (NA in posterior) when len < 3, any value is
   non-finite or all values lie within DBL_EPSILON; *capped set when the ESS hit the
   S log10 S cap. fft may be NULL when len < 3 or when it is built on the fly. Returns
   HB_OK or HB_ERR_INTERNAL (out of memory). Runs its chain blocks on OpenMP threads when
   called outside a parallel region; the result does not depend on the thread count. */
int hb_diag_ess_view(const hb_diag_fft *fft, const hb_diag_view *v, hb_diag_map map, double c,
                     double *ess, int *capped);
/* posterior's .rhat() (basic R-hat) of a view: NaN when a value is non-finite or all lie
   within DBL_EPSILON. Returns HB_OK or HB_ERR_INTERNAL. */
int hb_diag_rhat_view(const hb_diag_view *v, double *rhat);
/* Nested R-hat (posterior's .rhat_nested formula) of the series of a view, series j
   belonging to superchain group[j] (0..n_groups-1, all groups the same size, else NaN). */
int hb_diag_rhat_nested_view(const hb_diag_view *v, const size_t *group, size_t n_groups,
                             double *out);

/* ---- rank normalisation (order.c) ---- */

/* posterior's z_scale() of the draws kept by the split view, written at their positions in
   z ([chain][draw]; dropped middle draws are left untouched), from their sorted values vals
   and original positions pos (length n_chains * n_draws): ties get their average rank, and
   z = qnorm((r - 3/8) / (S' + 1/4)) with S' the number of kept draws. table, when not NULL,
   holds qnorm((k + 1 - 3/8) / (S' + 1/4)) for k < S' (used for untied ranks). Returns the
   number of distinct values. */
size_t hb_diag_zscale_sorted(const double *vals, const uint32_t *pos, size_t n_chains,
                             size_t n_draws, const double *table, double *z);
/* Given sorted values v with positions pos and their median, write the folded values
   |v - med| in ascending order with their positions into fvals / fpos (a merge of the two
   monotone runs either side of the median: O(n), no second sort). */
void hb_diag_fold_sorted(const double *v, const uint32_t *pos, size_t n, double med, double *fvals,
                         uint32_t *fpos);

/* malloc for large buffers (released with free): 2 MiB aligned and advised to use
   transparent huge pages when at least 4 MiB. */
void *hb_diag_alloc_big(size_t bytes);

/* Sums in a fixed order (4 interleaved accumulators, blocks of 4096): deterministic and
   about as accurate as pairwise summation. */
double hb_diag_sum(const double *x, size_t n);

#endif
