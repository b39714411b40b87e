/* The model ABI: what a user model (a shared library loaded with dlopen) exports.
 *
 * A plugin exports one function, hb_model_plugin(), returning a pointer to a static
 * vtable. The table starts with its ABI version and its size as the plugin saw it;
 * new members are only ever appended, so old plugins keep loading. */
#ifndef HEARTBEAT_MODEL_H
#define HEARTBEAT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HB_MODEL_ABI_VERSION 1u

typedef struct hb_model_vtable {
    uint32_t abi_version; /* HB_MODEL_ABI_VERSION; new members only appended */
    uint32_t struct_size; /* sizeof(hb_model_vtable) as the plugin saw it */
    const char *name;
    /* Build the model from a data file (may be NULL). On failure return NULL
       and write a message into err (errlen bytes). */
    void *(*create)(const char *data_path, char *err, size_t errlen);
    void (*destroy)(void *model);
    size_t (*dim)(const void *model); /* unconstrained dimension */
    /* Name of unconstrained coordinate i, e.g. "theta[3]" (borrowed string). */
    const char *(*coord_name)(const void *model, size_t i);
    /* log density (up to a constant) and its gradient at one point x (length dim).
       Return 0, or nonzero if the point is invalid (treated as log density -inf).
       Must be safe to call from many threads at once on the same model. */
    int (*logp_grad)(const void *model, const double *x, double *logp, double *grad);
    /* Optional (may be NULL): n points at once, structure of arrays:
       coordinate i of point c is x[i*ld + c]; same for grad; logp[c].
       An invalid point gets a non-finite logp[c]; a nonzero return marks the
       whole batch invalid. */
    int (*logp_grad_batch)(const void *model, size_t n, size_t ld, const double *x, double *logp,
                           double *grad);
} hb_model_vtable;

/* The one symbol a plugin exports. */
typedef const hb_model_vtable *(*hb_model_plugin_fn)(void);
#define HB_MODEL_PLUGIN_SYMBOL "hb_model_plugin"

#ifdef __cplusplus
}
#endif
#endif
