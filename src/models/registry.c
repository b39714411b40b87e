/* The built-in model registry and hb_model_open/close: the one place that maps a [model]
 * section to a loaded model, built-in or plugin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>

#include "models/builtin.h"
#include "models/data_models.h"
#include "models/models.h"

extern const hb_builtin_model hb_builtin_gaussian;
extern const hb_builtin_model hb_builtin_mixture;
extern const hb_builtin_model hb_builtin_funnel;
extern const hb_builtin_model hb_builtin_rosenbrock;

/* Registry by name (PETSc style): adding a model is one extern and one entry here. */
static const hb_builtin_model *const builtins[] = {
    /* Analytic test targets (this directory). */
    &hb_builtin_gaussian, &hb_builtin_mixture, &hb_builtin_funnel, &hb_builtin_rosenbrock,
    /* Data-driven models and the posteriordb reference targets (models/data_models.h). */
    &hb_builtin_logistic, &hb_builtin_eight_schools, &hb_builtin_diamonds, &hb_builtin_kilpisjarvi,
    &hb_builtin_kidiq, &hb_builtin_arK, &hb_builtin_garch, &hb_builtin_gp_regr,
    &hb_builtin_gauss_mix, NULL, /* end */
};

const hb_builtin_model *const *hb_builtin_models(void) {
    return builtins;
}

const hb_builtin_model *hb_builtin_model_find(const char *name) {
    for (size_t i = 0; builtins[i]; i++)
        if (strcmp(builtins[i]->name, name) == 0) return builtins[i];
    return NULL;
}

char **hb_coord_names(const char *prefix, size_t first, size_t n) {
    /* "prefix[" + up to 20 digits + "]" + NUL */
    size_t stride = strlen(prefix) + 24;
    char **names = malloc(n * sizeof *names + n * stride);
    if (!names) return NULL;
    char *buf = (char *)(names + n);
    for (size_t i = 0; i < n; i++) {
        names[i] = buf + i * stride;
        snprintf(names[i], stride, "%s[%zu]", prefix, first + i);
    }
    return names;
}

int hb_model_open(hb_model *m, hb_config *cfg, hb_error *err) {
    memset(m, 0, sizeof *m);
    /* The name is looked up as a choice so that a wrong name gets file:line and the list of
       valid names from the config layer. */
    size_t nb = 0;
    while (builtins[nb]) nb++;
    const char **choices = malloc((nb + 2) * sizeof *choices);
    if (!choices) return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < nb; i++) choices[i] = builtins[i]->name;
    choices[nb] = "plugin";
    choices[nb + 1] = NULL;
    int which;
    int rc = hb_cfg_choice(cfg, "model", "name", NULL, choices, &which, err);
    free(choices);
    if (rc != HB_OK) return rc;

    if ((size_t)which == nb) {
        const char *path, *data = NULL;
        if (hb_cfg_string(cfg, "model", "plugin", NULL, &path, err) != HB_OK) return err->code;
        if (hb_cfg_has(cfg, "model", "data") &&
            hb_cfg_string(cfg, "model", "data", NULL, &data, err) != HB_OK)
            return err->code;
        return hb_model_load_plugin(m, path, data, err);
    }

    const hb_builtin_model *b = builtins[which];
    void *impl = NULL;
    if (b->create(cfg, &impl, err) != HB_OK) return err->code;
    m->vt = b->vtable;
    m->impl = impl;
    m->dl = NULL;
    m->dim = m->vt->dim(impl);
    snprintf(m->name, sizeof m->name, "%s", b->name);
    if (m->dim == 0) {
        hb_model_close(m);
        return hb_fail(err, HB_ERR_INTERNAL, "model %s: dimension 0", b->name);
    }
    return HB_OK;
}

void hb_model_close(hb_model *m) {
    if (!m) return;
    if (m->vt && m->impl) m->vt->destroy(m->impl);
    if (m->dl) {
        /* For plugins vt is the loader's heap copy of the plugin's table (see plugin.c); the
           instance is destroyed before the code that owns it is unmapped. */
        free((void *)m->vt);
        dlclose(m->dl);
    }
    memset(m, 0, sizeof *m);
}
