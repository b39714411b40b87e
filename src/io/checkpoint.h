/* Checkpoints: everything a run needs to continue bitwise as if never stopped, in one file
 * written collectively with MPI-IO. Chain data are stored per global batch (block) at fixed
 * offsets, so a checkpoint written by R ranks is read by any other number of ranks. The
 * file is written to PATH.tmp, synced, renamed to PATH by rank 0 and the directory synced:
 * a crash leaves either the previous checkpoint or the new one, never a torn file.
 *
 * Layout: a header (hb_ckpt_header), the sampler's adaptation blob, the run-level doubles
 * (pooled dense co-moments when used), padding to 8 bytes, then per_block doubles for each
 * of nb_total blocks in global order. */
#ifndef HB_IO_CHECKPOINT_H
#define HB_IO_CHECKPOINT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"

#define HB_CKPT_MAGIC "HBCKPT\x01\x00"

typedef struct hb_ckpt_header {
    char magic[8];
    uint64_t version;
    uint64_t config_hash; /* of the effective config without output/progress/checkpoint keys */
    uint64_t seed, chains, dim, nb_total, per_block;
    int64_t phase;     /* 0: warmup, 1: sampling */
    int64_t next_iter; /* warmup iterations done (phase 0), or draws written (phase 1) */
    int64_t grads_warmup, grads_sampling;
    double wall_warmup, wall_sampling;
    uint64_t blob_bytes, run_doubles;
    char sampler[32];
} hb_ckpt_header;

/* Hash of an effective config text, skipping the keys that may change between the parts of
   one run ([run] output, checkpoint_every, progress_every). */
uint64_t hb_ckpt_config_hash(const char *effective);

/* Write a checkpoint. COLLECTIVE. h, blob (h->blob_bytes) and run (h->run_doubles) are rank
   0's; blocks holds this rank's nb_local blocks [b0, b0 + nb_local) of h->per_block doubles.
   Errors are HB_ERR_IO, the same on all ranks. */
int hb_ckpt_write(MPI_Comm comm, const char *path, const hb_ckpt_header *h, const void *blob,
                  const double *run, const double *blocks, size_t b0, size_t nb_local,
                  hb_error *err);

/* Read the header, blob and run doubles (malloc'd; free them) on every rank. COLLECTIVE.
   A missing or foreign file is HB_ERR_IO / HB_ERR_USAGE with the path named. */
int hb_ckpt_read_head(MPI_Comm comm, const char *path, hb_ckpt_header *h, void **blob, double **run,
                      hb_error *err);

/* Read this rank's blocks. COLLECTIVE. */
int hb_ckpt_read_blocks(MPI_Comm comm, const char *path, const hb_ckpt_header *h, double *blocks,
                        size_t b0, size_t nb_local, hb_error *err);

#endif
