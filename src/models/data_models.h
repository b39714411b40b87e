/* The data-driven built-in models (issue 7): logistic regression and the eight posteriordb
 * reference targets of shared/targets/, each named as its folder there. registry.c lists
 * them; tests and benchmarks may use them directly. */
#ifndef HB_MODELS_DATA_MODELS_H
#define HB_MODELS_DATA_MODELS_H

#include "models/models.h"

extern const hb_builtin_model hb_builtin_logistic;
extern const hb_builtin_model
    hb_builtin_eight_schools;                         /* eight_schools-eight_schools_noncentered */
extern const hb_builtin_model hb_builtin_diamonds;    /* diamonds-diamonds */
extern const hb_builtin_model hb_builtin_kilpisjarvi; /* kilpisjarvi_mod-kilpisjarvi */
extern const hb_builtin_model hb_builtin_kidiq;       /* kidiq-kidscore_interaction */
extern const hb_builtin_model hb_builtin_arK;         /* arK-arK */
extern const hb_builtin_model hb_builtin_garch;       /* garch-garch11 */
extern const hb_builtin_model hb_builtin_gp_regr;     /* gp_pois_regr-gp_regr */
extern const hb_builtin_model hb_builtin_gauss_mix;   /* low_dim_gauss_mix-low_dim_gauss_mix */

#endif
