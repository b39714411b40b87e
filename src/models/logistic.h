/* The built-in `logistic` model outside the config path: build it from arrays (for tests and
 * benchmarks). */
#ifndef HB_MODELS_LOGISTIC_H
#define HB_MODELS_LOGISTIC_H

#include <stddef.h>

#include "heartbeat/heartbeat.h"

typedef enum hb_logistic_prior {
    HB_LOGISTIC_NORMAL = 0,
    HB_LOGISTIC_STUDENT_T = 1
} hb_logistic_prior;

typedef struct hb_logistic_options {
    hb_logistic_prior prior; /* on each coefficient, location 0 */
    double prior_scale;      /* > 0 */
    double prior_df;         /* > 0, Student-t only */
    double intercept_scale;  /* > 0: intercept ~ normal(0, intercept_scale) */
} hb_logistic_options;

/* X is N x K row-major, y holds N values in {0, 1}; both are copied. The instance works
   with hb_builtin_logistic.vtable. */
int hb_logistic_new(void **impl, size_t N, size_t K, const double *X, const double *y,
                    const hb_logistic_options *opt, hb_error *err);

#endif
