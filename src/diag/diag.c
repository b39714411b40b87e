/* The public diagnostics API (heartbeat/diag.h): contexts, per-thread work areas, the
 * all-at-once hb_diag_compute and the one-statistic convenience functions. */
#define _DEFAULT_SOURCE /* posix_memalign, madvise */
#include <float.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "diag/diag.h"

void *hb_diag_alloc_big(size_t bytes) {
    /* Large scratch (draws of a whole coordinate or variable) on transparent huge pages where
       the kernel offers them only on request: first touch then costs one fault per 2 MiB
       instead of one per 4 KiB, which dominated filling a fresh 3 GB buffer here. */
    const size_t huge = (size_t)1 << 21;
    if (bytes < 2 * huge) return malloc(bytes ? bytes : 1);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    return p;
}

struct hb_diag_ctx {
    size_t n_chains, n_draws, n; /* n = n_chains * n_draws */
    size_t s_kept;               /* draws in the split chains (odd N drops the middle) */
    hb_diag_view shape;          /* split view without data (x = NULL) */
    hb_diag_fft fft;             /* plans for the split length, when > 5 */
    double *ztable;              /* normal scores of untied ranks 1..s_kept, or NULL */
    size_t superchain_size, n_super;
    size_t *group_raw;   /* chain -> superchain */
    size_t *group_split; /* split series -> superchain (rank variant) */
    int nested_variant;
};

/* Scratch of one thread: 36 bytes per draw. a and b are the radix sort's buffers, then hold
   the folded values (a) and their positions (b): malloc'd memory takes the type of what is
   stored in it. */
struct hb_diag_work {
    size_t n;
    double *vals, *z;
    uint32_t *pos;
    void *a, *b;
};

/* Internal selection bits, finer than the public ones so that the one-statistic functions
   do only their own work. */
enum {
    W_BULK = 1u << 8,      /* bulk z-scores and ess_bulk */
    W_RHAT = 1u << 9,      /* rhat (bulk and folded) */
    W_TAIL = 1u << 10,     /* ess_q05, ess_q95, ess_tail */
    W_MEAN = 1u << 11,     /* ess_mean, mcse_mean */
    W_RBASIC = 1u << 12,   /* rhat_basic */
    W_SD = 1u << 13,       /* ess_sd, mcse_sd */
    W_MCSE_Q = 1u << 14,   /* mcse_q05/q50/q95 */
    W_NESTED = 1u << 15,   /* rhat_nested */
    W_SORTFREE = 1u << 16, /* nothing that needs the sort (nested R-hat, mean-only) */
};

static unsigned expand_what(unsigned what) {
    unsigned w = 0;
    if (what & HB_DIAG_RANK) w |= W_BULK | W_RHAT | W_TAIL;
    if (what & HB_DIAG_MEAN) w |= W_MEAN | W_RBASIC;
    if (what & HB_DIAG_SD) w |= W_SD;
    if (what & HB_DIAG_MCSE_Q) w |= W_MCSE_Q;
    if (what & HB_DIAG_NESTED) w |= W_NESTED;
    return w;
}

size_t hb_diag_default_superchain_size(size_t n_chains) {
    for (size_t m = n_chains / 4 < 256 ? n_chains / 4 : 256; m > 1; m--)
        if (n_chains % m == 0) return m;
    return 1;
}

static int ctx_create(hb_diag_ctx **out, size_t n_chains, size_t n_draws,
                      const hb_diag_options *opt, int with_table) {
    *out = NULL;
    if (n_chains == 0 || n_draws == 0 || n_chains > UINT32_MAX / n_draws) return HB_ERR_USAGE;
    size_t m = opt && opt->superchain_size ? opt->superchain_size
                                           : hb_diag_default_superchain_size(n_chains);
    if (n_chains % m != 0) return HB_ERR_USAGE;
    hb_diag_ctx *c = calloc(1, sizeof *c);
    if (!c) return HB_ERR_INTERNAL;
    c->n_chains = n_chains;
    c->n_draws = n_draws;
    c->n = n_chains * n_draws;
    c->shape = hb_diag_view_make(NULL, n_chains, n_draws, 1);
    c->s_kept = c->shape.n_series * c->shape.len;
    c->superchain_size = m;
    c->n_super = n_chains / m;
    c->nested_variant = opt ? opt->nested_variant : HB_NESTED_RAW;
    c->group_raw = malloc(n_chains * sizeof *c->group_raw);
    c->group_split = malloc(c->shape.n_series * sizeof *c->group_split);
    int rc = c->group_raw && c->group_split ? HB_OK : HB_ERR_INTERNAL;
    if (rc == HB_OK) {
        for (size_t i = 0; i < n_chains; i++) c->group_raw[i] = i / m;
        for (size_t j = 0; j < c->shape.n_series; j++) c->group_split[j] = (j % n_chains) / m;
    }
    if (rc == HB_OK && c->shape.len > 5) rc = hb_diag_fft_init(&c->fft, c->shape.len);
    if (rc == HB_OK && with_table) {
        c->ztable = hb_diag_alloc_big(c->s_kept * sizeof *c->ztable);
        if (!c->ztable) {
            rc = HB_ERR_INTERNAL;
        } else {
            double denom = (double)c->s_kept + 0.25;
            long nk = (long)c->s_kept;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && nk > 100000)
            for (long k = 0; k < nk; k++)
                c->ztable[k] = hb_diag_qnorm(((double)k + 1.0 - 0.375) / denom);
        }
    }
    if (rc != HB_OK) {
        hb_diag_ctx_free(c);
        return rc;
    }
    *out = c;
    return HB_OK;
}

int hb_diag_ctx_create(hb_diag_ctx **out, size_t n_chains, size_t n_draws,
                       const hb_diag_options *opt) {
    return ctx_create(out, n_chains, n_draws, opt, 1);
}

void hb_diag_ctx_free(hb_diag_ctx *c) {
    if (!c) return;
    if (c->fft.r2c || c->fft.c2r) hb_diag_fft_free(&c->fft);
    free(c->ztable);
    free(c->group_raw);
    free(c->group_split);
    free(c);
}

size_t hb_diag_ctx_superchain_size(const hb_diag_ctx *c) {
    return c->superchain_size;
}

int hb_diag_work_create(hb_diag_work **out, const hb_diag_ctx *c) {
    hb_diag_work *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w) return HB_ERR_INTERNAL;
    w->n = c->n;
    w->vals = hb_diag_alloc_big(c->n * sizeof *w->vals);
    w->z = hb_diag_alloc_big(c->n * sizeof *w->z);
    w->pos = hb_diag_alloc_big(c->n * sizeof *w->pos);
    w->a = hb_diag_alloc_big(c->n * sizeof(uint64_t));
    w->b = hb_diag_alloc_big(c->n * sizeof(uint64_t));
    if (!w->vals || !w->z || !w->pos || !w->a || !w->b) {
        hb_diag_work_free(w);
        return HB_ERR_INTERNAL;
    }
    *out = w;
    return HB_OK;
}

void hb_diag_work_free(hb_diag_work *w) {
    if (!w) return;
    free(w->vals);
    free(w->z);
    free(w->pos);
    free(w->a);
    free(w->b);
    free(w);
}

/* MCSE of the p-quantile from the ESS of its indicator (posterior's .mcse_quantile). */
static double mcse_quantile_sorted(const double *v, size_t n, double p, double ess) {
    if (isnan(ess)) return NAN;
    double a1 = hb_diag_qbeta(0.1586553, ess * p + 1.0, ess * (1.0 - p) + 1.0);
    double a2 = hb_diag_qbeta(0.8413447, ess * p + 1.0, ess * (1.0 - p) + 1.0);
    double s = (double)n;
    double i1 = floor(a1 * s), i2 = ceil(a2 * s);
    if (i1 < 1) i1 = 1;
    if (i2 > s) i2 = s;
    return (v[(size_t)i2 - 1] - v[(size_t)i1 - 1]) / 2.0;
}

static void stats_nan(hb_diag_stats *st) {
    double *f[] = {&st->mean,      &st->sd,         &st->mad,        &st->q05,      &st->q50,
                   &st->q95,       &st->mcse_mean,  &st->mcse_sd,    &st->mcse_q05, &st->mcse_q50,
                   &st->mcse_q95,  &st->ess_bulk,   &st->ess_tail,   &st->ess_mean, &st->ess_sd,
                   &st->ess_q05,   &st->ess_q50,    &st->ess_q95,    &st->rhat,     &st->rhat_bulk,
                   &st->rhat_tail, &st->rhat_basic, &st->rhat_nested};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = NAN;
    st->flags = 0;
}

/* max() as R's: NA if either is NA. */
static double max_na(double a, double b) {
    return isnan(a) || isnan(b) ? NAN : (a > b ? a : b);
}
static double min_na(double a, double b) {
    return isnan(a) || isnan(b) ? NAN : (a < b ? a : b);
}

static int compute(const hb_diag_ctx *c, hb_diag_work *w, const double *x, unsigned wb, double prob,
                   hb_diag_stats *st) {
    stats_nan(st);
    size_t n = c->n;
    int capped = 0, rc = HB_OK;
    hb_diag_view xs = hb_diag_view_make(x, c->n_chains, c->n_draws, 1);

    /* mean and sd: R's mean (sum / n, refined by the mean residual) and the corrected
       two-pass variance */
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(x[i]) != 0;
    if (!finite) {
        st->flags |= HB_DIAG_F_NONFINITE;
        return HB_OK;
    }
    double m0 = hb_diag_sum(x, n) / (double)n;
    double r1 = 0, r2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - m0;
        r1 += d;
        r2 += d * d;
    }
    st->mean = m0 + r1 / (double)n;
    st->sd = n > 1 ? sqrt((r2 - r1 * r1 / (double)n) / (double)(n - 1)) : NAN;

    if (wb & W_SORTFREE) goto sortfree;
    hb_diag_sort(x, n, w->vals, w->pos, w->a, w->b);
    const double *v = w->vals;
    if (fabs(v[n - 1] - v[0]) < DBL_EPSILON) st->flags |= HB_DIAG_F_CONSTANT;
    int is_const = (st->flags & HB_DIAG_F_CONSTANT) != 0;
    st->q05 = hb_diag_quantile_sorted(v, n, 0.05);
    st->q50 = hb_diag_quantile_sorted(v, n, 0.5);
    st->q95 = hb_diag_quantile_sorted(v, n, 0.95);
    double med = hb_diag_median_sorted(v, n);
    int nested_rank = (wb & W_NESTED) && c->nested_variant == HB_NESTED_RANK && c->n_draws >= 4;

    if (wb & (W_BULK | W_RHAT)) {
        hb_diag_zscale_sorted(v, w->pos, c->n_chains, c->n_draws, c->ztable, w->z);
        hb_diag_view zv = xs;
        zv.x = w->z;
        if (wb & W_BULK) rc |= hb_diag_ess_view(&c->fft, &zv, HB_MAP_ID, 0, &st->ess_bulk, &capped);
        if (wb & W_RHAT) rc |= hb_diag_rhat_view(&zv, &st->rhat_bulk);
        if (nested_rank)
            rc |= hb_diag_rhat_nested_view(&zv, c->group_split, c->n_super, &st->rhat_nested);
    }
    /* folding: median over all draws, MAD, folded z-scores */
    double *fvals = w->a;
    uint32_t *fpos = w->b;
    hb_diag_fold_sorted(v, w->pos, n, med, fvals, fpos);
    st->mad = 1.4826 * hb_diag_median_sorted(fvals, n);
    if (wb & W_RHAT) {
        hb_diag_zscale_sorted(fvals, fpos, c->n_chains, c->n_draws, c->ztable, w->z);
        hb_diag_view zv = xs;
        zv.x = w->z;
        rc |= hb_diag_rhat_view(&zv, &st->rhat_tail);
        st->rhat = max_na(st->rhat_bulk, st->rhat_tail);
        if (nested_rank) {
            double nf = NAN;
            rc |= hb_diag_rhat_nested_view(&zv, c->group_split, c->n_super, &nf);
            st->rhat_nested = max_na(st->rhat_nested, nf);
        }
    }
    /* quantile indicators (posterior's .ess_quantile: NA for constant draws) */
    if ((wb & (W_TAIL | W_MCSE_Q)) && !is_const) {
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_LE, st->q05, &st->ess_q05, &capped);
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_LE, st->q95, &st->ess_q95, &capped);
        st->ess_tail = min_na(st->ess_q05, st->ess_q95);
    }
    if ((wb & W_MCSE_Q) && !is_const) {
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_LE, st->q50, &st->ess_q50, &capped);
        st->mcse_q05 = mcse_quantile_sorted(v, n, 0.05, st->ess_q05);
        st->mcse_q50 = mcse_quantile_sorted(v, n, 0.5, st->ess_q50);
        st->mcse_q95 = mcse_quantile_sorted(v, n, 0.95, st->ess_q95);
    }
    if (prob >= 0 && !is_const) { /* one extra quantile for hb_ess/mcse_quantile */
        double pp = prob == 1 ? ((double)n - 0.5) / (double)n : prob;
        double q = hb_diag_quantile_sorted(v, n, pp);
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_LE, q, &st->ess_q50, &capped);
        st->mcse_q50 = mcse_quantile_sorted(v, n, prob, st->ess_q50);
    }
sortfree:
    if (wb & W_MEAN) {
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_ID, 0, &st->ess_mean, &capped);
        st->mcse_mean = st->sd / sqrt(st->ess_mean);
    }
    if (wb & W_RBASIC) rc |= hb_diag_rhat_view(&xs, &st->rhat_basic);
    if (wb & W_SD) {
        /* posterior 1.4: ess_sd is the ESS of |x - mean|; mcse_sd uses the ESS of
           (x - mean)^2 and Kenney & Keeping's variance of the variance. */
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_ABSDEV, st->mean, &st->ess_sd, &capped);
        double ess2 = NAN;
        rc |= hb_diag_ess_view(&c->fft, &xs, HB_MAP_SQDEV, st->mean, &ess2, &capped);
        double e2 = 0, e4 = 0;
        for (size_t i = 0; i < n; i++) {
            double d = (x[i] - st->mean) * (x[i] - st->mean);
            e2 += d;
            e4 += d * d;
        }
        e2 /= (double)n;
        e4 /= (double)n;
        double varvar = (e4 - e2 * e2) / ess2;
        st->mcse_sd = sqrt(varvar / e2 / 4.0);
    }
    if ((wb & W_NESTED) && c->nested_variant == HB_NESTED_RAW) {
        hb_diag_view raw = hb_diag_view_make(x, c->n_chains, c->n_draws, 0);
        rc |= hb_diag_rhat_nested_view(&raw, c->group_raw, c->n_super, &st->rhat_nested);
    }
    if (capped) st->flags |= HB_DIAG_F_CAPPED;
    return rc ? HB_ERR_INTERNAL : HB_OK;
}

int hb_diag_compute(const hb_diag_ctx *c, hb_diag_work *w, const double *draws, unsigned what,
                    hb_diag_stats *out) {
    if (!c || !w || !draws || !out || w->n != c->n) return HB_ERR_USAGE;
    return compute(c, w, draws, expand_what(what), -1, out);
}

/* ---- one statistic at a time ---- */

static int one_shot(const double *draws, size_t nc, size_t nd, unsigned wb, double prob,
                    size_t superchain_size, hb_diag_stats *st) {
    if (!draws) return HB_ERR_USAGE;
    hb_diag_options opt = {superchain_size, HB_NESTED_RAW};
    hb_diag_ctx *c = NULL;
    hb_diag_work *w = NULL;
    /* no score table: for one call it costs as much as scoring the ranks directly */
    int rc = ctx_create(&c, nc, nd, &opt, 0);
    if (rc == HB_OK && !(wb & W_SORTFREE)) rc = hb_diag_work_create(&w, c);
    if (rc == HB_OK) {
        hb_diag_work dummy = {0};
        rc = compute(c, w ? w : &dummy, draws, wb, prob, st);
    }
    hb_diag_work_free(w);
    hb_diag_ctx_free(c);
    return rc;
}

#define ONE_STAT(fn, bits, field)                                                                  \
    int fn(const double *draws, size_t n_chains, size_t n_draws, double *out) {                    \
        hb_diag_stats st;                                                                          \
        *out = NAN;                                                                                \
        int rc = one_shot(draws, n_chains, n_draws, bits, -1, 1, &st);                             \
        if (rc == HB_OK) *out = st.field;                                                          \
        return rc;                                                                                 \
    }

ONE_STAT(hb_ess_bulk, W_BULK, ess_bulk)
ONE_STAT(hb_ess_tail, W_TAIL, ess_tail)
ONE_STAT(hb_ess_mean, W_MEAN | W_SORTFREE, ess_mean)
ONE_STAT(hb_ess_sd, W_SD | W_SORTFREE, ess_sd)
ONE_STAT(hb_rhat, W_RHAT, rhat)
ONE_STAT(hb_rhat_basic, W_RBASIC | W_SORTFREE, rhat_basic)
ONE_STAT(hb_mcse_mean, W_MEAN | W_SORTFREE, mcse_mean)
ONE_STAT(hb_mcse_sd, W_SD | W_SORTFREE, mcse_sd)

int hb_ess_quantile(const double *draws, size_t n_chains, size_t n_draws, double p, double *out) {
    hb_diag_stats st;
    *out = NAN;
    if (!(p >= 0 && p <= 1)) return HB_ERR_USAGE;
    int rc = one_shot(draws, n_chains, n_draws, 0, p, 1, &st);
    if (rc == HB_OK) *out = st.ess_q50;
    return rc;
}

int hb_mcse_quantile(const double *draws, size_t n_chains, size_t n_draws, double p, double *out) {
    hb_diag_stats st;
    *out = NAN;
    if (!(p >= 0 && p <= 1)) return HB_ERR_USAGE;
    int rc = one_shot(draws, n_chains, n_draws, 0, p, 1, &st);
    if (rc == HB_OK) *out = st.mcse_q50;
    return rc;
}

int hb_rhat_nested(const double *draws, size_t n_chains, size_t n_draws, size_t superchain_size,
                   const size_t *superchain_ids, double *out) {
    *out = NAN;
    if (!draws || n_chains == 0 || n_draws == 0) return HB_ERR_USAGE;
    if (!superchain_ids) {
        hb_diag_stats st;
        size_t m = superchain_size ? superchain_size : hb_diag_default_superchain_size(n_chains);
        int rc = one_shot(draws, n_chains, n_draws, W_NESTED | W_SORTFREE, -1, m, &st);
        if (rc == HB_OK) *out = st.rhat_nested;
        return rc;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_chains; i++)
        if (superchain_ids[i] + 1 > k) k = superchain_ids[i] + 1;
    hb_diag_view raw = hb_diag_view_make(draws, n_chains, n_draws, 0);
    return hb_diag_rhat_nested_view(&raw, superchain_ids, k, out);
}

static int sorted_copy(const double *x, size_t n, double **vals) {
    *vals = NULL;
    if (!x || n == 0 || n > UINT32_MAX) return HB_ERR_USAGE;
    double *v = malloc(n * sizeof *v);
    void *tv = malloc(n * sizeof(uint64_t)), *tp = malloc(n * sizeof(uint64_t));
    uint32_t *p = malloc(n * sizeof *p);
    int rc = v && tv && p && tp ? HB_OK : HB_ERR_INTERNAL;
    if (rc == HB_OK) hb_diag_sort(x, n, v, p, tv, tp);
    free(tv);
    free(p);
    free(tp);
    if (rc != HB_OK)
        free(v);
    else
        *vals = v;
    return rc;
}

static int has_nan(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

int hb_quantile(const double *x, size_t n, double p, double *q) {
    *q = NAN;
    if (!(p >= 0 && p <= 1)) return HB_ERR_USAGE;
    if (x && n && has_nan(x, n)) return HB_OK;
    double *v;
    int rc = sorted_copy(x, n, &v);
    if (rc == HB_OK) *q = hb_diag_quantile_sorted(v, n, p);
    free(v);
    return rc;
}

int hb_mad(const double *x, size_t n, double *mad) {
    *mad = NAN;
    if (x && n && has_nan(x, n)) return HB_OK;
    double *v;
    int rc = sorted_copy(x, n, &v);
    if (rc == HB_OK) {
        double med = hb_diag_median_sorted(v, n);
        for (size_t i = 0; i < n; i++) v[i] = fabs(v[i] - med);
        double *s;
        rc = sorted_copy(v, n, &s);
        if (rc == HB_OK) *mad = 1.4826 * hb_diag_median_sorted(s, n);
        free(s);
    }
    free(v);
    return rc;
}
