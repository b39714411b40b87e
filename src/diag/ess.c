/* The ESS kernel (posterior's .ess: FFT autocovariances, Geyer's initial positive and
 * monotone sequences, the antithetic term and the S log10 S cap), basic R-hat and nested
 * R-hat of split-chain views. */
#include <float.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "diag/diag.h"

/* FFTW's planner is not thread-safe (executing plans is): serialise plan creation and
   destruction across the whole process. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

size_t hb_diag_nextn(size_t n) {
    if (n <= 1) return 1;
    for (;; n++) {
        size_t m = n;
        while (m % 2 == 0) m /= 2;
        while (m % 3 == 0) m /= 3;
        while (m % 5 == 0) m /= 5;
        if (m == 1) return n;
    }
}

int hb_diag_fft_init(hb_diag_fft *f, size_t len) {
    memset(f, 0, sizeof *f);
    f->len = len;
    f->nfft = 2 * hb_diag_nextn(len);
    double *in = fftw_alloc_real(f->nfft);
    fftw_complex *out = fftw_alloc_complex(f->nfft / 2 + 1);
    int rc = HB_OK;
    if (!in || !out) {
        rc = HB_ERR_INTERNAL;
    } else {
        /* FFTW_ESTIMATE: planning is cheap and, unlike FFTW_MEASURE, picks the same
           algorithm every time, so the diagnostics are bitwise reproducible. */
        pthread_mutex_lock(&planner_lock);
        f->r2c = fftw_plan_dft_r2c_1d((int)f->nfft, in, out, FFTW_ESTIMATE);
        f->c2r = fftw_plan_dft_c2r_1d((int)f->nfft, out, in, FFTW_ESTIMATE);
        pthread_mutex_unlock(&planner_lock);
        if (!f->r2c || !f->c2r) rc = HB_ERR_INTERNAL;
    }
    fftw_free(in);
    fftw_free(out);
    if (rc != HB_OK) hb_diag_fft_free(f);
    return rc;
}

void hb_diag_fft_free(hb_diag_fft *f) {
    pthread_mutex_lock(&planner_lock);
    if (f->r2c) fftw_destroy_plan((fftw_plan)f->r2c);
    if (f->c2r) fftw_destroy_plan((fftw_plan)f->c2r);
    pthread_mutex_unlock(&planner_lock);
    f->r2c = f->c2r = NULL;
}

static inline double apply_map(hb_diag_map map, double x, double c) {
    switch (map) {
    case HB_MAP_ABSDEV:
        return fabs(x - c);
    case HB_MAP_SQDEV:
        return (x - c) * (x - c);
    case HB_MAP_LE:
        return x <= c ? 1.0 : 0.0;
    default:
        return x;
    }
}

/* Sample variance (denominator n - 1) of n values, two-pass, long double accumulation
   (as R's var); NaN for n < 2. */
static double small_var(const double *x, size_t n, double *mean_out) {
    long double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    long double m = s / (long double)n;
    long double ss = 0;
    for (size_t i = 0; i < n; i++) ss += ((long double)x[i] - m) * ((long double)x[i] - m);
    if (mean_out) *mean_out = (double)m;
    return n < 2 ? NAN : (double)(ss / (long double)(n - 1));
}

/* Blocks of series: their number depends only on the number of series, never on the number
   of threads, and partial spectra are added in block order (reproducible sums). */
static size_t n_blocks_for(size_t n_series) {
    size_t nb = (n_series + 63) / 64;
    return nb > 256 ? 256 : nb;
}

int hb_diag_ess_view(const hb_diag_fft *fft, const hb_diag_view *v, hb_diag_map map, double c,
                     double *ess, int *capped) {
    *ess = NAN;
    size_t ns = v->n_series, len = v->len;
    if (len < 3 || ns == 0) return HB_OK;
    /* posterior's Geyer loop runs only while t < N' - 5: for N' <= 5 no autocorrelation is
       ever used (tau = 2), so no FFT is needed. */
    int use_fft = len > 5;
    hb_diag_fft local = {0};
    if (use_fft && (!fft || fft->len != len)) {
        if (hb_diag_fft_init(&local, len) != HB_OK) return HB_ERR_INTERNAL;
        fft = &local;
    }
    size_t nfft = use_fft ? fft->nfft : 0, nspec = use_fft ? nfft / 2 + 1 : 0;
    size_t nb = n_blocks_for(ns), bs = (ns + nb - 1) / nb;
    double *means = malloc(ns * sizeof *means);
    double *blo = malloc(nb * sizeof *blo), *bhi = malloc(nb * sizeof *bhi);
    int *bbad = calloc(nb, sizeof *bbad);
    double *spec = use_fft ? calloc(nb * nspec, sizeof *spec) : NULL;
    double *acov = use_fft ? fftw_alloc_real(nfft) : NULL;
    fftw_complex *tot = use_fft ? fftw_alloc_complex(nspec) : NULL;
    double *rho = calloc(len, sizeof *rho);
    int oom = !means || !blo || !bhi || !bbad || !rho || (use_fft && (!spec || !acov || !tot));
    if (!oom) {
        int par = !omp_in_parallel() && nb > 1 && ns * len >= 65536;
#pragma omp parallel if (par)
        {
            double *buf = use_fft ? fftw_alloc_real(nfft) : malloc(len * sizeof *buf);
            fftw_complex *out = use_fft ? fftw_alloc_complex(nspec) : NULL;
            if (!buf || (use_fft && !out)) {
#pragma omp atomic write
                oom = 1;
            }
#pragma omp for schedule(dynamic, 1)
            for (size_t b = 0; b < nb; b++) {
                if (!buf || (use_fft && !out)) continue;
                double lo = INFINITY, hi = -INFINITY;
                int bad = 0;
                double *ps = use_fft ? spec + b * nspec : NULL;
                size_t j1 = (b + 1) * bs < ns ? (b + 1) * bs : ns;
                for (size_t j = b * bs; j < j1; j++) {
                    const double *s = hb_diag_series(v, j);
                    double mn = INFINITY, mx = -INFINITY;
                    for (size_t t = 0; t < len; t++) {
                        double y = apply_map(map, s[t], c);
                        buf[t] = y;
                        mn = y < mn ? y : mn;
                        mx = y > mx ? y : mx;
                        bad |= !isfinite(y);
                    }
                    /* a constant series has its value as mean, exactly */
                    double m = mx == mn ? mn : hb_diag_sum(buf, len) / (double)len;
                    means[j] = m;
                    lo = mn < lo ? mn : lo;
                    hi = mx > hi ? mx : hi;
                    /* A constant series has zero autocovariances (posterior returns zeros
                       when var(x) == 0): skip its transform. */
                    if (!use_fft || bad || mx == mn) continue;
                    for (size_t t = 0; t < len; t++) buf[t] -= m;
                    memset(buf + len, 0, (nfft - len) * sizeof *buf);
                    fftw_execute_dft_r2c((fftw_plan)fft->r2c, buf, out);
                    for (size_t k = 0; k < nspec; k++)
                        ps[k] += out[k][0] * out[k][0] + out[k][1] * out[k][1];
                }
                blo[b] = lo;
                bhi[b] = hi;
                bbad[b] = bad;
            }
            if (use_fft) {
                fftw_free(buf);
                fftw_free(out);
            } else {
                free(buf);
            }
        }
    }
    int rc = oom ? HB_ERR_INTERNAL : HB_OK;
    if (rc == HB_OK) {
        double lo = INFINITY, hi = -INFINITY;
        int bad = 0;
        for (size_t b = 0; b < nb; b++) {
            lo = blo[b] < lo ? blo[b] : lo;
            hi = bhi[b] > hi ? bhi[b] : hi;
            bad |= bbad[b];
        }
        if (bad || fabs(hi - lo) < DBL_EPSILON) goto done; /* posterior: NA */

        double acov0 = 0, acov1 = 0;
        if (use_fft) {
            for (size_t k = 0; k < nspec; k++) {
                double s = 0;
                for (size_t b = 0; b < nb; b++) s += spec[b * nspec + k];
                tot[k][0] = s;
                tot[k][1] = 0;
            }
            fftw_execute_dft_c2r((fftw_plan)fft->c2r, tot, acov);
            /* c2r is unnormalised (factor nfft); posterior's per-chain scaling
               ac / ac[0] * var(x) * (N - 1) / N equals ac / N exactly in exact
               arithmetic; then the mean over chains. */
            double scale = 1.0 / ((double)nfft * (double)len * (double)ns);
            for (size_t t = 0; t < len; t++) acov[t] *= scale;
            acov0 = acov[0];
            acov1 = acov[1];
        }
        double nd = (double)len;
        double mean_var = acov0 * nd / (nd - 1.0);
        double var_plus = mean_var * (nd - 1.0) / nd;
        if (ns > 1) var_plus += small_var(means, ns, NULL);

        /* Geyer's initial positive sequence, index for index as posterior 1.4 .ess() */
        long n = (long)len, t = 0;
        double rho_even = 1.0, rho_odd = 1.0 - (mean_var - acov1) / var_plus;
        rho[0] = rho_even;
        rho[1] = rho_odd;
        while (t < n - 5 && !isnan(rho_even + rho_odd) && rho_even + rho_odd > 0) {
            t += 2;
            rho_even = 1.0 - (mean_var - acov[t]) / var_plus;
            rho_odd = 1.0 - (mean_var - acov[t + 1]) / var_plus;
            if (rho_even + rho_odd >= 0) {
                rho[t] = rho_even;
                rho[t + 1] = rho_odd;
            }
        }
        long max_t = t;
        if (rho_even > 0) rho[max_t] = rho_even; /* the antithetic-case extra term */
        /* Geyer's initial monotone sequence */
        t = 0;
        while (t <= max_t - 4) {
            t += 2;
            if (rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]) {
                rho[t] = (rho[t - 2] + rho[t - 1]) / 2;
                rho[t + 1] = rho[t];
            }
        }
        double s_tot = (double)ns * nd;
        /* R's sum(rho_hat_t[1:max_t]): lags 0..max_t-1, and for max_t == 0 R's 1:0 is
           c(1, 0), i.e. lag 0 alone. */
        double sum = 0;
        if (max_t == 0)
            sum = rho[0];
        else
            for (long i = 0; i < max_t; i++) sum += rho[i];
        double tau = -1.0 + 2.0 * sum + rho[max_t];
        double bound = 1.0 / log10(s_tot);
        if (tau < bound) {
            tau = bound;
            if (capped) *capped = 1;
        }
        *ess = s_tot / tau;
    }
done:
    free(means);
    free(blo);
    free(bhi);
    free(bbad);
    free(spec);
    free(rho);
    fftw_free(acov);
    fftw_free(tot);
    if (local.r2c || local.c2r) hb_diag_fft_free(&local);
    return rc;
}

/* Mean, sample variance and range of one series (two-pass); *bad set on a non-finite value.
   A constant series gets its value as mean and variance 0 exactly (as R's long-double column
   means give), so constant chains yield W = 0 and R-hat = Inf as in posterior. */
static void series_moments(const double *s, size_t len, double *mean, double *var, double *lo,
                           double *hi, int *bad) {
    double mn = INFINITY, mx = -INFINITY;
    for (size_t t = 0; t < len; t++) {
        mn = s[t] < mn ? s[t] : mn;
        mx = s[t] > mx ? s[t] : mx;
    }
    *lo = mn < *lo ? mn : *lo;
    *hi = mx > *hi ? mx : *hi;
    if (mn == mx) {
        *bad |= !isfinite(mn);
        *mean = mn;
        *var = len < 2 ? NAN : 0.0;
        return;
    }
    double m = hb_diag_sum(s, len) / (double)len;
    double a0 = 0, a1 = 0;
    size_t t = 0;
    for (; t + 2 <= len; t += 2) {
        a0 += (s[t] - m) * (s[t] - m);
        a1 += (s[t + 1] - m) * (s[t + 1] - m);
    }
    for (; t < len; t++) a0 += (s[t] - m) * (s[t] - m);
    *bad |= !isfinite(m) || !isfinite(a0 + a1);
    *mean = m;
    *var = len < 2 ? NAN : (a0 + a1) / (double)(len - 1);
}

/* posterior's .rhat from chain means mv[0..ns) and variances mv[ns..2ns) */
static double rhat_formula(const double *mv, size_t ns, size_t len) {
    double nd = (double)len;
    double var_between = nd * small_var(mv, ns, NULL);
    long double w = 0;
    for (size_t j = 0; j < ns; j++) w += mv[ns + j];
    double var_within = (double)(w / (long double)ns);
    return sqrt((var_between / var_within + nd - 1.0) / nd);
}

int hb_diag_rhat_view(const hb_diag_view *v, double *rhat) {
    *rhat = NAN;
    size_t ns = v->n_series;
    double *mv = calloc(2 * ns, sizeof *mv);
    if (!mv) return HB_ERR_INTERNAL;
    double lo = INFINITY, hi = -INFINITY;
    int bad = 0;
    for (size_t j = 0; j < ns; j++)
        series_moments(hb_diag_series(v, j), v->len, mv + j, mv + ns + j, &lo, &hi, &bad);
    /* posterior's should_return_NA: non-finite, or all values within DBL_EPSILON */
    if (!bad && !(fabs(hi - lo) < DBL_EPSILON)) *rhat = rhat_formula(mv, ns, v->len);
    free(mv);
    return HB_OK;
}

int hb_diag_rhat_nested_view(const hb_diag_view *v, const size_t *group, size_t n_groups,
                             double *out) {
    *out = NAN;
    if (n_groups == 0) return HB_OK;
    size_t ns = v->n_series;
    double *mv = calloc(2 * ns, sizeof *mv);
    size_t *cnt = calloc(n_groups, sizeof *cnt);
    double *g = calloc(4 * n_groups, sizeof *g); /* sum of means, of vars, of squares; mean */
    if (!mv || !cnt || !g) {
        free(mv);
        free(cnt);
        free(g);
        return HB_ERR_INTERNAL;
    }
    int ok = 1, bad = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < ns; j++) {
        if (group[j] >= n_groups) ok = 0;
        series_moments(hb_diag_series(v, j), v->len, mv + j, mv + ns + j, &lo, &hi, &bad);
    }
    if (bad || fabs(hi - lo) < DBL_EPSILON) ok = 0; /* posterior's should_return_NA */
    for (size_t j = 0; ok && j < ns; j++) cnt[group[j]]++;
    for (size_t k = 0; ok && k < n_groups; k++)
        if (cnt[k] != cnt[0] || cnt[k] == 0) ok = 0;
    if (ok) {
        size_t m = cnt[0];
        double *gmean = g, *gwithin = g + n_groups, *gbetween = g + 2 * n_groups;
        /* superchain means (equal chain lengths: the mean of the chain means) */
        for (size_t j = 0; j < ns; j++) {
            gmean[group[j]] += mv[j];
            gwithin[group[j]] += mv[ns + j];
        }
        for (size_t k = 0; k < n_groups; k++) {
            gmean[k] /= (double)m;
            gwithin[k] = v->len == 1 ? 0.0 : gwithin[k] / (double)m;
        }
        /* between-chain variance inside each superchain (denominator m - 1; 0 if m == 1) */
        for (size_t j = 0; j < ns; j++) {
            double d = mv[j] - gmean[group[j]];
            gbetween[group[j]] += d * d;
        }
        long double wnu = 0;
        for (size_t k = 0; k < n_groups; k++) {
            gbetween[k] = m == 1 ? 0.0 : gbetween[k] / (double)(m - 1);
            wnu += gbetween[k] + gwithin[k];
        }
        double w = (double)(wnu / (long double)n_groups);
        double bnu = small_var(gmean, n_groups, NULL);
        *out = sqrt(1.0 + bnu / w);
    }
    free(mv);
    free(cnt);
    free(g);
    return HB_OK;
}
