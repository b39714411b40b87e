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

#define HB_MODEL_ABI_VERSION 3u

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

    /* ---- ABI version 2: optional constrained outputs (each may be NULL) ----
       How a draw is reported: the model's parameters in their natural space, in the
       model's order (e.g. tau rather than log(tau)), then any derived quantities, as
       Stan writes its output. Without them a draw is reported as its unconstrained
       coordinates. Read these members only through HB_MODEL_HAS (a version-1 table
       ends before them). */
    size_t (*n_constrained)(const void *model);
    /* Name of output j, e.g. "tau" or "theta[3]" (borrowed string). */
    const char *(*constrained_name)(const void *model, size_t j);
    /* Outputs of one unconstrained point x (length dim) into out (n_constrained).
       Return 0, or nonzero if x is invalid. Thread-safe, like logp_grad. */
    int (*constrained)(const void *model, const double *x, double *out);
    /* Optional batch form, structure of arrays as logp_grad_batch: coordinate i of point
       c is x[i*ld + c], output j of point c goes to out[j*ld + c]. */
    int (*constrained_batch)(const void *model, size_t n, size_t ld, const double *x, double *out);

    /* ---- ABI version 3: optional log density without its gradient (may be NULL) ----
       n points in the layout of logp_grad_batch, logp[c] only, for samplers that use no
       gradient (random-walk Metropolis); it must give the logp that logp_grad_batch gives.
       Without it such samplers call logp_grad_batch and drop the gradient. Read it only
       through HB_MODEL_HAS. */
    int (*logp_batch)(const void *model, size_t n, size_t ld, const double *x, double *logp);
} hb_model_vtable;

/* struct_size of a version-1 table (it ends after logp_grad_batch). */
#define HB_MODEL_VTABLE_V1_SIZE offsetof(hb_model_vtable, n_constrained)

/* Does table vt (of any version) have a non-NULL member? Checks struct_size first, so
   members appended after the plugin was built are never read. */
#define HB_MODEL_HAS(vt, member)                                                                   \
    ((vt)->struct_size >= offsetof(hb_model_vtable, member) + sizeof((vt)->member) &&              \
     (vt)->member != NULL)

/* The one symbol a plugin exports. */
typedef const hb_model_vtable *(*hb_model_plugin_fn)(void);
#define HB_MODEL_PLUGIN_SYMBOL "hb_model_plugin"

#ifdef __cplusplus
}
#endif
#endif
