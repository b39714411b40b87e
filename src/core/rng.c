/* Counter-based random streams: Philox4x32-10 keyed by (seed, chain), SIMD over lanes,
 * with Box-Muller normals computed by the vector math layer. */
#include "core/rng.h"

#include <Random123/philox.h>
#include <math.h>
#include <string.h>

#include "core/vmath.h"

void hb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    philox4x32_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    philox4x32_key_t k = {{key[0], key[1]}};
    philox4x32_ctr_t r = philox4x32_R(10, c, k);
    memcpy(out, r.v, sizeof r.v);
}

/* Philox4x32-10 for HB_LANES keys at once (the constants are Random123's; the result is
   checked against hb_philox4x32 in the tests). With AVX-512 each 32-bit word lives in a
   64-bit lane, so one vpmuludq gives all eight 32x32->64 products; elsewhere plain loops
   over lanes that the compiler vectorises. */
static inline void philox_lanes(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t seed,
                                uint64_t chain0, uint32_t w0[HB_LANES], uint32_t w1[HB_LANES],
                                uint32_t w2[HB_LANES], uint32_t w3[HB_LANES]) {
#if defined(__AVX512F__) && HB_LANES == 8
    const __m512i lo32 = _mm512_set1_epi64(0xffffffffLL);
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M4x32_0), m1 = _mm512_set1_epi64(PHILOX_M4x32_1);
    const __m512i wk0 = _mm512_set1_epi64(PHILOX_W32_0), wk1 = _mm512_set1_epi64(PHILOX_W32_1);
    __m512i x0 = _mm512_set1_epi64(c0), x1 = _mm512_set1_epi64(c1);
    __m512i x2 = _mm512_set1_epi64(c2), x3 = _mm512_set1_epi64(c3);
    __m512i k0 = _mm512_set1_epi64(seed);
    __m512i k1 = _mm512_and_si512(_mm512_add_epi64(_mm512_set1_epi64((long long)chain0),
                                                   _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)),
                                  lo32);
    for (int round = 0; round < 10; round++) {
        __m512i p0 = _mm512_mul_epu32(x0, m0), p1 = _mm512_mul_epu32(x2, m1);
        __m512i y0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1, 32), x1), k0);
        __m512i y2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0, 32), x3), k1);
        x1 = _mm512_and_si512(p1, lo32);
        x3 = _mm512_and_si512(p0, lo32);
        x0 = y0;
        x2 = y2;
        k0 = _mm512_and_si512(_mm512_add_epi64(k0, wk0), lo32);
        k1 = _mm512_and_si512(_mm512_add_epi64(k1, wk1), lo32);
    }
    _mm256_storeu_si256((__m256i *)w0, _mm512_cvtepi64_epi32(x0));
    _mm256_storeu_si256((__m256i *)w1, _mm512_cvtepi64_epi32(x1));
    _mm256_storeu_si256((__m256i *)w2, _mm512_cvtepi64_epi32(x2));
    _mm256_storeu_si256((__m256i *)w3, _mm512_cvtepi64_epi32(x3));
#else
    uint32_t x0[HB_LANES], x1[HB_LANES], x2[HB_LANES], x3[HB_LANES], k0[HB_LANES], k1[HB_LANES];
    for (int l = 0; l < HB_LANES; l++) {
        x0[l] = c0;
        x1[l] = c1;
        x2[l] = c2;
        x3[l] = c3;
        k0[l] = seed;
        k1[l] = (uint32_t)(chain0 + (uint64_t)l);
    }
    for (int round = 0; round < 10; round++) {
#pragma omp simd
        for (int l = 0; l < HB_LANES; l++) {
            uint64_t p0 = (uint64_t)PHILOX_M4x32_0 * x0[l];
            uint64_t p1 = (uint64_t)PHILOX_M4x32_1 * x2[l];
            uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1[l] ^ k0[l];
            uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3[l] ^ k1[l];
            x1[l] = (uint32_t)p1;
            x3[l] = (uint32_t)p0;
            x0[l] = y0;
            x2[l] = y2;
            k0[l] += PHILOX_W32_0;
            k1[l] += PHILOX_W32_1;
        }
    }
    memcpy(w0, x0, sizeof x0);
    memcpy(w1, x1, sizeof x1);
    memcpy(w2, x2, sizeof x2);
    memcpy(w3, x3, sizeof x3);
#endif
}

/* A uniform in (0, 1) from 64 random bits: 53 bits, offset by half a unit. */
static inline double u53(uint32_t lo, uint32_t hi) {
    uint64_t b = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)b + 0.5) * 0x1.0p-53;
}

/* Variates [2*b0, 2*b0 + n) of the stream; block b of the counter gives variates 2b, 2b+1. */
static void normals_from(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t b0,
                         size_t n, double *out) {
    uint32_t w0[HB_LANES], w1[HB_LANES], w2[HB_LANES], w3[HB_LANES];
    double u[HB_LANES], t[HB_LANES], r[HB_LANES], s[HB_LANES], co[HB_LANES];
    for (size_t b = 0; 2 * b < n; b++) {
        philox_lanes((uint32_t)(b0 + b), purpose, (uint32_t)iter, (uint32_t)(iter >> 32), seed,
                     chain0, w0, w1, w2, w3);
        for (int l = 0; l < HB_LANES; l++) {
            u[l] = u53(w0[l], w1[l]);
            t[l] = 2.0 * 0x1.0p-32 * (double)w2[l];
        }
        hb_vlog(r, u);
#pragma omp simd
        for (int l = 0; l < HB_LANES; l++) r[l] = sqrt(-2.0 * r[l]);
        hb_vsincospi(s, co, t);
        double *o = out + 2 * b * HB_LANES;
        for (int l = 0; l < HB_LANES; l++) o[l] = r[l] * co[l];
        if (2 * b + 1 < n)
            for (int l = 0; l < HB_LANES; l++) o[HB_LANES + l] = r[l] * s[l];
    }
}

static void uniforms_from(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                          size_t b0, size_t n, double *out) {
    uint32_t w0[HB_LANES], w1[HB_LANES], w2[HB_LANES], w3[HB_LANES];
    for (size_t b = 0; 2 * b < n; b++) {
        philox_lanes((uint32_t)(b0 + b), purpose, (uint32_t)iter, (uint32_t)(iter >> 32), seed,
                     chain0, w0, w1, w2, w3);
        double *o = out + 2 * b * HB_LANES;
        for (int l = 0; l < HB_LANES; l++) o[l] = u53(w0[l], w1[l]);
        if (2 * b + 1 < n)
            for (int l = 0; l < HB_LANES; l++) o[HB_LANES + l] = u53(w2[l], w3[l]);
    }
}

void hb_rng_normals_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t n,
                          double *out) {
    normals_from(seed, chain0, iter, purpose, 0, n, out);
}

void hb_rng_uniforms_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                           size_t n, double *out) {
    uniforms_from(seed, chain0, iter, purpose, 0, n, out);
}

/* Single-chain versions run the lane code (lane 0 is the chain) so that values are bitwise
   those of the SIMD path; they are for set-up and tests, not hot loops. */
typedef void (*gen_fn)(uint32_t, uint64_t, uint64_t, uint32_t, size_t, size_t, double *);

static void one_chain(gen_fn fn, uint32_t seed, uint64_t chain, uint64_t iter, uint32_t purpose,
                      size_t n, double *out) {
    double buf[64 * HB_LANES];
    for (size_t k0 = 0; k0 < n; k0 += 64) {
        size_t m = n - k0 < 64 ? n - k0 : 64;
        fn(seed, chain, iter, purpose, k0 / 2, m, buf);
        for (size_t k = 0; k < m; k++) out[k0 + k] = buf[k * HB_LANES];
    }
}

void hb_rng_normals(uint32_t seed, uint64_t chain, uint64_t iter, uint32_t purpose, size_t n,
                    double *out) {
    one_chain(normals_from, seed, chain, iter, purpose, n, out);
}

void hb_rng_uniforms(uint32_t seed, uint64_t chain, uint64_t iter, uint32_t purpose, size_t n,
                     double *out) {
    one_chain(uniforms_from, seed, chain, iter, purpose, n, out);
}

void hb_rng_stream_init(hb_rng_stream *s, uint32_t seed, uint64_t chain, uint64_t iter,
                        uint32_t purpose) {
    s->key[0] = seed;
    s->key[1] = (uint32_t)chain;
    s->ctr[0] = 0;
    s->ctr[1] = purpose;
    s->ctr[2] = (uint32_t)iter;
    s->ctr[3] = (uint32_t)(iter >> 32);
    s->have_spare = 0;
}

double hb_rng_stream_uniform(hb_rng_stream *s) {
    if (s->have_spare) {
        s->have_spare = 0;
        return s->spare;
    }
    uint32_t w[4];
    hb_philox4x32(s->ctr, s->key, w);
    s->ctr[0]++;
    s->spare = u53(w[2], w[3]);
    s->have_spare = 1;
    return u53(w[0], w[1]);
}
