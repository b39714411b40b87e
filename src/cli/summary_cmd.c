/* `heartbeat summary RUN.h5`: per-coordinate diagnostics of the committed draws (the columns
 * of CmdStan's stansummary 2.36, plus nested R-hat for many chains) and a sample_stats digest. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "diag/diag.h"
#include "heartbeat/diag.h"
#include "heartbeat/heartbeat.h"
#include "io/h5in.h"

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON };

typedef struct row {
    char name[192];
    hb_diag_stats st;
} row;

typedef struct opts {
    const char *path;
    int fmt;
    char *vars; /* comma-separated names, or NULL for all */
    size_t superchain_size;
} opts;

typedef struct digest {
    int has_div, has_acc, has_step, has_steps, has_wall, has_gattr;
    double divergences, draws, acceptance, step_mean, step_min, step_max, grad_evals, wall;
    int64_t gattr;
} digest;

static void usage(FILE *f) {
    fprintf(f, "usage: heartbeat summary RUN.h5 [--format table|csv|json] [--vars NAME,...]\n"
               "                         [--superchain-size K]\n"
               "  Diagnostics of the committed draws of a run file, per coordinate: Mean, MCSE,\n"
               "  StdDev, MAD, 5%%, 50%%, 95%%, ESS_bulk, ESS_tail, R_hat (rank-normalised split\n"
               "  R-hat, as R's posterior package) and, with 16 or more chains, nR_hat (nested\n"
               "  R-hat over superchains of K consecutive chains; default: the largest K <= 256\n"
               "  dividing the number of chains with at least 4 superchains). Then divergences,\n"
               "  acceptance, step size, gradient evaluations and ESS per second and per 1000\n"
               "  gradient evaluations.\n"
               "  --vars takes variable names (theta) or coordinate names (theta[3], lp__).\n");
}

static int arg_value(int argc, char **argv, int *i, const char *flag, const char **val) {
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0) return 0;
    if (argv[*i][n] == '=') {
        *val = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0') return 0;
    if (*i + 1 >= argc) {
        *val = NULL;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

static int parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (arg_value(argc, argv, &i, "--format", &v)) {
            if (v && strcmp(v, "table") == 0)
                o->fmt = FMT_TABLE;
            else if (v && strcmp(v, "csv") == 0)
                o->fmt = FMT_CSV;
            else if (v && strcmp(v, "json") == 0)
                o->fmt = FMT_JSON;
            else {
                fprintf(stderr,
                        "heartbeat summary: --format: expected table, csv or json, got '%s'\n",
                        v ? v : "");
                return HB_ERR_USAGE;
            }
        } else if (arg_value(argc, argv, &i, "--vars", &v)) {
            if (!v || !*v) {
                fprintf(stderr, "heartbeat summary: --vars: expected NAME[,NAME...]\n");
                return HB_ERR_USAGE;
            }
            free(o->vars);
            o->vars = strdup(v);
        } else if (arg_value(argc, argv, &i, "--superchain-size", &v)) {
            char *end = NULL;
            long long k = v ? strtoll(v, &end, 10) : 0;
            if (!v || !*v || *end || k < 1) {
                fprintf(stderr,
                        "heartbeat summary: --superchain-size: expected a positive integer, got "
                        "'%s'\n",
                        v ? v : "");
                return HB_ERR_USAGE;
            }
            o->superchain_size = (size_t)k;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "heartbeat summary: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return HB_ERR_USAGE;
        } else if (!o->path) {
            o->path = argv[i];
        } else {
            fprintf(stderr, "heartbeat summary: more than one file given ('%s', '%s')\n", o->path,
                    argv[i]);
            return HB_ERR_USAGE;
        }
    }
    if (!o->path) {
        fprintf(stderr, "heartbeat summary: no run file given\n");
        usage(stderr);
        return HB_ERR_USAGE;
    }
    return HB_OK;
}

/* ---- which variables and coordinates ---- */

typedef struct selection {
    size_t n_vars;
    unsigned char *var_all; /* var_all[i]: every coordinate of variable i */
    unsigned char **coord;  /* coord[i][k]: coordinate k of variable i (when !var_all[i]) */
    int lp;                 /* the lp__ row */
} selection;

static void selection_free(selection *s) {
    if (s->coord)
        for (size_t i = 0; i < s->n_vars; i++) free(s->coord[i]);
    free(s->coord);
    free(s->var_all);
}

static int select_vars(hb_h5in *f, const char *vars, int has_lp, selection *s) {
    size_t nv = hb_h5in_n_vars(f);
    memset(s, 0, sizeof *s);
    s->n_vars = nv;
    s->var_all = calloc(nv ? nv : 1, 1);
    s->coord = calloc(nv ? nv : 1, sizeof *s->coord);
    if (!s->var_all || !s->coord) return HB_ERR_INTERNAL;
    if (!vars) {
        memset(s->var_all, 1, nv);
        s->lp = has_lp;
        return HB_OK;
    }
    char *copy = strdup(vars);
    if (!copy) return HB_ERR_INTERNAL;
    /* split on commas outside brackets: "a[1,2],mu" is two names */
    int depth = 0;
    for (char *q = copy; *q; q++) {
        depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
        if (*q == ',' && depth <= 0) *q = '\x1f';
    }
    int rc = HB_OK;
    char name[192], *save = NULL;
    for (char *tok = strtok_r(copy, "\x1f", &save); tok && rc == HB_OK;
         tok = strtok_r(NULL, "\x1f", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        size_t len = strlen(tok);
        while (len && isspace((unsigned char)tok[len - 1])) tok[--len] = '\0';
        if (!*tok) continue;
        int found = 0;
        if (strcmp(tok, "lp__") == 0 && has_lp) {
            s->lp = found = 1;
        }
        for (size_t i = 0; i < nv && !found; i++) {
            const hb_h5in_var *v = hb_h5in_var_info(f, i);
            hb_h5in_coord_name(f, i, 0, name, sizeof name);
            char *br = strchr(name, '[');
            if (br) *br = '\0';
            if (strcmp(tok, v->name) == 0 || strcmp(tok, name) == 0) {
                s->var_all[i] = 1;
                found = 1;
                break;
            }
            if (!strchr(tok, '[') || v->n_coords == 1) continue;
            for (size_t k = 0; k < v->n_coords && !found; k++) {
                hb_h5in_coord_name(f, i, k, name, sizeof name);
                if (strcmp(tok, name) != 0) continue;
                if (!s->coord[i] && !(s->coord[i] = calloc(v->n_coords, 1))) {
                    rc = HB_ERR_INTERNAL;
                    break;
                }
                s->coord[i][k] = 1;
                found = 1;
            }
        }
        if (!found && rc == HB_OK) {
            fprintf(stderr,
                    "heartbeat summary: --vars: no variable or coordinate '%s' in %s "
                    "(variables:",
                    tok, "the file");
            for (size_t i = 0; i < nv; i++)
                fprintf(stderr, "%s %s", i ? "," : "", hb_h5in_var_info(f, i)->name);
            fprintf(stderr, "%s)\n", has_lp ? ", lp__" : "");
            rc = HB_ERR_USAGE;
        }
    }
    free(copy);
    return rc;
}

static int coord_selected(const selection *s, size_t i, size_t k) {
    return s->var_all[i] || (s->coord[i] && s->coord[i][k]);
}

/* ---- diagnostics of one variable's coordinates, in parallel ---- */

static int compute_rows(const hb_diag_ctx *ctx, hb_diag_work **works, int nthreads,
                        const double *draws, size_t n_per_coord, const size_t *coords,
                        size_t ncoords, unsigned what, row *rows) {
    int rc = HB_OK;
    long n = (long)ncoords;
#pragma omp parallel num_threads(nthreads) if (n > 1)
    {
        int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (long j = 0; j < n; j++) {
            int r = HB_OK;
            if (!works[t]) r = hb_diag_work_create(&works[t], ctx);
            if (r == HB_OK)
                r = hb_diag_compute(ctx, works[t], draws + coords[j] * n_per_coord, what,
                                    &rows[j].st);
            if (r != HB_OK) {
#pragma omp atomic write
                rc = r;
            }
        }
    }
    return rc;
}

/* ---- the sample_stats digest ---- */

static int read_digest(hb_h5in *f, size_t nc, size_t nd, digest *d, hb_error *err) {
    memset(d, 0, sizeof *d);
    size_t n = nc * nd;
    double *buf = malloc(n * sizeof *buf);
    if (!buf) return hb_fail(err, HB_ERR_INTERNAL, "out of memory");
    d->draws = (double)n;
    int rc = HB_OK;
    static const char *names[] = {"diverging", "acceptance_rate", "step_size", "n_steps"};
    for (int s = 0; s < 4 && rc == HB_OK; s++) {
        if (!hb_h5in_has_stat(f, names[s])) continue;
        rc = hb_h5in_read_stat(f, names[s], 0, nc, buf, err);
        if (rc != HB_OK) break;
        long double acc = 0;
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            acc += buf[i];
            lo = buf[i] < lo ? buf[i] : lo;
            hi = buf[i] > hi ? buf[i] : hi;
        }
        double sum = (double)acc;
        switch (s) {
        case 0:
            d->has_div = 1, d->divergences = sum;
            break;
        case 1:
            d->has_acc = 1, d->acceptance = sum / (double)n;
            break;
        case 2:
            d->has_step = 1, d->step_mean = sum / (double)n, d->step_min = lo, d->step_max = hi;
            break;
        default:
            d->has_steps = 1, d->grad_evals = sum;
            break;
        }
    }
    free(buf);
    if (rc != HB_OK) return rc;
    hb_error e;
    hb_error_clear(&e);
    d->has_wall = hb_h5in_attr_double(f, "wall_time_sampling", &d->wall, &e) == HB_OK;
    hb_error_clear(&e);
    d->has_gattr = hb_h5in_attr_int(f, "gradient_evals_sampling", &d->gattr, &e) == HB_OK;
    return HB_OK;
}

/* The unadjusted-sampler warning: root attribute algorithm, and for `heartbeat` the
   [heartbeat] adjust key of the stored config (root attribute adjust when the writer
   records it). Missing attributes (older files) give no warning. */
static char *config_value(const char *ini, const char *section, const char *key) {
    const char *p = ini;
    int in = 0;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[512];
        if (len >= sizeof line) len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        char *c = strpbrk(line, ";#");
        if (c) *c = '\0';
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        size_t l = strlen(s);
        while (l && isspace((unsigned char)s[l - 1])) s[--l] = '\0';
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close) *close = '\0';
            in = strcmp(s + 1, section) == 0;
        } else if (in) {
            char *eq = strchr(s, '=');
            if (eq) {
                *eq = '\0';
                char *k = s, *v = eq + 1;
                size_t kl = strlen(k);
                while (kl && isspace((unsigned char)k[kl - 1])) k[--kl] = '\0';
                while (isspace((unsigned char)*v)) v++;
                if (strcmp(k, key) == 0) return strdup(v);
            }
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

/* String attribute `name` of group `group` (the reader exposes root attributes only); NULL
   if absent or not a string. HDF5's error printing is silenced meanwhile. */
static char *group_attr_string(const char *path, const char *group, const char *name) {
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char *out = NULL;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = f < 0 || H5Lexists(f, group, H5P_DEFAULT) <= 0 ? -1 : H5Gopen2(f, group, H5P_DEFAULT);
    hid_t a = g < 0 || H5Aexists(g, name) <= 0 ? -1 : H5Aopen(g, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        if (H5Tis_variable_str(t) > 0) {
            char *v = NULL;
            if (H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &v) >= 0 && v) out = strdup(v);
            if (v) H5free_memory(v);
        } else {
            size_t n = H5Tget_size(t);
            out = calloc(n + 1, 1);
            if (out && (H5Tset_size(mt, n + 1) < 0 || H5Aread(a, mt, out) < 0)) {
                free(out);
                out = NULL;
            }
        }
        H5Tclose(mt);
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    return out;
}

static char *unadjusted_warning(hb_h5in *f, const char *path, char **algorithm) {
    hb_error e;
    hb_error_clear(&e);
    char *alg = NULL, *msg = NULL;
    *algorithm = NULL;
    if (hb_h5in_attr_string(f, "algorithm", &alg, &e) != HB_OK) return NULL;
    *algorithm = alg;
    const char *what = NULL;
    char *adjust = NULL;
    if (strcmp(alg, "ula") == 0 || strcmp(alg, "pmm") == 0) {
        what = alg;
    } else if (strcmp(alg, "heartbeat") == 0) {
        /* where the run records its mode: /adaptation (the sampler's report), a root
           attribute, or the stored config (absent key: the default, mala) */
        adjust = group_attr_string(path, "/adaptation", "adjust");
        hb_error_clear(&e);
        if (!adjust && hb_h5in_attr_string(f, "adjust", &adjust, &e) != HB_OK) adjust = NULL;
        if (!adjust) {
            char *cfg = NULL;
            hb_error_clear(&e);
            if (hb_h5in_attr_string(f, "config", &cfg, &e) == HB_OK)
                adjust = config_value(cfg, "heartbeat", "adjust");
            free(cfg);
        }
        if (adjust && strcmp(adjust, "none") == 0) what = "heartbeat with adjust = none";
        if (adjust && strcmp(adjust, "hybrid") == 0)
            what = "heartbeat with adjust = hybrid: its final small steps";
    }
    if (what) {
        msg = malloc(400);
        if (msg)
            snprintf(msg, 400,
                     "the run used an unadjusted sampler (%s): its draws carry a step-size "
                     "bias that ESS and R-hat do not measure",
                     what);
    }
    free(adjust);
    return msg;
}

/* ---- output ---- */

static void put_num(FILE *o, double v, const char *nan_text) {
    if (isnan(v) || isinf(v))
        fputs(nan_text, o);
    else
        fprintf(o, "%.15g", v);
}

static void json_str(FILE *o, const char *s) {
    fputc('"', o);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(o, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(o, "\\u%04x", ch);
        else
            fputc(ch, o);
    }
    fputc('"', o);
}

/* Table cells: stansummary-like widths; NA for undefined values. */
static void cell(FILE *o, double v, int w, const char *f) {
    if (isnan(v) || isinf(v))
        fprintf(o, " %*s", w, "NA");
    else
        fprintf(o, f, w, v);
}

typedef struct eff {
    double min_bulk, min_tail; /* over rows, NaN if none defined */
} eff;

static eff min_ess(const row *rows, size_t n) {
    eff e = {NAN, NAN};
    for (size_t i = 0; i < n; i++) {
        double b = rows[i].st.ess_bulk, t = rows[i].st.ess_tail;
        if (!isnan(b) && (isnan(e.min_bulk) || b < e.min_bulk)) e.min_bulk = b;
        if (!isnan(t) && (isnan(e.min_tail) || t < e.min_tail)) e.min_tail = t;
    }
    return e;
}

int hb_cli_summary(int argc, char **argv) {
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != HB_OK) {
        free(o.vars);
        return rc < 0 ? HB_OK : rc;
    }
    hb_error err;
    hb_error_clear(&err);
    hb_h5in *f = NULL;
    hb_diag_ctx *ctx = NULL;
    hb_diag_work **works = NULL;
    row *rows = NULL;
    double *draws = NULL;
    size_t *coords = NULL;
    selection sel = {0};
    char *algorithm = NULL, *warn_unadj = NULL;
    int nthreads = omp_get_max_threads();

    if ((rc = hb_h5in_open(&f, o.path, &err)) != HB_OK) goto fail;
    size_t nc = hb_h5in_n_chains(f), nd_alloc = hb_h5in_n_draws(f), nd = hb_h5in_n_committed(f);
    if (nc == 0 || nd == 0) {
        rc = hb_fail(&err, HB_ERR_IO,
                     "%s: no draws to summarise (%zu chains, draws_committed = %zu of %zu)", o.path,
                     nc, nd, nd_alloc);
        goto fail;
    }
    size_t m = o.superchain_size ? o.superchain_size : hb_diag_default_superchain_size(nc);
    if (nc % m != 0) {
        rc = hb_fail(&err, HB_ERR_USAGE,
                     "--superchain-size %zu does not divide the number of chains (%zu)", m, nc);
        goto fail;
    }
    int nested = nc >= 16;
    unsigned what = HB_DIAG_RANK | HB_DIAG_MEAN | (nested ? HB_DIAG_NESTED : 0u);
    int has_lp = hb_h5in_has_stat(f, "lp");
    if ((rc = select_vars(f, o.vars, has_lp, &sel)) != HB_OK) {
        if (rc == HB_ERR_USAGE) goto out;
        rc = hb_fail(&err, rc, "out of memory");
        goto fail;
    }

    /* rows in file order: lp__ first (as stansummary), then every selected coordinate */
    size_t nrows = sel.lp ? 1 : 0, maxc = 1;
    for (size_t i = 0; i < sel.n_vars; i++) {
        const hb_h5in_var *v = hb_h5in_var_info(f, i);
        for (size_t k = 0; k < v->n_coords; k++) nrows += coord_selected(&sel, i, k);
        if (v->n_coords > maxc) maxc = v->n_coords;
    }
    hb_diag_options dopt = {m, HB_NESTED_RAW};
    rows = calloc(nrows ? nrows : 1, sizeof *rows);
    coords = malloc(maxc * sizeof *coords);
    works = calloc((size_t)nthreads, sizeof *works);
    if (!rows || !coords || !works) {
        rc = hb_fail(&err, HB_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    if ((rc = hb_diag_ctx_create(&ctx, nc, nd, &dopt)) != HB_OK) {
        rc = hb_fail(&err, rc, "cannot set up diagnostics for %zu chains x %zu draws%s", nc, nd,
                     rc == HB_ERR_USAGE ? " (at most 2^32 - 1 draws per coordinate)" : "");
        goto fail;
    }
    size_t r = 0;
    if (sel.lp) {
        draws = malloc(nc * nd * sizeof *draws);
        if (!draws) {
            rc = hb_fail(&err, HB_ERR_INTERNAL, "out of memory");
            goto fail;
        }
        if (hb_h5in_read_stat(f, "lp", 0, nc, draws, &err) != HB_OK) goto fail;
        snprintf(rows[r].name, sizeof rows[r].name, "lp__");
        coords[0] = 0;
        if ((rc = compute_rows(ctx, works, nthreads, draws, nc * nd, coords, 1, what, rows + r)))
            goto oom;
        r++;
        free(draws);
        draws = NULL;
    }
    /* one variable in memory at a time */
    for (size_t i = 0; i < sel.n_vars; i++) {
        const hb_h5in_var *v = hb_h5in_var_info(f, i);
        size_t ncoord = 0;
        for (size_t k = 0; k < v->n_coords; k++)
            if (coord_selected(&sel, i, k)) coords[ncoord++] = k;
        if (!ncoord) continue;
        draws = hb_diag_alloc_big(v->n_coords * nc * nd * sizeof *draws);
        if (!draws) {
            rc = hb_fail(&err, HB_ERR_INTERNAL,
                         "out of memory reading %s (%zu coordinates x %zu chains x %zu draws)",
                         v->name, v->n_coords, nc, nd);
            goto fail;
        }
        if (hb_h5in_read_var(f, i, 0, nc, draws, &err) != HB_OK) goto fail;
        for (size_t j = 0; j < ncoord; j++)
            hb_h5in_coord_name(f, i, coords[j], rows[r + j].name, sizeof rows[r].name);
        if ((rc = compute_rows(ctx, works, nthreads, draws, nc * nd, coords, ncoord, what,
                               rows + r)))
            goto oom;
        r += ncoord;
        free(draws);
        draws = NULL;
    }

    digest dg;
    if ((rc = read_digest(f, nc, nd, &dg, &err)) != HB_OK) goto fail;
    warn_unadj = unadjusted_warning(f, o.path, &algorithm);
    eff e = min_ess(rows, nrows);
    int complete = nd == nd_alloc;
    double grad =
        dg.has_steps ? dg.grad_evals : (dg.has_gattr && complete ? (double)dg.gattr : NAN);
    double wall = dg.has_wall && complete ? dg.wall : NAN;
    double per_s = e.min_bulk / wall, per_kgrad = grad > 0 ? e.min_bulk / (grad / 1000.0) : NAN;
    size_t n_capped = 0, n_const = 0, n_nonfinite = 0, n_rhat = 0;
    for (size_t i = 0; i < nrows; i++) {
        unsigned fl = rows[i].st.flags;
        n_capped += (fl & HB_DIAG_F_CAPPED) != 0;
        n_const += (fl & HB_DIAG_F_CONSTANT) != 0;
        n_nonfinite += (fl & HB_DIAG_F_NONFINITE) != 0;
        n_rhat += rows[i].st.rhat > 1.01;
    }
    char partial[256] = "";
    if (!complete)
        snprintf(partial, sizeof partial,
                 "file still being written or interrupted: using the %zu committed draws of "
                 "%zu per chain (draws_committed)",
                 nd, nd_alloc);
    FILE *out = stdout;

    if (o.fmt == FMT_JSON) {
        fprintf(out, "{\n  \"file\": ");
        json_str(out, o.path);
        fprintf(out, ",\n  \"algorithm\": ");
        if (algorithm)
            json_str(out, algorithm);
        else
            fputs("null", out);
        fprintf(out,
                ",\n  \"chains\": %zu,\n  \"draws\": %zu,\n  \"draws_allocated\": %zu,\n"
                "  \"complete\": %s,\n  \"superchain_size\": %zu,\n  \"superchains\": %zu,\n"
                "  \"variables\": [",
                nc, nd, nd_alloc, complete ? "true" : "false", m, nc / m);
        for (size_t i = 0; i < nrows; i++) {
            const hb_diag_stats *s = &rows[i].st;
            fprintf(out, "%s\n    {\"name\": ", i ? "," : "");
            json_str(out, rows[i].name);
            const char *keys[] = {"mean", "mcse",     "sd",       "mad",  "q5",       "q50",
                                  "q95",  "ess_bulk", "ess_tail", "rhat", "ess_mean", "rhat_basic"};
            double vals[] = {s->mean,     s->mcse_mean, s->sd,       s->mad,
                             s->q05,      s->q50,       s->q95,      s->ess_bulk,
                             s->ess_tail, s->rhat,      s->ess_mean, s->rhat_basic};
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                fprintf(out, ", \"%s\": ", keys[k]);
                put_num(out, vals[k], "null");
            }
            if (nested) {
                fprintf(out, ", \"rhat_nested\": ");
                put_num(out, s->rhat_nested, "null");
            }
            fputc('}', out);
        }
        fprintf(out, "\n  ],\n  \"sample_stats\": {");
        int first = 1;
#define JNUM(key, has, val)                                                                        \
    if (has) {                                                                                     \
        fprintf(out, "%s\n    \"%s\": ", first ? "" : ",", key);                                   \
        put_num(out, val, "null");                                                                 \
        first = 0;                                                                                 \
    }
        JNUM("divergences", dg.has_div, dg.divergences)
        JNUM("draws", 1, dg.draws)
        JNUM("mean_acceptance", dg.has_acc, dg.acceptance)
        JNUM("mean_step_size", dg.has_step, dg.step_mean)
        JNUM("gradient_evals", !isnan(grad), grad)
        JNUM("wall_time_sampling", !isnan(wall), wall)
        JNUM("min_ess_bulk", 1, e.min_bulk)
        JNUM("min_ess_tail", 1, e.min_tail)
        JNUM("min_ess_bulk_per_s", 1, per_s)
        JNUM("min_ess_bulk_per_1000_grad", 1, per_kgrad)
#undef JNUM
        fprintf(out, "\n  },\n  \"warnings\": [");
        first = 1;
        if (partial[0]) {
            fputs("\n    ", out);
            json_str(out, partial);
            first = 0;
        }
        if (warn_unadj) {
            fputs(first ? "\n    " : ",\n    ", out);
            json_str(out, warn_unadj);
            first = 0;
        }
        fprintf(out, "%s]\n}\n", first ? "" : "\n  ");
    } else if (o.fmt == FMT_CSV) {
        fprintf(out, "name,Mean,MCSE,StdDev,MAD,5%%,50%%,95%%,ESS_bulk,ESS_tail,R_hat%s\n",
                nested ? ",nR_hat" : "");
        for (size_t i = 0; i < nrows; i++) {
            const hb_diag_stats *s = &rows[i].st;
            double vals[] = {s->mean, s->mcse_mean, s->sd,       s->mad,      s->q05,
                             s->q50,  s->q95,       s->ess_bulk, s->ess_tail, s->rhat};
            fprintf(out, "\"%s\"", rows[i].name);
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                fputc(',', out);
                put_num(out, vals[k], "NA");
            }
            if (nested) {
                fputc(',', out);
                put_num(out, s->rhat_nested, "NA");
            }
            fputc('\n', out);
        }
        /* the digest as comment lines, as stansummary's CSV carries its notes */
        if (dg.has_div)
            fprintf(out, "# divergences: %.0f of %.0f draws\n", dg.divergences, dg.draws);
        if (dg.has_acc) fprintf(out, "# mean acceptance: %.6g\n", dg.acceptance);
        if (dg.has_step) fprintf(out, "# mean step size: %.6g\n", dg.step_mean);
        if (!isnan(grad)) fprintf(out, "# gradient evaluations: %.0f\n", grad);
        if (!isnan(per_s)) fprintf(out, "# min ESS_bulk per second: %.6g\n", per_s);
        if (!isnan(per_kgrad))
            fprintf(out, "# min ESS_bulk per 1000 gradient evaluations: %.6g\n", per_kgrad);
    } else {
        size_t w = 8;
        for (size_t i = 0; i < nrows; i++)
            if (strlen(rows[i].name) > w) w = strlen(rows[i].name);
        fprintf(out, "Inference for %s%s%s\n", o.path, algorithm ? ", algorithm " : "",
                algorithm ? algorithm : "");
        fprintf(out, "  %zu chains, %zu draws per chain%s\n", nc, nd,
                complete ? "" : " (committed so far)");
        if (partial[0]) fprintf(out, "  note: %s\n", partial);
        fprintf(out, "\n%-*s %9s %9s %9s %9s %9s %9s %9s %9s %9s %6s%s\n", (int)w, "", "Mean",
                "MCSE", "StdDev", "MAD", "5%", "50%", "95%", "ESS_bulk", "ESS_tail", "R_hat",
                nested ? "  nR_hat" : "");
        fputc('\n', out);
        for (size_t i = 0; i < nrows; i++) {
            const hb_diag_stats *s = &rows[i].st;
            fprintf(out, "%-*s", (int)w, rows[i].name);
            double vals[] = {s->mean, s->mcse_mean, s->sd, s->mad, s->q05, s->q50, s->q95};
            for (size_t k = 0; k < 7; k++) cell(out, vals[k], 9, " %*.3g");
            cell(out, s->ess_bulk, 9, " %*.0f");
            cell(out, s->ess_tail, 9, " %*.0f");
            cell(out, s->rhat, 6, " %*.3f");
            if (nested) cell(out, s->rhat_nested, 7, " %*.3f");
            fputc('\n', out);
        }
        fprintf(out,
                "\nSplit R_hat and ESS as R's posterior package (rank-normalised, folded); R_hat "
                "< 1.01 and\nESS > 100 per chain are the usual targets.");
        if (nested)
            fprintf(out,
                    " nR_hat: nested R-hat of %zu superchains of %zu\nconsecutive chains, "
                    "%zu draws each (meaningful when each superchain shares its initial point).",
                    nc / m, m, nd);
        fprintf(out, "\n\nSampler diagnostics:\n");
        if (dg.has_div)
            fprintf(out, "  divergences:          %.0f of %.0f draws (%.3g%%)\n", dg.divergences,
                    dg.draws, 100.0 * dg.divergences / dg.draws);
        if (dg.has_acc) fprintf(out, "  mean acceptance:      %.3f\n", dg.acceptance);
        if (dg.has_step) {
            if (dg.step_min == dg.step_max)
                fprintf(out, "  step size:            %.4g\n", dg.step_mean);
            else
                fprintf(out, "  step size:            mean %.4g (min %.4g, max %.4g)\n",
                        dg.step_mean, dg.step_min, dg.step_max);
        }
        if (!isnan(grad)) {
            fprintf(out, "  gradient evaluations: %.0f (sampling", grad);
            if (dg.has_steps && !complete) fprintf(out, ", committed draws");
            fprintf(out, ")\n");
        }
        if (!isnan(wall)) fprintf(out, "  sampling time:        %.3f s\n", wall);
        if (!isnan(per_s))
            fprintf(out, "  ESS_bulk per second:  %.4g (min over coordinates; ESS_tail: %.4g)\n",
                    per_s, e.min_tail / wall);
        if (!isnan(per_kgrad))
            fprintf(out, "  ESS_bulk per 1000 gradient evaluations: %.4g (min over coordinates)\n",
                    per_kgrad);
    }
    /* warnings on stderr for every format, so csv/json on stdout stay clean */
    if (partial[0] && o.fmt != FMT_TABLE) fprintf(stderr, "heartbeat summary: note: %s\n", partial);
    if (warn_unadj) fprintf(stderr, "heartbeat summary: warning: %s\n", warn_unadj);
    if (n_nonfinite)
        fprintf(stderr, "heartbeat summary: warning: %zu coordinate(s) with non-finite draws\n",
                n_nonfinite);
    if (n_const)
        fprintf(stderr,
                "heartbeat summary: warning: %zu coordinate(s) with constant draws: ESS, "
                "R-hat and MCSE are not defined (NA)\n",
                n_const);
    if (n_capped)
        fprintf(stderr,
                "heartbeat summary: note: the ESS of %zu coordinate(s) was capped at "
                "S*log10(S) (antithetic chains), as posterior does\n",
                n_capped);
    if (n_rhat)
        fprintf(stderr, "heartbeat summary: warning: %zu coordinate(s) with R_hat > 1.01\n",
                n_rhat);
    rc = HB_OK;
    goto out;
oom:
    rc = hb_fail(&err, HB_ERR_INTERNAL, "out of memory computing diagnostics");
fail:
    fprintf(stderr, "heartbeat summary: %s\n", err.msg);
    rc = err.code ? err.code : rc;
out:
    if (works)
        for (int t = 0; t < nthreads; t++) hb_diag_work_free(works[t]);
    free(works);
    hb_diag_ctx_free(ctx);
    hb_h5in_close(f);
    selection_free(&sel);
    free(rows);
    free(coords);
    free(draws);
    free(algorithm);
    free(warn_unadj);
    free(o.vars);
    return rc;
}
