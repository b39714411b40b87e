/* Random numbers as a pure function of (seed, global chain, iteration, purpose, block):
 * counter-based Philox4x32-10 (Random123). Key = (seed, chain); counter = (block, purpose,
 * iteration low 32 bits, iteration high 32 bits). Never depends on rank, thread or call
 * order, which is what makes draws independent of the decomposition. */
#ifndef HB_CORE_RNG_H
#define HB_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"

/* Purposes: separate streams within one iteration of one chain. */
enum hb_rng_purpose {
    HB_RNG_INIT = 1,     /* initial positions */
    HB_RNG_PROPOSAL = 2, /* proposal noise (normals) */
    HB_RNG_ACCEPT = 3,   /* Metropolis uniforms */
    HB_RNG_AUX = 4,      /* sampler-specific extras (momentum refresh, jitter, ...) */
    HB_RNG_AUX2 = 5,
    HB_RNG_WALK_PAIR = 6, /* 1-D random walk: iterations 2s and 2s + 1 share block 0 of s */
    HB_RNG_STEPSIZE_INIT = 0x1000, /* + trial: Stan's initial step-size heuristic (nuts) */
    HB_RNG_PMM_V0 = 0x2000,        /* pmm underdamped: initial velocities */
    HB_RNG_TEST = 99               /* tests and check-grad */
};

/* One Philox4x32-10 block (the Random123 reference function). */
void hb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* n standard normals for one chain: normal k comes from block k/2 (Box-Muller on a
   53-bit uniform radius and a 32-bit angle, with the in-house log and sincospi kernels of
   core/vmath.h). */
void hb_rng_normals(uint32_t seed, uint64_t chain, uint64_t iter, uint32_t purpose, size_t n,
                    double *out);
/* n uniforms in (0, 1) for one chain (53 bits, never 0 or 1): uniform k from block k/2. */
void hb_rng_uniforms(uint32_t seed, uint64_t chain, uint64_t iter, uint32_t purpose, size_t n,
                     double *out);

/* The same streams for HB_LANES consecutive chains chain0 .. chain0+HB_LANES-1, written
   lane-minor: out[k*HB_LANES + c] is variate k of chain chain0 + c. SIMD over lanes; the
   values are bitwise those of the single-chain functions. */
void hb_rng_normals_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose, size_t n,
                          double *out);
void hb_rng_uniforms_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                           size_t n, double *out);
/* The normals of hb_rng_normals_lanes combined on the fly into a proposal:
   out[k*HB_LANES + c] = fma(s[k], z, fma(a[k], g[k*HB_LANES + c], x[k*HB_LANES + c])) with
   z the normal k of lane c (the Langevin proposal x + h M g + sqrt(2 h M) xi in one pass).
   out must not alias x or g. */
void hb_rng_normals_axpy_lanes(uint32_t seed, uint64_t chain0, uint64_t iter, uint32_t purpose,
                               size_t n, const double *x, const double *g, const double *a,
                               const double *s, double *out);
/* The same streams for nl = m * HB_LANES consecutive chains chain0 .. chain0+nl-1 (m batches
   side by side), out[k*nl + c]: bitwise the values of the _lanes functions, generated with
   independent batches interleaved (more instruction-level parallelism for small n). */
void hb_rng_normals_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t iter, uint32_t purpose,
                         size_t n, double *out);
void hb_rng_uniforms_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t iter,
                          uint32_t purpose, size_t n, double *out);
/* A random-walk proposal from the normals z of hb_rng_normals_wide: out[k*nl + v*HB_LANES + c]
   = fma(s[k], z, xv[v][k*HB_LANES + c]) (xv[v]: the positions of batch v), and the Metropolis
   uniform u[v*HB_LANES + c] = (w3 + 1/2) 2^-32 from word 3 of block 0 of the same stream,
   which Box-Muller leaves unused, so that it needs no Philox block of its own (32 bits
   resolve an acceptance probability to 2^-32, far below any Monte Carlo error). */
void hb_rng_walk_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t iter, uint32_t purpose,
                      size_t n, const double *const *xv, const double *s, double *out, double *u);

/* The 1-D random walk's variates for a pair of iterations 2s, 2s + 1 (pair = s) of nl =
   m * HB_LANES consecutive chains, from block 0 alone: normals z_0, z_1 = r cos, r sin
   (2 pi w1 2^-32) with r = sqrt(-2 log((w0 + 1/2) 2^-32)), the proposal normals of iterations
   2s and 2s + 1, and u_0, u_1 = (w2 + 1/2) 2^-32, (w3 + 1/2) 2^-32, their Metropolis
   uniforms. One block and one log per two draws instead of per draw. The 32-bit radius cuts
   the normals' tails at sqrt(2 log 2^33) = 6.76 (probability 1.4e-11), which leaves a
   random-walk proposal symmetric, so the chain stays exact. For vector v (chains chain0 +
   v HB_LANES ..) and lane c, with h = half: y[v HB_LANES + c] = fma(s, z_h, xv[v][c]),
   u[v HB_LANES + c] = u_h and, unless zk is NULL, zk[v][c] = z_(1-h), uk[v][c] = u_(1-h) (the
   other iteration's variates, kept by the caller). */
typedef struct hb_walk_pair {
    int half;
    const double *const *xv;
    double s;
    double *y, *u;
    double *const *zk, *const *uk;
} hb_walk_pair;
void hb_rng_walk_pair_wide(uint32_t seed, uint64_t chain0, size_t nl, uint64_t pair,
                           uint32_t purpose, const hb_walk_pair *p);

/* A sequential stream of uniforms for one chain, for samplers whose number of draws per
   iteration varies (NUTS): uniform k of (seed, chain, iter, purpose) is bitwise
   hb_rng_uniforms(...)[k], generated two at a time on demand. */
typedef struct hb_rng_stream {
    uint32_t key[2], ctr[4];
    double spare;
    int have_spare;
} hb_rng_stream;

void hb_rng_stream_init(hb_rng_stream *s, uint32_t seed, uint64_t chain, uint64_t iter,
                        uint32_t purpose);
double hb_rng_stream_uniform(hb_rng_stream *s);

#endif
