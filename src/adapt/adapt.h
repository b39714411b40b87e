/* Adaptation building blocks: Stan's dual averaging of log step size, Stan's windowed
 * warmup schedule, and the regularised metric from pooled moments. Pure functions of
 * their inputs; the run loop feeds them pooled (all-rank) statistics. */
#ifndef HB_ADAPT_ADAPT_H
#define HB_ADAPT_ADAPT_H

#include <stddef.h>

/* Dual averaging (ALGORITHMS.md §2.3; constants of Stan). */
typedef struct hb_dual_avg {
    double mu, gamma, t0, kappa, delta;
    double t, s_bar, x_bar;
} hb_dual_avg;

/* Start (or restart) towards target delta from step size h0: mu = log(10 h0). */
void hb_dual_avg_init(hb_dual_avg *da, double h0, double delta);
/* Feed one adaptation statistic (e.g. the pooled mean acceptance); returns the next h. */
double hb_dual_avg_update(hb_dual_avg *da, double accept);
/* The averaged step size exp(x_bar) to freeze at the end of adaptation. */
double hb_dual_avg_final(const hb_dual_avg *da);

/* Stan's windowed warmup schedule over W iterations (ALGORITHMS.md §6.6). */
typedef struct hb_windows {
    long W, init_buffer, term_buffer, base_window;
    int adapt_metric; /* 0 when W is too short for any slow window */
} hb_windows;

void hb_windows_init(hb_windows *w, long W, long init_buffer, long term_buffer, long base_window);
/* Is iteration k (0-based) inside a slow window? */
int hb_windows_in_slow(const hb_windows *w, long k);
/* Does a slow window end at iteration k? */
int hb_windows_end_of_slow(const hb_windows *w, long k);

/* Metric from pooled moments: m_i = (n/(n+5)) var_i + 1e-3 (5/(n+5)) (Stan's rule), with
   var the sample variance (denominator n-1) of moments packed as in hb_combine_moments.
   Returns 0, or -1 if a variance is not finite or not positive. */
int hb_metric_from_moments(const double *moments, size_t d, double *inv_metric);

#endif
