/* Parallel writer of the run file: one HDF5 file in the ArviZ InferenceData layout (netCDF-4
 * readable), written collectively by all ranks through MPI-IO; every public function is
 * COLLECTIVE over the communicator given to hb_h5out_create. */
#define _GNU_SOURCE
#include "io/h5out.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NAME_MAX_LEN 100              /* longest variable name we make (h5in keeps 127 bytes) */
#define MAX_EXTRA    4                /* axes after (chain, draw); deeper names become scalars */
#define ATTR_ORIG    "heartbeat_name" /* original coordinate (base) name when sanitised */

typedef struct h5var {
    char name[NAME_MAX_LEN + 16];
    char *orig; /* original base (or whole name for a scalar) when name differs; else NULL */
    size_t col0, ncols;
    int nextra;
    hsize_t extra[MAX_EXTRA];
    hid_t dset;
} h5var;

/* While a public function runs, HDF5 prints nothing; its error stack is described (outermost:
   what failed, innermost: why) into detail by the automatic error callback, which HDF5 calls
   while the stack is still intact. The first failure since the last use is kept. */
typedef struct h5_quiet {
    H5E_auto2_t func;
    void *data;
    char detail[600];
} h5_quiet;

struct hb_h5out {
    MPI_Comm comm;
    int rank, size;
    char *path;
    char *tmp_path; /* the name the file is created under, renamed to path when complete */
    int created;    /* this run created (truncated) the file */
    hid_t file, dxpl, g_post, g_stats;
    size_t n_chains, chain0, n_local, n_draws, dim;
    size_t chunk_chains, chunk_draws;
    size_t start_gcd; /* gcd of the first chains of all ranks (0: only chain 0 starts) */
    int deflate, no_fill;
    size_t n_vars;
    h5var *vars;
    size_t n_stats;
    char **stat_names;
    hb_stat_type *stat_types;
    hid_t *stat_dsets;
    size_t committed;
    char created_at[64];
    h5_quiet q; /* HDF5 error handling during the current call */
};

/* ---- HDF5 error handling: quiet stack, detail text, agreement over ranks ---- */

typedef struct h5_walk {
    char outer[256], inner[256];
} h5_walk;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    h5_walk *w = data;
    if (!e->desc || !*e->desc) return 0;
    if (n == 0) snprintf(w->outer, sizeof w->outer, "%s", e->desc);
    snprintf(w->inner, sizeof w->inner, "%s", e->desc);
    return 0;
}

static herr_t record_cb(hid_t estack, void *data) {
    h5_quiet *q = data;
    if (q->detail[0]) return 0;
    h5_walk w = {{0}, {0}};
    H5Ewalk2(estack, H5E_WALK_DOWNWARD, walk_cb, &w);
    if (!w.outer[0])
        snprintf(q->detail, sizeof q->detail, "HDF5 error");
    else if (strcmp(w.outer, w.inner) == 0)
        snprintf(q->detail, sizeof q->detail, "%s", w.outer);
    else
        snprintf(q->detail, sizeof q->detail, "%s (%s)", w.outer, w.inner);
    return 0;
}

static void quiet_begin(h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    q->detail[0] = '\0';
    H5Eset_auto2(H5E_DEFAULT, record_cb, q);
}

static void quiet_end(const h5_quiet *q) {
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* The recorded HDF5 failure (and forget it). */
static void h5_detail(h5_quiet *q, char *buf, size_t len) {
    snprintf(buf, len, "%s", q->detail[0] ? q->detail : "HDF5 error");
    q->detail[0] = '\0';
}

/* Record an HDF5 failure: "<path>: <what>: <hdf5 detail>". */
static void io_fail(hb_h5out *o, hb_error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void io_fail(hb_h5out *o, hb_error *e, const char *fmt, ...) {
    char what[512], detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    h5_detail(&o->q, detail, sizeof detail);
    hb_fail(e, HB_ERR_IO, "%s: %s: %s", o->path, what, detail);
}

/* All ranks learn whether any rank failed; the lowest failing rank's error is copied to all,
   so every rank returns the same code and message. Returns nonzero on failure. */
static int agree(const hb_h5out *o, const hb_error *local, hb_error *err) {
    int who = local->code != HB_OK ? o->rank : INT_MAX;
    MPI_Allreduce(MPI_IN_PLACE, &who, 1, MPI_INT, MPI_MIN, o->comm);
    if (who == INT_MAX) return 0;
    hb_error e = *local;
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, who, o->comm);
    e.msg[sizeof e.msg - 1] = '\0';
    hb_fail(err, e.code ? e.code : HB_ERR_INTERNAL, "%s", e.msg);
    return 1;
}

/* ---- variable plan from coordinate names ---- */

typedef struct parsed {
    size_t base_len; /* bytes before '[' (whole name if scalar) */
    int nidx;        /* 0 = scalar name; -1 = does not parse */
    long idx[MAX_EXTRA];
} parsed;

/* "theta[3]" -> base "theta", idx {3}; "a[1, 2]" -> base "a", idx {1, 2}; "mu" -> scalar. */
static parsed parse_coord(const char *s) {
    parsed p = {0, -1, {0}};
    const char *lb = strchr(s, '[');
    if (!lb) {
        p.base_len = strlen(s);
        p.nidx = p.base_len ? 0 : -1;
        return p;
    }
    p.base_len = (size_t)(lb - s);
    if (p.base_len == 0) return p;
    const char *c = lb + 1;
    int n = 0;
    for (;;) {
        while (*c == ' ') c++;
        if (*c < '0' || *c > '9' || n == MAX_EXTRA) return p;
        long v = 0;
        while (*c >= '0' && *c <= '9') {
            if (v > (LONG_MAX - 9) / 10) return p;
            v = v * 10 + (*c++ - '0');
        }
        while (*c == ' ') c++;
        p.idx[n++] = v;
        if (*c == ',') {
            c++;
            continue;
        }
        if (c[0] == ']' && c[1] == '\0') break;
        return p;
    }
    p.nidx = n;
    return p;
}

/* A netCDF/HDF5-safe name: [A-Za-z0-9_] only, runs of replaced characters become one '_',
   no trailing '_' from replacement, never starting with a digit, at most NAME_MAX_LEN. */
static void sanitise(const char *s, size_t len, char *out) {
    size_t n = 0;
    int replaced_run = 0;
    for (size_t i = 0; i < len && n < NAME_MAX_LEN; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_';
        if (ok) {
            if (n == 0 && ch >= '0' && ch <= '9') out[n++] = 'v';
            out[n++] = ch;
            replaced_run = 0;
        } else if (!replaced_run) {
            out[n++] = '_';
            replaced_run = 1;
        }
    }
    if (n > NAME_MAX_LEN) n = NAME_MAX_LEN;
    if (n > 1 && replaced_run && out[n - 1] == '_') n--;
    if (n == 0) out[n++] = 'v';
    out[n] = '\0';
}

/* A small string set (open addressing) to keep generated names unique. */
typedef struct name_set {
    char **slot;
    size_t cap, n;
} name_set;

static size_t fnv1a(const char *s) {
    size_t h = (size_t)1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * (size_t)1099511628211ULL;
    return h;
}

static int set_has(const name_set *ns, const char *s) {
    for (size_t i = fnv1a(s) & (ns->cap - 1); ns->slot[i]; i = (i + 1) & (ns->cap - 1))
        if (strcmp(ns->slot[i], s) == 0) return 1;
    return 0;
}

static int set_add(name_set *ns, const char *s) {
    size_t i = fnv1a(s) & (ns->cap - 1);
    while (ns->slot[i]) i = (i + 1) & (ns->cap - 1);
    ns->slot[i] = strdup(s);
    ns->n++;
    return ns->slot[i] ? 0 : -1;
}

static void set_free(name_set *ns) {
    for (size_t i = 0; i < ns->cap; i++) free(ns->slot[i]);
    free(ns->slot);
}

/* Is candidate (and, for nextra > 0, each candidate_dim_k) free? */
static int name_free(const name_set *ns, const char *cand, int nextra) {
    if (set_has(ns, cand)) return 0;
    char dn[NAME_MAX_LEN + 64];
    for (int k = 0; k < nextra; k++) {
        snprintf(dn, sizeof dn, "%s_dim_%d", cand, k);
        if (set_has(ns, dn)) return 0;
    }
    return 1;
}

/* Give v a unique name derived from the (sanitised) base and reserve its dimension names. */
static int claim_name(name_set *ns, h5var *v, const char *base) {
    char cand[NAME_MAX_LEN + 16];
    snprintf(cand, sizeof cand, "%s", base);
    for (unsigned k = 2; !name_free(ns, cand, v->nextra); k++)
        snprintf(cand, sizeof cand, "%s_%u", base, k);
    snprintf(v->name, sizeof v->name, "%s", cand);
    if (set_add(ns, cand)) return -1;
    char dn[NAME_MAX_LEN + 64];
    for (int k = 0; k < v->nextra; k++) {
        snprintf(dn, sizeof dn, "%s_dim_%d", cand, k);
        if (set_add(ns, dn)) return -1;
    }
    return 0;
}

typedef struct run_group {
    size_t first, count;
    int nidx;
    int bad;
} run_group;

typedef struct base_key {
    const char *s;
    size_t len, group;
} base_key;

static int cmp_base_key(const void *a, const void *b) {
    const base_key *x = a, *y = b;
    int c = strncmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Is the run of names a complete row-major box of 1-based indices? Sets extents. */
static int is_box(const parsed *p, const run_group *g, hsize_t *extent) {
    for (int k = 0; k < g->nidx; k++) extent[k] = 0;
    for (size_t i = 0; i < g->count; i++)
        for (int k = 0; k < g->nidx; k++) {
            long v = p[g->first + i].idx[k];
            if (v < 1 || (size_t)v > g->count) return 0;
            if ((hsize_t)v > extent[k]) extent[k] = (hsize_t)v;
        }
    size_t prod = 1;
    for (int k = 0; k < g->nidx; k++) {
        prod *= (size_t)extent[k]; /* extent <= count, prod <= count: no overflow */
        if (prod > g->count) return 0;
    }
    if (prod != g->count) return 0;
    for (size_t i = 0; i < g->count; i++) {
        size_t r = i;
        for (int k = g->nidx - 1; k >= 0; k--) {
            if ((size_t)p[g->first + i].idx[k] != r % extent[k] + 1) return 0;
            r /= extent[k];
        }
    }
    return 1;
}

/* Build the posterior variables from the coordinate names (same result on every rank). */
static int plan_vars(hb_h5out *o, const char *const *names, hb_error *e) {
    size_t dim = o->dim;
    parsed *p = calloc(dim ? dim : 1, sizeof *p);
    run_group *g = calloc(dim ? dim : 1, sizeof *g);
    base_key *order = calloc(dim ? dim : 1, sizeof *order);
    name_set ns = {NULL, 0, 0};
    ns.cap = 16;
    while (ns.cap < 4 * (dim * (MAX_EXTRA + 1) + 2)) ns.cap *= 2;
    ns.slot = calloc(ns.cap, sizeof *ns.slot);
    o->vars = calloc(dim ? dim : 1, sizeof *o->vars);
    int rc = -1;
    if (!p || !g || !order || !ns.slot || !o->vars) goto done;
    for (size_t i = 0; i < dim; i++) {
        if (!names || !names[i]) {
            hb_fail(e, HB_ERR_INTERNAL, "%s: coordinate name %zu is missing", o->path, i);
            goto done;
        }
        p[i] = parse_coord(names[i]);
    }
    /* runs of consecutive names with the same base and number of indices */
    size_t ng = 0;
    for (size_t i = 0; i < dim;) {
        size_t j = i + 1;
        if (p[i].nidx > 0)
            while (j < dim && p[j].nidx == p[i].nidx && p[j].base_len == p[i].base_len &&
                   strncmp(names[j], names[i], p[i].base_len) == 0)
                j++;
        g[ng] = (run_group){i, j - i, p[i].nidx, p[i].nidx < 0};
        ng++;
        i = j;
    }
    /* a base that appears in two runs (non-contiguous) makes all those runs scalars */
    for (size_t k = 0; k < ng; k++)
        order[k] = (base_key){names[g[k].first], p[g[k].first].base_len, k};
    qsort(order, ng, sizeof *order, cmp_base_key);
    for (size_t k = 0; k + 1 < ng; k++)
        if (cmp_base_key(&order[k], &order[k + 1]) == 0) {
            if (g[order[k].group].nidx > 0) g[order[k].group].bad = 1;
            if (g[order[k + 1].group].nidx > 0) g[order[k + 1].group].bad = 1;
        }
    if (set_add(&ns, "chain") || set_add(&ns, "draw")) goto done;
    char base[NAME_MAX_LEN + 8];
    size_t nv = 0;
    for (size_t k = 0; k < ng; k++) {
        run_group *r = &g[k];
        hsize_t extent[MAX_EXTRA] = {0};
        if (r->nidx > 0 && !r->bad && !is_box(p, r, extent)) r->bad = 1;
        if (r->nidx > 0 && !r->bad) {
            h5var *v = &o->vars[nv++];
            v->col0 = r->first;
            v->ncols = r->count;
            v->nextra = r->nidx;
            memcpy(v->extra, extent, sizeof extent);
            const char *nm = names[r->first];
            size_t bl = p[r->first].base_len;
            sanitise(nm, bl, base);
            if (claim_name(&ns, v, base)) goto done;
            if (strlen(v->name) != bl || strncmp(v->name, nm, bl) != 0) {
                v->orig = strndup(nm, bl);
                if (!v->orig) goto done;
            }
            continue;
        }
        for (size_t i = r->first; i < r->first + r->count; i++) {
            h5var *v = &o->vars[nv++];
            v->col0 = i;
            v->ncols = 1;
            v->nextra = 0;
            sanitise(names[i], strlen(names[i]), base);
            if (claim_name(&ns, v, base)) goto done;
            if (strcmp(v->name, names[i]) != 0) {
                v->orig = strdup(names[i]);
                if (!v->orig) goto done;
            }
        }
    }
    o->n_vars = nv;
    for (size_t i = 0; i < nv; i++) o->vars[i].dset = H5I_INVALID_HID;
    rc = 0;
done:
    if (rc && e->code == HB_OK) hb_fail(e, HB_ERR_INTERNAL, "%s: out of memory", o->path);
    if (ns.slot) set_free(&ns);
    free(p);
    free(g);
    free(order);
    return rc;
}

/* ---- small HDF5 helpers (all collective when the file is open with MPI-IO) ---- */

/* Create-or-overwrite a scalar attribute of obj. */
static herr_t put_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val) {
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return -1;
    if (ex > 0 && H5Adelete(obj, name) < 0) return -1;
    hid_t sp = H5Screate(H5S_SCALAR);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mtype, val);
    if (a >= 0 && H5Aclose(a) < 0) rc = -1;
    H5Sclose(sp);
    return rc;
}

/* Fixed-length UTF-8 string attribute (netCDF reads it as text, h5py as bytes/str). */
static herr_t put_attr_str(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    size_t len = strlen(s);
    herr_t rc = H5Tset_size(t, len ? len : 1);
    if (rc >= 0) rc = H5Tset_strpad(t, H5T_STR_NULLTERM);
    if (rc >= 0) rc = H5Tset_cset(t, H5T_CSET_UTF8);
    if (rc >= 0) rc = put_attr(obj, name, t, t, len ? s : "");
    H5Tclose(t);
    return rc;
}

static herr_t put_attr_i64(hid_t obj, const char *name, int64_t v) {
    return put_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

/* Collective write of a whole small dataset from rank 0's buffer; other ranks select none. */
static herr_t write_from_root(const hb_h5out *o, hid_t d, hid_t mtype, const void *buf) {
    hid_t fs = H5Dget_space(d);
    if (fs < 0) return -1;
    hid_t ms = H5Scopy(fs);
    herr_t rc = ms < 0 ? -1 : 0;
    if (rc >= 0 && o->rank != 0) {
        rc = H5Sselect_none(fs);
        if (rc >= 0) rc = H5Sselect_none(ms);
    }
    static const char dummy[16];
    if (rc >= 0) rc = H5Dwrite(d, mtype, ms, fs, o->dxpl, o->rank == 0 && buf ? buf : dummy);
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

/* A 1-D int64 coordinate variable 0..n-1 made a dimension scale; returns its id or < 0. */
static hid_t make_coord(const hb_h5out *o, hid_t group, const char *name, size_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    if (sp < 0) return -1;
    hid_t d = H5Dcreate2(group, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    if (d < 0) return -1;
    int64_t *v = NULL;
    if (o->rank == 0) {
        v = malloc((n ? n : 1) * sizeof *v);
        if (!v) { /* the other ranks are about to enter the collective write */
            MPI_Abort(o->comm, HB_ERR_INTERNAL);
            return -1;
        }
        for (size_t i = 0; i < n; i++) v[i] = (int64_t)i;
    }
    herr_t rc = write_from_root(o, d, H5T_NATIVE_INT64, v);
    free(v);
    if (rc >= 0) rc = H5DSset_scale(d, name);
    if (rc < 0) {
        H5Dclose(d);
        return -1;
    }
    return d;
}

static hid_t make_group(const hb_h5out *o, const char *name) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0) return -1;
    /* Track creation order so readers list variables in the order of the model. */
    herr_t rc = H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = rc < 0 ? -1 : H5Gcreate2(o->file, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (g < 0) return -1;
    if (put_attr_str(g, "created_at", o->created_at) < 0 ||
        put_attr_str(g, "inference_library", "heartbeat") < 0 ||
        put_attr_str(g, "inference_library_version", hb_version()) < 0) {
        H5Gclose(g);
        return -1;
    }
    return g;
}

/* Chains per chunk for a dataset with elem_bytes per (chain, draw): chunk_chains, grown by
   whole multiples that still divide every rank's first chain (so no chunk spans two ranks)
   while a chunk stays within CHUNK_TARGET. Small variables and the sample stats would
   otherwise be cut into thousands of tiny chunks: with 8-chain chunks of 100 draws, 4096
   chains made 20480 stat chunks of 6.4 kB, and creating and writing them cost more than the
   3.4 GB of draws. */
#define CHUNK_TARGET ((double)(1 << 20))
static size_t chunk_chains_for(const hb_h5out *o, double elem_bytes) {
    size_t cc = o->chunk_chains, best = cc;
    double per_chain = elem_bytes * (double)o->chunk_draws;
    for (size_t m = 2; cc * m <= o->n_chains && (double)(cc * m) * per_chain <= CHUNK_TARGET; m++)
        if (o->start_gcd % (cc * m) == 0) best = cc * m;
    return best;
}

/* Chunked (chain, draw, extra...) dataset with fill value and optional shuffle+deflate. */
static hid_t make_draw_dataset(const hb_h5out *o, hid_t group, const char *name, hid_t ftype,
                               const void *fill, hid_t fill_mtype, int nextra,
                               const hsize_t *extra) {
    int rank = 2 + nextra;
    hsize_t dims[2 + MAX_EXTRA], chunk[2 + MAX_EXTRA];
    dims[0] = o->n_chains;
    dims[1] = o->n_draws;
    double elem = (double)H5Tget_size(ftype);
    for (int k = 0; k < nextra; k++) {
        dims[2 + k] = chunk[2 + k] = extra[k];
        elem *= (double)extra[k];
    }
    chunk[0] = chunk_chains_for(o, elem);
    chunk[1] = o->chunk_draws;
    double bytes = elem * (double)chunk[0] * (double)chunk[1];
    /* HDF5 chunks must stay below 4 GiB: shrink draws, then chains (to divisors). */
    while (bytes >= 4294967295.0 && (chunk[1] > 1 || chunk[0] % 2 == 0)) {
        if (chunk[1] > 1) {
            bytes /= (double)chunk[1];
            chunk[1] = (chunk[1] + 1) / 2;
            bytes *= (double)chunk[1];
        } else {
            chunk[0] /= 2;
            bytes /= 2;
        }
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return -1;
    herr_t rc = H5Pset_chunk(dcpl, rank, chunk);
    if (rc >= 0) rc = H5Pset_fill_value(dcpl, fill_mtype, fill);
    /* Parallel HDF5 allocates every chunk at create; the fill is then a full write pass. */
    if (rc >= 0 && o->no_fill) rc = H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (rc >= 0 && o->deflate > 0) {
        rc = H5Pset_shuffle(dcpl);
        if (rc >= 0) rc = H5Pset_deflate(dcpl, (unsigned)o->deflate);
    }
    hid_t sp = rc < 0 ? -1 : H5Screate_simple(rank, dims, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(group, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (sp >= 0) H5Sclose(sp);
    H5Pclose(dcpl);
    return d;
}

static void close_id(hid_t *id) {
    if (*id >= 0) H5Oclose(*id);
    *id = H5I_INVALID_HID;
}

/* Close every HDF5 object; returns < 0 if closing the file failed. */
static herr_t close_all(hb_h5out *o) {
    for (size_t i = 0; i < o->n_vars; i++) close_id(&o->vars[i].dset);
    for (size_t i = 0; i < o->n_stats; i++)
        if (o->stat_dsets) close_id(&o->stat_dsets[i]);
    close_id(&o->g_post);
    close_id(&o->g_stats);
    if (o->dxpl >= 0) H5Pclose(o->dxpl);
    o->dxpl = H5I_INVALID_HID;
    herr_t rc = 0;
    if (o->file >= 0) rc = H5Fclose(o->file);
    o->file = H5I_INVALID_HID;
    return rc;
}

static void free_out(hb_h5out *o) {
    for (size_t i = 0; i < o->n_vars; i++) free(o->vars[i].orig);
    free(o->vars);
    for (size_t i = 0; i < o->n_stats; i++)
        if (o->stat_names) free(o->stat_names[i]);
    free(o->stat_names);
    free(o->stat_types);
    free(o->stat_dsets);
    free(o->path);
    free(o->tmp_path);
    if (o->comm != MPI_COMM_NULL) MPI_Comm_free(&o->comm);
    free(o);
}

static int valid_stat_name(const char *s) {
    if (!s || !*s || (*s >= '0' && *s <= '9')) return 0;
    if (strlen(s) > NAME_MAX_LEN || !strcmp(s, "chain") || !strcmp(s, "draw")) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

static size_t gcd_size(size_t a, size_t b) {
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Check the layout (same on all ranks except chain0/n_local) and fix chunk sizes. */
static void check_layout(hb_h5out *o, const hb_out_layout *L, hb_error *e) {
    if (!L) {
        hb_fail(e, HB_ERR_INTERNAL, "%s: no output layout", o->path);
        return;
    }
    if (L->n_chains == 0 || L->n_draws == 0) {
        hb_fail(e, HB_ERR_INTERNAL, "%s: output needs at least one chain and one draw", o->path);
        return;
    }
    if (L->n_local > L->n_chains || (L->n_local > 0 && L->chain0 > L->n_chains - L->n_local)) {
        hb_fail(e, HB_ERR_INTERNAL, "%s: rank %d chains [%zu, %zu) outside 0..%zu", o->path,
                o->rank, L->chain0, L->chain0 + L->n_local, L->n_chains);
        return;
    }
    if (L->deflate < 0 || L->deflate > 9) {
        hb_fail(e, HB_ERR_INTERNAL, "%s: deflate level %d not in 0..9", o->path, L->deflate);
        return;
    }
    if (L->n_stats > 0 && !L->stats) {
        hb_fail(e, HB_ERR_INTERNAL, "%s: %zu stats but no stat specs", o->path, L->n_stats);
        return;
    }
    for (size_t k = 0; k < L->n_stats; k++) {
        if (!valid_stat_name(L->stats[k].name) ||
            (L->stats[k].type != HB_STAT_F64 && L->stats[k].type != HB_STAT_BOOL &&
             L->stats[k].type != HB_STAT_I64)) {
            hb_fail(e, HB_ERR_INTERNAL, "%s: invalid sample stat %zu (%s)", o->path, k,
                    L->stats[k].name ? L->stats[k].name : "null");
            return;
        }
        for (size_t j = 0; j < k; j++)
            if (!strcmp(L->stats[j].name, L->stats[k].name)) {
                hb_fail(e, HB_ERR_INTERNAL, "%s: sample stat %s given twice", o->path,
                        L->stats[k].name);
                return;
            }
    }
    o->n_chains = L->n_chains;
    o->chain0 = L->n_local ? L->chain0 : 0;
    o->n_local = L->n_local;
    o->n_draws = L->n_draws;
    o->dim = L->dim;
    o->deflate = L->deflate;
    o->no_fill = L->no_fill != 0;
    o->chunk_draws =
        L->chunk_draws == 0 || L->chunk_draws > L->n_draws ? L->n_draws : L->chunk_draws;
    o->chunk_chains = L->chunk_chains == 0 ? L->n_chains : L->chunk_chains;
}

/* Chains must be partitioned into contiguous blocks in rank order, and chunks must not span
   two ranks: chunk_chains becomes the gcd with every rank's first chain. */
static void check_partition(hb_h5out *o, hb_error *e) {
    unsigned long long mine[2] = {o->chain0, o->n_local};
    unsigned long long *all = malloc(2 * (size_t)o->size * sizeof *all);
    if (!all) {
        MPI_Abort(o->comm, HB_ERR_INTERNAL); /* cannot agree without the allgather */
        return;
    }
    MPI_Allgather(mine, 2, MPI_UNSIGNED_LONG_LONG, all, 2, MPI_UNSIGNED_LONG_LONG, o->comm);
    unsigned long long next = 0;
    size_t g = o->chunk_chains, starts = 0;
    for (size_t r = 0; r < (size_t)o->size; r++) {
        if (all[2 * r + 1] == 0) continue;
        if (all[2 * r] != next) {
            hb_fail(e, HB_ERR_INTERNAL,
                    "%s: chains are not split in contiguous rank order (rank %zu starts at %llu, "
                    "expected %llu)",
                    o->path, r, all[2 * r], next);
            break;
        }
        g = gcd_size(g, (size_t)all[2 * r]);
        starts = gcd_size(starts, (size_t)all[2 * r]);
        next += all[2 * r + 1];
    }
    if (e->code == HB_OK && next != o->n_chains)
        hb_fail(e, HB_ERR_INTERNAL, "%s: ranks own %llu chains, layout says %zu", o->path, next,
                o->n_chains);
    o->chunk_chains = g > o->n_chains ? o->n_chains : g;
    o->start_gcd = starts;
    free(all);
}

static void now_iso8601(char *buf, size_t len) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char s[32];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    int us = (int)(ts.tv_nsec / 1000 % 1000000);
    snprintf(buf, len, "%s.%06dZ", s, us);
}

/* ---- create ---- */

/* Without the fill pass nothing writes the allocated chunks at create, and the file is sparse:
   rank 0 reserves its blocks with fallocate (no data written), so a disk too small for the
   run still fails here, before sampling. File systems without fallocate (EOPNOTSUPP) are
   left sparse; a full disk is then found by the first write that does not fit. */
static void reserve_space(hb_h5out *o, hb_error *e) {
    if (o->rank != 0) return;
    int fd = open(o->tmp_path, O_WRONLY);
    struct stat st;
    int rc = fd < 0 || fstat(fd, &st) != 0 ? -1 : 0;
    if (rc == 0 && st.st_size > 0 && fallocate(fd, 0, 0, st.st_size) != 0 && errno != EOPNOTSUPP &&
        errno != ENOSYS)
        rc = -1;
    int saved = errno;
    if (fd >= 0) close(fd);
    if (rc != 0)
        hb_fail(e, HB_ERR_IO, "%s: cannot reserve the file's %lld bytes: %s", o->path,
                fd < 0 ? 0LL : (long long)st.st_size, strerror(saved));
}

static hid_t stat_ftype(hb_stat_type t) {
    return t == HB_STAT_F64 ? H5T_IEEE_F64LE : t == HB_STAT_BOOL ? H5T_STD_I8LE : H5T_STD_I64LE;
}

static hid_t stat_mtype(hb_stat_type t) {
    return t == HB_STAT_F64    ? H5T_NATIVE_DOUBLE
           : t == HB_STAT_BOOL ? H5T_NATIVE_INT8
                               : H5T_NATIVE_INT64;
}

/* The MPI-IO driver takes no file locks (checked with strace on 1.10.8), so the writer works
   on file systems without flock; HDF5_USE_FILE_LOCKING is read by HDF5 itself for the
   serial readers. */
static void create_file(hb_h5out *o, hb_error *e) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    herr_t rc = fapl < 0 ? -1 : H5Pset_fapl_mpio(fapl, o->comm, MPI_INFO_NULL);
    if (rc >= 0) rc = H5Pset_all_coll_metadata_ops(fapl, 1);
    if (rc >= 0) rc = H5Pset_coll_metadata_write(fapl, 1);
    /* 1.8 file format: dense attribute storage (long config text, many dimension-scale
       references) while staying readable by netCDF-4 and HDF5 1.8 readers. */
    if (rc >= 0) rc = H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
    /* Created under a temporary name and renamed once complete: a crash during creation
       never leaves a half-made file under the output's name. */
    if (rc >= 0) o->file = H5Fcreate(o->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (rc < 0 || o->file < 0) {
        char detail[600];
        h5_detail(&o->q, detail, sizeof detail);
        hb_fail(e, HB_ERR_IO, "cannot create %s: %s", o->path, detail);
        return;
    }
    o->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (o->dxpl < 0 || H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
        io_fail(o, e, "cannot make a collective transfer property");
}

static void root_attrs(hb_h5out *o, hb_error *e) {
    if (put_attr_str(o->file, "created_at", o->created_at) < 0 ||
        put_attr_str(o->file, "inference_library", "heartbeat") < 0 ||
        put_attr_str(o->file, "inference_library_version", hb_version()) < 0 ||
        put_attr_i64(o->file, "draws_committed", 0) < 0 ||
        put_attr_i64(o->file, "n_ranks", o->size) < 0)
        io_fail(o, e, "cannot write root attributes");
}

/* One posterior variable with its own dimension scales, attached on every axis. */
static void create_var(hb_h5out *o, h5var *v, hid_t chain, hid_t draw, hb_error *e) {
    const double nan = NAN;
    v->dset = make_draw_dataset(o, o->g_post, v->name, H5T_IEEE_F64LE, &nan, H5T_NATIVE_DOUBLE,
                                v->nextra, v->extra);
    if (v->dset < 0) {
        io_fail(o, e, "cannot create /posterior/%s", v->name);
        return;
    }
    if (H5DSattach_scale(v->dset, chain, 0) < 0 || H5DSattach_scale(v->dset, draw, 1) < 0) {
        io_fail(o, e, "cannot attach chain/draw to /posterior/%s", v->name);
        return;
    }
    for (int k = 0; k < v->nextra; k++) {
        char dn[NAME_MAX_LEN + 64];
        snprintf(dn, sizeof dn, "%s_dim_%d", v->name, k);
        hid_t s = make_coord(o, o->g_post, dn, (size_t)v->extra[k]);
        herr_t rc = s < 0 ? -1 : H5DSattach_scale(v->dset, s, (unsigned)(2 + k));
        if (s >= 0) H5Dclose(s);
        if (rc < 0) {
            io_fail(o, e, "cannot create dimension /posterior/%s", dn);
            return;
        }
    }
    if (v->orig && put_attr_str(v->dset, ATTR_ORIG, v->orig) < 0)
        io_fail(o, e, "cannot write attributes of /posterior/%s", v->name);
}

static void create_stat(hb_h5out *o, size_t k, hid_t chain, hid_t draw, hb_error *e) {
    const double nan = NAN;
    const int64_t zero = 0;
    hb_stat_type t = o->stat_types[k];
    const char *name = o->stat_names[k];
    hid_t d = t == HB_STAT_F64 ? make_draw_dataset(o, o->g_stats, name, H5T_IEEE_F64LE, &nan,
                                                   H5T_NATIVE_DOUBLE, 0, NULL)
                               : make_draw_dataset(o, o->g_stats, name, stat_ftype(t), &zero,
                                                   H5T_NATIVE_INT64, 0, NULL);
    o->stat_dsets[k] = d;
    if (d < 0) {
        io_fail(o, e, "cannot create /sample_stats/%s", name);
        return;
    }
    if (H5DSattach_scale(d, chain, 0) < 0 || H5DSattach_scale(d, draw, 1) < 0 ||
        (t == HB_STAT_BOOL && put_attr_str(d, "dtype", "bool") < 0))
        io_fail(o, e, "cannot set up /sample_stats/%s", name);
}

/* Run one collective step, then agree over ranks; on failure jump to the local `fail`. */
#define STEP(...)                                                                                  \
    do {                                                                                           \
        __VA_ARGS__;                                                                               \
        if (agree(o, &e, err)) goto fail;                                                          \
    } while (0)

/* The part of create and reopen that allocates the handle, checks the layout and plans the
   posterior variables; returns the handle (its own communicator) or NULL with err set. */
static hb_h5out *setup(MPI_Comm comm, const char *path, const hb_out_layout *layout,
                       hb_error *err) {
    hb_h5out *o = calloc(1, sizeof *o);
    if (!o) {
        hb_fail(err, HB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    o->comm = MPI_COMM_NULL;
    o->file = o->dxpl = o->g_post = o->g_stats = H5I_INVALID_HID;
    if (MPI_Comm_dup(comm, &o->comm) != MPI_SUCCESS) {
        free(o);
        hb_fail(err, HB_ERR_INTERNAL, "%s: cannot duplicate the communicator", path);
        return NULL;
    }
    MPI_Comm_rank(o->comm, &o->rank);
    MPI_Comm_size(o->comm, &o->size);
    o->path = strdup(path ? path : "");
    quiet_begin(&o->q);
    hb_error e;
    hb_error_clear(&e);
    if (!o->path) hb_fail(&e, HB_ERR_INTERNAL, "out of memory");
    if (e.code == HB_OK) check_layout(o, layout, &e);
    if (e.code == HB_OK && layout->n_stats) {
        o->n_stats = layout->n_stats;
        o->stat_names = calloc(o->n_stats, sizeof *o->stat_names);
        o->stat_types = calloc(o->n_stats, sizeof *o->stat_types);
        o->stat_dsets = calloc(o->n_stats, sizeof *o->stat_dsets);
        if (!o->stat_names || !o->stat_types || !o->stat_dsets) {
            o->n_stats = 0;
            hb_fail(&e, HB_ERR_INTERNAL, "out of memory");
        } else {
            for (size_t k = 0; k < o->n_stats; k++) {
                o->stat_names[k] = strdup(layout->stats[k].name);
                o->stat_types[k] = layout->stats[k].type;
                o->stat_dsets[k] = H5I_INVALID_HID;
                if (!o->stat_names[k]) hb_fail(&e, HB_ERR_INTERNAL, "out of memory");
            }
        }
    }
    if (e.code == HB_OK) plan_vars(o, layout->coord_names, &e);
    /* check_partition is collective: all ranks run it, or none */
    int bad = agree(o, &e, err);
    if (!bad) {
        check_partition(o, &e);
        bad = agree(o, &e, err);
    }
    if (bad) {
        quiet_end(&o->q);
        free_out(o);
        return NULL;
    }
    return o;
}

int hb_h5out_create(hb_h5out **out, MPI_Comm comm, const char *path, const hb_out_layout *layout,
                    hb_error *err) {
    *out = NULL;
    hb_h5out *o = setup(comm, path, layout, err);
    if (!o) return err->code;
    hb_error e;
    hb_error_clear(&e);
    hid_t sc_chain = H5I_INVALID_HID, sc_draw = H5I_INVALID_HID;
    if (o->rank == 0) now_iso8601(o->created_at, sizeof o->created_at);
    MPI_Bcast(o->created_at, (int)sizeof o->created_at, MPI_CHAR, 0, o->comm);

    if (asprintf(&o->tmp_path, "%s.creating", o->path) < 0) abort();
    STEP(create_file(o, &e));
    o->created = 1;
    STEP(root_attrs(o, &e));
    STEP(if ((o->g_post = make_group(o, "/posterior")) < 0 ||
             (o->g_stats = make_group(o, "/sample_stats")) < 0)
             io_fail(o, &e, "cannot create groups"));
    STEP(if ((sc_chain = make_coord(o, o->g_post, "chain", o->n_chains)) < 0 ||
             (sc_draw = make_coord(o, o->g_post, "draw", o->n_draws)) < 0)
             io_fail(o, &e, "cannot create /posterior/chain and draw"));
    for (size_t i = 0; i < o->n_vars; i++) STEP(create_var(o, &o->vars[i], sc_chain, sc_draw, &e));
    close_id(&sc_chain);
    close_id(&sc_draw);
    STEP(if ((sc_chain = make_coord(o, o->g_stats, "chain", o->n_chains)) < 0 ||
             (sc_draw = make_coord(o, o->g_stats, "draw", o->n_draws)) < 0)
             io_fail(o, &e, "cannot create /sample_stats/chain and draw"));
    for (size_t k = 0; k < o->n_stats; k++) STEP(create_stat(o, k, sc_chain, sc_draw, &e));
    close_id(&sc_chain);
    close_id(&sc_draw);
    STEP(if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) io_fail(o, &e, "cannot flush"));
    MPI_Barrier(o->comm);
    if (o->no_fill) STEP(reserve_space(o, &e));
    STEP(if (o->rank == 0 && rename(o->tmp_path, o->path) != 0) hb_fail(
        &e, HB_ERR_IO, "cannot rename %s to %s: %s", o->tmp_path, o->path, strerror(errno)));
    free(o->tmp_path);
    o->tmp_path = NULL;
    quiet_end(&o->q);
    *out = o;
    return HB_OK;
fail:
    close_id(&sc_chain);
    close_id(&sc_draw);
    close_all(o);
    if (o->created) {
        MPI_Barrier(o->comm);
        if (o->rank == 0) unlink(o->tmp_path ? o->tmp_path : o->path);
    }
    quiet_end(&o->q);
    free_out(o);
    return err->code;
}

/* Is dataset d (chain, draw, ...) of n_chains x n_draws? */
static int has_shape(hid_t d, size_t n_chains, size_t n_draws) {
    hid_t fs = H5Dget_space(d);
    hsize_t dims[2 + MAX_EXTRA];
    int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
    int ok = rank >= 2 && rank <= 2 + MAX_EXTRA && H5Sget_simple_extent_dims(fs, dims, NULL) >= 0 &&
             dims[0] == n_chains && dims[1] == n_draws;
    if (fs >= 0) H5Sclose(fs);
    return ok;
}

int hb_h5out_reopen(hb_h5out **out, MPI_Comm comm, const char *path, const hb_out_layout *layout,
                    hb_error *err) {
    *out = NULL;
    hb_h5out *o = setup(comm, path, layout, err);
    if (!o) return err->code;
    hb_error e;
    hb_error_clear(&e);
    STEP({
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        herr_t rc = fapl < 0 ? -1 : H5Pset_fapl_mpio(fapl, o->comm, MPI_INFO_NULL);
        if (rc >= 0) rc = H5Pset_all_coll_metadata_ops(fapl, 1);
        if (rc >= 0) rc = H5Pset_coll_metadata_write(fapl, 1);
        if (rc >= 0) o->file = H5Fopen(o->path, H5F_ACC_RDWR, fapl);
        if (fapl >= 0) H5Pclose(fapl);
        if (rc < 0 || o->file < 0) {
            char detail[600];
            h5_detail(&o->q, detail, sizeof detail);
            hb_fail(&e, HB_ERR_IO, "--resume: cannot open the output %s: %s", o->path, detail);
        } else {
            o->dxpl = H5Pcreate(H5P_DATASET_XFER);
            if (o->dxpl < 0 || H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
                io_fail(o, &e, "cannot make a collective transfer property");
        }
    });
    STEP(if ((o->g_post = H5Gopen2(o->file, "/posterior", H5P_DEFAULT)) < 0 ||
             (o->g_stats = H5Gopen2(o->file, "/sample_stats", H5P_DEFAULT)) < 0)
             hb_fail(&e, HB_ERR_IO, "--resume: %s has no /posterior or /sample_stats", o->path));
    for (size_t i = 0; i < o->n_vars; i++) {
        h5var *v = &o->vars[i];
        STEP(if ((v->dset = H5Dopen2(o->g_post, v->name, H5P_DEFAULT)) < 0 ||
                 !has_shape(v->dset, o->n_chains, o->n_draws))
                 hb_fail(&e, HB_ERR_IO,
                         "--resume: %s: /posterior/%s is missing or not %zu chains x %zu draws "
                         "(the output belongs to another run)",
                         o->path, v->name, o->n_chains, o->n_draws));
    }
    for (size_t k = 0; k < o->n_stats; k++)
        STEP(if ((o->stat_dsets[k] = H5Dopen2(o->g_stats, o->stat_names[k], H5P_DEFAULT)) < 0 ||
                 !has_shape(o->stat_dsets[k], o->n_chains, o->n_draws))
                 hb_fail(&e, HB_ERR_IO,
                         "--resume: %s: /sample_stats/%s is missing or not %zu chains x %zu "
                         "draws (the output belongs to another run)",
                         o->path, o->stat_names[k], o->n_chains, o->n_draws));
    STEP({
        int64_t c = -1;
        hid_t a = H5Aopen(o->file, "draws_committed", H5P_DEFAULT);
        if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &c) < 0 || c < 0 || (size_t)c > o->n_draws)
            hb_fail(&e, HB_ERR_IO, "--resume: %s: no valid draws_committed", o->path);
        if (a >= 0) H5Aclose(a);
        o->committed = c < 0 ? 0 : (size_t)c;
    });
    quiet_end(&o->q);
    *out = o;
    return HB_OK;
fail:
    close_all(o);
    quiet_end(&o->q);
    free_out(o);
    return err->code;
}

size_t hb_h5out_committed(const hb_h5out *o) {
    return o->committed;
}

/* ---- attributes ---- */

int hb_h5out_attr_string(hb_h5out *o, const char *name, const char *value, hb_error *err) {
    /* Metadata must be identical on all ranks: rank 0's value wins. */
    if (!value) value = "";
    unsigned long long len = o->rank == 0 ? strlen(value) : 0;
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, o->comm);
    char *v = malloc(len + 1);
    hb_error e;
    hb_error_clear(&e);
    if (!v) {
        MPI_Abort(o->comm, HB_ERR_INTERNAL); /* the other ranks are inside the Bcast below */
        return HB_ERR_INTERNAL;
    }
    if (o->rank == 0) memcpy(v, value, len);
    MPI_Bcast(v, (int)len, MPI_CHAR, 0, o->comm);
    v[len] = '\0';
    quiet_begin(&o->q);
    if (put_attr_str(o->file, name, v) < 0) io_fail(o, &e, "cannot write attribute %s", name);
    quiet_end(&o->q);
    free(v);
    return agree(o, &e, err) ? err->code : HB_OK;
}

int hb_h5out_attr_int(hb_h5out *o, const char *name, int64_t value, hb_error *err) {
    MPI_Bcast(&value, 1, MPI_INT64_T, 0, o->comm);
    hb_error e;
    hb_error_clear(&e);
    quiet_begin(&o->q);
    if (put_attr_i64(o->file, name, value) < 0) io_fail(o, &e, "cannot write attribute %s", name);
    quiet_end(&o->q);
    return agree(o, &e, err) ? err->code : HB_OK;
}

int hb_h5out_attr_double(hb_h5out *o, const char *name, double value, hb_error *err) {
    MPI_Bcast(&value, 1, MPI_DOUBLE, 0, o->comm);
    hb_error e;
    hb_error_clear(&e);
    quiet_begin(&o->q);
    if (put_attr(o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value) < 0)
        io_fail(o, &e, "cannot write attribute %s", name);
    quiet_end(&o->q);
    return agree(o, &e, err) ? err->code : HB_OK;
}

/* ---- draws ---- */

/* Collective write of this rank's block [chain0, +n_local) x [draw0, +nd) of one dataset from
   a memory buffer [n_local][nd][ncols_mem], columns [col0, col0 + ncols). */
static herr_t write_block(const hb_h5out *o, hid_t d, hid_t mtype, const void *buf, size_t draw0,
                          size_t nd, size_t ncols_mem, size_t col0, size_t ncols) {
    hid_t fs = H5Dget_space(d);
    if (fs < 0) return -1;
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t fstart[2 + MAX_EXTRA] = {0}, fcount[2 + MAX_EXTRA];
    if (rank < 2 || rank > 2 + MAX_EXTRA || H5Sget_simple_extent_dims(fs, fcount, NULL) < 0) {
        H5Sclose(fs);
        return -1;
    }
    fstart[0] = o->chain0;
    fstart[1] = draw0;
    fcount[0] = o->n_local;
    fcount[1] = nd;
    /* The memory space has the file's rank where it can: HDF5 maps selections of different
       ranks to chunks element by element (measured: the 2-D sample stats from a 3-D memory
       space took longer than the 3.3 GB of draws). 2-D datasets: columns col0 of rows of
       nd * ncols_mem values; 3-D: as the buffer is laid out; deeper: a 3-D view. */
    hsize_t nm = ncols_mem ? ncols_mem : 1;
    hsize_t mdims[3] = {o->n_local ? o->n_local : 1, nd, nm};
    hsize_t mstart[3] = {0, 0, col0}, mcount[3] = {o->n_local, nd, ncols};
    hsize_t mstride[3] = {1, 1, 1};
    int mrank = 3;
    if (rank == 2 && ncols == 1) {
        mrank = 2;
        mdims[1] = nd * nm;
        mstart[1] = col0;
        mstride[1] = nm;
        mcount[1] = nd;
    }
    hid_t ms = H5Screate_simple(mrank, mdims, NULL);
    herr_t rc = ms < 0 ? -1 : 0;
    if (rc >= 0 && o->n_local == 0) {
        rc = H5Sselect_none(fs);
        if (rc >= 0) rc = H5Sselect_none(ms);
    } else if (rc >= 0) {
        rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, fstart, NULL, fcount, NULL);
        if (rc >= 0) rc = H5Sselect_hyperslab(ms, H5S_SELECT_SET, mstart, mstride, mcount, NULL);
    }
    static const double dummy[2];
    if (rc >= 0) rc = H5Dwrite(d, mtype, ms, fs, o->dxpl, buf ? buf : (const void *)dummy);
    if (ms >= 0) H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

int hb_h5out_write_draws(hb_h5out *o, size_t draw0, size_t nd, const double *pos,
                         const void *const *stats, hb_error *err) {
    hb_error e;
    hb_error_clear(&e);
    /* the same draw range on all ranks (min == max) */
    unsigned long long v[4] = {draw0, nd, ~(unsigned long long)draw0, ~(unsigned long long)nd};
    MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_UNSIGNED_LONG_LONG, MPI_MAX, o->comm);
    if (v[0] != ~v[2] || v[1] != ~v[3])
        hb_fail(&e, HB_ERR_INTERNAL, "%s: ranks disagree on the draws to write", o->path);
    else if (draw0 > o->n_draws || nd > o->n_draws - draw0)
        hb_fail(&e, HB_ERR_INTERNAL, "%s: draws [%zu, %zu) outside the %zu allocated", o->path,
                draw0, draw0 + nd, o->n_draws);
    else if (o->n_local > 0 && nd > 0 && ((o->dim > 0 && !pos) || (o->n_stats > 0 && !stats)))
        hb_fail(&e, HB_ERR_INTERNAL, "%s: missing draw buffers", o->path);
    static long calls = 0;
    const char *fault = getenv("HB_FAULT_WRITE");
    if (e.code == HB_OK && fault && ++calls == atol(fault))
        hb_fail(&e, HB_ERR_IO,
                "%s: cannot write draws %zu..%zu: injected failure (HB_FAULT_WRITE=%s)", o->path,
                draw0, draw0 + nd - 1, fault);
    for (size_t k = 0; e.code == HB_OK && stats && o->n_local > 0 && nd > 0 && k < o->n_stats; k++)
        if (!stats[k])
            hb_fail(&e, HB_ERR_INTERNAL, "%s: missing stat %s", o->path, o->stat_names[k]);
    if (agree(o, &e, err)) return err->code;
    if (nd == 0) return HB_OK;
    quiet_begin(&o->q);
    for (size_t i = 0; i < o->n_vars; i++) {
        const h5var *var = &o->vars[i];
        STEP(if (write_block(o, var->dset, H5T_NATIVE_DOUBLE, pos, draw0, nd, o->dim, var->col0,
                             var->ncols) < 0)
                 io_fail(o, &e, "cannot write draws %zu..%zu of /posterior/%s", draw0,
                         draw0 + nd - 1, var->name));
    }
    for (size_t k = 0; k < o->n_stats; k++)
        STEP(if (write_block(o, o->stat_dsets[k], stat_mtype(o->stat_types[k]),
                             o->n_local && stats ? stats[k] : NULL, draw0, nd, 1, 0, 1) < 0)
                 io_fail(o, &e, "cannot write draws %zu..%zu of /sample_stats/%s", draw0,
                         draw0 + nd - 1, o->stat_names[k]));
    /* Data on disk first, then the attribute that makes it count. */
    STEP(if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) io_fail(o, &e, "cannot flush draws"));
    if (draw0 <= o->committed && draw0 + nd > o->committed) {
        int64_t c = (int64_t)(draw0 + nd);
        STEP({
            hid_t a = H5Aopen(o->file, "draws_committed", H5P_DEFAULT);
            if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &c) < 0 || H5Aclose(a) < 0 ||
                H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0)
                io_fail(o, &e, "cannot raise draws_committed to %lld", (long long)c);
        });
        o->committed = draw0 + nd;
    }
    quiet_end(&o->q);
    return HB_OK;
fail:
    quiet_end(&o->q);
    return err->code;
}

/* ---- adaptation, close, abort ---- */

int hb_h5out_adaptation(hb_h5out *o, double step_size, const double *inv_metric, size_t dim,
                        hb_error *err) {
    hb_error e;
    hb_error_clear(&e);
    hid_t g = H5I_INVALID_HID, sc = H5I_INVALID_HID, d = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    int rc = HB_OK;
    if (dim == 0 || (o->rank == 0 && !inv_metric))
        hb_fail(&e, HB_ERR_INTERNAL, "%s: adaptation needs an inverse metric", o->path);
    if (agree(o, &e, err)) return err->code;
    quiet_begin(&o->q);
    /* Rewriting replaces the group (the old one's space is not reclaimed). */
    STEP({
        htri_t ex = H5Lexists(o->file, "/adaptation", H5P_DEFAULT);
        if (ex < 0 || (ex > 0 && H5Ldelete(o->file, "/adaptation", H5P_DEFAULT) < 0))
            io_fail(o, &e, "cannot replace /adaptation");
    });
    STEP(if ((g = make_group(o, "/adaptation")) < 0 ||
             put_attr(g, "step_size", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &step_size) < 0)
             io_fail(o, &e, "cannot create /adaptation"));
    STEP({
        hsize_t n = dim;
        sc = make_coord(o, g, "inv_metric_dim_0", dim);
        sp = sc < 0 ? -1 : H5Screate_simple(1, &n, NULL);
        d = sp < 0 ? -1
                   : H5Dcreate2(g, "inv_metric", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT);
        if (d < 0 || write_from_root(o, d, H5T_NATIVE_DOUBLE, inv_metric) < 0 ||
            H5DSattach_scale(d, sc, 0) < 0)
            io_fail(o, &e, "cannot write /adaptation/inv_metric");
    });
    STEP(if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) io_fail(o, &e, "cannot flush"));
    rc = HB_OK;
    goto done;
fail:
    rc = err->code;
done:
    if (sp >= 0) H5Sclose(sp);
    close_id(&d);
    close_id(&sc);
    close_id(&g);
    quiet_end(&o->q);
    return rc;
}

/* Extra items of /adaptation (after hb_h5out_adaptation made the group). */

int hb_h5out_adaptation_attr(hb_h5out *o, const char *name, double value, hb_error *err) {
    MPI_Bcast(&value, 1, MPI_DOUBLE, 0, o->comm);
    hb_error e;
    hb_error_clear(&e);
    quiet_begin(&o->q);
    hid_t g = H5Gopen2(o->file, "/adaptation", H5P_DEFAULT);
    if (g < 0 || put_attr(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value) < 0)
        io_fail(o, &e, "cannot write attribute /adaptation %s", name);
    close_id(&g);
    quiet_end(&o->q);
    return agree(o, &e, err) ? err->code : HB_OK;
}

int hb_h5out_adaptation_attr_string(hb_h5out *o, const char *name, const char *value,
                                    hb_error *err) {
    if (!value) value = "";
    unsigned long long len = o->rank == 0 ? strlen(value) : 0;
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, o->comm);
    char *v = malloc(len + 1);
    if (!v) {
        MPI_Abort(o->comm, HB_ERR_INTERNAL); /* the other ranks are inside the Bcast below */
        return HB_ERR_INTERNAL;
    }
    if (o->rank == 0) memcpy(v, value, len);
    MPI_Bcast(v, (int)len, MPI_CHAR, 0, o->comm);
    v[len] = '\0';
    hb_error e;
    hb_error_clear(&e);
    quiet_begin(&o->q);
    hid_t g = H5Gopen2(o->file, "/adaptation", H5P_DEFAULT);
    if (g < 0 || put_attr_str(g, name, v) < 0)
        io_fail(o, &e, "cannot write attribute /adaptation %s", name);
    close_id(&g);
    quiet_end(&o->q);
    free(v);
    return agree(o, &e, err) ? err->code : HB_OK;
}

int hb_h5out_adaptation_matrix(hb_h5out *o, const char *name, const double *data, size_t rows,
                               size_t cols, hb_error *err) {
    hb_error e;
    hb_error_clear(&e);
    hid_t g = H5I_INVALID_HID, s0 = H5I_INVALID_HID, s1 = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hid_t sp = H5I_INVALID_HID;
    int rc = HB_OK, nd = cols > 1 ? 2 : 1;
    char n0[256], n1[256];
    snprintf(n0, sizeof n0, "%s_dim_0", name);
    snprintf(n1, sizeof n1, "%s_dim_1", name);
    if (rows == 0 || cols == 0 || (o->rank == 0 && !data))
        hb_fail(&e, HB_ERR_INTERNAL, "%s: /adaptation/%s is empty", o->path, name);
    if (agree(o, &e, err)) return err->code;
    quiet_begin(&o->q);
    STEP(if ((g = H5Gopen2(o->file, "/adaptation", H5P_DEFAULT)) < 0)
             io_fail(o, &e, "cannot open /adaptation"));
    STEP({
        hsize_t dims[2] = {rows, cols};
        s0 = make_coord(o, g, n0, rows);
        s1 = nd == 2 && s0 >= 0 ? make_coord(o, g, n1, cols) : s0;
        sp = s1 < 0 ? -1 : H5Screate_simple(nd, dims, NULL);
        d = sp < 0 ? -1
                   : H5Dcreate2(g, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || write_from_root(o, d, H5T_NATIVE_DOUBLE, data) < 0 ||
            H5DSattach_scale(d, s0, 0) < 0 || (nd == 2 && H5DSattach_scale(d, s1, 1) < 0))
            io_fail(o, &e, "cannot write /adaptation/%s", name);
    });
    STEP(if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) io_fail(o, &e, "cannot flush"));
    goto done;
fail:
    rc = err->code;
done:
    if (sp >= 0) H5Sclose(sp);
    close_id(&d);
    if (s1 != s0) close_id(&s1);
    close_id(&s0);
    close_id(&g);
    quiet_end(&o->q);
    return rc;
}

int hb_h5out_close(hb_h5out *o, hb_error *err) {
    if (!o) return HB_OK;
    hb_error e;
    hb_error_clear(&e);
    quiet_begin(&o->q);
    /* H5Fclose does not sync (the MPI-IO driver skips it when closing): sync first */
    if (o->file >= 0 && H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) io_fail(o, &e, "cannot sync");
    if (close_all(o) < 0 && e.code == HB_OK) io_fail(o, &e, "cannot close");
    quiet_end(&o->q);
    int bad = agree(o, &e, err);
    free_out(o);
    return bad ? err->code : HB_OK;
}

void hb_h5out_abort(hb_h5out *o) {
    if (!o) return;
    quiet_begin(&o->q);
    close_all(o);
    quiet_end(&o->q);
    MPI_Barrier(o->comm);
    if (o->rank == 0 && o->created && o->committed == 0) unlink(o->path);
    free_out(o);
}
