/* Counter-based random streams: Philox4x32-10 keyed by (seed, chain), SIMD over lanes,
 * with Box-Muller normals from the in-house polynomial log and sincospi of vmath.h. */
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

/* Philox4x32-10 for HB_LANES keys at once, portable (builds without AVX-512): plain loops
   over lanes that the compiler vectorises; checked against hb_philox4x32 in the tests. */
#if !(defined(HB_VMATH_AVX512) && HB_LANES == 8)
static inline void philox_lanes(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t seed,
                                uint64_t chain0, uint32_t w0[HB_LANES], uint32_t w1[HB_LANES],
                                uint32_t w2[HB_LANES], uint32_t w3[HB_LANES]) {
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
}
#endif

/* A uniform in (0, 1) from 64 random bits: 53 bits, offset by half a unit. */
static inline double u53(uint32_t lo, uint32_t hi) {
    uint64_t b = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)b + 0.5) * 0x1.0p-53;
}

/* The generators below fill nvec vectors of HB_LANES consecutive chains (vector v holds
   chains chain0 + v*HB_LANES ..), variate k of vector v at out[k*ld + v*HB_LANES + c].
   Block b of the counter gives variates 2b and 2b+1: for normals, Box-Muller on a 53-bit
   uniform radius u (words 0, 1) and a 32-bit angle (word 2): r = sqrt(-2 log u), variate 2b
   = r cos(2 pi w2 / 2^32), variate 2b+1 = r sin(...), with the in-house log and sincospi of
   vmath.h. The (vector, block) tasks are taken two at a time so that two independent Philox
   chains overlap. Every lane's values depend only on its own key and counter. */
#if defined(HB_VMATH_AVX512) && HB_LANES == 8
/* Philox4x32-10 on 8 keys (seed, chain + l) for nt tasks at once (nt a constant after
   inlining). Each 32-bit word lives in the low half of a 64-bit lane; the high halves carry
   garbage that never reaches a low half (vpmuludq reads low halves only, outputs are
   truncated), which saves the masking of every round. */
static inline void philox8(int nt, const uint32_t *blk, const uint64_t *chain, uint32_t c1,
                           uint32_t c2, uint32_t c3, uint32_t seed, __m512i (*x)[4]) {
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M4x32_0), m1 = _mm512_set1_epi64(PHILOX_M4x32_1);
    const __m512i wk0 = _mm512_set1_epi64(PHILOX_W32_0), wk1 = _mm512_set1_epi64(PHILOX_W32_1);
    const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    __m512i k0 = _mm512_set1_epi64(seed), k1[4];
    for (int j = 0; j < nt; j++) {
        x[j][0] = _mm512_set1_epi64(blk[j]);
        x[j][1] = _mm512_set1_epi64(c1);
        x[j][2] = _mm512_set1_epi64(c2);
        x[j][3] = _mm512_set1_epi64(c3);
        k1[j] = _mm512_add_epi64(_mm512_set1_epi64((long long)chain[j]), lane);
    }
    for (int round = 0; round < 10; round++) {
        for (int j = 0; j < nt; j++) {
            const __m512i p0 = _mm512_mul_epu32(x[j][0], m0), p1 = _mm512_mul_epu32(x[j][2], m1);
            x[j][0] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x[j][1], k0, 0x96);
            x[j][2] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x[j][3], k1[j], 0x96);
            x[j][1] = p1;
            x[j][3] = p0;
            k1[j] = _mm512_add_epi32(k1[j], wk1);
        }
        k0 = _mm512_add_epi32(k0, wk0);
    }
}

static inline __m512d u53_8(__m512i lo, __m512i hi) {
    const __m512i b =
        _mm512_srli_epi64(_mm512_or_si512(_mm512_slli_epi64(hi, 32),
                                          _mm512_and_si512(lo, _mm512_set1_epi64(0xffffffffLL))),
                          11);
    return _mm512_mul_pd(_mm512_add_pd(_mm512_cvtepu64_pd(b), _mm512_set1_pd(0.5)),
                         _mm512_set1_pd(0x1.0p-53));
}

/* What a generator does with a pair of variates k = 2b, 2b+1 of one vector: store them at
   o[0] and o[ld] (axpy: combine them with the proposal terms first, see below). */
typedef struct axpy_args {
    const double *x, *g, *a, *s;
    const double *const *xv; /* walk: the positions of each vector */
    double *u;               /* walk: the Metropolis uniforms of word 3 of block 0 */
} axpy_args;

/* A uniform in (0, 1) from the 32 bits of a word: (w + 1/2) 2^-32. */
static inline __m512d u32_8(__m512i w) {
    const __m512i b = _mm512_and_si512(w, _mm512_set1_epi64(0xffffffffLL));
    return _mm512_mul_pd(_mm512_add_pd(_mm512_cvtepu64_pd(b), _mm512_set1_pd(0.5)),
                         _mm512_set1_pd(0x1.0p-32));
}

static inline void box_muller8(const __m512i w[4], __m512d *z0, __m512d *z1, int two) {
    const __m512d r =
        _mm512_sqrt_pd(_mm512_mul_pd(hb_log8_pos(u53_8(w[0], w[1])), _mm512_set1_pd(-2.0)));
    __m512d s, c;
    hb_sincospi_w8(w[2], &s, &c, two);
    *z0 = _mm512_mul_pd(r, c);
    if (two) *z1 = _mm512_mul_pd(r, s);
}

static inline void normal_pair8(const __m512i w[4], double *o, size_t ld, size_t v, size_t k,
                                int two, const axpy_args *p) {
    (void)v, (void)k, (void)p;
    __m512d z0, z1;
    box_muller8(w, &z0, &z1, two);
    _mm512_storeu_pd(o, z0);
    if (two) _mm512_storeu_pd(o + ld, z1);
}

/* A random-walk proposal o = x_v + s_k z (x_v: the positions of vector v, [k][HB_LANES]),
   and from block 0 also the uniform of word 3, which Box-Muller leaves unused. */
static inline void walk_pair8(const __m512i w[4], double *o, size_t ld, size_t v, size_t k, int two,
                              const axpy_args *p) {
    __m512d z0, z1;
    box_muller8(w, &z0, &z1, two);
    const double *x = p->xv[v] + k * HB_LANES;
    _mm512_storeu_pd(o, _mm512_fmadd_pd(_mm512_set1_pd(p->s[k]), z0, _mm512_loadu_pd(x)));
    if (two)
        _mm512_storeu_pd(o + ld, _mm512_fmadd_pd(_mm512_set1_pd(p->s[k + 1]), z1,
                                                 _mm512_loadu_pd(x + HB_LANES)));
    if (k == 0) _mm512_storeu_pd(p->u + v * HB_LANES, u32_8(w[3]));
}

/* o = x + a_k g + s_k z for the variate k of o (x, g at the offset of o). */
static inline __m512d axpy8(const axpy_args *p, size_t off, size_t k, __m512d z) {
    const __m512d t = _mm512_fmadd_pd(_mm512_set1_pd(p->a[k]), _mm512_loadu_pd(p->g + off),
                                      _mm512_loadu_pd(p->x + off));
    return _mm512_fmadd_pd(_mm512_set1_pd(p->s[k]), z, t);
}

static inline void axpy_pair8(const __m512i w[4], double *o, size_t ld, size_t v, size_t k, int two,
                              const axpy_args *p) {
    (void)v;
    __m512d z0, z1;
    box_muller8(w, &z0, &z1, two);
    const size_t off = k * ld;
    _mm512_storeu_pd(o, axpy8(p, off, k, z0));
    if (two) _mm512_storeu_pd(o + ld, axpy8(p, off + ld, k + 1, z1));
}

static inline void uniform_pair8(const __m512i w[4], double *o, size_t ld, size_t v, size_t k,
                                 int two, const axpy_args *p) {
    (void)v, (void)k, (void)p;
    _mm512_storeu_pd(o, u53_8(w[0], w[1]));
    if (two) _mm512_storeu_pd(o + ld, u53_8(w[2], w[3]));
}

#define HB_GEN_BODY(PAIR)                                                                          \
    const size_t nb = (n + 1) / 2, T = nvec * nb;                                                  \
    size_t v = 0, b = 0, t = 0;                                                                    \
    for (; t + 2 <= T; t += 2) {                                                                   \
        uint32_t blk[2];                                                                           \
        uint64_t ch[2];                                                                            \
        size_t vv[2], bb[2];                                                                       \
        for (int j = 0; j < 2; j++) {                                                              \
            vv[j] = v, bb[j] = b;                                                                  \
            blk[j] = (uint32_t)(b0 + b);                                                           \
            ch[j] = chain0 + v * HB_LANES;                                                         \
            if (++b == nb) b = 0, v++;                                                             \
        }                                                                                          \
        __m512i x[2][4];                                                                           \
        philox8(2, blk, ch, purpose, (uint32_t)iter, (uint32_t)(iter >> 32), seed, x);             \
        for (int j = 0; j < 2; j++)                                                                \
            PAIR(x[j], out + 2 * bb[j] * ld + vv[j] * HB_LANES, ld, vv[j], 2 * bb[j],              \
                 2 * bb[j] + 1 < n, args);                                                         \
    }                                                                                              \
    if (t < T) {                                                                                   \
        const uint32_t blk = (uint32_t)(b0 + b);                                                   \
        const uint64_t ch = chain0 + v * HB_LANES;                                                 \
        __m512i x[1][4];                                                                           \
        philox8(1, &blk, &ch, purpose, (uint32_t)iter, (uint32_t)(iter >> 32), seed, x);           \
        PAIR(x[0], out + 2 * b * ld + v * HB_LANES, ld, v, 2 * b, 2 * b + 1 < n, args);            \
    }

static void normals_gen(uint32_t seed, uint64_t chain0, size_t nvec, size_t ld, uint64_t iter,
                        uint32_t purpose, size_t b0, size_t n, double *out) {
    const axpy_args *args = NULL;
    HB_GEN_BODY(normal_pair8)
}

static void uniforms_gen(uint32_t seed, uint64_t chain0, size_t nvec, size_t ld, uint64_t iter,
                         uint32_t purpose, size_t b0, size_t n, double *out) {
    const axpy_args *args = NULL;
    HB_GEN_BODY(uniform_pair8)
}

static void walk_gen(uint32_t seed, uint64_t chain0, size_t nvec, size_t ld, uint64_t iter,
                     uint32_t purpose, size_t n, const double *const *xv, const double *s,
                     double *out, double *u) {
    const size_t b0 = 0;
    const axpy_args a = {.s = s, .xv = xv, .u = u}, *args = &a;
    HB_GEN_BODY(walk_pair8)
}

/* The paired 1-D random walk (hb_rng_walk_pair_wide): words 0, 1 of one block give two
   normals (Box-Muller on a 32-bit radius uniform and a 32-bit angle), words 2, 3 two uniforms;
   vector v's proposal and uniform of `half`, and the other half kept. Vectors are taken two at
   a time so that two Philox chains overlap. */
static inline void pair_out8(const __m512i w[4], size_t v, const hb_walk_pair *p) {
    const __m512d r = _mm512_sqrt_pd(_mm512_mul_pd(hb_log8_pos(u32_8(w[0])), _mm512_set1_pd(-2.0)));
    __m512d s, c;
    hb_sincospi_w8(w[1], &s, &c, 1);
    const __m512d z0 = _mm512_mul_pd(r, c), z1 = _mm512_mul_pd(r, s);
    const __m512d u0 = u32_8(w[2]), u1 = u32_8(w[3]);
    const size_t o = v * HB_LANES;
    _mm512_storeu_pd(p->y + o, _mm512_fmadd_pd(_mm512_set1_pd(p->s), p->half ? z1 : z0,
                                               _mm512_loadu_pd(p->xv[v])));
    _mm512_storeu_pd(p->u + o, p->half ? u1 : u0);
    if (!p->zk) return;
    _mm512_storeu_pd(p->zk[v], p->half ? z0 : z1);
    _mm512_storeu_pd(p->uk[v], p->half ? u0 : u1);
}

void hb_rng_walk_pair_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t pair,
                           uint32_t purpose, const hb_walk_pair *p) {
    const size_t nvec = nl / HB_LANES;
    const uint32_t blk[2] = {0, 0};
    size_t v = 0;
    for (; v + 2 <= nvec; v += 2) {
        const uint64_t ch[2] = {chain0 + v * HB_LANES, chain0 + (v + 1) * HB_LANES};
        __m512i x[2][4];
        philox8(2, blk, ch, purpose, (uint32_t)pair, (uint32_t)(pair >> 32), seed, x);
        pair_out8(x[0], v, p);
        pair_out8(x[1], v + 1, p);
    }
    if (v < nvec) {
        const uint64_t ch = chain0 + v * HB_LANES;
        __m512i x[1][4];
        philox8(1, blk, &ch, purpose, (uint32_t)pair, (uint32_t)(pair >> 32), seed, x);
        pair_out8(x[0], v, p);
    }
}

/* One vector (nvec = 1, ld = HB_LANES), normals combined into x + a g + s z. */
static void axpy_gen(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t n,
                     const axpy_args *args, double *out) {
    const size_t nvec = 1, ld = HB_LANES, b0 = 0;
    HB_GEN_BODY(axpy_pair8)
}
#else
/* Portable path: the same values from the scalar kernels; normal = 0 gives uniforms. */
static void scalar_gen(int normal, uint32_t seed, uint64_t chain0, size_t nvec, size_t ld,
                       uint64_t iter, uint32_t purpose, size_t b0, size_t n, double *out) {
    uint32_t w0[HB_LANES], w1[HB_LANES], w2[HB_LANES], w3[HB_LANES];
    for (size_t v = 0; v < nvec; v++)
        for (size_t b = 0; 2 * b < n; b++) {
            philox_lanes((uint32_t)(b0 + b), purpose, (uint32_t)iter, (uint32_t)(iter >> 32), seed,
                         chain0 + v * HB_LANES, w0, w1, w2, w3);
            double *o = out + 2 * b * ld + v * HB_LANES;
            const int two = 2 * b + 1 < n;
            for (int l = 0; l < HB_LANES; l++) {
                if (!normal) {
                    o[l] = u53(w0[l], w1[l]);
                    if (two) o[ld + l] = u53(w2[l], w3[l]);
                    continue;
                }
                double s, c, r = sqrt(hb_log1_pos(u53(w0[l], w1[l])) * -2.0);
                hb_sincospi_w1(w2[l], &s, &c);
                o[l] = r * c;
                if (two) o[ld + l] = r * s;
            }
        }
}

static void normals_gen(uint32_t seed, uint64_t chain0, size_t nvec, size_t ld, uint64_t iter,
                        uint32_t purpose, size_t b0, size_t n, double *out) {
    scalar_gen(1, seed, chain0, nvec, ld, iter, purpose, b0, n, out);
}

static void walk_gen(uint32_t seed, uint64_t chain0, size_t nvec, size_t ld, uint64_t iter,
                     uint32_t purpose, size_t n, const double *const *xv, const double *s,
                     double *out, double *u) {
    uint32_t w0[HB_LANES], w1[HB_LANES], w2[HB_LANES], w3[HB_LANES];
    for (size_t v = 0; v < nvec; v++)
        for (size_t b = 0; 2 * b < n; b++) { /* one block: normals 2b, 2b+1 (and u: block 0) */
            philox_lanes((uint32_t)b, purpose, (uint32_t)iter, (uint32_t)(iter >> 32), seed,
                         chain0 + v * HB_LANES, w0, w1, w2, w3);
            const size_t k = 2 * b;
            double *o = out + k * ld + v * HB_LANES;
            const double *x = xv[v] + k * HB_LANES;
            for (int l = 0; l < HB_LANES; l++) {
                double sn, c, r = sqrt(hb_log1_pos(u53(w0[l], w1[l])) * -2.0);
                hb_sincospi_w1(w2[l], &sn, &c);
                o[l] = fma(s[k], r * c, x[l]);
                if (k + 1 < n) o[ld + l] = fma(s[k + 1], r * sn, x[HB_LANES + l]);
                if (b == 0) u[v * HB_LANES + l] = ((double)w3[l] + 0.5) * 0x1.0p-32;
            }
        }
}

void hb_rng_walk_pair_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t pair,
                           uint32_t purpose, const hb_walk_pair *p) {
    uint32_t w0[HB_LANES], w1[HB_LANES], w2[HB_LANES], w3[HB_LANES];
    for (size_t v = 0; v < nl / HB_LANES; v++) {
        philox_lanes(0, purpose, (uint32_t)pair, (uint32_t)(pair >> 32), seed,
                     chain0 + v * HB_LANES, w0, w1, w2, w3);
        for (int l = 0; l < HB_LANES; l++) {
            const size_t o = v * HB_LANES + (size_t)l;
            double sn, c, r = sqrt(hb_log1_pos(((double)w0[l] + 0.5) * 0x1.0p-32) * -2.0);
            hb_sincospi_w1(w1[l], &sn, &c);
            const double z[2] = {r * c, r * sn};
            const double u[2] = {((double)w2[l] + 0.5) * 0x1.0p-32,
                                 ((double)w3[l] + 0.5) * 0x1.0p-32};
            p->y[o] = fma(p->s, z[p->half], p->xv[v][l]);
            p->u[o] = u[p->half];
            if (!p->zk) continue;
            p->zk[v][l] = z[!p->half];
            p->uk[v][l] = u[!p->half];
        }
    }
}

static void uniforms_gen(uint32_t seed, uint64_t chain0, size_t nvec, size_t ld, uint64_t iter,
                         uint32_t purpose, size_t b0, size_t n, double *out) {
    scalar_gen(0, seed, chain0, nvec, ld, iter, purpose, b0, n, out);
}

typedef struct axpy_args {
    const double *x, *g, *a, *s;
} axpy_args;

static void axpy_gen(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t n,
                     const axpy_args *p, double *out) {
    normals_gen(seed, chain0, 1, HB_LANES, iter, purpose, 0, n, out);
    for (size_t k = 0; k < n; k++)
        for (int l = 0; l < HB_LANES; l++) {
            const size_t o = k * HB_LANES + (size_t)l;
            out[o] = fma(p->s[k], out[o], fma(p->a[k], p->g[o], p->x[o]));
        }
}

#endif

static void normals_from(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t b0,
                         size_t n, double *out) {
    normals_gen(seed, chain0, 1, HB_LANES, iter, purpose, b0, n, out);
}

static void uniforms_from(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                          size_t b0, size_t n, double *out) {
    uniforms_gen(seed, chain0, 1, HB_LANES, iter, purpose, b0, n, out);
}

void hb_rng_normals_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t n,
                          double *out) {
    normals_from(seed, chain0, iter, purpose, 0, n, out);
}

void hb_rng_uniforms_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                           size_t n, double *out) {
    uniforms_from(seed, chain0, iter, purpose, 0, n, out);
}

void hb_rng_normals_axpy_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                               size_t n, const double *x, const double *g, const double *a,
                               const double *s, double *out) {
    const axpy_args args = {.x = x, .g = g, .a = a, .s = s};
    axpy_gen(seed, chain0, iter, purpose, n, &args, out);
}

void hb_rng_normals_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t iter, uint32_t purpose,
                         size_t n, double *out) {
    normals_gen(seed, chain0, nl / HB_LANES, nl, iter, purpose, 0, n, out);
}

void hb_rng_walk_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t iter, uint32_t purpose,
                      size_t n, const double *const *xv, const double *s, double *out, double *u) {
    walk_gen(seed, chain0, nl / HB_LANES, nl, iter, purpose, n, xv, s, out, u);
}

void hb_rng_uniforms_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t iter,
                          uint32_t purpose, size_t n, double *out) {
    uniforms_gen(seed, chain0, nl / HB_LANES, nl, iter, purpose, 0, n, out);
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
