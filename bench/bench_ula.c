/* ULA against its roofline in one process: the time of the normal variates alone (generated
 * as the samplers do, for chains x dim x (iterations - 1)) and of ULA's sampling iterations
 * of the same shape (hb_run on CONFIG, one thread, no output, minus a run of one draw: set-up
 * excluded), interleaved REPS times; the least disturbed (minimum) time of each and their
 * ratio. On a shared machine interleaving in one process keeps both sides under the same
 * conditions. Usage: bench_ula CONFIG [REPS [CHAINS DIM ITERS]] (CONFIG's chains, dim and
 * draws; default 4096, 100, 400). */
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "heartbeat/heartbeat.h"

static double normals_time(size_t chains, size_t dim, size_t iters, double *sink) {
    const size_t nb = (chains + HB_LANES - 1) / HB_LANES;
    double *buf = aligned_alloc(64, (dim * HB_LANES * sizeof(double) + 63) / 64 * 64);
    const double t0 = omp_get_wtime();
    for (size_t it = 0; it < iters; it++)
        for (size_t b = 0; b < nb; b++) {
            hb_rng_normals_lanes(1, b * HB_LANES, it, HB_RNG_PROPOSAL, dim, buf);
            *sink += buf[0];
        }
    const double t = omp_get_wtime() - t0;
    free(buf);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_ula CONFIG [REPS [CHAINS DIM ITERS]]\n");
        return 2;
    }
    const int reps = argc > 2 ? atoi(argv[2]) : 5;
    const size_t chains = argc > 3 ? (size_t)atol(argv[3]) : 4096;
    const size_t dim = argc > 4 ? (size_t)atol(argv[4]) : 100;
    const size_t iters = argc > 5 ? (size_t)atol(argv[5]) : 400;
    if (reps < 1 || chains < 1 || dim < 1 || iters < 2) {
        fprintf(stderr, "bench_ula: REPS, CHAINS and DIM must be >= 1 and ITERS >= 2\n");
        return 2;
    }
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    omp_set_num_threads(1);
    const char *over[] = {"run.output=none", "run.draws=1"};
    const hb_run_options full = {
        .config_path = argv[1], .overrides = over, .n_overrides = 1, .quiet = 1};
    const hb_run_options one = {
        .config_path = argv[1], .overrides = over, .n_overrides = 2, .quiet = 1};
    double best_n = INFINITY, best_u = INFINITY, best_1 = INFINITY, sink = 0;
    for (int r = 0; r < reps; r++) {
        const double tn = normals_time(chains, dim, iters - 1, &sink);
        double t[2];
        for (int k = 0; k < 2; k++) {
            hb_error err = {0};
            const double t0 = MPI_Wtime();
            if (hb_run(MPI_COMM_WORLD, k ? &one : &full, &err)) {
                fprintf(stderr, "bench_ula: %s\n", err.msg);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            t[k] = MPI_Wtime() - t0;
        }
        best_n = fmin(best_n, tn);
        best_u = fmin(best_u, t[0]);
        best_1 = fmin(best_1, t[1]);
    }
    best_u -= best_1; /* the sampling iterations after the first */
    const double n = (double)chains * (double)dim * (double)(iters - 1);
    printf("normals alone: %.3g per second per core (%.3f s)\n", n / best_n, best_n);
    printf("ULA: %.3g coordinate updates per second per core (%.3f s; set-up, %.3f s, "
           "excluded)\n",
           n / best_u, best_u, best_1);
    printf("ULA / roofline = %.2f (best of %d interleaved) [sink %g]\n", best_n / best_u, reps,
           sink);
    MPI_Finalize();
    return 0;
}
