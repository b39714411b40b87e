/* Vectorised transcendental functions over HB_LANES doubles (SLEEF), chosen at compile time
 * for the widest SIMD the build targets. Every lane goes through the same code, so a
 * chain's result never depends on its neighbours. */
#ifndef HB_CORE_VMATH_H
#define HB_CORE_VMATH_H

#include <sleef.h>

#include "heartbeat/heartbeat.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define HB_VMATH_ISA                     "avx512f"
#define HB_VMAP1(fn8, fn4, fn1, out, in) _mm512_storeu_pd((out), fn8(_mm512_loadu_pd(in)))
#elif defined(__AVX2__)
#include <immintrin.h>
#define HB_VMATH_ISA "avx2"
#define HB_VMAP1(fn8, fn4, fn1, out, in)                                                           \
    do {                                                                                           \
        for (int hb_k_ = 0; hb_k_ < HB_LANES; hb_k_ += 4)                                          \
            _mm256_storeu_pd((out) + hb_k_, fn4(_mm256_loadu_pd((in) + hb_k_)));                   \
    } while (0)
#else
#define HB_VMATH_ISA "scalar"
#define HB_VMAP1(fn8, fn4, fn1, out, in)                                                           \
    do {                                                                                           \
        for (int hb_k_ = 0; hb_k_ < HB_LANES; hb_k_++) (out)[hb_k_] = fn1((in)[hb_k_]);            \
    } while (0)
#endif

#if HB_LANES % 8 != 0
#error "HB_LANES must be a multiple of 8"
#endif

/* out[c] = log(in[c]) for c < HB_LANES (out may alias in). */
static inline void hb_vlog(double *out, const double *in) {
    HB_VMAP1(Sleef_logd8_u10avx512f, Sleef_logd4_u10avx2, Sleef_log_u10, out, in);
}
static inline void hb_vexp(double *out, const double *in) {
    HB_VMAP1(Sleef_expd8_u10avx512f, Sleef_expd4_u10avx2, Sleef_exp_u10, out, in);
}
static inline void hb_vlog1p(double *out, const double *in) {
    HB_VMAP1(Sleef_log1pd8_u10avx512f, Sleef_log1pd4_u10avx2, Sleef_log1p_u10, out, in);
}

/* s[c] = sin(pi in[c]), co[c] = cos(pi in[c]), to 3.5 ULP (ample for Box-Muller). */
static inline void hb_vsincospi(double *s, double *co, const double *in) {
#if defined(__AVX512F__)
    Sleef___m512d_2 r = Sleef_sincospid8_u35avx512f(_mm512_loadu_pd(in));
    _mm512_storeu_pd(s, r.x);
    _mm512_storeu_pd(co, r.y);
#elif defined(__AVX2__)
    for (int k = 0; k < HB_LANES; k += 4) {
        Sleef___m256d_2 r = Sleef_sincospid4_u35avx2(_mm256_loadu_pd(in + k));
        _mm256_storeu_pd(s + k, r.x);
        _mm256_storeu_pd(co + k, r.y);
    }
#else
    for (int k = 0; k < HB_LANES; k++) {
        Sleef_double2 r = Sleef_sincospi_u35(in[k]);
        s[k] = r.x;
        co[k] = r.y;
    }
#endif
}

/* ---- In-house kernels: exp, log and sincospi as inline polynomials ----
   For the hot loops (Box-Muller normals, random-walk Metropolis, the mixture model), where
   SLEEF's out-of-line u10 functions (double-double arithmetic in log) took most of the time
   and, called one vector at a time, left no room to overlap independent chains. The
   coefficients are near-minimax (Chebyshev) fits computed by scripts/vmath_coeffs.py
   (mpmath). Every kernel has an AVX-512 form on __m512d and a scalar form doing the same
   IEEE operations in the same order (fma, one division), so the two agree bitwise; the
   scalar form is also what builds without AVX-512 run. tests/test_vmath.c checks both
   against long-double libm on millions of points (README, Benchmarks, has the bounds). */
#include <math.h>
#include <stdint.h>

#define HB_LOG2E  0x1.71547652b82fep+0
#define HB_LN2_HI 0x1.62e42fee00000p-1 /* 32 significant bits: e * HB_LN2_HI is exact */
#define HB_LN2_LO 0x1.a39ef35793c76p-33
#define HB_SQRT2  0x1.6a09e667f3bcdp+0

/* exp(r) = 1 + r (1 + r q(r)) on |r| <= ln2/2: q's coefficients (degree 9, highest first),
   then 1, 1. */
static const double hb_exp_c[12] = {2.510037583256123366441337e-8,
                                    2.762007587998336658589388e-7,
                                    2.755726848031002552558658e-6,
                                    2.480152132236869326597054e-5,
                                    1.984126986304054527059652e-4,
                                    1.388888891719671907668307e-3,
                                    8.333333333330064449468899e-3,
                                    4.166666666662416190263723e-2,
                                    1.66666666666666674519482e-1,
                                    5.000000000000001021090571e-1,
                                    1.0,
                                    1.0};
/* log(1+f) = f - (f^2/2 - s (f^2/2 + z P(z))) with s = f / (2 + f), z = s^2 <= 0.0295:
   P of degree 6, highest first. */
static const double hb_log_c[7] = {0.1461644968504340586042121, 0.1533172160055604126862622,
                                   0.1818288912526172208026829, 0.2222221113479507985507439,
                                   0.2857142862597548492145457, 0.3999999999989950448979256,
                                   0.6666666666666669686164355};
/* On x in [-1/4, 1/4], z = x^2: cos(pi x) = 1 + z C(z) (C of degree 6, then the 1) and
   sin(pi x) = x (pi + z S(z)) (S of degree 5, then pi). */
static const double hb_cos_c[8] = {-0.0001037008297159462668219345, 0.001929493874894941022739599,
                                   -0.02580688796470187633160289,   0.235330630283992222394843,
                                   -1.335262768853809441340206,     4.05871212641676517141862,
                                   -4.934802200544679307474195,     1.0};
static const double hb_sin_c[7] = {0.000462211102241876238028401, -0.007370143643593749433672556,
                                   0.08214587730641624982861679,  -0.5992645291845385868043786,
                                   2.550164039876615633487824,    -5.167712780049969395750089,
                                   3.141592653589793238462643};

/* Scalar forms: the reference. */
static inline double hb_exp1(double x) {
    if (x != x) return x;
    const double xc = fmin(fmax(x, -746.0), 710.0);
    const double n = nearbyint(xc * HB_LOG2E);
    double r = fma(-n, HB_LN2_HI, xc);
    r = fma(-n, HB_LN2_LO, r);
    double q = hb_exp_c[0];
    for (int k = 1; k < 12; k++) q = fma(q, r, hb_exp_c[k]);
    return scalbn(q, (int)n);
}

/* log of a positive finite x (normal or subnormal), without the special cases. */
static inline double hb_log1_pos(double x) {
    int ex;
    double m = 2.0 * frexp(x, &ex), e = (double)(ex - 1); /* x = m 2^e, m in [1, 2) */
    if (m > HB_SQRT2) {
        m = m * 0.5;
        e = e + 1.0;
    }
    const double f = m - 1.0, s = f / (f + 2.0), z = s * s;
    double p = hb_log_c[0];
    for (int k = 1; k < 7; k++) p = fma(p, z, hb_log_c[k]);
    const double hfsq = f * f * 0.5;
    const double t = fma(s, hfsq + p * z, e * HB_LN2_LO);
    return fma(e, HB_LN2_HI, -((hfsq - t) - f));
}

static inline double hb_log1(double x) {
    if (x == 0.0) return -INFINITY;
    if (!(x >= 0.0)) return NAN;
    if (x == INFINITY) return x;
    return hb_log1_pos(x);
}

/* sin(pi t) and cos(pi t) for t = w 2^-31 with w a 32-bit word (the Box-Muller angle): the
   quadrant q comes from the top bits, the remainder x = t - q/2 in [-1/4, 1/4] is exact. */
static inline void hb_sincospi_w1(uint32_t w, double *sp, double *cp) {
    const int64_t q = ((int64_t)w + (1 << 29)) >> 30; /* 0..4 */
    const double x = (double)((int64_t)w - q * (1 << 30)) * 0x1.0p-31, z = x * x;
    double c = hb_cos_c[0], s = hb_sin_c[0];
    for (int k = 1; k < 8; k++) c = fma(c, z, hb_cos_c[k]);
    for (int k = 1; k < 7; k++) s = fma(s, z, hb_sin_c[k]);
    s = s * x;
    const int odd = (int)(q & 1), half = (int)((q >> 1) & 1);
    const double co = odd ? s : c, si = odd ? c : s;
    *cp = odd ^ half ? -co : co;
    *sp = half ? -si : si;
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define HB_VMATH_AVX512 1
/* The same kernels on 8 lanes. */
static inline __m512d hb_exp8(__m512d x) {
    const __m512d xc =
        _mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(-746.0)), _mm512_set1_pd(710.0));
    const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(xc, _mm512_set1_pd(HB_LOG2E)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(HB_LN2_HI), xc);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(HB_LN2_LO), r);
    __m512d q = _mm512_set1_pd(hb_exp_c[0]);
    for (int k = 1; k < 12; k++) q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(hb_exp_c[k]));
    const __m512d y = _mm512_scalef_pd(q, n);
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), y, x);
}

/* 2^(v/16) = exp(v ln2/16), a table exp for hot loops whose callers produce v = 16 log2(e) t
   instead of t (a log density folds the factor into its constants; the acceptance probability
   takes a multiplication) and need neither NaN propagation nor the last bit of hb_exp8:
   n = round(v) = 16 m + j, u = v - n exactly (|u| <= 1/2, so no two-step reduction),
   2^(v/16) = 2^m T_j (1 + p) with T_j = hb_exp2_16[j], 2^(j/16) rounded to double, and
   p = u (C + u q(u)), C = ln2/16, q of degree 4 (scripts/vmath_coeffs.py: relative error of
   2^(u/16) below 3e-17). 13 floating-point operations and one permute, against hb_exp8's 19.
   T_j's rounding (half an ulp of T_j) is not corrected, which bounds the error by 1.8 ulp
   (T_j's rounding, at most 1 ulp of the result, the fit's 0.3 and the last rounding's 0.5);
   the test measures 1.21 ulp at worst over 4e6 points (tests/test_vmath.c). A second table of
   the roundings (0.83 ulp) cost the mixture's log density 6-8% (2.50 against 2.36 ns per chain
   and iteration in bench_kernels). v's own rounding counts as t's would (a relative error
   2^-53 of v moves the result by |t| 2^-53 relatively). v <= -746 * 16 log2(e) (and -inf)
   gives 0, above 709.78 * 16 log2(e) (and +inf) +inf; a NaN v gives a meaningless finite
   value, so callers test for NaN themselves. */
static const double hb_exp2_16[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
static const double hb_exp16s_c[6] = {9.181315729667457e-12,  1.2716049516906705e-09,
                                      1.4676100322318454e-07, 1.3550807778387664e-05,
                                      0.0009383847928089872,  0.04332169878499658};

static inline __m512d hb_exp8_t16s(__m512d v) {
    const __m512d vc = _mm512_max_pd(v, _mm512_set1_pd(-746.0 * 16 * HB_LOG2E));
    const __m512d sh = _mm512_set1_pd(0x1.8p52); /* kd's low mantissa bits hold n = 16 m + j */
    const __m512d kd = _mm512_add_pd(vc, sh);
    const __m512d n = _mm512_sub_pd(kd, sh);
    const __m512d u = _mm512_sub_pd(vc, n);
    const __m512i j = _mm512_castpd_si512(kd);
    const __m512d t =
        _mm512_permutex2var_pd(_mm512_loadu_pd(hb_exp2_16), j, _mm512_loadu_pd(hb_exp2_16 + 8));
    __m512d q = _mm512_set1_pd(hb_exp16s_c[0]);
    for (int k = 1; k < 6; k++) q = _mm512_fmadd_pd(q, u, _mm512_set1_pd(hb_exp16s_c[k]));
    const __m512d y = _mm512_fmadd_pd(t, _mm512_mul_pd(q, u), t);
    return _mm512_scalef_pd(y, _mm512_mul_pd(n, _mm512_set1_pd(1.0 / 16)));
}

static inline __m512d hb_log8_pos(__m512d x) {
    __m512d e = _mm512_getexp_pd(x);
    __m512d m = _mm512_getmant_pd(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    const __mmask8 big = _mm512_cmp_pd_mask(m, _mm512_set1_pd(HB_SQRT2), _CMP_GT_OQ);
    m = _mm512_mask_mul_pd(m, big, m, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, big, e, _mm512_set1_pd(1.0));
    const __m512d f = _mm512_sub_pd(m, _mm512_set1_pd(1.0));
    const __m512d s = _mm512_div_pd(f, _mm512_add_pd(f, _mm512_set1_pd(2.0)));
    const __m512d z = _mm512_mul_pd(s, s);
    __m512d p = _mm512_set1_pd(hb_log_c[0]);
    for (int k = 1; k < 7; k++) p = _mm512_fmadd_pd(p, z, _mm512_set1_pd(hb_log_c[k]));
    const __m512d hfsq = _mm512_mul_pd(_mm512_mul_pd(f, f), _mm512_set1_pd(0.5));
    const __m512d t = _mm512_fmadd_pd(s, _mm512_add_pd(hfsq, _mm512_mul_pd(p, z)),
                                      _mm512_mul_pd(e, _mm512_set1_pd(HB_LN2_LO)));
    return _mm512_fmsub_pd(e, _mm512_set1_pd(HB_LN2_HI), _mm512_sub_pd(_mm512_sub_pd(hfsq, t), f));
}

static inline __m512d hb_log8(__m512d x) {
    const __m512d zero = _mm512_setzero_pd(), inf = _mm512_set1_pd(INFINITY);
    __m512d y = hb_log8_pos(x);
    y = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, zero, _CMP_EQ_OQ), y, _mm512_set1_pd(-INFINITY));
    y = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, zero, _CMP_NGE_UQ), y, _mm512_set1_pd(NAN));
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, inf, _CMP_EQ_OQ), y, inf);
}

/* w: the angle word in the low 32 bits of each 64-bit lane (the high bits are ignored).
   want_sin = 0 skips the sine (the second normal of a pair that nobody uses). */
static inline void hb_sincospi_w8(__m512i w, __m512d *sp, __m512d *cp, int want_sin) {
    const __m512i wl = _mm512_and_si512(w, _mm512_set1_epi64(0xffffffffLL));
    const __m512i q = _mm512_srli_epi64(_mm512_add_epi64(wl, _mm512_set1_epi64(1LL << 29)), 30);
    const __m512i rem = _mm512_sub_epi64(wl, _mm512_slli_epi64(q, 30));
    const __m512d x = _mm512_mul_pd(_mm512_cvtepi64_pd(rem), _mm512_set1_pd(0x1.0p-31));
    const __m512d z = _mm512_mul_pd(x, x);
    __m512d c = _mm512_set1_pd(hb_cos_c[0]);
    for (int k = 1; k < 8; k++) c = _mm512_fmadd_pd(c, z, _mm512_set1_pd(hb_cos_c[k]));
    __m512d s = _mm512_set1_pd(hb_sin_c[0]);
    for (int k = 1; k < 7; k++) s = _mm512_fmadd_pd(s, z, _mm512_set1_pd(hb_sin_c[k]));
    s = _mm512_mul_pd(s, x);
    const __mmask8 odd = _mm512_test_epi64_mask(q, _mm512_set1_epi64(1));
    const __mmask8 half = _mm512_test_epi64_mask(q, _mm512_set1_epi64(2));
    const __m512d sign = _mm512_set1_pd(-0.0);
    const __m512d co = _mm512_mask_blend_pd(odd, c, s);
    *cp = _mm512_mask_xor_pd(co, odd ^ half, co, sign);
    if (want_sin) {
        const __m512d si = _mm512_mask_blend_pd(odd, s, c);
        *sp = _mm512_mask_xor_pd(si, half, si, sign);
    }
}
#endif

/* out[c] = exp(in[c]), log(in[c]) for c < HB_LANES with the in-house kernels (out may alias
   in). */
static inline void hb_vexp_ih(double *out, const double *in) {
#ifdef HB_VMATH_AVX512
    for (int k = 0; k < HB_LANES; k += 8)
        _mm512_storeu_pd(out + k, hb_exp8(_mm512_loadu_pd(in + k)));
#else
    for (int k = 0; k < HB_LANES; k++) out[k] = hb_exp1(in[k]);
#endif
}
static inline void hb_vlog_ih(double *out, const double *in) {
#ifdef HB_VMATH_AVX512
    for (int k = 0; k < HB_LANES; k += 8)
        _mm512_storeu_pd(out + k, hb_log8(_mm512_loadu_pd(in + k)));
#else
    for (int k = 0; k < HB_LANES; k++) out[k] = hb_log1(in[k]);
#endif
}

#endif
