/* Constrained outputs of a loaded model, with the unconstrained coordinates as fallback. */
#include "models/constrained.h"

#include <math.h>
#include <string.h>

int hb_model_has_outputs(const hb_model *m) {
    const hb_model_vtable *vt = m->vt;
    return vt->abi_version >= 2 && HB_MODEL_HAS(vt, n_constrained) &&
           HB_MODEL_HAS(vt, constrained_name) && HB_MODEL_HAS(vt, constrained) &&
           vt->n_constrained(m->impl) > 0;
}

size_t hb_model_n_outputs(const hb_model *m) {
    return hb_model_has_outputs(m) ? m->vt->n_constrained(m->impl) : m->dim;
}

const char *hb_model_output_name(const hb_model *m, size_t j) {
    return hb_model_has_outputs(m) ? m->vt->constrained_name(m->impl, j)
                                   : m->vt->coord_name(m->impl, j);
}

int hb_model_outputs(const hb_model *m, const double *x, double *out) {
    if (!hb_model_has_outputs(m)) {
        memcpy(out, x, m->dim * sizeof *out);
        return 0;
    }
    if (m->vt->constrained(m->impl, x, out) == 0) return 0;
    size_t n = m->vt->n_constrained(m->impl);
    for (size_t j = 0; j < n; j++) out[j] = NAN;
    return 1;
}

void hb_model_outputs_lanes(const hb_model *m, const double *x, double *out, double *ws) {
    const size_t d = m->dim;
    if (!hb_model_has_outputs(m)) {
        memcpy(out, x, d * HB_LANES * sizeof *out);
        return;
    }
    const size_t n = m->vt->n_constrained(m->impl);
    if (HB_MODEL_HAS(m->vt, constrained_batch) &&
        m->vt->constrained_batch(m->impl, HB_LANES, HB_LANES, x, out) == 0)
        return;
    /* One point at a time; a rejected point gets NaN outputs, its neighbours are kept. */
    double *xs = ws, *os = ws + d;
    for (size_t c = 0; c < HB_LANES; c++) {
        for (size_t i = 0; i < d; i++) xs[i] = x[i * HB_LANES + c];
        hb_model_outputs(m, xs, os);
        for (size_t j = 0; j < n; j++) out[j * HB_LANES + c] = os[j];
    }
}
