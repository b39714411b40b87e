/* Reading a run file back (serial, any process): root attributes, the posterior variables
 * and sample_stats, only draws below draws_committed. Used by `summary`, `validate` and
 * the tests. Errors are HB_ERR_IO with the file and the missing or corrupt part named.
 * Needs no MPI_Init (plain HDF5 access); honours HDF5_USE_FILE_LOCKING=FALSE. Not
 * thread-safe (HDF5 here is not). */
#ifndef HB_IO_H5IN_H
#define HB_IO_H5IN_H

#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"

typedef struct hb_h5in hb_h5in;

typedef struct hb_h5in_var {
    char name[128];  /* e.g. "theta" */
    int ndim_extra;  /* axes after (chain, draw) */
    size_t extra[4]; /* their sizes */
    size_t n_coords; /* product of extra (1 for a scalar variable) */
} hb_h5in_var;

/* Open read-only; checks the file is a heartbeat run file (root attribute
   inference_library = "heartbeat", /posterior present, draws_committed readable). */
int hb_h5in_open(hb_h5in **out, const char *path, hb_error *err);
void hb_h5in_close(hb_h5in *f);

size_t hb_h5in_n_chains(const hb_h5in *f);
size_t hb_h5in_n_draws(const hb_h5in *f);     /* allocated draws per chain */
size_t hb_h5in_n_committed(const hb_h5in *f); /* draws_committed */

/* Root attributes. String attributes come back malloc'd; missing ones are an error. */
int hb_h5in_attr_string(hb_h5in *f, const char *name, char **out, hb_error *err);
int hb_h5in_attr_int(hb_h5in *f, const char *name, int64_t *out, hb_error *err);
int hb_h5in_attr_double(hb_h5in *f, const char *name, double *out, hb_error *err);

/* Posterior variables in file order. */
size_t hb_h5in_n_vars(const hb_h5in *f);
const hb_h5in_var *hb_h5in_var_info(const hb_h5in *f, size_t i);
/* Name of coordinate k of variable i, e.g. "theta[3]" (1-based indices, as Stan). */
void hb_h5in_coord_name(const hb_h5in *f, size_t i, size_t k, char *buf, size_t len);

/* Read committed draws of posterior variable i into out, laid out [coord][chain][draw]
   (so each coordinate's draws are contiguous, chain-major). out has
   n_coords * n_chains * n_committed doubles. Chains [c0, c0+nc) only. */
int hb_h5in_read_var(hb_h5in *f, size_t i, size_t c0, size_t nc, double *out, hb_error *err);
/* Read committed draws of /sample_stats/<name> as doubles, [chain][draw]. Returns
   HB_ERR_IO if absent. */
int hb_h5in_read_stat(hb_h5in *f, const char *name, size_t c0, size_t nc, double *out,
                      hb_error *err);
int hb_h5in_has_stat(hb_h5in *f, const char *name);

#endif
