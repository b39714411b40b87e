/* Reference posterior summaries (shared/targets/<name>/reference.json, layout in
 * targets/README.md) read into plain arrays, and a run file compared with them: the work of
 * `heartbeat validate`, here so that tests can call it.
 * A file that cannot be read is HB_ERR_IO; one that is not valid JSON or lacks a required
 * field is HB_ERR_MODEL (exit 3), with the field named. No MPI. */
#ifndef HB_IO_REFERENCE_H
#define HB_IO_REFERENCE_H

#include <stddef.h>

#include "heartbeat/heartbeat.h"
#include "io/h5in.h"

typedef struct hb_ref_entry {
    char name[128]; /* e.g. "tau", "log(tau)", "theta[3]" */
    double mean, sd, mean_sq, var_sq;
} hb_ref_entry;

typedef struct hb_ref_block {
    const char *block; /* "parameters", "unconstrained" or "derived" */
    size_t n;
    hb_ref_entry *e;
} hb_ref_block;

typedef struct hb_reference {
    char posterior_name[256];
    double n_draws;         /* draws behind the summaries (n_draws; 10000 here) */
    hb_ref_block blocks[3]; /* parameters, unconstrained, derived (n = 0 if absent) */
} hb_reference;

int hb_reference_load(hb_reference **out, const char *path, hb_error *err);
void hb_reference_free(hb_reference *r);

/* ---- comparing a run file with a reference (`heartbeat validate`) ---- */

typedef struct hb_vrow {
    const hb_ref_entry *ref;
    double mean, sd, mean_sq; /* of the run's committed draws, all chains pooled */
    double mcse;              /* MCSE of the run's mean (hb_mcse_mean: from its ESS) */
    double se;                /* sqrt(mcse^2 + ref sd^2 / ref n_draws) */
    double z;                 /* (mean - ref mean) / se */
    double sd_ratio;          /* sd / ref sd */
} hb_vrow;

typedef struct hb_vblock {
    const hb_ref_block *rb;
    hb_vrow *rows; /* rb->n */
    double b2;     /* mean over rows of (mean_sq - ref mean_sq)^2 / ref var_sq */
    double max_abs_z;
    size_t worst; /* row of max |z| */
} hb_vblock;

typedef struct hb_validation {
    size_t n_chains, n_draws; /* committed draws per chain */
    size_t n_blocks;
    hb_vblock blocks[3];       /* the reference blocks whose names are all in the run, in order */
    const char *missing_param; /* first 'parameters' name not in the run, or NULL */
} hb_validation;

/* Compare the committed draws of run file `run` (an hb_h5in*, see io/h5in.h) with ref.
   Every block of ref whose names all appear among the run's posterior coordinates is
   compared. Errors: HB_ERR_IO (no committed draws, unreadable data), HB_ERR_MODEL (no block
   of ref matches the run). Free v with hb_validation_free whatever the result. */
int hb_validate_run(hb_h5in *run, const hb_reference *ref, hb_validation *v, hb_error *err);
void hb_validation_free(hb_validation *v);

#endif
