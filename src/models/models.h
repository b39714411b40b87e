/* Models inside the library: the built-in registry, the plugin loader, and one wrapper
 * (hb_model) that samplers call, with a batch fast path and a per-chain fallback. */
#ifndef HB_MODELS_MODELS_H
#define HB_MODELS_MODELS_H

#include <stddef.h>

#include "heartbeat/heartbeat.h"
#include "io/config.h"

/* A loaded model: a vtable, its instance, and where it came from. */
typedef struct hb_model {
    const hb_model_vtable *vt;
    void *impl;
    void *dl; /* dlopen handle, or NULL for built-ins */
    size_t dim;
    char name[128];
} hb_model;

/* A built-in model: options come from the [model] section of the config. */
typedef struct hb_builtin_model {
    const char *name;
    const char *summary; /* one line for `heartbeat models` */
    const char *options; /* one "key = default ; meaning" per line, for `heartbeat models` */
    /* Read options with hb_cfg_* from section "model" and build the instance. */
    int (*create)(hb_config *cfg, void **impl, hb_error *err);
    const hb_model_vtable *vtable; /* its create member is unused (NULL) */
} hb_builtin_model;

/* NULL-terminated list of built-in models. */
const hb_builtin_model *const *hb_builtin_models(void);
const hb_builtin_model *hb_builtin_model_find(const char *name);

/* Open the model the [model] section names: `name = <builtin>` with its options, or
   `name = plugin` with `plugin = path.so` and optional `data = file`. Errors:
   HB_ERR_USAGE for config problems, HB_ERR_MODEL for plugin/data problems. */
int hb_model_open(hb_model *m, hb_config *cfg, hb_error *err);
/* Load a plugin: dlopen, find hb_model_plugin, check abi_version and struct_size,
   create(data). */
int hb_model_load_plugin(hb_model *m, const char *path, const char *data_path, hb_error *err);
void hb_model_close(hb_model *m);

/* Log density and gradient of HB_LANES points in SoA layout (x[i*HB_LANES + c]).
   Uses logp_grad_batch when the model has it, else calls logp_grad per lane through ws
   (scratch of 2*dim doubles, owned by the calling thread). Invalid points and non-finite
   results come back as lp[c] = -INFINITY. Thread-safe. */
void hb_model_eval_lanes(const hb_model *m, const double *x, double *lp, double *g, double *ws);
/* hb_model_eval_lanes without the sanitising pass, for a caller that checks every lane's lp
   and gradient for finiteness itself in a pass it makes anyway: returns a mask of the lanes
   already known invalid (all, when the batch call failed; bit c for lane c), the rest being
   the model's raw values (lp and gradient possibly infinite or NaN). Models without a batch
   entry are evaluated and sanitised as by hb_model_eval_lanes (their invalid lanes then have
   lp = -inf). */
unsigned hb_model_eval_lanes_raw(const hb_model *m, const double *x, double *lp, double *g,
                                 double *ws);

/* The same for nl = k * HB_LANES chains side by side (x[i*nl + c], g likewise, lp[c]), e.g.
   a group of consecutive batches: a built-in model gets one batch call over all of them
   (its results are bitwise independent of the batch shape), a plugin one call per
   HB_LANES chains exactly as hb_model_eval_lanes (so a plugin sees the same calls whatever
   the grouping). ws: 2*dim*HB_LANES + 2*dim doubles. */
void hb_model_eval_wide(const hb_model *m, size_t nl, const double *x, double *lp, double *g,
                        double *ws);

/* Log densities only, for nl = k * HB_LANES chains laid out as hb_model_eval_wide: through
   the model's logp_batch (ABI 3) when it has one, else hb_model_eval_wide with the gradient
   into g (scratch of dim * nl doubles) and dropped. Non-finite results and failed calls come
   back as -INFINITY. ws: scratch as for hb_model_eval_wide. Thread-safe. */
void hb_model_eval_logp_wide(const hb_model *m, size_t nl, const double *x, double *lp, double *g,
                             double *ws);

/* Log density and gradient of one point (contiguous x[dim], g[dim]) through the model's
   per-chain entry, for samplers whose chains diverge in control flow (NUTS). An invalid
   point or a non-finite result gives -INFINITY and a zero gradient. Thread-safe. */
double hb_model_eval_one(const hb_model *m, const double *x, double *g);

#endif
