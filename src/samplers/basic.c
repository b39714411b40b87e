/* Shared warmup adaptation of rwmh/ula/mala and the Langevin kernel (ALGORITHMS.md §1-2). */
#include "samplers/basic.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/dense.h"
#include "core/rng.h"
#include "core/vmath.h"

const hb_stat_spec hb_basic_stats[HB_BASIC_NSTATS] = {
    {"lp", HB_STAT_F64},
    {"acceptance_rate", HB_STAT_F64},
    {"step_size", HB_STAT_F64},
    {"diverging", HB_STAT_BOOL},
};

/* The Langevin kernel's per-coordinate scales h m and sqrt(2 h m) for s's h and m, into
   hm[dim], hm[dim..2 dim). */
static void scales_into(const hb_basic *s, double *hm) {
    double *ns = hm + s->dim;
    const double noise_sd = sqrt(2.0 * s->h);
    for (size_t i = 0; i < s->dim; i++) {
        hm[i] = s->h * s->m[i];
        ns[i] = noise_sd * s->sm[i];
    }
}

/* hb_basic.scales for the current h and m. */
static void basic_scales(hb_basic *s) {
    scales_into(s, s->scales);
    s->scales_h = s->h;
}

int hb_basic_create(hb_basic *s, hb_config *cfg, const char *section, double default_target,
                    double h0, size_t dim, long warmup, hb_error *err) {
    memset(s, 0, sizeof *s);
    s->dim = dim;
    s->warmup = warmup;
    int is_auto = 1;
    double h = h0;
    if (hb_cfg_double_or_auto(cfg, "sampler", "step_size", 1, NULL, 1e-300, 1e300, &h, &is_auto,
                              err))
        return err->code;
    s->h = h;
    s->h_fixed = !is_auto;
    static const char *const metrics[] = {"diag", "identity", "auto", "dense", NULL};
    int metric = 0;
    if (hb_cfg_choice(cfg, "sampler", "metric", "diag", metrics, &metric, err)) return err->code;
    if (metric == 3 && strcmp(section, "mala") != 0 && strcmp(section, "ula") != 0)
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [sampler] metric: 'dense' is not supported by the %s sampler "
                       "(use diag or identity)",
                       hb_config_path(cfg), section);
    if (metric == 3 && dim > HB_DENSE_MAX_DIM) {
        char where[256];
        hb_cfg_where(cfg, "sampler", "metric", where, sizeof where);
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [sampler] metric = dense keeps d x d matrices; the model has dimension "
                       "%zu, above %d: use metric = diag",
                       where, dim, HB_DENSE_MAX_DIM);
    }
    s->metric_diag = metric != 1;
    s->metric_dense = metric == 3 && dim > 1;
    int64_t ib = 75, tb = 50, win = 25;
    if (hb_cfg_int(cfg, "sampler", "adapt_init_buffer", &ib, 0, 1000000000, &ib, err) ||
        hb_cfg_int(cfg, "sampler", "adapt_term_buffer", &tb, 0, 1000000000, &tb, err) ||
        hb_cfg_int(cfg, "sampler", "adapt_window", &win, 1, 1000000000, &win, err))
        return err->code;
    if (hb_cfg_double(cfg, section, "target_accept", &default_target, 0.01, 0.999, &s->target, err))
        return err->code;
    hb_windows_init(&s->win, warmup, ib, tb, win);
    s->m = malloc(dim * sizeof *s->m);
    s->sm = malloc(dim * sizeof *s->sm);
    s->scales = malloc(2 * dim * sizeof *s->scales);
    if (!s->m || !s->sm || !s->scales) abort();
    for (size_t i = 0; i < dim; i++) s->m[i] = s->sm[i] = 1.0;
    if (s->metric_dense) {
        s->S = calloc(dim * dim, sizeof *s->S);
        s->Lc = calloc(dim * dim, sizeof *s->Lc);
        if (!s->S || !s->Lc) abort();
    }
    hb_dual_avg_init(&s->da, s->h, s->target);
    basic_scales(s);
    return HB_OK;
}

void hb_basic_destroy(hb_basic *s) {
    free(s->scales);
    free(s->m);
    free(s->sm);
    free(s->S);
    free(s->Lc);
}

void hb_basic_plan(void *self, long k, hb_iter_plan *plan) {
    hb_basic *s = self;
    plan->reduce_stats = !s->h_fixed;
    plan->accumulate_moments = s->metric_diag && hb_windows_in_slow(&s->win, k);
    plan->update_metric = plan->accumulate_moments && hb_windows_end_of_slow(&s->win, k);
    plan->moments = s->metric_dense ? HB_MOMENTS_DENSE : HB_MOMENTS_DIAG;
}

void hb_basic_adapt(void *self, long k, const double *red) {
    hb_basic *s = self;
    (void)k;
    if (s->h_fixed || red[1] <= 0) return;
    s->h = hb_dual_avg_update(&s->da, red[0] / red[1]);
    basic_scales(s);
}

int hb_basic_set_moments(void *self, const double *moments, hb_error *err) {
    hb_basic *s = self;
    const size_t d = s->dim;
    if (s->metric_dense) {
        /* Stan's dense_e regularisation, then the factor; m keeps the diagonal (reported,
           and the fallback if the covariance is not positive definite). */
        int bad = hb_dense_metric_from_comoments(moments, d, s->S);
        if (!bad) {
            for (size_t i = 0; i < d; i++) s->m[i] = s->S[i * d + i];
            memcpy(s->Lc, s->S, d * d * sizeof *s->Lc);
            bad = hb_cholesky(s->Lc, d);
        }
        if (bad)
            return hb_fail(err, HB_ERR_MODEL,
                           "warmup: the pooled covariance is not finite or not positive definite "
                           "(the chains diverged or are stuck)");
        s->dense_active = 1;
    } else if (hb_metric_from_moments(moments, d, s->m) != 0)
        return hb_fail(err, HB_ERR_MODEL,
                       "warmup: the pooled variance of a coordinate is not finite or not positive "
                       "(the chains diverged or are stuck)");
    for (size_t i = 0; i < d; i++) s->sm[i] = sqrt(s->m[i]);
    /* New metric: restart dual averaging from the current averaged step size (Stan restarts
       it after every metric update). */
    if (!s->h_fixed) {
        if (s->da.t > 0) s->h = hb_dual_avg_final(&s->da);
        hb_dual_avg_init(&s->da, s->h, s->target);
    }
    basic_scales(s);
    return HB_OK;
}

void hb_basic_end_warmup(void *self) {
    hb_basic *s = self;
    if (!s->h_fixed && s->da.t > 0) s->h = hb_dual_avg_final(&s->da);
    basic_scales(s);
}

double hb_basic_step_size(const void *self) {
    return ((const hb_basic *)self)->h;
}

size_t hb_basic_report(const void *self, hb_adapt_item *items, size_t max) {
    const hb_basic *s = self;
    if (max < 3) return 0;
    items[0] = (hb_adapt_item){.name = "step_size", .data = &s->h, .rows = 1, .cols = 1};
    items[1] = (hb_adapt_item){.name = "inv_metric", .data = s->m, .rows = s->dim, .cols = 1};
    if (!s->dense_active) return 2;
    items[2] =
        (hb_adapt_item){.name = "inv_metric_dense", .data = s->S, .rows = s->dim, .cols = s->dim};
    return 3;
}

/* Blob: h, the dual-averaging state, m (sm is derived), then (dense) whether a dense
   metric is active, S and Lc. */
size_t hb_basic_checkpoint_bytes(const void *self) {
    const hb_basic *s = self;
    size_t n = sizeof s->h + sizeof s->da + s->dim * sizeof *s->m;
    if (s->metric_dense) n += sizeof s->dense_active + 2 * s->dim * s->dim * sizeof *s->S;
    return n;
}

void hb_basic_save(const void *self, void *blob) {
    const hb_basic *s = self;
    char *p = blob;
    memcpy(p, &s->h, sizeof s->h);
    memcpy(p + sizeof s->h, &s->da, sizeof s->da);
    memcpy(p + sizeof s->h + sizeof s->da, s->m, s->dim * sizeof *s->m);
    if (s->metric_dense) {
        const size_t dd = s->dim * s->dim * sizeof *s->S;
        p += sizeof s->h + sizeof s->da + s->dim * sizeof *s->m;
        memcpy(p, &s->dense_active, sizeof s->dense_active);
        memcpy(p + sizeof s->dense_active, s->S, dd);
        memcpy(p + sizeof s->dense_active + dd, s->Lc, dd);
    }
}

int hb_basic_restore(void *self, const void *blob, hb_error *err) {
    hb_basic *s = self;
    const char *p = blob;
    (void)err;
    memcpy(&s->h, p, sizeof s->h);
    memcpy(&s->da, p + sizeof s->h, sizeof s->da);
    memcpy(s->m, p + sizeof s->h + sizeof s->da, s->dim * sizeof *s->m);
    for (size_t i = 0; i < s->dim; i++) s->sm[i] = sqrt(s->m[i]);
    if (s->metric_dense) {
        const size_t dd = s->dim * s->dim * sizeof *s->S;
        p += sizeof s->h + sizeof s->da + s->dim * sizeof *s->m;
        memcpy(&s->dense_active, p, sizeof s->dense_active);
        memcpy(s->S, p + sizeof s->dense_active, dd);
        memcpy(s->Lc, p + sizeof s->dense_active + dd, dd);
    }
    basic_scales(s);
    return HB_OK;
}

size_t hb_langevin_workspace(size_t dim) {
    return 3 * dim * HB_LANES + 4 * HB_LANES + 4 * dim;
}

#if defined(HB_VMATH_AVX512) && HB_LANES == 8
/* One coordinate of the acceptance gauge: dot += (y-x).(g+gy), qg += m (gy^2 - g^2); check
   also ORs into *bad the lanes whose gy is not finite (the unadjusted step, which moves by
   swapping buffers and leaves the model's gradient unsanitised). */
static inline void gauge1(size_t i, const double *x, const double *g, const double *y,
                          const double *gy, const double *m, int check, __m512d *dot, __m512d *qg,
                          __mmask8 *bad) {
    const __m512d xv = _mm512_loadu_pd(x + i * 8), gv = _mm512_loadu_pd(g + i * 8);
    const __m512d yv = _mm512_loadu_pd(y + i * 8), gyv = _mm512_loadu_pd(gy + i * 8);
    const __m512d sg = _mm512_add_pd(gv, gyv);
    *dot = _mm512_fmadd_pd(_mm512_sub_pd(yv, xv), sg, *dot);
    *qg = _mm512_fmadd_pd(_mm512_mul_pd(_mm512_set1_pd(m[i]), _mm512_sub_pd(gyv, gv)), sg, *qg);
    if (check) *bad |= _mm512_fpclass_pd_mask(gyv, 0x99);
}

/* The gauge over all coordinates, coordinate i into partial sum i % 4 (one running sum would
   bound the loop by the FMA latency). Inlined with a constant check. */
static inline void langevin_gauge(size_t d, const double *x, const double *g, const double *y,
                                  const double *gy, const double *m, int check, __m512d dot[4],
                                  __m512d qg[4], __mmask8 *bad) {
    __m512d d0 = dot[0], d1 = dot[1], d2 = dot[2], d3 = dot[3];
    __m512d q0 = qg[0], q1 = qg[1], q2 = qg[2], q3 = qg[3];
    __mmask8 b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        gauge1(i, x, g, y, gy, m, check, &d0, &q0, &b0);
        gauge1(i + 1, x, g, y, gy, m, check, &d1, &q1, &b1);
        gauge1(i + 2, x, g, y, gy, m, check, &d2, &q2, &b2);
        gauge1(i + 3, x, g, y, gy, m, check, &d3, &q3, &b3);
    }
    if (i < d) gauge1(i++, x, g, y, gy, m, check, &d0, &q0, &b0);
    if (i < d) gauge1(i++, x, g, y, gy, m, check, &d1, &q1, &b1);
    if (i < d) gauge1(i++, x, g, y, gy, m, check, &d2, &q2, &b2);
    dot[0] = d0, dot[1] = d1, dot[2] = d2, dot[3] = d3;
    qg[0] = q0, qg[1] = q1, qg[2] = q2, qg[3] = q3;
    *bad |= (__mmask8)(b0 | b1 | b2 | b3);
}

/* The per-coordinate drift and noise scales h m and sqrt(2 h m): hb_basic's (set once per
   change of h or m; computing them for every batch's step cost about 1% of ULA's time), or,
   when a sampler set h itself, computed into the workspace. */
static const double *langevin_scales(const hb_basic *s, size_t d, double *ws) {
    enum { L = 8 };
    if (s->scales_h == s->h) return s->scales;
    double *hm = ws + 3 * d * L + 4 * L + 2 * d;
    scales_into(s, hm);
    return hm;
}

/* The kernel on AVX-512 registers: the acceptance gauge's sums over coordinates live in
   registers as four interleaved partial sums (array accumulators went through memory and
   bounded the loop by store-forwarding latency), moves are mask blends, and the acceptance
   probability comes from the in-house exp. */
static void langevin_avx512(const hb_step_ctx *ctx, const hb_basic *s, int adjusted, hb_batch *b,
                            double *ws, hb_step_out *out) {
    const double *const scales = langevin_scales(s, ctx->dim, ws);
    enum { L = 8 };
    const size_t d = ctx->dim;
    const double h = s->h;
    /* Unadjusted: the proposal and its gradient go straight into the alt pair, which becomes
       the state by a pointer swap (no copy of the moved lanes), and the gradient's finiteness
       is checked in the gauge's pass instead of a pass of its own. */
    const int swap = !adjusted;
    assert(!swap || (b->x_alt && b->g_alt));
    const int no_gauge = hb_langevin_no_gauge(ctx, s, adjusted);
    double *y = swap ? b->x_alt : ws + d * L, *gy = swap ? b->g_alt : ws + 2 * d * L;
    double *lpy = ws + 3 * d * L, *u = lpy + L, *model_ws = u + 3 * L;
    const double *hm = scales, *ns = hm + d;
    double *const x = b->x, *const g = b->g;
    const double *const m = s->m;

    /* y = x + h m g + sqrt(2 h m) xi, the normals combined as they are generated */
    hb_rng_normals_axpy_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, x, g, hm, ns, y);
    __mmask8 bad = 0;
    if (swap)
        bad = (__mmask8)hb_model_eval_lanes_raw(ctx->model, y, lpy, gy, model_ws);
    else
        hb_model_eval_lanes(ctx->model, y, lpy, gy, model_ws);

    /* log q(x|y) - log q(y|x) = -1/2 (y-x).(g(x)+g(y)) - h/4 sum m (g(y)^2 - g(x)^2) */
    const __m512d lpyv = _mm512_loadu_pd(lpy), lpx = _mm512_loadu_pd(b->lp);
    __mmask8 finite_y = (__mmask8)~_mm512_fpclass_pd_mask(lpyv, 0x99);
    __m512d dot[4], qg[4];
    for (int j = 0; j < 4; j++) dot[j] = qg[j] = _mm512_setzero_pd();
    if (adjusted)
        langevin_gauge(d, x, g, y, gy, m, 0, dot, qg, &bad);
    else if (no_gauge) /* the gradient's finiteness alone */
        for (size_t i = 0; i < d; i++)
            bad |= _mm512_fpclass_pd_mask(_mm512_loadu_pd(gy + i * L), 0x99);
    else
        langevin_gauge(d, x, g, y, gy, m, 1, dot, qg, &bad);
    if (swap) {
        /* every finite proposal is taken; lanes with a non-finite lp or gradient keep x and g:
           copied into the alt pair, whose other lanes hold the moves; then the pair becomes
           the state */
        finite_y &= (__mmask8)~bad;
        if (finite_y != 0xff)
            for (size_t i = 0; i < d; i++) {
                _mm512_mask_storeu_pd(y + i * L, (__mmask8)~finite_y, _mm512_loadu_pd(x + i * L));
                _mm512_mask_storeu_pd(gy + i * L, (__mmask8)~finite_y, _mm512_loadu_pd(g + i * L));
            }
        b->x = y, b->g = gy, b->x_alt = x, b->g_alt = g;
    }
    const __m512d dots =
        _mm512_add_pd(_mm512_add_pd(dot[0], dot[1]), _mm512_add_pd(dot[2], dot[3]));
    const __m512d qgs = _mm512_add_pd(_mm512_add_pd(qg[0], qg[1]), _mm512_add_pd(qg[2], qg[3]));
    __m512d delta =
        _mm512_sub_pd(_mm512_sub_pd(lpyv, lpx), _mm512_mul_pd(_mm512_set1_pd(0.5), dots));
    delta = _mm512_sub_pd(delta, _mm512_mul_pd(_mm512_set1_pd(0.25 * h), qgs));
    const __mmask8 finite = finite_y & (__mmask8)~_mm512_fpclass_pd_mask(delta, 0x99);
    /* log acceptance probability min(delta, 0); a non-finite delta gives exp(-inf) = 0 */
    delta = _mm512_mask_blend_pd(finite, _mm512_set1_pd(-INFINITY), delta);
    /* no gauge: 1 for a move taken, 0 for a proposal kept out */
    const __m512d acc = no_gauge ? _mm512_maskz_mov_pd(finite_y, _mm512_set1_pd(1.0))
                                 : hb_exp8(_mm512_min_pd(delta, _mm512_setzero_pd()));
    const __mmask8 diverging =
        (__mmask8)~finite_y |
        _mm512_cmp_pd_mask(_mm512_sub_pd(lpx, lpyv), _mm512_set1_pd(1000.0), _CMP_GT_OQ);
    __mmask8 take = finite_y;
    if (adjusted) {
        /* Accept iff u < exp(min(delta, 0)): the event log u < delta, one log fewer. */
        hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_ACCEPT, 1, u);
        take = _mm512_cmp_pd_mask(_mm512_loadu_pd(u), acc, _CMP_LT_OQ);
        for (size_t i = 0; i < d; i++) {
            double *x_i = x + i * L, *g_i = g + i * L;
            _mm512_storeu_pd(
                x_i, _mm512_mask_blend_pd(take, _mm512_loadu_pd(x_i), _mm512_loadu_pd(y + i * L)));
            _mm512_storeu_pd(
                g_i, _mm512_mask_blend_pd(take, _mm512_loadu_pd(g_i), _mm512_loadu_pd(gy + i * L)));
        }
    }
    const __m512d lpn = _mm512_mask_blend_pd(take, lpx, lpyv);
    _mm512_storeu_pd(b->lp, lpn);
    _mm512_storeu_pd(out->stats + HB_BASIC_LP * L, lpn);
    _mm512_storeu_pd(out->stats + HB_BASIC_ACCEPT * L, acc);
    _mm512_storeu_pd(out->stats + HB_BASIC_STEP * L, _mm512_set1_pd(h));
    _mm512_storeu_pd(out->stats + HB_BASIC_DIVERGING * L,
                     _mm512_maskz_mov_pd(diverging, _mm512_set1_pd(1.0)));
    for (int c = 0; c < L; c++) out->n_grad[c] = 1;
    if (out->red) {
        double a[L], sum_acc = 0;
        _mm512_storeu_pd(a, acc);
        for (int c = 0; c < b->n_real; c++) sum_acc += a[c];
        out->red[0] = sum_acc;
        out->red[1] = b->n_real;
    }
}
#endif

void hb_langevin_step(const hb_step_ctx *ctx, const hb_basic *s, int adjusted, hb_batch *b,
                      double *ws, hb_step_out *out) {
#if defined(HB_VMATH_AVX512) && HB_LANES == 8
    langevin_avx512(ctx, s, adjusted, b, ws, out);
#else
    enum { L = HB_LANES };
    const size_t d = ctx->dim;
    const double h = s->h, noise_sd = sqrt(2.0 * h);
    double *xi = ws, *y = ws + d * L, *gy = ws + 2 * d * L;
    double *lpy = ws + 3 * d * L, *u = lpy + L, *acc = u + L, *tmp = acc + L;
    double *model_ws = tmp + L;
    double dot[L], qg[L];
    const int no_gauge = hb_langevin_no_gauge(ctx, s, adjusted);

    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, xi);
    for (size_t i = 0; i < d; i++) {
        const double hm = h * s->m[i], ns = noise_sd * s->sm[i];
        const double *xi_i = xi + i * L, *x_i = b->x + i * L, *g_i = b->g + i * L;
        double *y_i = y + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) y_i[c] = x_i[c] + hm * g_i[c] + ns * xi_i[c];
    }
    hb_model_eval_lanes(ctx->model, y, lpy, gy, model_ws);

    /* log q(x|y) - log q(y|x) = -1/2 (y-x).(g(x)+g(y)) - h/4 sum m (g(y)^2 - g(x)^2); the
       unadjusted move takes every finite proposal and reports the gauge (or, without it,
       1 for a move and 0 for a proposal kept), drawing no uniform */
    for (int c = 0; c < L; c++) dot[c] = qg[c] = 0;
    for (size_t i = 0; !no_gauge && i < d; i++) {
        const double mi = s->m[i];
        const double *x_i = b->x + i * L, *g_i = b->g + i * L, *y_i = y + i * L, *gy_i = gy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            dot[c] += (y_i[c] - x_i[c]) * (g_i[c] + gy_i[c]);
            qg[c] += mi * (gy_i[c] * gy_i[c] - g_i[c] * g_i[c]);
        }
    }
    if (adjusted) hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_ACCEPT, 1, u);
    for (int c = 0; c < L; c++) {
        double delta = lpy[c] - b->lp[c] - 0.5 * dot[c] - 0.25 * h * qg[c];
        int finite = isfinite(lpy[c]) && isfinite(delta);
        if (!finite) delta = -INFINITY;
        tmp[c] = delta < 0 ? delta : 0; /* log acceptance probability, never above 0 */
        int diverging = !isfinite(lpy[c]) || b->lp[c] - lpy[c] > 1000.0;
        out->stats[HB_BASIC_DIVERGING * L + c] = diverging;
        out->n_grad[c] = 1;
    }
    hb_vexp(acc, tmp);
    /* Adjusted: accept iff u < exp(min(delta, 0)), the same event as log u < delta, one log
       fewer; the exponent is never above 0, and a non-finite delta gives acc = 0. */
    int take[L];
    for (int c = 0; c < L; c++) take[c] = adjusted ? u[c] < acc[c] : isfinite(lpy[c]);
    if (no_gauge)
        for (int c = 0; c < L; c++) acc[c] = take[c] ? 1.0 : 0.0;
    for (size_t i = 0; i < d; i++) {
        double *x_i = b->x + i * L, *g_i = b->g + i * L;
        const double *y_i = y + i * L, *gy_i = gy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) {
            x_i[c] = take[c] ? y_i[c] : x_i[c];
            g_i[c] = take[c] ? gy_i[c] : g_i[c];
        }
    }
    double sum_acc = 0;
    for (int c = 0; c < L; c++) {
        if (take[c]) b->lp[c] = lpy[c];
        out->stats[HB_BASIC_LP * L + c] = b->lp[c];
        out->stats[HB_BASIC_ACCEPT * L + c] = acc[c];
        out->stats[HB_BASIC_STEP * L + c] = h;
        if (c < b->n_real) sum_acc += acc[c];
    }
    if (out->red) {
        out->red[0] = sum_acc;
        out->red[1] = b->n_real;
    }
#endif
}
