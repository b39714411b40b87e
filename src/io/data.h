/* Model data from a file — CmdStan-style JSON or HDF5 with one dataset per variable — read
 * once into memory and looked up by name with shape, integer and finiteness checks. Every
 * problem with the content is HB_ERR_MODEL (exit 3) and names the file and the field; a
 * file that cannot be opened at all is HB_ERR_IO. Not collective; a loaded hb_data is
 * read-only, so many threads may look fields up at once. */
#ifndef HB_IO_DATA_H
#define HB_IO_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "heartbeat/heartbeat.h"
#include "io/config.h"

#define HB_DATA_MAX_DIM 4
/* Pass as an expected size to accept any size (the size found is written back). */
#define HB_DATA_ANY ((size_t)-1)

typedef struct hb_data hb_data;

/* Read the whole file. The format is told by content, not by name: the HDF5 signature
   means HDF5, anything else must be a JSON object ("{...}"). Malformed files (bad JSON
   syntax, a top-level value that is not an object, a duplicate field) fail here. Fields
   whose values are unusable (strings, nulls, ragged arrays, non-numeric datasets) only
   fail when a model asks for them, so unused extras never get in the way. */
int hb_data_open(hb_data **out, const char *path, hb_error *err);
void hb_data_close(hb_data *d);
const char *hb_data_path(const hb_data *d);

/* Is there a field of this name (usable or not)? */
int hb_data_has(const hb_data *d, const char *name);
/* Shape of a field: *ndim = 0 for a scalar, else dims[0..*ndim). */
int hb_data_shape(const hb_data *d, const char *name, int *ndim, size_t dims[HB_DATA_MAX_DIM],
                  hb_error *err);

/* A real scalar (must be finite). */
int hb_data_real(const hb_data *d, const char *name, double *out, hb_error *err);
/* An integer scalar in [lo, hi]. */
int hb_data_int(const hb_data *d, const char *name, int64_t lo, int64_t hi, int64_t *out,
                hb_error *err);

/* A vector of *n finite reals (one-dimensional; *n == HB_DATA_ANY accepts any length and
   writes the length found). The values are borrowed: valid until hb_data_close. */
int hb_data_vector(const hb_data *d, const char *name, size_t *n, const double **out,
                   hb_error *err);
/* A vector of *n integers in [lo, hi], returned as doubles (exact). */
int hb_data_int_vector(const hb_data *d, const char *name, size_t *n, int64_t lo, int64_t hi,
                       const double **out, hb_error *err);
/* A rows x cols matrix of finite reals, row-major (JSON: a list of rows, as CmdStan writes
   it; HDF5: a 2-D dataset). Either size may be HB_DATA_ANY. Borrowed, as above. */
int hb_data_matrix(const hb_data *d, const char *name, size_t *rows, size_t *cols,
                   const double **out, hb_error *err);

/* For built-in models: open the file named by the required key `data` of section "model"
   (absent: HB_ERR_USAGE with file:line, from the config layer). */
int hb_data_open_cfg(hb_data **out, hb_config *cfg, hb_error *err);

#endif
