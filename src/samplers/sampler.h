/* The sampler type table (GSL style): a kernel that steps one SIMD batch of chains, plus
 * hooks through which the run loop feeds it pooled statistics during warmup. Kernels never
 * touch MPI or HDF5; the run loop owns both (BlackJAX's init/step split). */
#ifndef HB_SAMPLERS_SAMPLER_H
#define HB_SAMPLERS_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"
#include "io/config.h"
#include "io/h5out.h"
#include "models/models.h"

/* Batches a step_group call takes at most (16: the RWMH seed benchmark, 10^9 draws of the 1-D
   mixture on 2 cores, took 2.49-2.67 s against 2.72-3.12 s with 8, faster in each of 6 paired
   runs; 32 was no faster than 16). */
enum { HB_STEP_GROUP = 16 };

/* Dense metrics and Heartbeat's Laplace covariance keep d x d matrices: above this dimension
   (128 MB per matrix) they are refused with a config error instead of exhausting memory. */
enum { HB_DENSE_MAX_DIM = 4096 };

/* One SIMD batch of HB_LANES chains, structure of arrays, coordinate-major. */
typedef struct hb_batch {
    double *x;     /* [dim][HB_LANES] positions */
    double *g;     /* [dim][HB_LANES] gradient of log density at x */
    double *lp;    /* [HB_LANES] log density at x */
    double *state; /* [state_doubles][HB_LANES] sampler-specific per-chain state */
    /* A second [dim][HB_LANES] pair for x and g, or NULL (the sampler type's alt_buffers):
       a step may build its proposal there and swap the pointers instead of copying the moved
       lanes back; the run loop reads x and g only through these pointers. */
    double *x_alt, *g_alt;
    uint64_t chain0; /* global index of lane 0 */
    int n_real;      /* lanes that are real chains (the rest are padding) */
} hb_batch;

/* What the run loop should do around one warmup iteration. */
typedef enum hb_moments_kind {
    HB_MOMENTS_DIAG = 0, /* packed [n, mean[d], m2[d]] (hb_combine_moments) */
    HB_MOMENTS_DENSE = 1 /* packed [n, mean[d], comoment[d*d]] (hb_combine_comoments) */
} hb_moments_kind;

typedef struct hb_iter_plan {
    int reduce_stats;        /* reduce the per-block stats after the step, call adapt() */
    int accumulate_moments;  /* add positions after the step to the pooled moments */
    int update_metric;       /* after accumulating: reduce moments, call set_moments(), reset */
    hb_moments_kind moments; /* which moments to accumulate */
} hb_iter_plan;

/* One item of the adaptation report written to the output's /adaptation group: a scalar
   (rows = cols = 1, written as an attribute), a vector (cols = 1) or a matrix, row-major;
   or, when text is set (data NULL), a text attribute. */
typedef struct hb_adapt_item {
    const char *name;
    const double *data;
    size_t rows, cols;
    const char *text;
} hb_adapt_item;

/* Read-only context of one step. */
typedef struct hb_step_ctx {
    const hb_model *model;
    size_t dim;
    uint32_t seed;
    uint64_t iter;    /* global iteration: warmup 0..W-1, then sampling W.. (the RNG counter) */
    int warmup;       /* 1 during warmup */
    const void *self; /* the sampler instance (its adapted parameters, read-only here) */
    /* 1: the caller reads none of this step's stats (a sampling iteration whose draw is not
       kept: output = none, or thinned away). A sampler may then skip work that feeds only
       the stats (ULA's and Heartbeat's unapplied acceptance gauge) and write cheaper values
       there; its moves must not change. 0 (the default): every stat as documented. */
    int stats_unread;
} hb_step_ctx;

/* What a step reports per lane. stats[k*HB_LANES + c] is sample stat k of lane c (as
   doubles; the run loop converts to the declared type). n_grad[c] counts gradient
   evaluations of this step. red (n_red doubles) receives this block's contribution to the
   pooled statistics, summed over real lanes only. */
typedef struct hb_step_out {
    double *stats;
    int64_t n_grad[HB_LANES];
    double *red;
} hb_step_out;

typedef struct hb_sampler_type {
    const char *name;
    const char *summary;
    /* Read [sampler] keys it uses and its own section; allocate the instance. */
    int (*create)(hb_config *cfg, const hb_model *model, long warmup, void **self, hb_error *err);
    void (*destroy)(void *self);
    /* Per-chain state doubles and per-thread workspace doubles for dimension dim. */
    size_t (*state_doubles)(const void *self, size_t dim);
    size_t (*workspace_doubles)(const void *self, size_t dim);
    /* Nonzero: the run loop gives each batch x_alt and g_alt (hb_batch). */
    int alt_buffers;
    /* Sample stats it reports (besides n_steps, which the run loop adds). */
    const hb_stat_spec *stats;
    size_t n_stats;
    size_t n_red; /* doubles per block in the pooled reduction */
    /* Optional: doubles per block in the pooled reduction when it depends on the instance
       (e.g. on the dimension); overrides n_red when set. */
    size_t (*red_doubles)(const void *self, size_t dim);
    /* Optional: initialise per-chain state after x, g, lp are set. */
    void (*init_batch)(const hb_step_ctx *ctx, hb_batch *b);
    /* Optional: how two blocks' pooled stats combine (left <- combine(left, right), k =
       the doubles per block, self = the instance); default the elementwise sum. It is
       applied along the reduction's fixed tree over blocks, so it must depend only on its
       arguments (e.g. sums, and an argmax whose ties go to the lowest global chain index);
       the result is then the same whatever the ranks x threads. */
    void (*combine)(double *left, const double *right, size_t k, const void *self);
    /* Plan warmup iteration k (0-based). Called on every rank with the same result. */
    void (*plan)(void *self, long k, hb_iter_plan *plan);
    /* One iteration for one batch. Thread-safe: reads self, writes only b, ws, out. */
    void (*step)(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out);
    /* Optional: the same iteration for n <= HB_STEP_GROUP consecutive batches at once
       (b[k]->chain0 == b[0]->chain0 + k * HB_LANES), out[k] for b[k]; workspace_doubles
       covers a whole group. Must give bitwise what step gives batch by batch: it only lets
       the sampler interleave independent batches (instruction-level parallelism where one
       batch's step is a chain of dependent latencies, e.g. RWMH in low dimension). */
    void (*step_group)(const hb_step_ctx *ctx, hb_batch *const *b, int n, double *ws,
                       hb_step_out *out);
    /* Pooled stats of warmup iteration k (sum over all real chains of all ranks). */
    void (*adapt)(void *self, long k, const double *red);
    /* Pooled moments of the positions accumulated since the last update (packed as the
       plan's moments kind says). Returns HB_OK or an error (e.g. non-finite variance). */
    int (*set_moments)(void *self, const double *moments, hb_error *err);
    /* Optional: [run] warmup = auto. warmup_auto is called once right after create (whose
       warmup is then [run] warmup_max, the cap); a sampler without it rejects auto.
       warmup_used returns 0 while warmup must go on, else the warmup iterations used (the
       loop stops after that many). It must depend only on pooled statistics, so that every
       rank stops at the same iteration whatever the ranks x threads. */
    int (*warmup_auto)(void *self, hb_error *err);
    long (*warmup_used)(const void *self);
    /* End of warmup: freeze adaptation. */
    void (*end_warmup)(void *self);
    /* The adapted step size (progress) and the adaptation report for /adaptation: at most
       max items; returns the count. Must include "step_size" and "inv_metric". */
    double (*step_size)(const void *self);
    size_t (*report)(const void *self, hb_adapt_item *items, size_t max);
    /* Checkpoint of the adaptation state (everything but the per-chain state, which lives
       in the batches): its size in bytes, and save/restore as a flat blob. */
    size_t (*checkpoint_bytes)(const void *self);
    void (*save)(const void *self, void *blob);
    int (*restore)(void *self, const void *blob, hb_error *err);
} hb_sampler_type;

/* NULL-terminated registry; lookup by name. */
const hb_sampler_type *const *hb_sampler_types(void);
const hb_sampler_type *hb_sampler_find(const char *name);

#endif
