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

#endif
