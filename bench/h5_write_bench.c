/* Write throughput of the run-file writer (hb_h5out) on a run-shaped file: chains x draws x dim
 * doubles plus four sample stats, written in batches from every rank (collective).
 *
 *   mpirun -n 2 bench/h5_write_bench [--chains 4096] [--draws 1000] [--dim 100] [--batch 100]
 *                                    [--chunk-chains 8] [--deflate 0] [--out /tmp/hb_bench.h5]
 *                                    [--no-fill] [--keep]
 */
#define _POSIX_C_SOURCE 200809L
#include "io/h5out.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Draw-like values: full-entropy mantissas (compress about as badly as real draws). */
static double draw_value(uint64_t *s) {
    return (double)(next(s) >> 11) * 0x1p-53 * 6.0 - 3.0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t chains = 4096, draws = 1000, dim = 100, batch = 100, chunk_chains = 8;
    int deflate = 0, keep = 0, no_fill = 0;
    const char *out = "/tmp/hb_h5_write_bench.h5";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--chains"))
            chains = strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--draws"))
            draws = strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--dim"))
            dim = strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--batch"))
            batch = strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--chunk-chains"))
            chunk_chains = strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--deflate"))
            deflate = atoi(v), i++;
        else if (!strcmp(a, "--out"))
            out = v, i++;
        else if (!strcmp(a, "--keep"))
            keep = 1;
        else if (!strcmp(a, "--no-fill"))
            no_fill = 1;
        else {
            if (rank == 0) fprintf(stderr, "unknown option %s\n", a);
            MPI_Finalize();
            return 2;
        }
    }
    /* whole blocks of chunk_chains chains per rank, in rank order */
    size_t nb = chains / chunk_chains;
    size_t b0 = (size_t)rank * nb / (size_t)size, b1 = (size_t)(rank + 1) * nb / (size_t)size;
    size_t chain0 = b0 * chunk_chains, n_local = (b1 - b0) * chunk_chains;
    if (rank == size - 1) n_local = chains - chain0;

    char **names = malloc(dim * sizeof *names);
    for (size_t i = 0; i < dim; i++) {
        names[i] = malloc(32);
        snprintf(names[i], 32, "theta[%zu]", i + 1);
    }
    hb_stat_spec stats[4] = {{"lp", HB_STAT_F64},
                             {"acceptance_rate", HB_STAT_F64},
                             {"diverging", HB_STAT_BOOL},
                             {"n_steps", HB_STAT_I64}};
    hb_out_layout L = {chains, chain0, n_local,      draws, dim,     (const char *const *)names,
                       4,      stats,  chunk_chains, batch, deflate, no_fill};
    double *pos = malloc((n_local * batch * dim + 1) * sizeof *pos);
    double *lp = malloc((n_local * batch + 1) * sizeof *lp);
    double *acc = malloc((n_local * batch + 1) * sizeof *acc);
    int8_t *dv = malloc(n_local * batch + 1);
    int64_t *ns = malloc((n_local * batch + 1) * sizeof *ns);
    const void *sp[4] = {lp, acc, dv, ns};
    uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)rank;

    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, out, &L, &err);
    double t_create = MPI_Wtime() - t0, t_write = 0, t_gen = 0;
    for (size_t d0 = 0; rc == HB_OK && d0 < draws; d0 += batch) {
        size_t nd = d0 + batch > draws ? draws - d0 : batch;
        double g0 = MPI_Wtime();
        for (size_t i = 0; i < n_local * nd * dim; i++) pos[i] = draw_value(&seed);
        for (size_t i = 0; i < n_local * nd; i++) {
            lp[i] = -50.0 + draw_value(&seed);
            acc[i] = 0.5 + draw_value(&seed) / 8.0;
            dv[i] = (next(&seed) & 1023) == 0;
            ns[i] = 7 + (int64_t)(next(&seed) & 3);
        }
        t_gen += MPI_Wtime() - g0;
        MPI_Barrier(MPI_COMM_WORLD);
        double w0 = MPI_Wtime();
        rc = hb_h5out_write_draws(o, d0, nd, pos, sp, &err);
        t_write += MPI_Wtime() - w0;
    }
    double c0 = MPI_Wtime();
    if (rc == HB_OK)
        rc = hb_h5out_close(o, &err);
    else
        hb_h5out_abort(o);
    double t_close = MPI_Wtime() - c0, t_total = MPI_Wtime() - t0 - t_gen;
    if (rank == 0) {
        if (rc != HB_OK) {
            fprintf(stderr, "h5_write_bench: %s\n", err.msg);
        } else {
            struct stat st;
            double file_mb = stat(out, &st) == 0 ? (double)st.st_size / 1e6 : 0;
            double data_mb =
                (double)chains * (double)draws * ((double)dim * 8 + 8 + 8 + 1 + 8) / 1e6;
            printf("h5_write_bench: %d ranks, %zu chains x %zu draws x %zu dims, batch %zu, "
                   "chunk %zu chains, deflate %d%s\n",
                   size, chains, draws, dim, batch, chunk_chains, deflate,
                   no_fill ? ", no fill" : "");
            printf("  data %.0f MB, file %.0f MB; create %.2f s, writes %.2f s "
                   "(%.0f MB/s), close %.2f s; total %.2f s = %.0f MB/s\n",
                   data_mb, file_mb, t_create, t_write, data_mb / t_write, t_close, t_total,
                   data_mb / t_total);
        }
        if (!keep) unlink(out);
    }
    for (size_t i = 0; i < dim; i++) free(names[i]);
    free(names);
    free(pos);
    free(lp);
    free(acc);
    free(dv);
    free(ns);
    MPI_Finalize();
    return rc;
}
