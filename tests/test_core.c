/* Core: Philox known answers, lane/single agreement, normal and uniform variates
 * (moments, Kolmogorov-Smirnov), dual averaging and Stan's window schedule. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/adapt.h"
#include "core/rng.h"
#include "core/vmath.h"
#include "hbtest.h"
#include "io/config.h"
#include "models/models.h"
#include "samplers/sampler.h"

static void test_philox_known_answer(void) {
    /* Random123's kat_vectors: philox4x32_10 with zero counter and key. */
    uint32_t ctr[4] = {0, 0, 0, 0}, key[2] = {0, 0}, out[4];
    hb_philox4x32(ctr, key, out);
    CU_ASSERT_EQUAL(out[0], 0x6627e8d5u);
    CU_ASSERT_EQUAL(out[1], 0xe169c58du);
    CU_ASSERT_EQUAL(out[2], 0xbc57ac4cu);
    CU_ASSERT_EQUAL(out[3], 0x9b00dbd8u);
    /* and with all bits set (kat_vectors: 408f276d 41c83b0e a20bc7c6 6d5451fd) */
    uint32_t c1[4] = {~0u, ~0u, ~0u, ~0u}, k1[2] = {~0u, ~0u};
    hb_philox4x32(c1, k1, out);
    CU_ASSERT_EQUAL(out[0], 0x408f276du);
    CU_ASSERT_EQUAL(out[1], 0x41c83b0eu);
    CU_ASSERT_EQUAL(out[2], 0xa20bc7c6u);
    CU_ASSERT_EQUAL(out[3], 0x6d5451fdu);
    /* and the pi-digits vector (d16cfe09 94fdcceb 5001e420 24126ea1) */
    uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    uint32_t k2[2] = {0xa4093822u, 0x299f31d0u};
    hb_philox4x32(c2, k2, out);
    CU_ASSERT_EQUAL(out[0], 0xd16cfe09u);
    CU_ASSERT_EQUAL(out[1], 0x94fdccebu);
    CU_ASSERT_EQUAL(out[2], 0x5001e420u);
    CU_ASSERT_EQUAL(out[3], 0x24126ea1u);
}

/* The SIMD lane generator must give, for every lane, the single-chain stream. */
static void test_lanes_match_single(void) {
    enum { N = 37 };
    double lanes[N * HB_LANES], one[N];
    for (uint64_t chain0 = 0; chain0 < 3 * HB_LANES; chain0 += HB_LANES) {
        hb_rng_normals_lanes(7, chain0, 123456789012ull, HB_RNG_PROPOSAL, N, lanes);
        for (int c = 0; c < HB_LANES; c++) {
            hb_rng_normals(7, chain0 + (uint64_t)c, 123456789012ull, HB_RNG_PROPOSAL, N, one);
            for (int k = 0; k < N; k++)
                CU_ASSERT_EQUAL(memcmp(&one[k], &lanes[k * HB_LANES + c], 8), 0);
        }
        hb_rng_uniforms_lanes(7, chain0, 5, HB_RNG_ACCEPT, N, lanes);
        for (int c = 0; c < HB_LANES; c++) {
            hb_rng_uniforms(7, chain0 + (uint64_t)c, 5, HB_RNG_ACCEPT, N, one);
            for (int k = 0; k < N; k++)
                CU_ASSERT_EQUAL(memcmp(&one[k], &lanes[k * HB_LANES + c], 8), 0);
        }
    }
    /* Long single-chain requests are generated in pieces: still the same stream. */
    double big[300], lane_big[300 * HB_LANES];
    hb_rng_normals(9, 16, 2, HB_RNG_PROPOSAL, 300, big);
    hb_rng_normals_lanes(9, 16, 2, HB_RNG_PROPOSAL, 300, lane_big);
    for (int k = 0; k < 300; k++) CU_ASSERT_EQUAL(big[k], lane_big[k * HB_LANES]);
}

/* The random-walk generator: y = x + s z with z the normals of the proposal stream, and the
   Metropolis uniform from word 3 of block 0 of that stream (checked against the reference
   Philox), for groups of 1..4 batches and odd and even dimensions. */
static void test_walk(void) {
    enum { D = 5, NB = 4, NL = NB * HB_LANES };
    double x[NB][D * HB_LANES], s[D], y[D * NL], u[NL], z[D];
    const double *xv[NB];
    for (int v = 0; v < NB; v++) {
        hb_rng_normals_lanes(1, 0, (uint64_t)v, HB_RNG_TEST, D, x[v]);
        xv[v] = x[v];
    }
    for (int i = 0; i < D; i++) s[i] = 0.5 + i;
    for (size_t d = 1; d <= D; d++)
        for (size_t nb = 1; nb <= NB; nb++) {
            const size_t nl = nb * HB_LANES;
            hb_rng_walk_wide(7, 16, nl, 99, HB_RNG_PROPOSAL, d, xv, s, y, u);
            for (size_t c = 0; c < nl; c++) {
                const size_t v = c / HB_LANES, l = c % HB_LANES;
                hb_rng_normals(7, 16 + c, 99, HB_RNG_PROPOSAL, d, z);
                for (size_t i = 0; i < d; i++)
                    CU_ASSERT_EQUAL(y[i * nl + c], fma(s[i], z[i], x[v][i * HB_LANES + l]));
                uint32_t ctr[4] = {0, HB_RNG_PROPOSAL, 99, 0}, key[2] = {7, (uint32_t)(16 + c)};
                uint32_t w[4];
                hb_philox4x32(ctr, key, w);
                CU_ASSERT_EQUAL(u[c], ((double)w[3] + 0.5) * 0x1.0p-32);
                CU_ASSERT(u[c] > 0.0 && u[c] < 1.0);
            }
        }
}

/* RWMH in 1-d takes the odd iteration's variates from the batch state the even iteration
   left: a step group of two batches with the cache, and the batches stepped one by one with
   the cache wiped before every odd iteration (so that it regenerates), move bitwise alike. */
static void test_rwmh_pair_cache(void) {
    enum { L = HB_LANES, NB = 2, IT = 12 };
    hb_error err;
    hb_error_clear(&err);
    hb_config *cfg = NULL;
    hb_model model;
    void *self = NULL;
    const hb_sampler_type *st = hb_sampler_find("rwmh");
    CU_ASSERT_FATAL(st != NULL);
    CU_ASSERT_FATAL(hb_config_load_string(&cfg, "t.ini",
                                          "[model]\nname = mixture\n[sampler]\nalgorithm = rwmh\n"
                                          "step_size = 1.5\nmetric = identity\n",
                                          &err) == 0);
    CU_ASSERT_FATAL(hb_model_open(&model, cfg, &err) == 0);
    CU_ASSERT_FATAL(st->create(cfg, &model, 0, &self, &err) == 0);
    const size_t ns = st->state_doubles(self, 1), per = (3 + ns) * L;
    CU_ASSERT_EQUAL(ns, 3);
    double *mem[2], *ws = calloc(st->workspace_doubles(self, 1) + 64, sizeof *ws);
    double *stats = calloc((st->n_stats + 1) * L * NB, sizeof *stats);
    hb_batch b[2][NB];
    for (int s = 0; s < 2; s++) {
        mem[s] = calloc(per * NB, sizeof *mem[s]);
        for (int k = 0; k < NB; k++) {
            double *p = mem[s] + (size_t)k * per;
            b[s][k] = (hb_batch){.x = p,
                                 .g = p + L,
                                 .lp = p + 2 * L,
                                 .state = p + 3 * L,
                                 .chain0 = (uint64_t)(k * L),
                                 .n_real = L};
            hb_rng_normals_lanes(3, (uint64_t)(k * L), 0, HB_RNG_TEST, 1, p);
            hb_model_eval_lanes(&model, p, p + 2 * L, p + L, ws);
        }
    }
    int same = 1, moved = 0;
    for (uint64_t it = 0; it < IT; it++) {
        hb_step_ctx ctx = {&model, 1, 11, it, 0, self, 0};
        hb_batch *bs[NB] = {&b[0][0], &b[0][1]};
        hb_step_out outs[NB];
        for (int k = 0; k < NB; k++)
            outs[k] = (hb_step_out){.stats = stats + k * (st->n_stats + 1) * L};
        double before = b[0][0].x[0];
        st->step_group(&ctx, bs, NB, ws, outs);
        moved += b[0][0].x[0] != before;
        for (int k = 0; k < NB; k++) {
            if (it & 1) memset(b[1][k].state, 0, ns * L * sizeof(double));
            st->step(&ctx, &b[1][k], ws, &outs[0]);
        }
        same &= memcmp(mem[0], mem[1], per * NB * sizeof(double)) == 0 || (it & 1);
        for (int k = 0; k < NB; k++) /* the odd iterations wiped b[1]'s cache: compare x, lp */
            same &= memcmp(b[0][k].x, b[1][k].x, 3 * L * sizeof(double)) == 0;
    }
    CU_ASSERT(same);
    CU_ASSERT(moved >= 3 && moved < IT); /* the chains move, and not always */
    for (int s = 0; s < 2; s++) free(mem[s]);
    free(ws);
    free(stats);
    st->destroy(self);
    hb_model_close(&model);
    hb_config_free(cfg);
}

/* Different purposes, iterations, chains and seeds give different streams. */
static void test_streams_distinct(void) {
    double a[4], b[4];
    hb_rng_normals(1, 0, 0, HB_RNG_PROPOSAL, 4, a);
    hb_rng_normals(1, 0, 0, HB_RNG_AUX, 4, b);
    CU_ASSERT_NOT_EQUAL(a[0], b[0]);
    hb_rng_normals(1, 0, 1, HB_RNG_PROPOSAL, 4, b);
    CU_ASSERT_NOT_EQUAL(a[0], b[0]);
    hb_rng_normals(1, 1, 0, HB_RNG_PROPOSAL, 4, b);
    CU_ASSERT_NOT_EQUAL(a[0], b[0]);
    hb_rng_normals(2, 0, 0, HB_RNG_PROPOSAL, 4, b);
    CU_ASSERT_NOT_EQUAL(a[0], b[0]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n standard normals: the first four moments within 4 standard errors, a Kolmogorov-Smirnov
   distance below the 0.1% critical value, and tails (|z| > 4 about 63 times in 10^6). Sorts z. */
static void check_normal_sample(double *z, size_t n) {
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        double x = z[i];
        m1 += x;
        m2 += x * x;
        m3 += x * x * x;
        m4 += x * x * x * x;
    }
    m1 /= (double)n, m2 /= (double)n, m3 /= (double)n, m4 /= (double)n;
    double rn = sqrt((double)n);
    HBT_ASSERT_Z("mean", m1, 0.0, 1.0 / rn, 4);
    HBT_ASSERT_Z("E z^2", m2, 1.0, sqrt(2.0) / rn, 4);
    HBT_ASSERT_Z("E z^3", m3, 0.0, sqrt(15.0) / rn, 4);
    HBT_ASSERT_Z("E z^4", m4, 3.0, sqrt(96.0) / rn, 4);
    qsort(z, n, sizeof *z, cmp_double);
    double dmax = 0;
    for (size_t i = 0; i < n; i++) {
        double F = 0.5 * erfc(-z[i] / sqrt(2.0));
        double d1 = fabs(F - (double)i / (double)n), d2 = fabs(F - (double)(i + 1) / (double)n);
        if (d1 > dmax) dmax = d1;
        if (d2 > dmax) dmax = d2;
    }
    if (!(dmax * rn < 1.95)) fprintf(stderr, "  KS sqrt(n) D = %.3f\n", dmax * rn);
    CU_ASSERT(dmax * rn < 1.95);
    size_t tail = 0;
    for (size_t i = 0; i < n; i++) tail += fabs(z[i]) > 4;
    CU_ASSERT(tail > 30 * (n / 1000000) && tail < 110 * (n / 1000000));
}

/* One million normals of the block generator. */
static void test_normal_distribution(void) {
    enum { PER = 1000 };
    const size_t n = 1000 * PER;
    double *z = malloc(n * sizeof *z), buf[PER * HB_LANES];
    size_t k = 0;
    for (uint64_t it = 0; k < n; it++) {
        hb_rng_normals_lanes(20261122, it * HB_LANES, it, HB_RNG_PROPOSAL, PER, buf);
        for (size_t j = 0; j < PER * HB_LANES && k < n; j++) z[k++] = buf[j];
    }
    check_normal_sample(z, n);
    free(z);
}

/* The paired 1-d random walk generator: bitwise its definition on the reference Philox (one
   block per chain and pair of iterations: words 0, 1 Box-Muller with a 32-bit radius, words
   2, 3 the uniforms), either half, with and without the other half kept, for 1..4 batches; and
   2 x 10^6 of its normals (both halves) distributed as N(0, 1) with the documented tail cut. */
static void test_walk_pair(void) {
    enum { NB = 4, NL = NB * HB_LANES };
    double x[NB][HB_LANES], y[NL], u[NL], zk[NB][HB_LANES], uk[NB][HB_LANES];
    const double *xv[NB];
    double *zkv[NB], *ukv[NB];
    for (int v = 0; v < NB; v++) {
        hb_rng_normals_lanes(2, 0, (uint64_t)v, HB_RNG_TEST, 1, x[v]);
        xv[v] = x[v], zkv[v] = zk[v], ukv[v] = uk[v];
    }
    int bad = 0;
    const uint64_t pairs[3] = {0, 49, 0x123456789abull};
    for (int t = 0; t < 3; t++)
        for (int half = 0; half < 2; half++)
            for (size_t nb = 1; nb <= NB; nb++) {
                const size_t nl = nb * HB_LANES;
                const int keep = (int)nb % 2; /* both forms */
                const hb_walk_pair p = {.half = half,
                                        .xv = xv,
                                        .s = 0.3,
                                        .y = y,
                                        .u = u,
                                        .zk = keep ? zkv : NULL,
                                        .uk = keep ? ukv : NULL};
                hb_rng_walk_pair_wide(7, 40, nl, pairs[t], HB_RNG_WALK_PAIR, &p);
                for (size_t c = 0; c < nl; c++) {
                    const size_t v = c / HB_LANES, l = c % HB_LANES;
                    uint32_t ctr[4] = {0, HB_RNG_WALK_PAIR, (uint32_t)pairs[t],
                                       (uint32_t)(pairs[t] >> 32)};
                    uint32_t key[2] = {7, (uint32_t)(40 + c)}, w[4];
                    hb_philox4x32(ctr, key, w);
                    double s, co, r = sqrt(-2.0 * hb_log1_pos(((double)w[0] + 0.5) * 0x1.0p-32));
                    hb_sincospi_w1(w[1], &s, &co);
                    const double z[2] = {r * co, r * s};
                    const double uu[2] = {((double)w[2] + 0.5) * 0x1.0p-32,
                                          ((double)w[3] + 0.5) * 0x1.0p-32};
                    bad += y[c] != fma(0.3, z[half], x[v][l]) || u[c] != uu[half];
                    bad += keep && (zk[v][l] != z[!half] || uk[v][l] != uu[!half]);
                    bad += !(uu[0] > 0.0 && uu[0] < 1.0 && uu[1] > 0.0 && uu[1] < 1.0);
                }
            }
    CU_ASSERT_EQUAL(bad, 0);
    /* the variates themselves: x = 0, s = 1 gives y = z_0 and keeps z_1 */
    double zero[HB_LANES] = {0};
    for (int v = 0; v < NB; v++) xv[v] = zero;
    const size_t n = 2000000;
    double *z = malloc(n * sizeof *z), zmax = 0;
    const hb_walk_pair p = {.half = 0, .xv = xv, .s = 1.0, .y = y, .u = u, .zk = zkv, .uk = ukv};
    for (size_t k = 0, it = 0; k < n; it++) {
        hb_rng_walk_pair_wide(20261203, it * NL, NL, it, HB_RNG_WALK_PAIR, &p);
        for (size_t c = 0; c < NL && k < n; c++)
            z[k++] = y[c], z[k++] = zk[c / HB_LANES][c % HB_LANES];
    }
    for (size_t k = 0; k < n; k++) zmax = fmax(zmax, fabs(z[k]));
    CU_ASSERT(zmax <= 6.77); /* sqrt(2 log 2^33) = 6.7598 */
    check_normal_sample(z, n);
    free(z);
}

static void test_uniforms(void) {
    enum { PER = 500 };
    double buf[PER * HB_LANES], s = 0, mn = 1, mx = 0;
    size_t n = 0;
    for (uint64_t it = 0; it < 200; it++) {
        hb_rng_uniforms_lanes(3, 0, it, HB_RNG_ACCEPT, PER, buf);
        for (size_t j = 0; j < PER * HB_LANES; j++) {
            s += buf[j];
            mn = fmin(mn, buf[j]);
            mx = fmax(mx, buf[j]);
            n++;
        }
    }
    CU_ASSERT(mn > 0.0 && mx < 1.0);
    HBT_ASSERT_Z("uniform mean", s / (double)n, 0.5, sqrt(1.0 / 12.0 / (double)n), 4);
}

/* Dual averaging finds the step size of a known acceptance curve a(h) = exp(-h). */
/* The on-demand stream (NUTS) gives bitwise the block-generated uniforms of its key. */
static void test_stream_matches_block(void) {
    enum { N = 37 };
    double ref[N];
    hb_rng_uniforms(11, 123456, 77, HB_RNG_ACCEPT, N, ref);
    hb_rng_stream s;
    hb_rng_stream_init(&s, 11, 123456, 77, HB_RNG_ACCEPT);
    int same = 1;
    for (int k = 0; k < N; k++) same &= hb_rng_stream_uniform(&s) == ref[k];
    CU_ASSERT(same);
    hb_rng_stream_init(&s, 11, 123456, 78, HB_RNG_ACCEPT);
    CU_ASSERT(hb_rng_stream_uniform(&s) != ref[0]);
}

static void test_dual_averaging(void) {
    hb_dual_avg da;
    hb_dual_avg_init(&da, 1.0, 0.574);
    double h = 1.0;
    for (int t = 0; t < 2000; t++) h = hb_dual_avg_update(&da, exp(-h));
    double hf = hb_dual_avg_final(&da);
    CU_ASSERT_DOUBLE_EQUAL(hf, -log(0.574), 0.01);
}

/* Stan's windows for W = 1000: buffer 75, windows ending at 99, 149, 249, 449, 949. */
static void test_windows(void) {
    hb_windows w;
    hb_windows_init(&w, 1000, 75, 50, 25);
    long ends[8], n = 0;
    for (long k = 0; k < 1000; k++)
        if (hb_windows_end_of_slow(&w, k)) ends[n++ < 8 ? n - 1 : 7] = k;
    CU_ASSERT_EQUAL(n, 5);
    long want[5] = {99, 149, 249, 449, 949};
    for (int i = 0; i < 5 && i < n; i++) CU_ASSERT_EQUAL(ends[i], want[i]);
    CU_ASSERT(!hb_windows_in_slow(&w, 74));
    CU_ASSERT(hb_windows_in_slow(&w, 75));
    CU_ASSERT(!hb_windows_in_slow(&w, 950));
    /* Short warmup: 15% / 75% / 10%, one slow window ending at W - term - 1. */
    hb_windows_init(&w, 100, 75, 50, 25);
    n = 0;
    for (long k = 0; k < 100; k++)
        if (hb_windows_end_of_slow(&w, k)) ends[n++ < 8 ? n - 1 : 7] = k;
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(ends[0], 89);
    hb_windows_init(&w, 10, 75, 50, 25);
    CU_ASSERT(!hb_windows_in_slow(&w, 5));
}

int main(void) {
    static const hbt_case cases[] = {
        {"philox known answer", test_philox_known_answer},
        {"lanes match single chain", test_lanes_match_single},
        {"streams distinct", test_streams_distinct},
        {"normal distribution", test_normal_distribution},
        {"paired 1-d random-walk variates: reference Philox, N(0, 1)", test_walk_pair},
        {"uniforms", test_uniforms},
        {"random-walk proposals and word-3 uniforms", test_walk},
        {"rwmh 1-d: the paired variates' cache changes nothing", test_rwmh_pair_cache},
        {"uniform stream = block uniforms", test_stream_matches_block},
        {"dual averaging", test_dual_averaging},
        {"stan windows", test_windows},
    };
    return hbt_run_suite("core", cases, sizeof cases / sizeof *cases);
}
