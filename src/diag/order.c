/* Order statistics for the diagnostics: radix sort with positions, R's type-7 quantile and
 * median, rank normalisation with average ranks for ties, and folding by a merge. */
#include <string.h>

#include "diag/diag.h"

/* An order-preserving map from doubles (no NaN) to unsigned 64-bit keys: flip all bits of
   negatives, set the sign bit of non-negatives. -0.0 sorts just before +0.0; callers group
   ties by value (==), so they still tie. */
static inline uint64_t key_of(double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}

static inline double val_of(uint64_t k) {
    uint64_t u = (k >> 63) ? (k & 0x7fffffffffffffffull) : ~k;
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Keys are kept in the double arrays' bytes (memcpy in and out), so no second set of
   buffers is needed. */
static inline uint64_t load_key(const double *a, size_t i) {
    uint64_t k;
    memcpy(&k, a + i, sizeof k);
    return k;
}

static inline void store_key(double *a, size_t i, uint64_t k) {
    memcpy(a + i, &k, sizeof k);
}

enum { RADIX_BITS = 11, RADIX = 1 << RADIX_BITS, RADIX_PASSES = 6 };

void hb_diag_sort(const double *x, size_t n, double *vals, uint32_t *pos, double *tmp_vals,
                  uint32_t *tmp_pos) {
    static const size_t zero_counts[RADIX] = {0};
    size_t count[RADIX_PASSES][RADIX];
    for (int p = 0; p < RADIX_PASSES; p++) memcpy(count[p], zero_counts, sizeof zero_counts);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = key_of(x[i]);
        store_key(vals, i, k);
        pos[i] = (uint32_t)i;
        for (int p = 0; p < RADIX_PASSES; p++) count[p][(k >> (p * RADIX_BITS)) & (RADIX - 1)]++;
    }
    double *sv = vals, *dv = tmp_vals;
    uint32_t *sp = pos, *dp = tmp_pos;
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *c = count[p];
        int shift = p * RADIX_BITS;
        /* A digit shared by all keys (e.g. the top bits of draws of one sign and exponent
           range) leaves the order unchanged: skip the pass. */
        if (n == 0 || c[(load_key(sv, 0) >> shift) & (RADIX - 1)] == n) continue;
        size_t sum = 0;
        for (int b = 0; b < RADIX; b++) {
            size_t t = c[b];
            c[b] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t k = load_key(sv, i);
            size_t o = c[(k >> shift) & (RADIX - 1)]++;
            store_key(dv, o, k);
            dp[o] = sp[i];
        }
        double *tv = sv;
        sv = dv;
        dv = tv;
        uint32_t *tp = sp;
        sp = dp;
        dp = tp;
    }
    if (sv != vals) {
        memcpy(vals, sv, n * sizeof *vals);
        memcpy(pos, sp, n * sizeof *pos);
    }
    for (size_t i = 0; i < n; i++) vals[i] = val_of(load_key(vals, i));
}

double hb_diag_quantile_sorted(const double *v, size_t n, double p) {
    /* R's quantile.default, type 7, written as R writes it: index = 1 + (n - 1) p,
       qs = x[lo] and, only where index > lo and x[hi] != x[lo], (1 - h) x[lo] + h x[hi]. */
    double index = 1.0 + (double)(n - 1) * p;
    double lo = floor(index), hi = ceil(index);
    double qs = v[(size_t)lo - 1];
    double xhi = v[(size_t)hi - 1];
    if (index > lo && xhi != qs) {
        double h = index - lo;
        qs = (1.0 - h) * qs + h * xhi;
    }
    return qs;
}

double hb_diag_median_sorted(const double *v, size_t n) {
    if (n % 2 == 1) return v[n / 2];
    /* R: mean() of the two middle values, accumulated in long double. */
    return (double)(((long double)v[n / 2 - 1] + (long double)v[n / 2]) / 2.0L);
}

void hb_diag_zscale_sorted(const double *vals, const uint32_t *pos, size_t n_chains, size_t n_draws,
                           const double *table, double *z) {
    size_t n = n_chains * n_draws;
    int all_kept = n_draws < 2 || n_draws % 2 == 0;
    double s_kept = (double)(all_kept ? n : n_chains * (n_draws - 1));
    double denom = s_kept + 0.25; /* S - 2 * 3/8 + 1 */
    size_t k = 0;                 /* kept draws ranked so far */
    size_t i = 0;
    while (i < n) {
        size_t j = i, cnt = 0;
        while (j < n && vals[j] == vals[i]) {
            if (all_kept || hb_diag_kept(n_draws, pos[j] % n_draws)) cnt++;
            j++;
        }
        if (cnt > 0) {
            double zv;
            if (cnt == 1 && table)
                zv = table[k];
            else /* average of the ranks k + 1 .. k + cnt */
                zv = hb_diag_qnorm(((double)k + 0.5 * (double)(cnt + 1) - 0.375) / denom);
            for (size_t t = i; t < j; t++)
                if (all_kept || hb_diag_kept(n_draws, pos[t] % n_draws)) z[pos[t]] = zv;
            k += cnt;
        }
        i = j;
    }
}

void hb_diag_fold_sorted(const double *v, const uint32_t *pos, size_t n, double med, double *fvals,
                         uint32_t *fpos) {
    /* Left of the median |v - med| grows as v falls, right of it as v rises (rounding of
       v - med is monotone), so the folded values are two sorted runs: merge them. */
    size_t m = 0, lo = 0, hi = n;
    while (lo < hi) { /* first index with v >= med */
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < med)
            lo = mid + 1;
        else
            hi = mid;
    }
    m = lo;
    size_t l = m, r = m, o = 0; /* left run: l - 1 down to 0; right run: r up to n - 1 */
    while (l > 0 || r < n) {
        double fl = l > 0 ? fabs(v[l - 1] - med) : 0, fr = r < n ? fabs(v[r] - med) : 0;
        if (r >= n || (l > 0 && fl <= fr)) {
            fvals[o] = fl;
            fpos[o++] = pos[--l];
        } else {
            fvals[o] = fr;
            fpos[o++] = pos[r++];
        }
    }
}

hb_diag_view hb_diag_view_make(const double *x, size_t n_chains, size_t n_draws, int split) {
    hb_diag_view v = {x, n_chains, n_draws, n_chains, n_draws, 0};
    if (split && n_draws >= 2) {
        v.n_series = 2 * n_chains;
        v.len = n_draws / 2;
        v.off2 = n_draws - n_draws / 2;
    }
    return v;
}

double hb_diag_sum(const double *x, size_t n) {
    double total = 0;
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = b + 4096 < n ? b + 4096 : n, i = b;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (; i + 4 <= e; i += 4) {
            a0 += x[i];
            a1 += x[i + 1];
            a2 += x[i + 2];
            a3 += x[i + 3];
        }
        for (; i < e; i++) a0 += x[i];
        total += (a0 + a1) + (a2 + a3);
    }
    return total;
}
