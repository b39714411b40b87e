/* Broken (and one old-but-valid) plugins for the loader tests: one source, one MODULE target
 * per defect, selected by a HB_BAD_<kind> definition (see tests/models.cmake). */
#include <heartbeat/model.h>

#include <stdio.h>
#include <stdlib.h>

static void *create(const char *data_path, char *err, size_t errlen) {
    (void)data_path;
#ifdef HB_BAD_createfail
    snprintf(err, errlen, "this plugin always refuses to build");
    return NULL;
#else
    (void)err;
    (void)errlen;
    return malloc(1);
#endif
}

static void destroy(void *model) {
    free(model);
}

static size_t dim(const void *model) {
    (void)model;
#ifdef HB_BAD_dim0
    return 0;
#else
    return 1;
#endif
}

static const char *coord_name(const void *model, size_t i) {
    (void)model;
    (void)i;
    return "y";
}

#ifndef HB_BAD_nullfn
/* A standard normal. */
static int logp_grad(const void *model, const double *x, double *logp, double *grad) {
    (void)model;
    *logp = -0.5 * x[0] * x[0];
    grad[0] = -x[0];
    return 0;
}
#endif

static const hb_model_vtable vt = {
#ifdef HB_BAD_abi99
    .abi_version = 99,
#elif defined(HB_BAD_v1)
    .abi_version = 1,
#else
    .abi_version = HB_MODEL_ABI_VERSION,
#endif
#ifdef HB_BAD_size8
    .struct_size = 8,
#elif defined(HB_BAD_v1)
    /* What a plugin built against the version-1 header declared. */
    .struct_size = HB_MODEL_VTABLE_V1_SIZE,
#else
    .struct_size = sizeof(hb_model_vtable),
#endif
    .name = "bad",
    .create = create,
    .destroy = destroy,
    .dim = dim,
    .coord_name = coord_name,
#ifdef HB_BAD_nullfn
    .logp_grad = NULL,
#else
    .logp_grad = logp_grad,
#endif
    .logp_grad_batch = NULL,
};

#ifdef HB_BAD_nosym
/* Exports something, but not hb_model_plugin. */
const hb_model_vtable *not_the_plugin_symbol(void);
const hb_model_vtable *not_the_plugin_symbol(void) {
    return &vt;
}
#else
const hb_model_vtable *hb_model_plugin(void);
const hb_model_vtable *hb_model_plugin(void) {
#ifdef HB_BAD_nullvt
    (void)vt;
    return NULL;
#else
    return &vt;
#endif
}
#endif
