/* Reductions over chain blocks whose result does not depend on how blocks are split over
 * ranks and threads: partials of each fixed block are combined along a fixed binary tree
 * over global block indices (node (l, i) covers blocks [i 2^l, (i+1) 2^l)). Each rank
 * combines the tree nodes that lie wholly inside its range and exchanges only those
 * (O(log blocks) per rank), so the bits are the same for 1 or 1000 ranks. */
#ifndef HB_CORE_REDUCE_H
#define HB_CORE_REDUCE_H

#include <mpi.h>
#include <stddef.h>

#include "heartbeat/heartbeat.h"

/* left <- combine(left, right) for partials of k doubles. Must not depend on anything but
   its arguments. */
typedef void (*hb_combine_fn)(double *left, const double *right, size_t k, const void *ctx);

/* Elementwise sum. */
void hb_combine_sum(double *left, const double *right, size_t k, const void *ctx);
/* Welford moments packed as [n, mean_0..mean_{d-1}, m2_0..m2_{d-1}] (k = 1 + 2d): Chan et
   al.'s pairwise merge. */
void hb_combine_moments(double *left, const double *right, size_t k, const void *ctx);
/* Add one point (stride-s coordinates) to packed moments, Welford's update. */
void hb_moments_add(double *acc, size_t d, const double *x, size_t stride);
/* Full co-moments packed as [n, mean_0..mean_{d-1}, C_00..C_{d-1,d-1}] (k = 1 + d + d^2,
   C row-major, C_ij = sum (x_i - mean_i)(x_j - mean_j)): the same pairwise merge. */
void hb_combine_comoments(double *left, const double *right, size_t k, const void *ctx);
/* Add one point (stride-s coordinates) to packed co-moments (Welford). */
void hb_comoments_add(double *acc, size_t d, const double *x, size_t stride);

/* Reduce: local holds n_local partials (k doubles each, contiguous) of global blocks
   [b0, b0 + n_local) out of n_total; result (k doubles) is the same on every rank.
   COLLECTIVE over comm. Returns HB_OK or HB_ERR_INTERNAL on an MPI failure. */
int hb_tree_reduce(MPI_Comm comm, const double *local, size_t b0, size_t n_local, size_t n_total,
                   size_t k, hb_combine_fn fn, const void *ctx, double *result);

/* As hb_tree_reduce, but the partial of local block b (global index, b0 <= b < b0 + n_local)
   is computed on demand by leaf(b, out, leaf_ctx) instead of being read from an array, so
   large partials (e.g. d x d co-moments of a position snapshot) need no per-block storage.
   leaf is called once per local block, from the calling thread. COLLECTIVE over comm. */
typedef void (*hb_leaf_fn)(size_t block, double *out, const void *leaf_ctx);
int hb_tree_reduce_leaves(MPI_Comm comm, hb_leaf_fn leaf, const void *leaf_ctx, size_t b0,
                          size_t n_local, size_t n_total, size_t k, hb_combine_fn fn,
                          const void *ctx, double *result);

#endif
