/* The plugin loader: dlopen a user model, check its ABI table defensively, build the
 * instance, and turn every way this can go wrong into one HB_ERR_MODEL message. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

/* Undo a partial load and record the error. */
static int fail_load(hb_model *m, void *dl, hb_model_vtable *copy, void *impl, hb_error *err,
                     const char *path, const char *what) {
    if (impl && copy && copy->destroy) copy->destroy(impl);
    free(copy);
    if (dl) dlclose(dl);
    memset(m, 0, sizeof *m);
    return hb_fail(err, HB_ERR_MODEL, "plugin %s: %s", path, what);
}

int hb_model_load_plugin(hb_model *m, const char *path, const char *data_path, hb_error *err) {
    char what[900];
    memset(m, 0, sizeof *m);

    /* A bare file name would make dlopen search the library path; a config names a file. */
    char file[4096];
    snprintf(file, sizeof file, "%s%s", strchr(path, '/') ? "" : "./", path);

    dlerror();
    void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(what, sizeof what, "dlopen failed: %s", e ? e : "unknown error");
        return fail_load(m, NULL, NULL, NULL, err, path, what);
    }
    dlerror();
    void *sym = dlsym(dl, HB_MODEL_PLUGIN_SYMBOL);
    if (!sym) return fail_load(m, dl, NULL, NULL, err, path, "no symbol " HB_MODEL_PLUGIN_SYMBOL);
    /* Object-to-function pointer conversion through memcpy: what POSIX guarantees to work,
       without the ISO C cast warning. */
    hb_model_plugin_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const hb_model_vtable *vt = entry();
    if (!vt)
        return fail_load(m, dl, NULL, NULL, err, path, HB_MODEL_PLUGIN_SYMBOL "() returned NULL");

    /* The first two members exist in every version; nothing else is read before the size
       is known. */
    uint32_t version = vt->abi_version, size = vt->struct_size;
    if (version == 0 || version > HB_MODEL_ABI_VERSION) {
        snprintf(what, sizeof what, "abi_version %u is %s this heartbeat (%u)", version,
                 version == 0 ? "invalid for" : "newer than", HB_MODEL_ABI_VERSION);
        return fail_load(m, dl, NULL, NULL, err, path, what);
    }
    if (size < HB_MODEL_VTABLE_V1_SIZE) {
        snprintf(what, sizeof what,
                 "struct_size %u is smaller than the version-1 table (%zu bytes); set it to "
                 "sizeof(hb_model_vtable)",
                 size, (size_t)HB_MODEL_VTABLE_V1_SIZE);
        return fail_load(m, dl, NULL, NULL, err, path, what);
    }

    /* Work on a zero-filled copy holding only the bytes the plugin declared: members a newer
       heartbeat appends read as NULL for an older plugin. */
    hb_model_vtable *copy = calloc(1, sizeof *copy);
    if (!copy) return fail_load(m, dl, NULL, NULL, err, path, "out of memory");
    memcpy(copy, vt, size < sizeof *copy ? size : sizeof *copy);

    const char *missing = !copy->create       ? "create"
                          : !copy->destroy    ? "destroy"
                          : !copy->dim        ? "dim"
                          : !copy->coord_name ? "coord_name"
                          : !copy->logp_grad  ? "logp_grad"
                                              : NULL;
    if (missing) {
        snprintf(what, sizeof what, "required member %s is NULL", missing);
        return fail_load(m, dl, copy, NULL, err, path, what);
    }

    char msg[512] = "";
    void *impl = copy->create(data_path, msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    if (!impl) {
        snprintf(what, sizeof what, "create(%s) failed: %s", data_path ? data_path : "no data",
                 msg[0] ? msg : "(the plugin gave no message)");
        return fail_load(m, dl, copy, NULL, err, path, what);
    }
    size_t dim = copy->dim(impl);
    if (dim == 0) return fail_load(m, dl, copy, impl, err, path, "dim() returned 0");
    for (size_t i = 0; i < dim; i++) {
        const char *name = copy->coord_name(impl, i);
        if (!name || !name[0]) {
            snprintf(what, sizeof what, "coord_name(%zu) returned %s", i,
                     name ? "an empty string" : "NULL");
            return fail_load(m, dl, copy, impl, err, path, what);
        }
    }

    m->vt = copy;
    m->impl = impl;
    m->dl = dl;
    m->dim = dim;
    snprintf(m->name, sizeof m->name, "%s", copy->name && copy->name[0] ? copy->name : path);
    return HB_OK;
}
