/* The in-house vector math kernels (core/vmath.h: exp, log, sincospi) against long-double
 * libm on millions of points, their special values, the AVX-512 forms bitwise against the
 * scalar forms, and the Box-Muller / uniform generators (core/rng.c) bitwise against a
 * scalar reference built on the Random123 reference function hb_philox4x32. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/vmath.h"
#include "hbtest.h"

/* A fixed xorshift stream for the test points (no dependence on the code under test). */
static uint64_t xs_state;
static uint64_t xs(void) {
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return xs_state;
}
static double unif(void) {
    return (double)(xs() >> 11) * 0x1.0p-53;
}

/* Error of got in units in the last place of the double nearest to the exact value want. */
static double ulps(double got, long double want) {
    double w = (double)want;
    if (isnan(got) || isnan(w)) return isnan(got) && isnan(w) ? 0.0 : INFINITY;
    if (isinf(w) || isinf(got)) return got == w ? 0.0 : INFINITY;
    int e;
    frexp(w, &e);
    double u = w == 0.0 ? 0x1.0p-1074 : ldexp(1.0, e - 53);
    if (u < 0x1.0p-1074) u = 0x1.0p-1074;
    return (double)(fabsl((long double)got - want) / u);
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Evaluate 8 points with the vector form (when built) and check it against the scalar form
   bitwise; returns the scalar results. */
enum { F_EXP, F_LOG };
static int eval8(int f, const double *in, double *out) {
    int mismatch = 0;
    for (int c = 0; c < 8; c++) out[c] = f == F_EXP ? hb_exp1(in[c]) : hb_log1(in[c]);
#ifdef HB_VMATH_AVX512
    double v[8];
    __m512d x = _mm512_loadu_pd(in);
    _mm512_storeu_pd(v, f == F_EXP ? hb_exp8(x) : hb_log8(x));
    for (int c = 0; c < 8; c++) mismatch += !same_bits(v[c], out[c]);
#endif
    return mismatch;
}

static void test_exp_accuracy(void) {
    const long n = 4000000;
    double worst = 0, at = 0;
    long mismatches = 0;
    xs_state = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < n; i += 8) {
        double in[8], out[8];
        for (int c = 0; c < 8; c++) {
            switch ((i / 8) % 5) {
            case 0:
                in[c] = -745.0 + 1455.0 * unif();
                break; /* the whole finite range */
            case 1:
                in[c] = 2.0 * unif() - 1.0;
                break;
            case 2:
                in[c] = -40.0 * unif();
                break; /* log-density differences */
            case 3:
                in[c] = -745.13 + 37.0 * unif();
                break; /* subnormal results */
            default:
                in[c] = 709.0 + 0.78 * unif();
                break; /* near overflow */
            }
        }
        mismatches += eval8(F_EXP, in, out);
        for (int c = 0; c < 8; c++) {
            double e = ulps(out[c], expl((long double)in[c]));
            /* subnormal results: count absolute error in units of the smallest subnormal */
            if (e > worst) worst = e, at = in[c];
        }
    }
    printf("  exp: max error %.3f ulp (at %.17g) over %ld points\n", worst, at, n);
    CU_ASSERT(worst <= 1.0);
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_log_accuracy(void) {
    const long n = 4000000;
    double worst = 0, at = 0;
    long mismatches = 0;
    xs_state = 0x2545f4914f6cdd1dull;
    for (long i = 0; i < n; i += 8) {
        double in[8], out[8];
        for (int c = 0; c < 8; c++) {
            switch ((i / 8) % 4) {
            case 0:
                in[c] = ((double)(xs() >> 11) + 0.5) * 0x1.0p-53;
                break; /* Box-Muller's u */
            case 1: {
                /* any positive finite double, subnormals included */
                uint64_t b = xs() & 0x7fefffffffffffffull;
                memcpy(&in[c], &b, sizeof b);
                if (in[c] == 0.0) in[c] = 1.0;
                break;
            }
            case 2:
                in[c] = 1.0 + (unif() - 0.5) * 0x1.0p-10;
                break; /* near 1 */
            default:
                in[c] = 1.0 + 3.0 * unif();
                break; /* mixture sums */
            }
        }
        mismatches += eval8(F_LOG, in, out);
        for (int c = 0; c < 8; c++) {
            double e = ulps(out[c], logl((long double)in[c]));
            if (e > worst) worst = e, at = in[c];
        }
    }
    printf("  log: max error %.3f ulp (at %.17g) over %ld points\n", worst, at, n);
    CU_ASSERT(worst <= 1.0);
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_special_values(void) {
    const double nan = NAN, inf = INFINITY;
    double in[8] = {nan, inf, -inf, 0.0, -0.0, 710.0, -746.0, 1.0}, out[8];
    CU_ASSERT_EQUAL(eval8(F_EXP, in, out), 0);
    CU_ASSERT(isnan(out[0]));
    CU_ASSERT(out[1] == inf);
    CU_ASSERT(out[2] == 0.0);
    CU_ASSERT(out[3] == 1.0 && out[4] == 1.0); /* exp(0) is exactly 1 */
    CU_ASSERT(out[5] == inf);
    CU_ASSERT(out[6] == 0.0);
    CU_ASSERT(fabs(out[7] - 2.718281828459045) <= 0x1.0p-51);
    double lin[8] = {nan, inf, -inf, 0.0, -0.0, -1.0, 1.0, 0x1.0p-1074};
    CU_ASSERT_EQUAL(eval8(F_LOG, lin, out), 0);
    CU_ASSERT(isnan(out[0]));
    CU_ASSERT(out[1] == inf);
    CU_ASSERT(isnan(out[2]));
    CU_ASSERT(out[3] == -inf && out[4] == -inf);
    CU_ASSERT(isnan(out[5]));
    CU_ASSERT(out[6] == 0.0); /* log(1) is exactly 0 */
    CU_ASSERT(fabs(out[7] - (-1074.0 * 0.6931471805599453)) < 1e-12);
}

#ifdef HB_VMATH_AVX512
/* The table-driven exp (the mixture's terms, RWMH's acceptance): within 1 ulp of long double
   libm over the ranges of test_exp_accuracy, and its documented special values. */
/* The table exp: 2^(v/16) against exp2l for v = 16 log2(e) t, t over the ranges of exp's
   test, and its special values. */
static void test_exp_t16s(void) {
    const long n = 4000000;
    const double s16 = 16 * HB_LOG2E;
    double worst = 0, at = 0;
    xs_state = 0x2545f4914f6cdd1dull;
    for (long i = 0; i < n; i += 8) {
        double in[8], out[8];
        for (int c = 0; c < 8; c++) {
            const double lo[5] = {-745.0, -1.0, -40.0, -745.13, 709.0};
            const double wd[5] = {1455.0, 2.0, 40.0, 37.0, 0.78};
            const int r = (int)((i / 8) % 5);
            in[c] = (lo[r] + wd[r] * unif()) * s16;
        }
        _mm512_storeu_pd(out, hb_exp8_t16s(_mm512_loadu_pd(in)));
        for (int c = 0; c < 8; c++) {
            double e = ulps(out[c], exp2l((long double)in[c] / 16));
            if (e > worst) worst = e, at = in[c];
        }
    }
    printf("  exp_t16s: max error %.3f ulp (at v = %.17g) over %ld points\n", worst, at, n);
    /* 1.21 measured; the table's uncorrected rounding allows up to 1.8 (vmath.h), and a wrong
       table entry or coefficient gives far more */
    CU_ASSERT(worst <= 1.5);
    const double inf = INFINITY;
    double sp[8] = {-inf, -1e300, -746.0 * s16, 0.0, -0.0, 709.8 * s16, inf, 16.0}, o[8];
    _mm512_storeu_pd(o, hb_exp8_t16s(_mm512_loadu_pd(sp)));
    CU_ASSERT(o[0] == 0.0 && o[1] == 0.0 && o[2] == 0.0);
    CU_ASSERT(o[3] == 1.0 && o[4] == 1.0);
    CU_ASSERT(o[5] == inf && o[6] == inf);
    CU_ASSERT(o[7] == 2.0);
}
#endif

/* sin(pi t), cos(pi t) for t = w 2^-31: absolute error against long double. */
static void test_sincospi_accuracy(void) {
    const long n = 4000000;
    const long double pi = 3.141592653589793238462643383279502884L;
    double worst = 0;
    long mismatches = 0;
    uint32_t at = 0;
    xs_state = 0x8c2e47b1d3a5f609ull;
    for (long i = 0; i < n; i += 8) {
        uint32_t w[8];
        for (int c = 0; c < 8; c++) w[c] = (uint32_t)xs();
        if (i < 64) { /* quadrant edges */
            static const uint32_t edge[8] = {
                0u,       1u << 29, (1u << 29) - 1, 1u << 30,
                3u << 29, 1u << 31, 0xffffffffu,    (3u << 30) + (1u << 29)};
            for (int c = 0; c < 8; c++) w[c] = edge[c] + (uint32_t)(i / 8) - 4u;
        }
        double s[8], co[8];
        for (int c = 0; c < 8; c++) hb_sincospi_w1(w[c], &s[c], &co[c]);
#ifdef HB_VMATH_AVX512
        uint64_t w64[8];
        for (int c = 0; c < 8; c++) w64[c] = w[c] | 0xdead000000000000ull; /* high bits ignored */
        __m512d vs, vc;
        double s8[8], c8[8];
        hb_sincospi_w8(_mm512_loadu_si512(w64), &vs, &vc, 1);
        _mm512_storeu_pd(s8, vs);
        _mm512_storeu_pd(c8, vc);
        for (int c = 0; c < 8; c++)
            mismatches += !same_bits(s8[c], s[c]) + !same_bits(c8[c], co[c]);
#endif
        for (int c = 0; c < 8; c++) {
            long double th = pi * ((long double)w[c] * 0x1.0p-31L);
            double e = (double)fmaxl(fabsl(s[c] - sinl(th)), fabsl(co[c] - cosl(th))) * 0x1.0p53;
            if (e > worst) worst = e, at = w[c];
        }
    }
    printf("  sincospi: max absolute error %.3f * 2^-53 (at w = %u) over %ld points\n", worst, at,
           n);
    CU_ASSERT(worst <= 2.0);
    CU_ASSERT_EQUAL(mismatches, 0);
}

static double ref_u53(uint32_t lo, uint32_t hi) {
    uint64_t b = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)b + 0.5) * 0x1.0p-53;
}

/* The generators, bitwise, against a scalar reference on the Random123 reference function:
   block b of (seed, chain; counter b, purpose, iter lo, iter hi) gives normals 2b, 2b+1 by
   Box-Muller and uniforms 2b, 2b+1. */
static void test_generators_reference(void) {
    enum { N = 23 };
    double lanes[N * HB_LANES], ulanes[N * HB_LANES];
    int bad = 0;
    const uint64_t iters[3] = {0, 77, 0x123456789abull};
    for (int t = 0; t < 3; t++) {
        uint64_t chain0 = (uint64_t)t * 0x7ffffff8ull, iter = iters[t];
        uint32_t seed = 12345u + (uint32_t)t;
        hb_rng_normals_lanes(seed, chain0, iter, HB_RNG_PROPOSAL, N, lanes);
        hb_rng_uniforms_lanes(seed, chain0, iter, HB_RNG_ACCEPT, N, ulanes);
        for (int c = 0; c < HB_LANES; c++)
            for (int b = 0; 2 * b < N; b++) {
                uint32_t key[2] = {seed, (uint32_t)(chain0 + (uint64_t)c)}, w[4], wu[4];
                uint32_t ctr[4] = {(uint32_t)b, HB_RNG_PROPOSAL, (uint32_t)iter,
                                   (uint32_t)(iter >> 32)};
                hb_philox4x32(ctr, key, w);
                ctr[1] = HB_RNG_ACCEPT;
                hb_philox4x32(ctr, key, wu);
                double r = sqrt(hb_log1_pos(ref_u53(w[0], w[1])) * -2.0), s, co;
                hb_sincospi_w1(w[2], &s, &co);
                bad += !same_bits(lanes[2 * b * HB_LANES + c], r * co);
                bad += !same_bits(ulanes[2 * b * HB_LANES + c], ref_u53(wu[0], wu[1]));
                if (2 * b + 1 < N) {
                    bad += !same_bits(lanes[(2 * b + 1) * HB_LANES + c], r * s);
                    bad += !same_bits(ulanes[(2 * b + 1) * HB_LANES + c], ref_u53(wu[2], wu[3]));
                }
            }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* The wide generators give, batch by batch, the _lanes values. */
static void test_wide_equals_lanes(void) {
    const size_t ns[4] = {1, 2, 7, 40}, ms[3] = {1, 3, 4};
    int bad = 0;
    for (int a = 0; a < 4; a++)
        for (int bq = 0; bq < 3; bq++) {
            size_t n = ns[a], m = ms[bq], nl = m * HB_LANES;
            double *w = malloc(n * nl * sizeof *w), *u = malloc(n * nl * sizeof *u);
            double one[40 * HB_LANES];
            hb_rng_normals_wide(5, 800, nl, 99, HB_RNG_PROPOSAL, n, w);
            hb_rng_uniforms_wide(5, 800, nl, 99, HB_RNG_ACCEPT, n, u);
            for (size_t v = 0; v < m; v++) {
                hb_rng_normals_lanes(5, 800 + v * HB_LANES, 99, HB_RNG_PROPOSAL, n, one);
                for (size_t k = 0; k < n; k++)
                    for (int c = 0; c < HB_LANES; c++)
                        bad += !same_bits(w[k * nl + v * HB_LANES + c], one[k * HB_LANES + c]);
                hb_rng_uniforms_lanes(5, 800 + v * HB_LANES, 99, HB_RNG_ACCEPT, n, one);
                for (size_t k = 0; k < n; k++)
                    for (int c = 0; c < HB_LANES; c++)
                        bad += !same_bits(u[k * nl + v * HB_LANES + c], one[k * HB_LANES + c]);
            }
            free(w);
            free(u);
        }
    CU_ASSERT_EQUAL(bad, 0);
}

int main(void) {
    static const hbt_case cases[] = {
        {"exp within 1 ulp, vector = scalar", test_exp_accuracy},
        {"log within 1 ulp, vector = scalar", test_log_accuracy},
        {"exp and log special values", test_special_values},
#ifdef HB_VMATH_AVX512
        {"table exp (AVX-512) within 1.5 ulp, special values", test_exp_t16s},
#endif
        {"sincospi within 2^-52, vector = scalar", test_sincospi_accuracy},
        {"generators = scalar reference on hb_philox4x32", test_generators_reference},
        {"wide generators = lanes generators", test_wide_equals_lanes},
    };
    return hbt_run_suite("vmath", cases, sizeof cases / sizeof *cases);
}
