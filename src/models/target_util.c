/* Names, batch remainder handling and constrained-output entries shared by the
 * data-driven built-in models. */
#define _GNU_SOURCE
#include "models/target_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hb_mhead_init(hb_mhead *h, size_t dim, size_t n_out) {
    h->dim = dim;
    h->n_out = n_out;
    h->coord = calloc(dim ? dim : 1, sizeof *h->coord);
    h->out = calloc(n_out ? n_out : 1, sizeof *h->out);
    if (!h->coord || !h->out) abort();
}

void hb_mhead_free(hb_mhead *h) {
    if (h->coord)
        for (size_t i = 0; i < h->dim; i++) free(h->coord[i]);
    if (h->out)
        for (size_t j = 0; j < h->n_out; j++) free(h->out[j]);
    free(h->coord);
    free(h->out);
    h->coord = h->out = NULL;
}

void hb_mhead_name(char **slot, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(*slot);
    if (vasprintf(slot, fmt, ap) < 0) abort();
    va_end(ap);
}

size_t hb_mhead_dim(const void *model) {
    return ((const hb_mhead *)model)->dim;
}

const char *hb_mhead_coord(const void *model, size_t i) {
    const hb_mhead *h = model;
    return i < h->dim ? h->coord[i] : NULL;
}

size_t hb_mhead_n_out(const void *model) {
    return ((const hb_mhead *)model)->n_out;
}

const char *hb_mhead_out(const void *model, size_t j) {
    const hb_mhead *h = model;
    return j < h->n_out ? h->out[j] : NULL;
}

int hb_mhead_constrained(const void *model, const double *x, double *out) {
    const hb_mhead *h = model;
    return h->constrain(model, x, out);
}

int hb_mhead_constrained_batch(const void *model, size_t n, size_t ld, const double *x,
                               double *out) {
    const hb_mhead *h = model;
    double *xs = malloc((h->dim + h->n_out + 1) * sizeof *xs), *os = xs + h->dim;
    if (!xs) abort();
    int rc = 0;
    for (size_t c = 0; c < n; c++) {
        for (size_t i = 0; i < h->dim; i++) xs[i] = x[i * ld + c];
        if (h->constrain(model, xs, os) != 0) {
            rc = 1;
            for (size_t j = 0; j < h->n_out; j++) os[j] = NAN;
        }
        for (size_t j = 0; j < h->n_out; j++) out[j * ld + c] = os[j];
    }
    free(xs);
    return rc;
}

int hb_batch_by_lanes(const void *model, size_t dim, hb_lanes_kernel k, size_t n, size_t ld,
                      const double *x, double *lp, double *g) {
    size_t c0 = 0;
    for (; c0 + HB_LANES <= n; c0 += HB_LANES) k(model, ld, x + c0, lp + c0, g + c0);
    if (c0 == n) return 0;
    /* Remainder: pad with copies of the last point so every lane holds a valid point. */
    size_t rem = n - c0;
    double *xs = malloc((2 * dim * HB_LANES + HB_LANES) * sizeof *xs);
    if (!xs) abort();
    double *gs = xs + dim * HB_LANES, *lps = gs + dim * HB_LANES;
    for (size_t i = 0; i < dim; i++)
        for (size_t c = 0; c < HB_LANES; c++)
            xs[i * HB_LANES + c] = x[i * ld + c0 + (c < rem ? c : rem - 1)];
    k(model, HB_LANES, xs, lps, gs);
    for (size_t c = 0; c < rem; c++) {
        lp[c0 + c] = lps[c];
        for (size_t i = 0; i < dim; i++) g[i * ld + c0 + c] = gs[i * HB_LANES + c];
    }
    free(xs);
    return 0;
}
