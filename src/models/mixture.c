/* The `mixture` built-in: a mixture of isotropic normals whose centres lie on the diagonal,
 * by default the 4-component 1-D mixture of the random-walk Metropolis benchmarks. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/vmath.h"
#include "models/builtin.h"
#include "models/models.h"

/* p(x) = sum_k w_k prod_i N(x_i | loc_k, scale_k^2). */
typedef struct mixture {
    size_t d, k;
    double *loc;    /* loc_k */
    double *prec;   /* 1 / scale_k^2 */
    double *lconst; /* log w_k - d log scale_k - (d/2) log(2 pi) */
    double *lc16;   /* lconst_k and -prec_k / 2 times 16 log2(e): the terms' log in the units */
    double *hp16;   /* of hb_exp8_t16s (1/16 of a binary order of magnitude) */
    char **names;
} mixture;

static void mixture_destroy(void *p) {
    mixture *m = p;
    if (!m) return;
    free(m->loc);
    free(m->prec);
    free(m->lconst);
    free(m->lc16);
    free(m->hp16);
    free(m->names);
    free(m);
}

static size_t mixture_dim(const void *p) {
    return ((const mixture *)p)->d;
}

static const char *mixture_coord_name(const void *p, size_t i) {
    return ((const mixture *)p)->names[i];
}

#ifdef HB_VMATH_AVX512
/* AVX-512: chains in chunks of 8 (a partial chunk through masked loads and stores, so a
   chain's result never depends on its slot), with the in-house exp and log of vmath.h.
   With t_k the log of component k's term: S = sum exp(t_k), A = sum e_k loc_k prec_k,
   B = sum e_k prec_k, log p = log S, d log p / dx_i = (A - x_i B) / S. The plain sum needs no
   maximum (one dependency less before the exps); a lane whose S leaves [2^-960, 2^960] (far
   tails, extreme weights or scales) takes the max-shifted sums instead, lane by lane. */
#define MIX_LO 0x1.0p-960
#define MIX_HI 0x1.0p+960

/* a sum_i (x_i - loc_k)^2 + c for the 8 chains at x (ld apart): t_k with a = -prec_k / 2,
   c = lconst_k (mix_t), or in hb_exp8_t16s' units with both times 16 log2(e) (mix_t16). */
static inline __m512d mix_quad(const mixture *m, size_t k, const double *x, size_t ld, int full,
                               __mmask8 km, double a, double c) {
    const __m512d loc = _mm512_set1_pd(m->loc[k]);
    __m512d r2 = _mm512_setzero_pd();
    for (size_t i = 0; i < m->d; i++) {
        const __m512d xi =
            full ? _mm512_loadu_pd(x + i * ld) : _mm512_maskz_loadu_pd(km, x + i * ld);
        const __m512d dx = _mm512_sub_pd(xi, loc);
        r2 = _mm512_fmadd_pd(dx, dx, r2);
    }
    return _mm512_fmadd_pd(_mm512_set1_pd(a), r2, _mm512_set1_pd(c));
}

static inline __m512d mix_t(const mixture *m, size_t k, const double *x, size_t ld, int full,
                            __mmask8 km) {
    return mix_quad(m, k, x, ld, full, km, -0.5 * m->prec[k], m->lconst[k]);
}

static inline __m512d mix_t16(const mixture *m, size_t k, const double *x, size_t ld, int full,
                              __mmask8 km) {
    return mix_quad(m, k, x, ld, full, km, m->hp16[k], m->lc16[k]);
}

/* The sums with every t_k shifted by the lane's maximum M: lp = M + log S. */
static void mix_shifted(const mixture *m, const double *x, size_t ld, int full, __mmask8 km,
                        __m512d *lp, __m512d *a, __m512d *b, __m512d *s) {
    __m512d mx = _mm512_set1_pd(-INFINITY);
    for (size_t k = 0; k < m->k; k++) mx = _mm512_max_pd(mx, mix_t(m, k, x, ld, full, km));
    __m512d sv = _mm512_setzero_pd(), av = sv, bv = sv;
    for (size_t k = 0; k < m->k; k++) {
        const __m512d f = hb_exp8(_mm512_sub_pd(mix_t(m, k, x, ld, full, km), mx));
        sv = _mm512_add_pd(sv, f);
        av = _mm512_fmadd_pd(f, _mm512_set1_pd(m->loc[k] * m->prec[k]), av);
        bv = _mm512_fmadd_pd(f, _mm512_set1_pd(m->prec[k]), bv);
    }
    *lp = _mm512_add_pd(mx, hb_log8(sv));
    *a = av, *b = bv, *s = sv;
}

/* The plain sums S, A, B of nc <= 4 chunks of 8 chains side by side (nc a constant after
   inlining): the chunks' exps are independent, so interleaving them hides their latency. Each
   lane gets exactly the operations of the one-chunk path, so results never depend on n.
   grad = 0 (log density only) leaves A and B out; S is the same sum either way. */
static inline __attribute__((always_inline)) void mix_sums(const mixture *m, const double *xc,
                                                           size_t ld, int nc, int full, __mmask8 km,
                                                           int grad, __m512d *sv, __m512d *av,
                                                           __m512d *bv) {
    for (int j = 0; j < nc; j++) sv[j] = av[j] = bv[j] = _mm512_setzero_pd();
    for (size_t k = 0; k < m->k; k++) {
        const __m512d lk = _mm512_set1_pd(m->loc[k] * m->prec[k]);
        const __m512d pk = _mm512_set1_pd(m->prec[k]);
        /* one loop, unrolled, so that each term stays in a register (two loops kept the
           terms in a stack array: 2-3% slower in bench_kernels); the chunks' exps are
           independent either way */
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) {
            const __m512d f = hb_exp8_t16s(mix_t16(m, k, xc + 8 * j, ld, full, km));
            sv[j] = _mm512_add_pd(sv[j], f);
            if (!grad) continue; /* (a constant after inlining) */
            av[j] = _mm512_fmadd_pd(f, lk, av[j]);
            bv[j] = _mm512_fmadd_pd(f, pk, bv[j]);
        }
    }
}

/* log p and the gradient of one chunk from its sums (the shifted sums for lanes out of
   range). */
static inline __attribute__((always_inline)) void mix_finish(const mixture *m, const double *xc,
                                                             size_t ld, int full, __mmask8 km,
                                                             __m512d sv, __m512d av, __m512d bv,
                                                             double *lp, double *grad) {
    const __mmask8 ok = _mm512_cmp_pd_mask(sv, _mm512_set1_pd(MIX_LO), _CMP_GE_OQ) &
                        _mm512_cmp_pd_mask(sv, _mm512_set1_pd(MIX_HI), _CMP_LE_OQ);
    __m512d lpv = hb_log8_pos(sv); /* S in range: positive, finite, normal (others replaced) */
    if ((ok & km) != km) {         /* rare: some lane needs the shifted sums */
        __m512d l2, a2, b2, s2;
        mix_shifted(m, xc, ld, full, km, &l2, &a2, &b2, &s2);
        lpv = _mm512_mask_blend_pd(ok, l2, lpv);
        av = _mm512_mask_blend_pd(ok, a2, av);
        bv = _mm512_mask_blend_pd(ok, b2, bv);
        sv = _mm512_mask_blend_pd(ok, s2, sv);
    }
    if (full)
        _mm512_storeu_pd(lp, lpv);
    else
        _mm512_mask_storeu_pd(lp, km, lpv);
    if (!grad) return; /* (a constant after inlining) */
    const __m512d inv = _mm512_div_pd(_mm512_set1_pd(1.0), sv);
    for (size_t i = 0; i < m->d; i++) {
        const double *xi = xc + i * ld;
        double *gi = grad + i * ld;
        const __m512d xv = full ? _mm512_loadu_pd(xi) : _mm512_maskz_loadu_pd(km, xi);
        const __m512d gv = _mm512_mul_pd(_mm512_fnmadd_pd(xv, bv, av), inv);
        if (full)
            _mm512_storeu_pd(gi, gv);
        else
            _mm512_mask_storeu_pd(gi, km, gv);
    }
}

/* log p (and, with grad != NULL, its gradient) of n chains: four chunks at a time, then two,
   then one (a partial last chunk masked). */
static inline __attribute__((always_inline)) void
mix_batch(const mixture *m, size_t n, size_t ld, const double *x, double *lp, double *grad) {
    const int gr = grad != NULL;
    size_t c0 = 0;
    for (; c0 + 32 <= n; c0 += 32) { /* four full chunks at once */
        __m512d sv[4], av[4], bv[4];
        mix_sums(m, x + c0, ld, 4, 1, 0xff, gr, sv, av, bv);
        for (int j = 0; j < 4; j++)
            mix_finish(m, x + c0 + 8 * (size_t)j, ld, 1, 0xff, sv[j], av[j], bv[j],
                       lp + c0 + 8 * (size_t)j, gr ? grad + c0 + 8 * (size_t)j : NULL);
    }
    for (; c0 + 16 <= n; c0 += 16) { /* two */
        __m512d sv[2], av[2], bv[2];
        mix_sums(m, x + c0, ld, 2, 1, 0xff, gr, sv, av, bv);
        for (int j = 0; j < 2; j++)
            mix_finish(m, x + c0 + 8 * (size_t)j, ld, 1, 0xff, sv[j], av[j], bv[j],
                       lp + c0 + 8 * (size_t)j, gr ? grad + c0 + 8 * (size_t)j : NULL);
    }
    for (; c0 < n; c0 += 8) {
        const size_t w = n - c0 < 8 ? n - c0 : 8;
        const int full = w == 8;
        const __mmask8 km = (__mmask8)(full ? 0xff : (1u << w) - 1);
        __m512d sv, av, bv;
        mix_sums(m, x + c0, ld, 1, full, km, gr, &sv, &av, &bv);
        mix_finish(m, x + c0, ld, full, km, sv, av, bv, lp + c0, gr ? grad + c0 : NULL);
    }
}

static int mixture_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                         double *grad) {
    mix_batch(p, n, ld, x, lp, grad);
    return 0;
}

/* The log density alone (ABI 3): the same S, without A, B, the division and the gradient. */
static int mixture_logp_batch(const void *p, size_t n, size_t ld, const double *x, double *lp) {
    mix_batch(p, n, ld, x, lp, NULL);
    return 0;
}
#else
/* Portable: log-sum-exp over components in two passes over chunks of components: with t_k the log
   of component k's term, M = max_k t_k, e_k = exp(t_k - M), S = sum e_k, A = sum e_k loc_k prec_k,
   B = sum e_k prec_k; then log p = M + log S and d log p / dx_i = (A - x_i B) / S. Components are
   taken MIX_CHUNK at a time (one exp per component; across chunks the sums are rescaled by
   exp(M_old - M_new), one extra exp per chunk). Chains go in chunks of HB_LANES through SLEEF's
   vector exp/log on full registers, so a chain's result is independent of its batch position. */
enum { MIX_CHUNK = 16 };

static int mixture_batch(const void *p, size_t n, size_t ld, const double *x, double *lp,
                         double *grad) {
    enum { L = HB_LANES };
    const mixture *m = p;
    for (size_t c0 = 0; c0 < n; c0 += L) {
        size_t w = n - c0 < L ? n - c0 : L;
        double xs[L] = {0}, mx[L], s[L] = {0}, a[L] = {0}, b[L] = {0}, f[L], u[L];
        double t[MIX_CHUNK][L];
        for (int c = 0; c < L; c++) mx[c] = -INFINITY;
        for (size_t k0 = 0; k0 < m->k; k0 += MIX_CHUNK) {
            size_t nk = m->k - k0 < MIX_CHUNK ? m->k - k0 : MIX_CHUNK;
            double cm[L];
            for (int c = 0; c < L; c++) cm[c] = mx[c];
            for (size_t k = 0; k < nk; k++) {
                const double loc = m->loc[k0 + k], prec = m->prec[k0 + k];
                double r2[L] = {0};
                for (size_t i = 0; i < m->d; i++) {
                    const double *xi = x + i * ld + c0;
                    if (w == L) {
#pragma omp simd
                        for (int c = 0; c < L; c++) r2[c] += (xi[c] - loc) * (xi[c] - loc);
                    } else {
                        for (size_t c = 0; c < w; c++) xs[c] = xi[c];
#pragma omp simd
                        for (int c = 0; c < L; c++) r2[c] += (xs[c] - loc) * (xs[c] - loc);
                    }
                }
#pragma omp simd
                for (int c = 0; c < L; c++) {
                    t[k][c] = m->lconst[k0 + k] - 0.5 * prec * r2[c];
                    cm[c] = t[k][c] > cm[c] ? t[k][c] : cm[c];
                }
            }
            if (k0 > 0) {
                /* rescale the sums of earlier chunks to the new maximum */
                for (int c = 0; c < L; c++) u[c] = mx[c] - cm[c];
                hb_vexp(f, u);
                for (int c = 0; c < L; c++) {
                    s[c] *= f[c];
                    a[c] *= f[c];
                    b[c] *= f[c];
                }
            }
            for (int c = 0; c < L; c++) mx[c] = cm[c];
            for (size_t k = 0; k < nk; k++) {
                const double lp_k = m->loc[k0 + k] * m->prec[k0 + k], pk = m->prec[k0 + k];
                for (int c = 0; c < L; c++) u[c] = t[k][c] - mx[c];
                hb_vexp(f, u);
#pragma omp simd
                for (int c = 0; c < L; c++) {
                    s[c] += f[c];
                    a[c] += f[c] * lp_k;
                    b[c] += f[c] * pk;
                }
            }
        }
        hb_vlog(u, s);
        for (size_t c = 0; c < w; c++) {
            lp[c0 + c] = mx[c] + u[c];
            s[c] = 1.0 / s[c];
        }
        for (size_t i = 0; grad && i < m->d; i++) { /* grad = NULL: the log density only */
            const double *xi = x + i * ld + c0;
            double *gi = grad + i * ld + c0;
#pragma omp simd
            for (size_t c = 0; c < w; c++) gi[c] = (a[c] - xi[c] * b[c]) * s[c];
        }
    }
    return 0;
}

/* The log density alone (ABI 3): the same sums, no gradient written. */
static int mixture_logp_batch(const void *p, size_t n, size_t ld, const double *x, double *lp) {
    return mixture_batch(p, n, ld, x, lp, NULL);
}

#endif

/* One point is a batch of one, so the single and batch paths agree bitwise. */
static int mixture_logp_grad(const void *p, const double *x, double *lp, double *grad) {
    return mixture_batch(p, 1, 1, x, lp, grad);
}

static const hb_model_vtable mixture_vtable = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "mixture",
    .create = NULL,
    .destroy = mixture_destroy,
    .dim = mixture_dim,
    .coord_name = mixture_coord_name,
    .logp_grad = mixture_logp_grad,
    .logp_grad_batch = mixture_batch,
    .logp_batch = mixture_logp_batch,
};

static int mixture_create(hb_config *cfg, void **impl, hb_error *err) {
    const int64_t def_dim = 1;
    int64_t dim;
    double *wt = NULL, *loc = NULL, *sc = NULL;
    size_t nw = 0, nl = 0, ns = 0;
    const char *path = hb_config_path(cfg);
    mixture *m = NULL;
    if (hb_cfg_int(cfg, "model", "dim", &def_dim, 1, 100000000, &dim, err) ||
        hb_cfg_double_list(cfg, "model", "weights", "0.2, 0.3, 0.1, 0.4", -DBL_MAX, DBL_MAX, &wt,
                           &nw, err) ||
        hb_cfg_double_list(cfg, "model", "locations", "-2, 0, 3.2, 2.5", -DBL_MAX, DBL_MAX, &loc,
                           &nl, err) ||
        hb_cfg_double_list(cfg, "model", "scales", "1.2, 1, 5, 2.8", -DBL_MAX, DBL_MAX, &sc, &ns,
                           err))
        goto fail;
    if (nw != nl || nw != ns) {
        hb_fail(err, HB_ERR_USAGE,
                "%s: [model] weights, locations, scales: need one value per component in each "
                "list, got %zu, %zu and %zu",
                path, nw, nl, ns);
        goto fail;
    }
    double wsum = 0.0;
    for (size_t k = 0; k < nw; k++) {
        if (!(wt[k] > 0.0)) {
            hb_fail(err, HB_ERR_USAGE, "%s: [model] weights: weight %zu is %g; must be > 0", path,
                    k + 1, wt[k]);
            goto fail;
        }
        if (!(sc[k] > 0.0)) {
            hb_fail(err, HB_ERR_USAGE, "%s: [model] scales: scale %zu is %g; must be > 0", path,
                    k + 1, sc[k]);
            goto fail;
        }
        wsum += wt[k];
    }
    m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->d = (size_t)dim;
    m->k = nw;
    m->loc = loc;
    loc = NULL;
    m->prec = malloc(nw * sizeof *m->prec);
    m->lconst = malloc(nw * sizeof *m->lconst);
    m->lc16 = malloc(nw * sizeof *m->lc16);
    m->hp16 = malloc(nw * sizeof *m->hp16);
    m->names = hb_coord_names("x", 1, m->d);
    if (!m->prec || !m->lconst || !m->lc16 || !m->hp16 || !m->names) goto oom;
    /* Weights are normalised: only their ratios matter, so "1, 1" means equal weights. */
    for (size_t k = 0; k < nw; k++) {
        m->prec[k] = 1.0 / (sc[k] * sc[k]);
        m->lconst[k] = log(wt[k] / wsum) - (double)m->d * (log(sc[k]) + 0.5 * HB_LOG_2PI);
        m->lc16[k] = m->lconst[k] * (16 * HB_LOG2E);
        m->hp16[k] = -0.5 * m->prec[k] * (16 * HB_LOG2E);
    }
    free(wt);
    free(sc);
    *impl = m;
    return HB_OK;
oom:
    hb_fail(err, HB_ERR_INTERNAL, "out of memory");
fail:
    free(wt);
    free(loc);
    free(sc);
    mixture_destroy(m);
    return err->code;
}

const hb_builtin_model hb_builtin_mixture = {
    .name = "mixture",
    .summary = "mixture of isotropic normals centred at (loc_k, ..., loc_k); default: the 1-D "
               "4-component RWMH benchmark",
    .options = "dim = 1 ; dimension (>= 1)\n"
               "weights = 0.2, 0.3, 0.1, 0.4 ; component weights (> 0, normalised)\n"
               "locations = -2, 0, 3.2, 2.5 ; component k is centred at (loc_k, ..., loc_k)\n"
               "scales = 1.2, 1, 5, 2.8 ; standard deviation of component k in every "
               "coordinate (> 0)\n",
    .create = mixture_create,
    .vtable = &mixture_vtable,
};
