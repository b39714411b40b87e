/* Strict INI configuration on top of inih: typed look-ups with ranges, file:line in every
 * message, unknown keys rejected, and the effective configuration recorded. */
#define _GNU_SOURCE
#include "io/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cfg_entry {
    char *section;
    char *key;
    char *value;
    char *origin; /* file name, or "--set" */
    int line;
    int used;
} cfg_entry;

typedef struct eff_entry {
    char *section;
    char *key;
    char *value;
} eff_entry;

struct hb_config {
    char *path;
    cfg_entry *e;
    size_t n, cap;
    eff_entry *eff;
    size_t n_eff, cap_eff;
    /* parse state */
    const char *text;
    size_t pos;
    int line;
    int long_line;
    hb_error *perr;
};

static char *xstrdup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) abort();
    return d;
}

static cfg_entry *find_entry(const hb_config *c, const char *sec, const char *key) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].section, sec) == 0 && strcmp(c->e[i].key, key) == 0) return &c->e[i];
    return NULL;
}

static void add_entry(hb_config *c, const char *sec, const char *key, const char *val,
                      const char *origin, int line) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        c->e = realloc(c->e, c->cap * sizeof *c->e);
        if (!c->e) abort();
    }
    c->e[c->n++] = (cfg_entry){xstrdup(sec), xstrdup(key), xstrdup(val), xstrdup(origin), line, 0};
}

/* inih reader over an in-memory string that counts lines and notices over-long ones. */
static char *reader(char *str, int num, void *stream) {
    hb_config *c = stream;
    if (c->text[c->pos] == '\0') return NULL;
    size_t start = c->pos, len = 0;
    while (c->text[c->pos] && c->text[c->pos] != '\n') c->pos++;
    len = c->pos - start;
    if (c->text[c->pos] == '\n') c->pos++;
    c->line++;
    if (len + 1 >= (size_t)num) {
        if (!c->long_line) c->long_line = c->line;
        len = (size_t)num - 2;
    }
    memcpy(str, c->text + start, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    hb_config *c = user;
    if (!section[0]) {
        hb_fail(c->perr, HB_ERR_USAGE, "%s:%d: key '%s' outside any [section]", c->path, c->line,
                name);
        return 0;
    }
    cfg_entry *old = find_entry(c, section, name);
    if (old) {
        hb_fail(c->perr, HB_ERR_USAGE, "%s:%d: [%s] %s: duplicate key (first set at line %d)",
                c->path, c->line, section, name, old->line);
        return 0;
    }
    add_entry(c, section, name, value, c->path, c->line);
    return 1;
}

int hb_config_load_string(hb_config **out, const char *name, const char *text, hb_error *err) {
    hb_config *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->path = xstrdup(name);
    c->text = text;
    c->perr = err;
    int rc = ini_parse_stream(reader, c, handler, c);
    c->text = NULL;
    if (err->code == HB_OK && c->long_line)
        hb_fail(err, HB_ERR_USAGE, "%s:%d: line too long (at most %d characters)", name,
                c->long_line, INI_MAX_LINE - 2);
    if (err->code == HB_OK && rc != 0)
        hb_fail(err, HB_ERR_USAGE, "%s:%d: cannot parse line (expected [section] or key = value)",
                name, rc);
    if (err->code != HB_OK) {
        hb_config_free(c);
        return err->code;
    }
    *out = c;
    return HB_OK;
}

int hb_config_load(hb_config **out, const char *path, hb_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return hb_fail(err, HB_ERR_USAGE, "%s: cannot open config: %s", path, strerror(errno));
    size_t cap = 4096, len = 0, k;
    char *buf = malloc(cap);
    if (!buf) abort();
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
    }
    int rd_err = ferror(f);
    fclose(f);
    buf[len] = '\0';
    if (rd_err) {
        free(buf);
        return hb_fail(err, HB_ERR_USAGE, "%s: cannot read config", path);
    }
    if (strlen(buf) != len) {
        free(buf);
        return hb_fail(err, HB_ERR_USAGE, "%s: not a text file (contains NUL bytes)", path);
    }
    int rc = hb_config_load_string(out, path, buf, err);
    free(buf);
    return rc;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int hb_config_override(hb_config *c, const char *assignment, hb_error *err) {
    char *buf = xstrdup(assignment);
    char *eq = strchr(buf, '=');
    char *dot = eq ? memchr(buf, '.', (size_t)(eq - buf)) : NULL;
    if (!eq || !dot) {
        free(buf);
        return hb_fail(err, HB_ERR_USAGE, "--set %s: expected section.key=value", assignment);
    }
    *eq = '\0';
    *dot = '\0';
    char *sec = trim(buf), *key = trim(dot + 1), *val = trim(eq + 1);
    if (!*sec || !*key) {
        free(buf);
        return hb_fail(err, HB_ERR_USAGE, "--set %s: expected section.key=value", assignment);
    }
    cfg_entry *e = find_entry(c, sec, key);
    if (e) {
        free(e->value);
        free(e->origin);
        e->value = xstrdup(val);
        e->origin = xstrdup("--set");
        e->line = 0;
    } else {
        add_entry(c, sec, key, val, "--set", 0);
    }
    free(buf);
    return HB_OK;
}

void hb_config_free(hb_config *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].section);
        free(c->e[i].key);
        free(c->e[i].value);
        free(c->e[i].origin);
    }
    for (size_t i = 0; i < c->n_eff; i++) {
        free(c->eff[i].section);
        free(c->eff[i].key);
        free(c->eff[i].value);
    }
    free(c->e);
    free(c->eff);
    free(c->path);
    free(c);
}

const char *hb_config_path(const hb_config *c) {
    return c->path;
}

void hb_cfg_record(hb_config *c, const char *sec, const char *key, const char *value) {
    for (size_t i = 0; i < c->n_eff; i++)
        if (strcmp(c->eff[i].section, sec) == 0 && strcmp(c->eff[i].key, key) == 0) {
            free(c->eff[i].value);
            c->eff[i].value = xstrdup(value);
            return;
        }
    if (c->n_eff == c->cap_eff) {
        c->cap_eff = c->cap_eff ? 2 * c->cap_eff : 32;
        c->eff = realloc(c->eff, c->cap_eff * sizeof *c->eff);
        if (!c->eff) abort();
    }
    c->eff[c->n_eff++] = (eff_entry){xstrdup(sec), xstrdup(key), xstrdup(value)};
}

/* "file:line" or "--set" for messages. */
static void where(const hb_config *c, const cfg_entry *e, char *buf, size_t len) {
    if (!e)
        snprintf(buf, len, "%s", c->path);
    else if (e->line > 0)
        snprintf(buf, len, "%s:%d", e->origin, e->line);
    else
        snprintf(buf, len, "%s", e->origin);
}

/* The value of a key (marked used), or NULL with a "missing" error when required. */
static const char *lookup(hb_config *c, const char *sec, const char *key, int required,
                          cfg_entry **entry, hb_error *err) {
    cfg_entry *e = find_entry(c, sec, key);
    *entry = e;
    if (e) {
        e->used = 1;
        return e->value;
    }
    if (required)
        hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: missing required key", c->path, sec, key);
    return NULL;
}

int hb_cfg_where(const hb_config *c, const char *sec, const char *key, char *buf, size_t len) {
    const cfg_entry *e = find_entry(c, sec, key);
    where(c, e, buf, len);
    return e != NULL;
}

int hb_cfg_is_word(hb_config *c, const char *sec, const char *key, const char *word,
                   char *where_buf, size_t len) {
    cfg_entry *e = find_entry(c, sec, key);
    if (!e || strcmp(e->value, word) != 0) return 0;
    e->used = 1;
    hb_cfg_record(c, sec, key, word);
    if (where_buf && len) where(c, e, where_buf, len);
    return 1;
}

int hb_cfg_int(hb_config *c, const char *sec, const char *key, const int64_t *def, int64_t lo,
               int64_t hi, int64_t *out, hb_error *err) {
    cfg_entry *e;
    const char *v = lookup(c, sec, key, def == NULL, &e, err);
    if (!v && !def) return err->code;
    int64_t x;
    if (v) {
        char w[300];
        where(c, e, w, sizeof w);
        errno = 0;
        char *end;
        long long t = strtoll(v, &end, 10);
        if (end == v || *trim(end) != '\0' || errno == ERANGE)
            return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: expected an integer, got '%s'", w, sec,
                           key, v);
        x = (int64_t)t;
        if (x < lo || x > hi)
            return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: %lld is out of range [%lld, %lld]", w,
                           sec, key, (long long)x, (long long)lo, (long long)hi);
    } else {
        x = *def;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)x);
    hb_cfg_record(c, sec, key, buf);
    *out = x;
    return HB_OK;
}

static int parse_double(const char *v, double *x) {
    errno = 0;
    char *end;
    double t = strtod(v, &end);
    if (end == v || errno == ERANGE || !isfinite(t)) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    *x = t;
    return 0;
}

static void record_double(hb_config *c, const char *sec, const char *key, double x) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", x);
    hb_cfg_record(c, sec, key, buf);
}

/* Shared by the two double look-ups; allow_auto says whether "auto" is a valid value. */
static int cfg_double(hb_config *c, const char *sec, const char *key, int allow_auto, int def_auto,
                      const double *def, double lo, double hi, double *out, int *is_auto,
                      hb_error *err) {
    cfg_entry *e;
    const char *v = lookup(c, sec, key, !def_auto && def == NULL, &e, err);
    if (!v && !def_auto && !def) return err->code;
    *is_auto = 0;
    if (!v) {
        if (def_auto) {
            *is_auto = 1;
            hb_cfg_record(c, sec, key, "auto");
            return HB_OK;
        }
        *out = *def;
        record_double(c, sec, key, *out);
        return HB_OK;
    }
    char w[300];
    where(c, e, w, sizeof w);
    if (allow_auto && strcmp(v, "auto") == 0) {
        *is_auto = 1;
        hb_cfg_record(c, sec, key, "auto");
        return HB_OK;
    }
    double x;
    if (parse_double(v, &x) != 0)
        return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: expected a number%s, got '%s'", w, sec, key,
                       allow_auto ? " or 'auto'" : "", v);
    if (!(x >= lo && x <= hi))
        return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: %g is out of range [%g, %g]", w, sec, key,
                       x, lo, hi);
    *out = x;
    record_double(c, sec, key, x);
    return HB_OK;
}

int hb_cfg_double(hb_config *c, const char *sec, const char *key, const double *def, double lo,
                  double hi, double *out, hb_error *err) {
    int is_auto;
    return cfg_double(c, sec, key, 0, 0, def, lo, hi, out, &is_auto, err);
}

int hb_cfg_double_or_auto(hb_config *c, const char *sec, const char *key, int def_auto,
                          const double *def, double lo, double hi, double *out, int *is_auto,
                          hb_error *err) {
    return cfg_double(c, sec, key, 1, def_auto, def, lo, hi, out, is_auto, err);
}

int hb_cfg_string(hb_config *c, const char *sec, const char *key, const char *def, const char **out,
                  hb_error *err) {
    cfg_entry *e;
    const char *v = lookup(c, sec, key, def == NULL, &e, err);
    if (!v && !def) return err->code;
    if (v && !*v) {
        char w[300];
        where(c, e, w, sizeof w);
        return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: empty value", w, sec, key);
    }
    *out = v ? v : def;
    hb_cfg_record(c, sec, key, *out);
    return HB_OK;
}

int hb_cfg_choice(hb_config *c, const char *sec, const char *key, const char *def,
                  const char *const *choices, int *out, hb_error *err) {
    cfg_entry *e;
    const char *v = lookup(c, sec, key, def == NULL, &e, err);
    if (!v && !def) return err->code;
    const char *s = v ? v : def;
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            hb_cfg_record(c, sec, key, s);
            return HB_OK;
        }
    char w[300], list[512] = "";
    where(c, e, w, sizeof w);
    for (int i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: '%s' is not one of: %s", w, sec, key, s, list);
}

int hb_cfg_double_list(hb_config *c, const char *sec, const char *key, const char *def, double lo,
                       double hi, double **out, size_t *n, hb_error *err) {
    cfg_entry *e;
    const char *v = lookup(c, sec, key, def == NULL, &e, err);
    if (!v && !def) return err->code;
    char w[300];
    where(c, e, w, sizeof w);
    char *buf = xstrdup(v ? v : def);
    size_t cap = 8, k = 0;
    double *xs = malloc(cap * sizeof *xs);
    if (!xs) abort();
    char *save = NULL;
    int bad = 0;
    if (!*trim(buf)) bad = 1;
    for (char *tok = strtok_r(buf, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
        double x;
        char *t = trim(tok);
        if (parse_double(t, &x) != 0) {
            hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: '%s' is not a number", w, sec, key, t);
            bad = 2;
            break;
        }
        if (!(x >= lo && x <= hi)) {
            hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: %g is out of range [%g, %g]", w, sec, key, x,
                    lo, hi);
            bad = 2;
            break;
        }
        if (k == cap) {
            cap *= 2;
            xs = realloc(xs, cap * sizeof *xs);
            if (!xs) abort();
        }
        xs[k++] = x;
    }
    free(buf);
    if (bad == 1 || (!bad && k == 0))
        hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: expected a comma-separated list of numbers", w,
                sec, key);
    if (bad || k == 0) {
        free(xs);
        return err->code;
    }
    /* Record in a canonical form so the effective config re-reads identically. */
    size_t blen = k * 26 + 1;
    char *rec = malloc(blen);
    if (!rec) abort();
    rec[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        char t[32];
        snprintf(t, sizeof t, "%s%.17g", i ? ", " : "", xs[i]);
        strcat(rec, t);
    }
    hb_cfg_record(c, sec, key, rec);
    free(rec);
    *out = xs;
    *n = k;
    return HB_OK;
}

int hb_cfg_has(const hb_config *c, const char *sec, const char *key) {
    return find_entry(c, sec, key) != NULL;
}

int hb_cfg_finish(hb_config *c, hb_error *err) {
    for (size_t i = 0; i < c->n; i++) {
        cfg_entry *e = &c->e[i];
        if (e->used) continue;
        int section_known = 0;
        for (size_t j = 0; j < c->n; j++)
            if (c->e[j].used && strcmp(c->e[j].section, e->section) == 0) section_known = 1;
        for (size_t j = 0; j < c->n_eff; j++)
            if (strcmp(c->eff[j].section, e->section) == 0) section_known = 1;
        char w[300];
        where(c, e, w, sizeof w);
        if (section_known)
            return hb_fail(err, HB_ERR_USAGE, "%s: [%s] %s: unknown key", w, e->section, e->key);
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [%s]: unknown section (or a section the chosen model/sampler does not "
                       "use), key '%s'",
                       w, e->section, e->key);
    }
    return HB_OK;
}

char *hb_cfg_effective(const hb_config *c) {
    size_t len = 1;
    for (size_t i = 0; i < c->n_eff; i++)
        len += strlen(c->eff[i].section) + strlen(c->eff[i].key) + strlen(c->eff[i].value) + 8;
    char *out = malloc(len);
    if (!out) abort();
    out[0] = '\0';
    size_t pos = 0;
    /* Sections in first-use order; keys in first-use order within each. */
    for (size_t i = 0; i < c->n_eff; i++) {
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->eff[j].section, c->eff[i].section) == 0) first = 0;
        if (!first) continue;
        pos += (size_t)sprintf(out + pos, "%s[%s]\n", pos ? "\n" : "", c->eff[i].section);
        for (size_t j = i; j < c->n_eff; j++)
            if (strcmp(c->eff[j].section, c->eff[i].section) == 0)
                pos += (size_t)sprintf(out + pos, "%s = %s\n", c->eff[j].key, c->eff[j].value);
    }
    return out;
}
