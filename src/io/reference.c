/* Reading reference.json (posteriordb reference summaries) with cJSON, and comparing a run
 * file's committed draws with it. */
#include "io/reference.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat/diag.h"

static char *slurp(const char *path, size_t *len, hb_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hb_fail(err, HB_ERR_IO, "cannot open reference file '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, r;
    char *s = malloc(cap + 1);
    if (!s) abort();
    while ((r = fread(s + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            s = realloc(s, cap + 1);
            if (!s) abort();
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(s);
        hb_fail(err, HB_ERR_IO, "cannot read reference file '%s'", path);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

static int number(const cJSON *o, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return -1;
    *out = v->valuedouble;
    return 0;
}

static int read_block(hb_ref_block *b, const cJSON *root, const char *key, int required,
                      const char *path, hb_error *err) {
    b->block = key;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a) {
        if (!required) return HB_OK;
        return hb_fail(err, HB_ERR_MODEL, "%s: reference has no '%s' list", path, key);
    }
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0)
        return hb_fail(err, HB_ERR_MODEL, "%s: reference '%s' is not a non-empty list", path, key);
    b->n = (size_t)cJSON_GetArraySize(a);
    b->e = calloc(b->n, sizeof *b->e);
    if (!b->e) abort();
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, a) {
        hb_ref_entry *e = &b->e[i];
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(p, "name");
        if (!cJSON_IsString(nm) || !nm->valuestring[0] || strlen(nm->valuestring) >= sizeof e->name)
            return hb_fail(err, HB_ERR_MODEL, "%s: %s[%zu] has no usable \"name\"", path, key, i);
        snprintf(e->name, sizeof e->name, "%s", nm->valuestring);
        static const char *const fields[] = {"mean", "sd", "mean_sq", "var_sq"};
        double *dst[] = {&e->mean, &e->sd, &e->mean_sq, &e->var_sq};
        for (int k = 0; k < 4; k++)
            if (number(p, fields[k], dst[k]) != 0 || !isfinite(*dst[k]))
                return hb_fail(err, HB_ERR_MODEL,
                               "%s: %s[%zu] (%s): \"%s\" is missing or not a number", path, key, i,
                               e->name, fields[k]);
        if (!(e->sd >= 0) || !(e->var_sq > 0))
            return hb_fail(err, HB_ERR_MODEL, "%s: %s[%zu] (%s): sd must be >= 0 and var_sq > 0",
                           path, key, i, e->name);
        i++;
    }
    return HB_OK;
}

int hb_reference_load(hb_reference **out, const char *path, hb_error *err) {
    *out = NULL;
    size_t len;
    char *text = slurp(path, &len, err);
    if (!text) return err->code;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        int parsed = root != NULL;
        size_t off = parsed ? 0 : (size_t)((end ? end : text) - text);
        cJSON_Delete(root);
        free(text);
        if (parsed)
            return hb_fail(err, HB_ERR_MODEL, "%s: not a reference.json (not a JSON object)", path);
        return hb_fail(err, HB_ERR_MODEL, "%s: not a reference.json (invalid JSON at byte %zu)",
                       path, off);
    }
    free(text);
    hb_reference *r = calloc(1, sizeof *r);
    if (!r) abort();
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(root, "posterior_name");
    snprintf(r->posterior_name, sizeof r->posterior_name, "%s",
             cJSON_IsString(nm) ? nm->valuestring : "(unnamed)");
    r->n_draws = 10000;
    double nd;
    if (number(root, "n_draws", &nd) == 0) {
        if (!(nd >= 1)) {
            cJSON_Delete(root);
            free(r);
            return hb_fail(err, HB_ERR_MODEL, "%s: n_draws = %g is not >= 1", path, nd);
        }
        r->n_draws = nd;
    }
    int rc = read_block(&r->blocks[0], root, "parameters", 1, path, err);
    if (rc == HB_OK) rc = read_block(&r->blocks[1], root, "unconstrained", 0, path, err);
    if (rc == HB_OK) rc = read_block(&r->blocks[2], root, "derived", 0, path, err);
    cJSON_Delete(root);
    if (rc != HB_OK) {
        hb_reference_free(r);
        return rc;
    }
    *out = r;
    return HB_OK;
}

void hb_reference_free(hb_reference *r) {
    if (!r) return;
    for (int b = 0; b < 3; b++) free(r->blocks[b].e);
    free(r);
}

/* Where a coordinate named `name` lives in the run file: (variable, coordinate). */
static int find_coord(hb_h5in *f, const char *name, size_t *var, size_t *coord) {
    char buf[256];
    for (size_t i = 0; i < hb_h5in_n_vars(f); i++) {
        const hb_h5in_var *v = hb_h5in_var_info(f, i);
        for (size_t k = 0; k < v->n_coords; k++) {
            hb_h5in_coord_name(f, i, k, buf, sizeof buf);
            if (strcmp(buf, name) == 0) {
                *var = i;
                *coord = k;
                return 1;
            }
        }
    }
    return 0;
}

static int compare_block(hb_h5in *f, const hb_ref_block *rb, double ref_n, hb_vblock *vb,
                         hb_error *err) {
    size_t nc = hb_h5in_n_chains(f), nd = hb_h5in_n_committed(f), m = nc * nd;
    vb->rb = rb;
    vb->rows = calloc(rb->n, sizeof *vb->rows);
    if (!vb->rows) abort();
    for (size_t j = 0; j < rb->n; j++) {
        const hb_ref_entry *e = &rb->e[j];
        size_t var, coord;
        if (!find_coord(f, e->name, &var, &coord))
            return hb_fail(err, HB_ERR_INTERNAL, "validate: '%s' vanished", e->name);
        const hb_h5in_var *v = hb_h5in_var_info(f, var);
        double *all = malloc(v->n_coords * m * sizeof *all);
        if (!all) abort();
        int rc = hb_h5in_read_var(f, var, 0, nc, all, err);
        if (rc != HB_OK) {
            free(all);
            return rc;
        }
        const double *x = all + coord * m; /* [chain][draw] */
        double s = 0, s2 = 0, ss = 0;
        for (size_t t = 0; t < m; t++) {
            s += x[t];
            s2 += x[t] * x[t];
        }
        hb_vrow *r = &vb->rows[j];
        r->ref = e;
        r->mean = s / (double)m;
        r->mean_sq = s2 / (double)m;
        for (size_t t = 0; t < m; t++) ss += (x[t] - r->mean) * (x[t] - r->mean);
        r->sd = m > 1 ? sqrt(ss / (double)(m - 1)) : NAN;
        if (hb_mcse_mean(x, nc, nd, &r->mcse) != HB_OK || !isfinite(r->mcse))
            r->mcse = r->sd / sqrt((double)m); /* too few draws for an ESS: the iid value */
        free(all);
        r->se = sqrt(r->mcse * r->mcse + e->sd * e->sd / ref_n);
        r->z = (r->mean - e->mean) / r->se;
        r->sd_ratio = e->sd > 0 ? r->sd / e->sd : NAN;
        double d = r->mean_sq - e->mean_sq;
        vb->b2 += d * d / e->var_sq;
        if (!(fabs(r->z) <= vb->max_abs_z)) { /* NaN z counts as worst */
            vb->max_abs_z = fabs(r->z);
            vb->worst = j;
        }
    }
    vb->b2 /= (double)rb->n;
    return HB_OK;
}

int hb_validate_run(hb_h5in *f, const hb_reference *ref, hb_validation *v, hb_error *err) {
    memset(v, 0, sizeof *v);
    v->n_chains = hb_h5in_n_chains(f);
    v->n_draws = hb_h5in_n_committed(f);
    if (v->n_chains == 0 || v->n_draws == 0)
        return hb_fail(err, HB_ERR_IO, "run file has no committed draws (%zu chains, %zu draws)",
                       v->n_chains, v->n_draws);
    for (int b = 0; b < 3; b++) {
        const hb_ref_block *rb = &ref->blocks[b];
        if (rb->n == 0) continue;
        size_t j = 0, var, coord;
        while (j < rb->n && find_coord(f, rb->e[j].name, &var, &coord)) j++;
        if (j < rb->n) {
            if (b == 0) v->missing_param = rb->e[j].name;
            continue;
        }
        int rc = compare_block(f, rb, ref->n_draws, &v->blocks[v->n_blocks++], err);
        if (rc != HB_OK) return rc;
    }
    if (v->n_blocks == 0)
        return hb_fail(err, HB_ERR_MODEL,
                       "the run file's posterior has no coordinate named '%s' (nor a whole "
                       "unconstrained or derived block of the reference): is it a run of %s?",
                       v->missing_param ? v->missing_param : "?", ref->posterior_name);
    return HB_OK;
}

void hb_validation_free(hb_validation *v) {
    for (size_t b = 0; b < v->n_blocks; b++) free(v->blocks[b].rows);
    memset(v, 0, sizeof *v);
}
