/* Roofline for the Langevin samplers: normal variates per second per core, generated the way
 * the samplers do (Philox lanes + SIMD Box-Muller), for the same shape as the ULA benchmark
 * (chains x dim per iteration). Usage: bench_rng [chains] [dim] [iterations] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"

int main(int argc, char **argv) {
    size_t chains = argc > 1 ? (size_t)atol(argv[1]) : 4096;
    size_t dim = argc > 2 ? (size_t)atol(argv[2]) : 100;
    size_t iters = argc > 3 ? (size_t)atol(argv[3]) : 200;
    size_t nb = (chains + HB_LANES - 1) / HB_LANES;
    double *buf = aligned_alloc(64, (dim * HB_LANES * sizeof(double) + 63) / 64 * 64);
    double sink = 0;
    double t0 = omp_get_wtime();
    for (size_t it = 0; it < iters; it++)
        for (size_t b = 0; b < nb; b++) {
            hb_rng_normals_lanes(1, b * HB_LANES, it, HB_RNG_PROPOSAL, dim, buf);
            sink += buf[0];
        }
    double t = omp_get_wtime() - t0;
    double n = (double)(nb * HB_LANES) * (double)dim * (double)iters;
    printf("normals: %.4g per second per core (%zu chains x %zu dims x %zu iterations in %.3f s)"
           " [sink %g]\n",
           n / t, nb * HB_LANES, dim, iters, t, sink);
    free(buf);
    return 0;
}
