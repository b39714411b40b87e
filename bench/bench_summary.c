/* Benchmark of `heartbeat summary` (issue 4): writes a run file of C chains x N draws x D
 * coordinates with the output writer, then times the summary next to the time Debian's python3
 * with h5py takes only to read the same draws.
 *
 * usage: bench_summary HEARTBEAT_BIN [CHAINS DRAWS DIM] [FILE]
 *        (default 4096 1000 100, FILE bench_summary.h5 in the current directory, removed after;
 *         set HB_BENCH_KEEP=1 to keep it, HB_PYTHON to choose the interpreter) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heartbeat/heartbeat.h"
#include "io/h5out.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static double unif(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}

/* Wall time of a shell command (best of `reps` runs); negative if it failed. */
static double time_cmd(const char *cmd, int reps) {
    double best = -1;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        int rc = system(cmd);
        double t = now() - t0;
        if (rc != 0) {
            fprintf(stderr, "bench_summary: command failed (%d): %s\n", rc, cmd);
            return -1;
        }
        if (best < 0 || t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_summary HEARTBEAT_BIN [CHAINS DRAWS DIM] [FILE]\n");
        return 2;
    }
    const char *bin = argv[1];
    size_t nc = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
    size_t nd = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
    size_t dim = argc > 4 ? strtoul(argv[4], NULL, 10) : 100;
    const char *path = argc > 5 ? argv[5] : "bench_summary.h5";
    const char *py = getenv("HB_PYTHON") ? getenv("HB_PYTHON") : "/usr/bin/python3";

    /* theta[1..dim]: AR(1) chains, correlation 0..0.9 across coordinates */
    char **names = malloc(dim * sizeof *names);
    for (size_t j = 0; j < dim; j++) {
        names[j] = malloc(32);
        snprintf(names[j], 32, "theta[%zu]", j + 1);
    }
    size_t batch = 100 < nd ? 100 : nd;
    hb_out_layout L = {0};
    L.n_chains = nc;
    L.n_local = nc;
    L.n_draws = nd;
    L.dim = dim;
    L.coord_names = (const char *const *)names;
    hb_stat_spec stats[] = {{"lp", HB_STAT_F64},
                            {"acceptance_rate", HB_STAT_F64},
                            {"diverging", HB_STAT_BOOL},
                            {"n_steps", HB_STAT_I64}};
    L.n_stats = 4;
    L.stats = stats;
    L.chunk_draws = batch;
    /* about a megabyte per chunk, as the run loop chooses */
    L.chunk_chains = (1u << 20) / (8 * batch * dim);
    if (L.chunk_chains < 1) L.chunk_chains = 1;
    if (L.chunk_chains > nc) L.chunk_chains = nc;
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    double t0 = now();
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, path, &L, &err);
    if (rc == HB_OK) rc = hb_h5out_attr_string(o, "algorithm", "mala", &err);
    double *state = malloc(nc * dim * sizeof *state);
    double *pos = malloc(nc * batch * dim * sizeof *pos);
    double *lp = malloc(nc * batch * sizeof *lp), *acc = malloc(nc * batch * sizeof *acc);
    int8_t *dv = calloc(nc * batch, 1);
    int64_t *ns = malloc(nc * batch * sizeof *ns);
    for (size_t i = 0; i < nc * dim; i++) state[i] = 0;
    for (size_t d0 = 0; rc == HB_OK && d0 < nd; d0 += batch) {
        size_t m = nd - d0 < batch ? nd - d0 : batch;
        for (size_t c = 0; c < nc; c++)
            for (size_t d = 0; d < m; d++) {
                double l = 0;
                for (size_t j = 0; j < dim; j++) {
                    double rho = 0.9 * (double)j / (double)(dim > 1 ? dim - 1 : 1);
                    double e = sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif());
                    double y = rho * state[c * dim + j] + sqrt(1 - rho * rho) * e;
                    state[c * dim + j] = y;
                    pos[(c * m + d) * dim + j] = y;
                    l -= 0.5 * y * y;
                }
                lp[c * m + d] = l;
                acc[c * m + d] = 0.6;
                ns[c * m + d] = 1;
            }
        const void *st[4] = {lp, acc, dv, ns};
        rc = hb_h5out_write_draws(o, d0, m, pos, st, &err);
    }
    if (o) {
        int crc = hb_h5out_close(o, &err);
        if (rc == HB_OK) rc = crc;
    }
    double t_write = now() - t0;
    free(state);
    free(pos);
    free(lp);
    free(acc);
    free(dv);
    free(ns);
    if (rc != HB_OK) {
        fprintf(stderr, "bench_summary: writing %s: %s\n", path, err.msg);
        MPI_Finalize();
        return 1;
    }
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    double gb = (double)ftell(f) / 1e9;
    fclose(f);
    printf("file: %zu chains x %zu draws x %zu coordinates, %.2f GB, written in %.1f s\n", nc, nd,
           dim, gb, t_write);

    char cmd[2048];
    /* warm the page cache once, so that both readers start from the same state */
    snprintf(cmd, sizeof cmd, "cat '%s' > /dev/null", path);
    time_cmd(cmd, 1);
    snprintf(cmd, sizeof cmd,
             "%s -c \"import h5py; f = h5py.File('%s', 'r'); x = f['posterior/theta'][...]; "
             "assert x.shape == (%zu, %zu, %zu)\"",
             py, path, nc, nd, dim);
    double t_py = time_cmd(cmd, 2);
    snprintf(cmd, sizeof cmd, "%s summary '%s' --format csv > /dev/null 2>&1", bin, path);
    double t_sum = time_cmd(cmd, 2);
    snprintf(cmd, sizeof cmd, "%s summary '%s' --format csv > /dev/null 2>&1", bin, path);
    char env1[2100];
    snprintf(env1, sizeof env1, "OMP_NUM_THREADS=1 %s", cmd);
    double t_sum1 = time_cmd(env1, 1);
    /* --vars theta[1] still reads the whole variable (the reader reads whole variables):
       that time is the read plus one coordinate's diagnostics */
    snprintf(cmd, sizeof cmd, "%s summary '%s' --vars 'theta[1]' --format csv > /dev/null 2>&1",
             bin, path);
    double t_one = time_cmd(cmd, 1);
    printf("h5py read only (python3 + h5py, page cache warm): %8.2f s\n", t_py);
    printf("heartbeat summary --vars theta[1] (read all + 1 coordinate): %8.2f s\n", t_one);
    printf("heartbeat summary, all threads (OMP_NUM_THREADS=%s): %8.2f s  (%.1fx the h5py read)\n",
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "default", t_sum, t_sum / t_py);
    printf("heartbeat summary, 1 thread:                        %8.2f s\n", t_sum1);
    printf("per coordinate (%zu draws): %.3f s on all threads\n", nc * nd, t_sum / (double)dim);
    if (!getenv("HB_BENCH_KEEP") || strcmp(getenv("HB_BENCH_KEEP"), "1") != 0) unlink(path);
    for (size_t j = 0; j < dim; j++) free(names[j]);
    free(names);
    MPI_Finalize();
    return 0;
}
