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

/* Sort with positions in two steps. (1) LSD radix sort, 8-bit digits, of 64-bit words
   (high 32 bits of the key << 32 | position): the words start in position order, so only the
   four digits of the high half need passes, and each pass moves 8 bytes per draw (this is
   memory-bound; a full 64-bit key sort with a separate position array moved 12 bytes in up
   to 8 passes). (2) Runs that share the high 32 bits (values within about 1e-6 relative of
   each other) are put in full order by value: insertion sort for short runs, heapsort (no
   extra memory, O(n log n) in the worst case) for long ones. */
enum { RADIX_BITS = 8, RADIX = 1 << RADIX_BITS, RADIX_PASSES = 4 };

static void sift_down(double *v, uint32_t *p, size_t root, size_t n) {
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n) return;
        if (c + 1 < n && v[c + 1] > v[c]) c++;
        if (!(v[c] > v[root])) return;
        double tv = v[c];
        v[c] = v[root];
        v[root] = tv;
        uint32_t tp = p[c];
        p[c] = p[root];
        p[root] = tp;
        root = c;
    }
}

static void sort_run(double *v, uint32_t *p, size_t n) {
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            double x = v[i];
            uint32_t q = p[i];
            size_t j = i;
            for (; j > 0 && v[j - 1] > x; j--) {
                v[j] = v[j - 1];
                p[j] = p[j - 1];
            }
            v[j] = x;
            p[j] = q;
        }
        return;
    }
    for (size_t i = n / 2; i-- > 0;) sift_down(v, p, i, n);
    for (size_t e = n - 1; e > 0; e--) {
        double tv = v[0];
        v[0] = v[e];
        v[e] = tv;
        uint32_t tp = p[0];
        p[0] = p[e];
        p[e] = tp;
        sift_down(v, p, 0, e);
    }
}

void hb_diag_sort(const double *x, size_t n, double *vals, uint32_t *pos, void *scratch_a,
                  void *scratch_b) {
    uint64_t *a = scratch_a, *b = scratch_b;
    size_t count[RADIX_PASSES][RADIX];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) {
        uint64_t hi = key_of(x[i]) >> 32;
        a[i] = hi << 32 | (uint64_t)i;
        for (int p = 0; p < RADIX_PASSES; p++) count[p][(hi >> (p * RADIX_BITS)) & (RADIX - 1)]++;
    }
    uint64_t *s = a, *d = b;
    for (int p = 0; p < RADIX_PASSES && n > 0; p++) {
        size_t *c = count[p];
        int shift = 32 + p * RADIX_BITS;
        /* a digit shared by all draws leaves the order unchanged: skip the pass */
        if (c[(s[0] >> shift) & (RADIX - 1)] == n) continue;
        size_t sum = 0;
        for (int q = 0; q < RADIX; q++) {
            size_t t = c[q];
            c[q] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t k = s[i];
            d[c[(k >> shift) & (RADIX - 1)]++] = k;
        }
        uint64_t *t = s;
        s = d;
        d = t;
    }
    for (size_t i = 0; i < n; i++) {
        pos[i] = (uint32_t)s[i];
        vals[i] = x[pos[i]];
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        uint64_t h = s[i] >> 32;
        while (j < n && (s[j] >> 32) == h) j++;
        if (j - i > 1) sort_run(vals + i, pos + i, j - i);
        i = j;
    }
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

size_t hb_diag_zscale_sorted(const double *vals, const uint32_t *pos, size_t n_chains,
                             size_t n_draws, const double *table, double *z) {
    size_t n = n_chains * n_draws;
    int all_kept = n_draws < 2 || n_draws % 2 == 0;
    double s_kept = (double)(all_kept ? n : n_chains * (n_draws - 1));
    double denom = s_kept + 0.25; /* S - 2 * 3/8 + 1 */
    size_t k = 0;                 /* kept draws ranked so far */
    size_t groups = 0;
    for (size_t i = 0; i < n;) {
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
            groups++;
        }
        i = j;
    }
    return groups;
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
