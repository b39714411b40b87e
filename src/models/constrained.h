/* A loaded model's draws as the output file reports them: the model's constrained outputs
 * (ABI v2: natural parameters in model order, then derived quantities, e.g. tau and
 * theta[j]) when it has them, else its unconstrained coordinates unchanged. For the run
 * loop, `validate` and tests. Thread-safe; no MPI, no I/O. */
#ifndef HB_MODELS_CONSTRAINED_H
#define HB_MODELS_CONSTRAINED_H

#include <stddef.h>

#include "models/models.h"

/* Does the model have constrained outputs (ABI v2 members n_constrained, constrained_name,
   constrained, with n_constrained > 0)? */
int hb_model_has_outputs(const hb_model *m);
/* Number of outputs: n_constrained, or dim without them. */
size_t hb_model_n_outputs(const hb_model *m);
/* Name of output j, e.g. "tau" (borrowed; coord_name(j) without outputs). */
const char *hb_model_output_name(const hb_model *m, size_t j);
/* Outputs of one unconstrained point x (dim) into out (n_outputs). Returns 0, or nonzero if
   the model rejects x (then out is all NaN). */
int hb_model_outputs(const hb_model *m, const double *x, double *out);
/* Outputs of HB_LANES points, structure of arrays as hb_model_eval_lanes: x[i*HB_LANES + c]
   in, out[j*HB_LANES + c] out. Uses constrained_batch when the model has it. ws: scratch of
   dim + n_outputs doubles owned by the calling thread. */
void hb_model_outputs_lanes(const hb_model *m, const double *x, double *out, double *ws);

#endif
