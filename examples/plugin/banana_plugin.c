/* An example user model built as a heartbeat plugin: a 2-D "banana" (a normal bent along a
 * parabola), with an optional Stan-style JSON data file that sets its two constants.
 *
 * Model, with constants sigma > 0 and b (defaults sigma = 2, b = 0.25):
 *     x1 ~ N(0, sigma^2)
 *     x2 | x1 ~ N(b (x1^2 - sigma^2), 1)
 * Known moments (the tests sample it and compare with these):
 *     E x1 = 0,  Var x1 = sigma^2                          (defaults: 0, 4)
 *     E x2 = 0,  Var x2 = 1 + 2 b^2 sigma^4                (defaults: 0, 3)
 *     Cov(x1, x2) = 0  (x1 is symmetric and x2 depends on it only through x1^2)
 *     E x1^2 x2 = 2 b sigma^4                              (defaults: 8)
 *
 * Data file (optional): {"sigma": 1.5, "b": 0.1}; missing keys keep their defaults.
 *
 * Build: gcc -O2 -shared -fPIC -I<prefix>/include banana_plugin.c -o libbanana.so -lm
 * Use:   [model] name = plugin, plugin = ./libbanana.so, data = banana.json */
#include <heartbeat/model.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct banana {
    double sigma, b;
} banana;

/* Finds "key" in a JSON text and reads the number after the colon. Enough for a flat
   object of numbers; a real plugin would use a JSON library. Returns 1 if found, 0 if
   absent, -1 if malformed. */
static int json_number(const char *text, const char *key, double *out) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *p = strstr(text, quoted);
    if (!p) return 0;
    p += strlen(quoted);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p++ != ':') return -1;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 1;
}

static void *banana_create(const char *data_path, char *err, size_t errlen) {
    banana m = {2.0, 0.25};
    if (data_path) {
        FILE *f = fopen(data_path, "r");
        if (!f) {
            snprintf(err, errlen, "cannot open data file %s: %s", data_path, strerror(errno));
            return NULL;
        }
        char text[4096];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        if (json_number(text, "sigma", &m.sigma) < 0 || json_number(text, "b", &m.b) < 0) {
            snprintf(err, errlen, "%s: expected {\"sigma\": number, \"b\": number}", data_path);
            return NULL;
        }
        if (!(m.sigma > 0.0)) {
            snprintf(err, errlen, "%s: sigma must be > 0, got %g", data_path, m.sigma);
            return NULL;
        }
    }
    banana *p = malloc(sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *p = m;
    return p;
}

static void banana_destroy(void *model) {
    free(model);
}

static size_t banana_dim(const void *model) {
    (void)model;
    return 2;
}

static const char *banana_coord_name(const void *model, size_t i) {
    (void)model;
    return i == 0 ? "x[1]" : "x[2]";
}

/* log p = -x1^2 / (2 sigma^2) - r^2 / 2 + const, r = x2 - b (x1^2 - sigma^2):
   d/dx1 = -x1 / sigma^2 + 2 b x1 r,  d/dx2 = -r.  The constant is dropped: heartbeat only
   needs the log density up to a constant. */
static int banana_logp_grad(const void *model, const double *x, double *logp, double *grad) {
    const banana *m = model;
    double is2 = 1.0 / (m->sigma * m->sigma);
    double r = x[1] - m->b * (x[0] * x[0] - m->sigma * m->sigma);
    *logp = -0.5 * x[0] * x[0] * is2 - 0.5 * r * r;
    grad[0] = -x[0] * is2 + 2.0 * m->b * x[0] * r;
    grad[1] = -r;
    return 0;
}

/* The same for n points in structure-of-arrays layout: coordinate i of point c is
   x[i*ld + c]. Loops over points innermost so the compiler vectorises them. */
static int banana_logp_grad_batch(const void *model, size_t n, size_t ld, const double *x,
                                  double *logp, double *grad) {
    const banana *m = model;
    const double is2 = 1.0 / (m->sigma * m->sigma), b = m->b, s2 = m->sigma * m->sigma;
    const double *x1 = x, *x2 = x + ld;
    double *g1 = grad, *g2 = grad + ld;
    for (size_t c = 0; c < n; c++) {
        double r = x2[c] - b * (x1[c] * x1[c] - s2);
        logp[c] = -0.5 * x1[c] * x1[c] * is2 - 0.5 * r * r;
        g1[c] = -x1[c] * is2 + 2.0 * b * x1[c] * r;
        g2[c] = -r;
    }
    return 0;
}

static const hb_model_vtable banana_vtable = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "banana",
    .create = banana_create,
    .destroy = banana_destroy,
    .dim = banana_dim,
    .coord_name = banana_coord_name,
    .logp_grad = banana_logp_grad,
    .logp_grad_batch = banana_logp_grad_batch,
};

/* The one exported symbol. */
const hb_model_vtable *hb_model_plugin(void);
const hb_model_vtable *hb_model_plugin(void) {
    return &banana_vtable;
}
