/* Model data: file-type detection, the CmdStan-style JSON loader (cJSON), and the typed,
 * shape-checked look-ups models use. */
#define _GNU_SOURCE
#include "io/data_impl.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

hb_data_var *hb_data__add(hb_data *d, const char *name, hb_error *err) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->vars[i].name, name) == 0) {
            hb_fail(err, HB_ERR_MODEL, "%s: field '%s' appears twice", d->path, name);
            return NULL;
        }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->vars = realloc(d->vars, d->cap * sizeof *d->vars);
        if (!d->vars) abort();
    }
    hb_data_var *v = &d->vars[d->n++];
    memset(v, 0, sizeof *v);
    v->name = xstrdup(name);
    return v;
}

void hb_data__problem(hb_data_var *v, const char *fmt, ...) {
    if (v->problem) return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    v->problem = xstrdup(buf);
}

void hb_data_close(hb_data *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->vars[i].name);
        free(d->vars[i].v);
        free(d->vars[i].problem);
    }
    free(d->vars);
    free(d->path);
    free(d);
}

const char *hb_data_path(const hb_data *d) {
    return d->path;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static const char *json_kind(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    return "not a number";
}

/* CmdStan writes non-finite values as strings; keep them (as NaN/Inf) so the finiteness
   check can name them. Returns 0 if s is not one of those spellings. */
static int json_special(const char *s, double *out) {
    static const char *const nan_words[] = {"NaN", "nan", "NAN", NULL};
    static const char *const inf_words[] = {"Inf",  "inf",       "Infinity", "infinity", "+Inf",
                                            "+inf", "+Infinity", "INF",      NULL};
    static const char *const minf_words[] = {"-Inf",      "-inf", "-Infinity",
                                             "-infinity", "-INF", NULL};
    for (int i = 0; nan_words[i]; i++)
        if (strcmp(s, nan_words[i]) == 0) return (*out = NAN), 1;
    for (int i = 0; inf_words[i]; i++)
        if (strcmp(s, inf_words[i]) == 0) return (*out = INFINITY), 1;
    for (int i = 0; minf_words[i]; i++)
        if (strcmp(s, minf_words[i]) == 0) return (*out = -INFINITY), 1;
    return 0;
}

/* Format a 1-based Stan index "[i,j]" of flat element k into buf. */
static void index_str(const hb_data_var *v, size_t k, char *buf, size_t len) {
    size_t idx[HB_DATA_MAX_DIM];
    for (int a = v->ndim - 1; a >= 0; a--) {
        idx[a] = k % v->dims[a];
        k /= v->dims[a];
    }
    size_t pos = 0;
    buf[0] = '\0';
    for (int a = 0; a < v->ndim && pos < len; a++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%zu", a ? "," : "[", idx[a] + 1);
    if (v->ndim && pos < len) snprintf(buf + pos, len - pos, "]");
}

/* Walk a nested array of the shape found from its first elements, storing numbers. */
static void json_fill(hb_data_var *v, const cJSON *a, int depth, size_t *k) {
    if (depth >= v->ndim || depth >= HB_DATA_MAX_DIM) return; /* cannot happen; for -O3 */
    size_t n = (size_t)cJSON_GetArraySize(a), i = 0;
    if (n != v->dims[depth]) {
        hb_data__problem(v, "ragged array: a row has %zu elements where the first has %zu", n,
                         v->dims[depth]);
        return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (v->problem) return;
        if (depth + 1 < v->ndim) {
            if (!cJSON_IsArray(e)) {
                hb_data__problem(v, "ragged array: element %zu at depth %d is %s, not an array",
                                 i + 1, depth + 1, json_kind(e));
                return;
            }
            json_fill(v, e, depth + 1, k);
        } else {
            double x;
            if (cJSON_IsNumber(e))
                v->v[*k] = e->valuedouble;
            else if (cJSON_IsString(e) && json_special(e->valuestring, &x))
                v->v[*k] = x;
            else {
                char ix[64];
                index_str(v, *k, ix, sizeof ix);
                hb_data__problem(v, "%s%s is %s, not a number", v->name, ix, json_kind(e));
                return;
            }
            (*k)++;
        }
        i++;
    }
}

static void json_value(hb_data_var *v, const cJSON *j) {
    double x;
    if (cJSON_IsNumber(j) || (cJSON_IsString(j) && json_special(j->valuestring, &x))) {
        v->ndim = 0;
        v->n = 1;
        v->v = xmalloc(sizeof(double));
        v->v[0] = cJSON_IsNumber(j) ? j->valuedouble : x;
        return;
    }
    if (!cJSON_IsArray(j)) {
        hb_data__problem(v, "is %s, not a number or an array of numbers", json_kind(j));
        return;
    }
    /* Shape from the first element at each depth; json_fill checks the rest. */
    const cJSON *a = j;
    v->ndim = 0;
    v->n = 1;
    for (;;) {
        if (v->ndim == HB_DATA_MAX_DIM) {
            hb_data__problem(v, "has more than %d dimensions", HB_DATA_MAX_DIM);
            return;
        }
        size_t len = (size_t)cJSON_GetArraySize(a);
        v->dims[v->ndim++] = len;
        v->n *= len;
        if (len == 0 || !cJSON_IsArray(a->child)) break;
        a = a->child;
    }
    v->v = xmalloc(v->n * sizeof(double));
    size_t k = 0;
    if (v->n > 0) json_fill(v, j, 0, &k);
}

static void line_col(const char *text, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else
            (*col)++;
    }
}

static int load_json(hb_data *d, const char *text, size_t len, hb_error *err) {
    const char *start = text;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) start += 3; /* UTF-8 BOM */
    const char *p = start;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (*p == '\0')
        return hb_fail(err, HB_ERR_MODEL, "%s: empty file: expected JSON data or an HDF5 file",
                       d->path);
    if (*p != '{' && *p != '[')
        return hb_fail(err, HB_ERR_MODEL,
                       "%s: neither JSON data (an object \"{...}\") nor an HDF5 file", d->path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(start, len - (size_t)(start - text), &end, 0);
    if (!root) {
        int line, col;
        const char *at = end ? end : start;
        line_col(text, at, &line, &col);
        char near[24] = "";
        size_t k = 0;
        for (const char *q = at; *q && *q != '\n' && k + 1 < sizeof near; q++) near[k++] = *q;
        near[k] = '\0';
        return hb_fail(err, HB_ERR_MODEL, "%s:%d:%d: not valid JSON (near '%s')", d->path, line,
                       col, near);
    }
    /* Trailing garbage after the value. */
    if (end) {
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (end < text + len && *end) {
            int line, col;
            line_col(text, end, &line, &col);
            cJSON_Delete(root);
            return hb_fail(err, HB_ERR_MODEL, "%s:%d:%d: not valid JSON: text after the data",
                           d->path, line, col);
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return hb_fail(err, HB_ERR_MODEL, "%s: JSON data must be an object of named fields, not %s",
                       d->path, json_kind(root));
    }
    const cJSON *f;
    int rc = HB_OK;
    cJSON_ArrayForEach(f, root) {
        hb_data_var *v = hb_data__add(d, f->string ? f->string : "", err);
        if (!v) {
            rc = HB_ERR_MODEL;
            break;
        }
        json_value(v, f);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- opening ------------------------------------------------------------------------- */

int hb_data_open(hb_data **out, const char *path, hb_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return hb_fail(err, HB_ERR_IO, "cannot open data file '%s': %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? 2 * cap : 1 << 20;
            text = realloc(text, cap + 1);
            if (!text) abort();
        }
        size_t r = fread(text + len, 1, cap - len, fp);
        len += r;
        if (r == 0) break;
    }
    int read_error = ferror(fp);
    fclose(fp);
    if (read_error) {
        free(text);
        return hb_fail(err, HB_ERR_IO, "cannot read data file '%s'", path);
    }
    text[len] = '\0';

    hb_data *d = xmalloc(sizeof *d);
    memset(d, 0, sizeof *d);
    d->path = xstrdup(path);
    int rc;
    if (len >= 8 && memcmp(text, hdf5_signature, 8) == 0) {
        free(text);
        d->format = "HDF5";
        rc = hb_data__load_h5(d, err);
    } else {
        d->format = "JSON";
        if (memchr(text, '\0', len))
            rc = hb_fail(err, HB_ERR_MODEL, "%s: binary content: neither JSON data nor HDF5", path);
        else
            rc = load_json(d, text, len, err);
        free(text);
    }
    if (rc != HB_OK) {
        hb_data_close(d);
        return rc;
    }
    *out = d;
    return HB_OK;
}

int hb_data_open_cfg(hb_data **out, hb_config *cfg, hb_error *err) {
    const char *path = NULL;
    *out = NULL;
    int rc = hb_cfg_string(cfg, "model", "data", NULL, &path, err);
    if (rc != HB_OK) return rc;
    return hb_data_open(out, path, err);
}

/* ---- look-ups ------------------------------------------------------------------------ */

static const hb_data_var *find(const hb_data *d, const char *name) {
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->vars[i].name, name) == 0) return &d->vars[i];
    return NULL;
}

int hb_data_has(const hb_data *d, const char *name) {
    return find(d, name) != NULL;
}

static void shape_str(const hb_data_var *v, char *buf, size_t len) {
    if (v->ndim == 0) {
        snprintf(buf, len, "a scalar");
        return;
    }
    size_t pos = (size_t)snprintf(buf, len, "shape (");
    for (int a = 0; a < v->ndim && pos < len; a++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%zu", a ? ", " : "", v->dims[a]);
    if (pos < len) snprintf(buf + pos, len - pos, ")");
}

static int get(const hb_data *d, const char *name, const hb_data_var **out, hb_error *err) {
    const hb_data_var *v = find(d, name);
    *out = v;
    if (!v) return hb_fail(err, HB_ERR_MODEL, "%s: data field '%s' is missing", d->path, name);
    if (v->problem)
        return hb_fail(err, HB_ERR_MODEL, "%s: data field '%s': %s", d->path, name, v->problem);
    return HB_OK;
}

int hb_data_shape(const hb_data *d, const char *name, int *ndim, size_t dims[HB_DATA_MAX_DIM],
                  hb_error *err) {
    const hb_data_var *v;
    int rc = get(d, name, &v, err);
    if (rc != HB_OK) return rc;
    *ndim = v->ndim;
    for (int a = 0; a < v->ndim; a++) dims[a] = v->dims[a];
    return HB_OK;
}

static int check_finite(const hb_data *d, const hb_data_var *v, hb_error *err) {
    for (size_t k = 0; k < v->n; k++)
        if (!isfinite(v->v[k])) {
            char ix[64];
            index_str(v, k, ix, sizeof ix);
            return hb_fail(err, HB_ERR_MODEL, "%s: data field '%s': %s%s is %s", d->path, v->name,
                           v->name, ix, isnan(v->v[k]) ? "NaN" : (v->v[k] > 0 ? "+Inf" : "-Inf"));
        }
    return HB_OK;
}

static int check_int(const hb_data *d, const hb_data_var *v, int64_t lo, int64_t hi,
                     hb_error *err) {
    int rc = check_finite(d, v, err);
    if (rc != HB_OK) return rc;
    for (size_t k = 0; k < v->n; k++) {
        double x = v->v[k];
        char ix[64];
        if (x != floor(x) || fabs(x) > 9007199254740992.0) {
            index_str(v, k, ix, sizeof ix);
            return hb_fail(err, HB_ERR_MODEL, "%s: data field '%s': %s%s = %.17g is not an integer",
                           d->path, v->name, v->name, ix, x);
        }
        if (x < (double)lo || x > (double)hi) {
            index_str(v, k, ix, sizeof ix);
            return hb_fail(err, HB_ERR_MODEL,
                           "%s: data field '%s': %s%s = %.17g is outside [%lld, %lld]", d->path,
                           v->name, v->name, ix, x, (long long)lo, (long long)hi);
        }
    }
    return HB_OK;
}

static int want_scalar(const hb_data *d, const char *name, const hb_data_var **out, hb_error *err) {
    int rc = get(d, name, out, err);
    if (rc != HB_OK) return rc;
    if ((*out)->ndim != 0) {
        char s[96];
        shape_str(*out, s, sizeof s);
        return hb_fail(err, HB_ERR_MODEL, "%s: data field '%s': expected a scalar, found %s",
                       d->path, name, s);
    }
    return HB_OK;
}

int hb_data_real(const hb_data *d, const char *name, double *out, hb_error *err) {
    const hb_data_var *v;
    int rc = want_scalar(d, name, &v, err);
    if (rc == HB_OK) rc = check_finite(d, v, err);
    if (rc == HB_OK) *out = v->v[0];
    return rc;
}

int hb_data_int(const hb_data *d, const char *name, int64_t lo, int64_t hi, int64_t *out,
                hb_error *err) {
    const hb_data_var *v;
    int rc = want_scalar(d, name, &v, err);
    if (rc == HB_OK) rc = check_int(d, v, lo, hi, err);
    if (rc == HB_OK) *out = (int64_t)v->v[0];
    return rc;
}

static int want_vector(const hb_data *d, const char *name, size_t *n, const hb_data_var **out,
                       hb_error *err) {
    int rc = get(d, name, out, err);
    if (rc != HB_OK) return rc;
    const hb_data_var *v = *out;
    if (v->ndim != 1) {
        char s[96];
        shape_str(v, s, sizeof s);
        if (*n == HB_DATA_ANY)
            return hb_fail(err, HB_ERR_MODEL, "%s: data field '%s': expected a vector, found %s",
                           d->path, name, s);
        return hb_fail(err, HB_ERR_MODEL,
                       "%s: data field '%s': expected a vector of length %zu, found %s", d->path,
                       name, *n, s);
    }
    if (*n != HB_DATA_ANY && v->dims[0] != *n)
        return hb_fail(err, HB_ERR_MODEL,
                       "%s: data field '%s': expected a vector of length %zu, found length %zu",
                       d->path, name, *n, v->dims[0]);
    *n = v->dims[0];
    return HB_OK;
}

int hb_data_vector(const hb_data *d, const char *name, size_t *n, const double **out,
                   hb_error *err) {
    const hb_data_var *v;
    int rc = want_vector(d, name, n, &v, err);
    if (rc == HB_OK) rc = check_finite(d, v, err);
    *out = rc == HB_OK ? v->v : NULL;
    return rc;
}

int hb_data_int_vector(const hb_data *d, const char *name, size_t *n, int64_t lo, int64_t hi,
                       const double **out, hb_error *err) {
    const hb_data_var *v;
    int rc = want_vector(d, name, n, &v, err);
    if (rc == HB_OK) rc = check_int(d, v, lo, hi, err);
    *out = rc == HB_OK ? v->v : NULL;
    return rc;
}

int hb_data_matrix(const hb_data *d, const char *name, size_t *rows, size_t *cols,
                   const double **out, hb_error *err) {
    const hb_data_var *v;
    *out = NULL;
    int rc = get(d, name, &v, err);
    if (rc != HB_OK) return rc;
    size_t r, c;
    if (v->ndim == 2) {
        r = v->dims[0];
        c = v->dims[1];
    } else if (v->ndim == 1 && v->n == 0) { /* [] : no rows */
        r = 0;
        c = *cols == HB_DATA_ANY ? 0 : *cols;
    } else {
        char s[96];
        shape_str(v, s, sizeof s);
        return hb_fail(err, HB_ERR_MODEL,
                       "%s: data field '%s': expected a matrix (a list of rows), found %s", d->path,
                       name, s);
    }
    if ((*rows != HB_DATA_ANY && r != *rows) || (*cols != HB_DATA_ANY && c != *cols)) {
        char er[32], ec[32];
        if (*rows == HB_DATA_ANY)
            snprintf(er, sizeof er, "any");
        else
            snprintf(er, sizeof er, "%zu", *rows);
        if (*cols == HB_DATA_ANY)
            snprintf(ec, sizeof ec, "any");
        else
            snprintf(ec, sizeof ec, "%zu", *cols);
        return hb_fail(err, HB_ERR_MODEL,
                       "%s: data field '%s': expected a %s x %s matrix, found %zu x %zu", d->path,
                       name, er, ec, r, c);
    }
    rc = check_finite(d, v, err);
    if (rc != HB_OK) return rc;
    *rows = r;
    *cols = c;
    *out = v->v;
    return HB_OK;
}
