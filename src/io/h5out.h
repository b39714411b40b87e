/* The output file: one parallel HDF5 file per run in the ArviZ InferenceData layout
 * (netCDF-4 compatible: a dimension scale on every axis). Every function here is
 * COLLECTIVE over the communicator given to hb_h5out_create: all ranks call it, in the
 * same order, with the same arguments except for their own local data. Errors are agreed
 * over all ranks, so every rank returns the same status. */
#ifndef HB_IO_H5OUT_H
#define HB_IO_H5OUT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"

typedef enum hb_stat_type {
    HB_STAT_F64 = 0,  /* double */
    HB_STAT_BOOL = 1, /* int8, with attribute dtype = "bool" */
    HB_STAT_I64 = 2   /* int64 */
} hb_stat_type;

typedef struct hb_stat_spec {
    const char *name; /* e.g. "acceptance_rate" */
    hb_stat_type type;
} hb_stat_spec;

typedef struct hb_out_layout {
    size_t n_chains;                /* total chains written (padding chains excluded) */
    size_t chain0;                  /* first chain of this rank */
    size_t n_local;                 /* chains of this rank (may be 0) */
    size_t n_draws;                 /* draws per chain */
    size_t dim;                     /* unconstrained coordinates per draw */
    const char *const *coord_names; /* dim names as the model gives them, e.g. "theta[3]" */
    size_t n_stats;
    const hb_stat_spec *stats;
    size_t chunk_chains; /* chains per chunk; divides every rank's chain0 (small datasets
                            get a multiple of it, up to ~1 MiB chunks) */
    size_t chunk_draws;  /* draws per chunk (usually the write batch) */
    int deflate;         /* 0 = no compression, 1..9 = shuffle + deflate level */
    int no_fill;         /* 1 = skip the NaN fill at create: uncompressed data are then written
                            once instead of twice (measured: the fill doubled the I/O time of a
                            3.4 GB file), but draws never written read as 0, not NaN;
                            draws_committed still says which are valid */
} hb_out_layout;

typedef struct hb_h5out hb_h5out;

/* Create (truncate) the file and every group, dataset, dimension scale and coordinate.
   Root attributes draws_committed = 0. Posterior variables are built from coord_names:
   "theta[1]".."theta[8]" become /posterior/theta (chain, draw, theta_dim_0); "mu" becomes
   /posterior/mu (chain, draw); "a[1,1]".."a[2,3]" (row-major) become (chain, draw,
   a_dim_0, a_dim_1). Names that do not parse, whose base repeats non-contiguously or whose
   indices are not a complete 1-based row-major box (at most 4 indices) become one scalar
   variable each, sanitised ([A-Za-z0-9_], brackets/commas -> '_') and made unique; a
   sanitised variable keeps the original name in attribute heartbeat_name (h5in gives back
   the original coordinate names). Datasets are filled with NaN (0 for integer stats) at
   creation, so draws never written read as missing. chunk_chains is reduced to divide every
   rank's chain0 if it does not. */
int hb_h5out_create(hb_h5out **out, MPI_Comm comm, const char *path, const hb_out_layout *layout,
                    hb_error *err);

/* Open an existing run file for writing more draws (resume): the same layout must give
   the same variables and shapes, or the file belongs to another run (HB_ERR_IO with the
   dataset named). draws_committed is read back (hb_h5out_committed). */
int hb_h5out_reopen(hb_h5out **out, MPI_Comm comm, const char *path, const hb_out_layout *layout,
                    hb_error *err);
size_t hb_h5out_committed(const hb_h5out *o);

/* Root attributes, created or overwritten (written by all ranks with the same value; rank
   0's value is the one stored). */
int hb_h5out_attr_string(hb_h5out *o, const char *name, const char *value, hb_error *err);
int hb_h5out_attr_int(hb_h5out *o, const char *name, int64_t value, hb_error *err);
int hb_h5out_attr_double(hb_h5out *o, const char *name, double value, hb_error *err);

/* Write draws [draw0, draw0 + nd) of this rank's chains, then flush the file and raise
   draws_committed to draw0 + nd. pos is [n_local][nd][dim] (row-major); stats[k] is
   [n_local][nd] of the type stats[k].type says (double, int8_t, int64_t). Ranks with no
   chains may pass NULL. The data are flushed before draws_committed is raised (then flushed
   again); it is raised only when [draw0, draw0 + nd) continues the committed prefix.
   The flushes are syncs (HDF5's MPI-IO driver fsyncs in every flush): the committed draws
   are valid after a killed process and after a node crash.
   Fault injection for tests: with HB_FAULT_WRITE=k in the environment the k-th call fails
   as an I/O error would (on every rank). */
int hb_h5out_write_draws(hb_h5out *o, size_t draw0, size_t nd, const double *pos,
                         const void *const *stats, hb_error *err);

/* The adaptation result: group /adaptation with attribute step_size and the dataset
   inv_metric (inv_metric_dim_0 = dim) with its dimension scale; inv_metric is rank 0's.
   Calling it again replaces the group. */
int hb_h5out_adaptation(hb_h5out *o, double step_size, const double *inv_metric, size_t dim,
                        hb_error *err);

/* Further adaptation results in /adaptation (call after hb_h5out_adaptation): a scalar or
   text attribute of the group, or a dataset of rows x cols doubles (row-major; 1-D when
   cols = 1) with dimension scales <name>_dim_0 (and _dim_1); rank 0's values are stored. */
int hb_h5out_adaptation_attr(hb_h5out *o, const char *name, double value, hb_error *err);
int hb_h5out_adaptation_attr_string(hb_h5out *o, const char *name, const char *value,
                                    hb_error *err);
int hb_h5out_adaptation_matrix(hb_h5out *o, const char *name, const double *data, size_t rows,
                               size_t cols, hb_error *err);

/* Flush, fsync and close; frees o. */
int hb_h5out_close(hb_h5out *o, hb_error *err);

/* Close without error reporting, and delete the file (rank 0) if it never committed a
   draw (on early failure); frees o. */
void hb_h5out_abort(hb_h5out *o);

#endif
