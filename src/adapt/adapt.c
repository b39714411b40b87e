/* Dual averaging, Stan's warmup windows and the regularised pooled metric. */
#include "adapt/adapt.h"

#include <math.h>

void hb_dual_avg_init(hb_dual_avg *da, double h0, double delta) {
    da->mu = log(10.0 * h0);
    da->gamma = 0.05;
    da->t0 = 10.0;
    da->kappa = 0.75;
    da->delta = delta;
    da->t = 0;
    da->s_bar = 0;
    da->x_bar = 0;
}

double hb_dual_avg_update(hb_dual_avg *da, double accept) {
    if (!(accept == accept)) accept = 0; /* NaN counts as rejection */
    if (accept > 1) accept = 1;
    da->t += 1;
    double eta = 1.0 / (da->t + da->t0);
    da->s_bar = (1.0 - eta) * da->s_bar + eta * (da->delta - accept);
    double x = da->mu - da->s_bar * sqrt(da->t) / da->gamma;
    double w = pow(da->t, -da->kappa);
    da->x_bar = (1.0 - w) * da->x_bar + w * x;
    return exp(x);
}

double hb_dual_avg_final(const hb_dual_avg *da) {
    return exp(da->x_bar);
}

void hb_windows_init(hb_windows *w, long W, long init_buffer, long term_buffer, long base_window) {
    w->W = W;
    w->adapt_metric = W >= 20;
    if (init_buffer + base_window + term_buffer > W) {
        /* Stan: 15% / 75% / 10% of W */
        init_buffer = (long)(0.15 * (double)W);
        term_buffer = (long)(0.1 * (double)W);
        base_window = W - (init_buffer + term_buffer);
    }
    w->init_buffer = init_buffer;
    w->term_buffer = term_buffer;
    w->base_window = base_window;
}

/* Walk the window ends from the start (cheap: O(log W)). */
static long window_end_at_or_after(const hb_windows *w, long k, long *start) {
    long end = w->init_buffer + w->base_window - 1, size = w->base_window;
    long last = w->W - w->term_buffer - 1;
    long s = w->init_buffer;
    while (end < k && end < last) {
        s = end + 1;
        size *= 2;
        long next = end + size;
        if (next + 2 * size >= w->W - w->term_buffer) next = last;
        end = next;
    }
    if (start) *start = s;
    return end;
}

int hb_windows_in_slow(const hb_windows *w, long k) {
    if (!w->adapt_metric) return 0;
    return k >= w->init_buffer && k < w->W - w->term_buffer;
}

int hb_windows_end_of_slow(const hb_windows *w, long k) {
    if (!hb_windows_in_slow(w, k)) return 0;
    return window_end_at_or_after(w, k, NULL) == k;
}

int hb_metric_from_moments(const double *moments, size_t d, double *inv_metric) {
    double n = moments[0];
    if (n < 2) return -1;
    for (size_t i = 0; i < d; i++) {
        double var = moments[1 + d + i] / (n - 1);
        double m = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0));
        if (!isfinite(m) || !(m > 0)) return -1;
        inv_metric[i] = m;
    }
    return 0;
}
