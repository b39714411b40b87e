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
    HB_RNG_STEPSIZE_INIT = 0x1000, /* + trial: Stan's initial step-size heuristic (nuts) */
    HB_RNG_PMM_V0 = 0x2000,        /* pmm underdamped: initial velocities */
    HB_RNG_TEST = 99               /* tests and check-grad */
};

/* One Philox4x32-10 block (the Random123 reference function). */
void hb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* n standard normals for one chain: normal k comes from block k/2 (Box-Muller on a
   53-bit uniform radius and a 32-bit angle). */
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
