/* The run loop (the "evolve" layer): config -> plan -> model + sampler -> batches stepped by
 * OpenMP threads -> pooled warmup statistics over MPI -> draws written in batches. */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/progress.h"
#include "core/reduce.h"
#include "core/rng.h"
#include "heartbeat/heartbeat.h"
#include "io/config.h"
#include "io/h5out.h"
#include "models/constrained.h"
#include "models/models.h"
#include "samplers/sampler.h"

enum { L = HB_LANES };

typedef struct run_settings {
    uint32_t seed;
    int64_t chains, warmup, draws, thin, write_batch, deflate;
    double init_radius, init_offset, progress_every;
    const char *output;
    const char *algorithm;
} run_settings;

typedef struct run {
    MPI_Comm comm;
    int rank, size, nthreads;
    run_settings rs;
    hb_config *cfg;
    char *effective;
    hb_model model;
    int model_open;
    const hb_sampler_type *st;
    void *sampler;
    size_t dim, n_state, n_ws, n_stats, n_red;
    size_t n_out;   /* values per draw in /posterior: the model's outputs (ABI v2) or dim */
    int has_out;    /* the model has constrained outputs */
    double *outbuf; /* per thread: outputs [n_out][L] + scratch dim + n_out */
    /* chain blocks: global batch range of this rank */
    size_t nb_total, b0, nb_local;
    size_t chain0, n_local; /* real chains of this rank */
    hb_batch *batches;
    double *mem;                          /* positions, gradients, lp, state of all local batches */
    double *ws;                           /* per-thread workspace */
    double *lane_stats;                   /* per-thread [n_stats][L] */
    double *red;                          /* [nb_local][n_red] */
    double *moments;                      /* [nb_local][1 + 2 dim] */
    int64_t grads_warmup, grads_sampling; /* local totals over real chains */
    /* pooled dense co-moments [1 + dim + dim^2], allocated on first use */
    double *dense;
} run;

/* All ranks agree on the worst status (the max code); the message of the lowest failing
   rank is broadcast so every rank reports the same text. COLLECTIVE. */
static int agree(MPI_Comm comm, hb_error *err) {
    int rank, mine = err->code, worst = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, comm);
    if (worst == HB_OK) return HB_OK;
    int who = mine == worst ? rank : 1 << 30, root = 0;
    MPI_Allreduce(&who, &root, 1, MPI_INT, MPI_MIN, comm);
    MPI_Bcast(err->msg, sizeof err->msg, MPI_CHAR, root, comm);
    err->code = worst;
    return worst;
}

static int read_run_settings(run *r, hb_error *err) {
    hb_config *c = r->cfg;
    run_settings *s = &r->rs;
    int64_t seed, def;
    if (hb_cfg_has(c, "run", "seed")) {
        if (hb_cfg_int(c, "run", "seed", NULL, 0, 4294967295LL, &seed, err)) return err->code;
    } else {
        /* No seed given: rank 0 draws one, every rank uses it, and the effective config
           records it so the run can be repeated from its output. */
        uint32_t s0 = (uint32_t)time(NULL) ^ (uint32_t)getpid() * 2654435761u;
        MPI_Bcast(&s0, 1, MPI_UINT32_T, 0, r->comm);
        seed = s0;
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)seed);
        hb_cfg_record(c, "run", "seed", buf);
    }
    s->seed = (uint32_t)seed;
    def = 64;
    if (hb_cfg_int(c, "run", "chains", &def, 1, (int64_t)1 << 36, &s->chains, err))
        return err->code;
    def = 1000;
    if (hb_cfg_int(c, "run", "warmup", &def, 0, (int64_t)1 << 40, &s->warmup, err))
        return err->code;
    def = 1000;
    if (hb_cfg_int(c, "run", "draws", &def, 1, (int64_t)1 << 40, &s->draws, err)) return err->code;
    def = 1;
    if (hb_cfg_int(c, "run", "thin", &def, 1, 1 << 30, &s->thin, err)) return err->code;
    if (hb_cfg_string(c, "run", "output", "heartbeat.h5", &s->output, err)) return err->code;
    double radius = 2.0;
    if (hb_cfg_double(c, "run", "init_radius", &radius, 0, 1e300, &s->init_radius, err))
        return err->code;
    double offset = 0.0; /* every coordinate of the initial points shifted by this */
    if (hb_cfg_double(c, "run", "init_offset", &offset, -1e300, 1e300, &s->init_offset, err))
        return err->code;
    def = 0;
    if (hb_cfg_int(c, "run", "compression", &def, 0, 9, &s->deflate, err)) return err->code;
    def = 0;
    if (hb_cfg_int(c, "run", "write_batch", &def, 0, 1 << 30, &s->write_batch, err))
        return err->code;
    double pe = 10;
    if (hb_cfg_double(c, "run", "progress_every", &pe, 0, 1e9, &s->progress_every, err))
        return err->code;
    if (hb_cfg_has(c, "run", "checkpoint_every")) {
        int64_t ce;
        if (hb_cfg_int(c, "run", "checkpoint_every", NULL, 0, 1 << 30, &ce, err)) return err->code;
        if (r->rank == 0)
            fprintf(stderr, "heartbeat: warning: [run] checkpoint_every: checkpoints are not "
                            "implemented yet; ignored\n");
    }
    return HB_OK;
}

/* Chains per HDF5 chunk: divides every rank's first chain (chunks never span two ranks),
   at most n_chains, and about a megabyte per chunk of the widest variable. */
static size_t chunk_chains(const run *r, size_t chunk_draws) {
    size_t N = (size_t)r->rs.chains, g = 0;
    for (int k = 1; k < r->size; k++) {
        size_t start = ((size_t)k * r->nb_total / (size_t)r->size) * L;
        if (start >= N) continue;
        size_t a = g, b = start;
        while (b) {
            size_t t = a % b;
            a = b;
            b = t;
        }
        g = a;
    }
    size_t cap = (1u << 20) / (8 * chunk_draws * (r->dim > 0 ? r->dim : 1));
    if (cap < 1) cap = 1;
    size_t c = N < cap ? N : cap;
    if (g == 0) return c;
    while (c > 1 && g % c != 0) c--;
    return c;
}

static double *alloc_doubles(size_t n) {
    size_t bytes = ((n ? n : 1) * sizeof(double) + 63) / 64 * 64;
    double *p = aligned_alloc(64, bytes);
    if (!p) abort();
    memset(p, 0, bytes);
    return p;
}

static void setup_batches(run *r) {
    size_t N = (size_t)r->rs.chains;
    r->nb_total = (N + L - 1) / L;
    r->b0 = (size_t)r->rank * r->nb_total / (size_t)r->size;
    size_t b1 = (size_t)(r->rank + 1) * r->nb_total / (size_t)r->size;
    r->nb_local = b1 - r->b0;
    r->chain0 = r->b0 * L;
    size_t c1 = b1 * L < N ? b1 * L : N;
    r->n_local = c1 > r->chain0 ? c1 - r->chain0 : 0;
    size_t d = r->dim;
    size_t per_batch = (2 * d + 1 + r->n_state) * L;
    r->mem = alloc_doubles(per_batch * r->nb_local);
    r->batches = calloc(r->nb_local ? r->nb_local : 1, sizeof *r->batches);
    if (!r->batches) abort();
    for (size_t k = 0; k < r->nb_local; k++) {
        hb_batch *b = &r->batches[k];
        double *p = r->mem + k * per_batch;
        b->x = p;
        b->g = p + d * L;
        b->lp = p + 2 * d * L;
        b->state = p + (2 * d + 1) * L;
        b->chain0 = (r->b0 + k) * L;
        size_t end = b->chain0 + L < N ? b->chain0 + L : N;
        b->n_real = (int)(end - b->chain0);
    }
    r->nthreads = omp_get_max_threads();
    size_t ws = (r->n_ws > 2 * d * L + 2 * d ? r->n_ws : 2 * d * L + 2 * d) + 2 * d + 64;
    r->ws = alloc_doubles(ws * (size_t)r->nthreads);
    r->n_ws = ws;
    r->lane_stats = alloc_doubles((r->n_stats + 1) * L * (size_t)r->nthreads);
    r->outbuf = alloc_doubles((r->n_out * L + d + r->n_out) * (size_t)r->nthreads);
    r->red = alloc_doubles((r->n_red ? r->n_red : 1) * r->nb_local);
    r->moments = alloc_doubles((1 + 2 * d) * r->nb_local);
}

/* Initial positions: uniform in [-R, R] per coordinate (as Stan's init = R), redrawn up to
   100 times until the log density is finite. Returns the number of local chains that
   never found a finite point. */
static long init_positions(run *r) {
    long failed = 0;
    size_t d = r->dim;
#pragma omp parallel for schedule(static) reduction(+ : failed)
    for (size_t k = 0; k < r->nb_local; k++) {
        int t = omp_get_thread_num();
        double *ws = r->ws + (size_t)t * r->n_ws;
        hb_batch *b = &r->batches[k];
        int ok[L] = {0};
        double *u = ws, *mws = ws + d * L, *xb = mws + 2 * d;
        for (int attempt = 0; attempt < 100; attempt++) {
            hb_rng_uniforms_lanes(r->rs.seed, b->chain0, (uint64_t)attempt, HB_RNG_INIT, d, u);
            double lp[L];
            for (size_t i = 0; i < d * L; i++)
                xb[i] = r->rs.init_offset + r->rs.init_radius * (2.0 * u[i] - 1.0);
            double *g = u; /* reuse: u is consumed */
            hb_model_eval_lanes(&r->model, xb, lp, g, mws);
            int all = 1;
            for (int c = 0; c < L; c++) {
                if (!ok[c] && isfinite(lp[c])) {
                    ok[c] = 1;
                    for (size_t i = 0; i < d; i++) {
                        b->x[i * L + c] = xb[i * L + c];
                        b->g[i * L + c] = g[i * L + c];
                    }
                    b->lp[c] = lp[c];
                }
                all &= ok[c];
            }
            if (all) break;
        }
        for (int c = 0; c < b->n_real; c++) failed += !ok[c];
        /* Padding lanes that never found a point copy lane 0 so they stay finite. */
        for (int c = b->n_real; c < L; c++)
            if (!ok[c]) {
                for (size_t i = 0; i < d; i++) {
                    b->x[i * L + c] = b->x[i * L];
                    b->g[i * L + c] = b->g[i * L];
                }
                b->lp[c] = b->lp[0];
            }
    }
    return failed;
}

/* Leaf of the dense snapshot reduction: co-moments of the real chains of one local block. */
static void dense_leaf(size_t block, double *out, const void *ctx) {
    const run *r = ctx;
    const hb_batch *b = &r->batches[block - r->b0];
    size_t d = r->dim;
    memset(out, 0, (1 + d + d * d) * sizeof *out);
    for (int c = 0; c < b->n_real; c++) hb_comoments_add(out, d, b->x + c, L);
}

/* Dense moments: this iteration's positions are reduced at once (leaves computed on demand,
   so no per-block d x d storage) and merged into r->dense in iteration order, which keeps
   the result independent of the decomposition. COLLECTIVE. */
static int accumulate_dense(run *r) {
    size_t d = r->dim, kd = 1 + d + d * d;
    if (!r->dense) r->dense = alloc_doubles(kd);
    double *snap = malloc(kd * sizeof *snap);
    if (!snap) abort();
    int rc = hb_tree_reduce_leaves(r->comm, dense_leaf, r, r->b0, r->nb_local, r->nb_total, kd,
                                   hb_combine_comoments, NULL, snap);
    if (rc == HB_OK) hb_combine_comoments(r->dense, snap, kd, NULL);
    free(snap);
    return rc;
}

/* One warmup iteration over all local batches. */
static int warmup_iteration(run *r, long k, hb_progress *prog, hb_error *err) {
    hb_iter_plan plan = {0};
    r->st->plan(r->sampler, k, &plan);
    size_t d = r->dim, nm = 1 + 2 * d, n_red = r->n_red;
    int64_t grads = 0;
    double acc_sum = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : grads)
    for (size_t j = 0; j < r->nb_local; j++) {
        int t = omp_get_thread_num();
        hb_step_ctx ctx = {&r->model, d, r->rs.seed, (uint64_t)k, 1, r->sampler};
        hb_step_out out = {.stats = r->lane_stats + (size_t)t * (r->n_stats + 1) * L,
                           .red = n_red ? r->red + j * n_red : NULL};
        hb_batch *b = &r->batches[j];
        r->st->step(&ctx, b, r->ws + (size_t)t * r->n_ws, &out);
        for (int c = 0; c < b->n_real; c++) grads += out.n_grad[c];
        if (plan.accumulate_moments && plan.moments == HB_MOMENTS_DIAG) {
            double *m = r->moments + j * nm;
            for (int c = 0; c < b->n_real; c++) hb_moments_add(m, d, b->x + c, L);
        }
    }
    r->grads_warmup += grads;
    if (plan.reduce_stats && n_red) {
        double *pooled = malloc(n_red * sizeof *pooled);
        if (!pooled) abort();
        if (hb_tree_reduce(r->comm, r->red, r->b0, r->nb_local, r->nb_total, n_red, hb_combine_sum,
                           NULL, pooled)) {
            free(pooled);
            return hb_fail(err, HB_ERR_INTERNAL, "MPI reduction failed");
        }
        r->st->adapt(r->sampler, k, pooled);
        if (n_red > 1 && pooled[1] > 0) acc_sum = pooled[0] / pooled[1];
        prog->accept = acc_sum;
        free(pooled);
    }
    if (plan.accumulate_moments && plan.moments == HB_MOMENTS_DENSE && accumulate_dense(r))
        return hb_fail(err, HB_ERR_INTERNAL, "MPI reduction failed");
    if (plan.update_metric && plan.moments == HB_MOMENTS_DENSE && r->dense) {
        int rc = r->st->set_moments(r->sampler, r->dense, err);
        memset(r->dense, 0, (1 + d + d * d) * sizeof *r->dense);
        if (rc) return rc;
    } else if (plan.update_metric) {
        double *pooled = malloc(nm * sizeof *pooled);
        if (!pooled) abort();
        int rc = hb_tree_reduce(r->comm, r->moments, r->b0, r->nb_local, r->nb_total, nm,
                                hb_combine_moments, NULL, pooled);
        if (rc == HB_OK)
            rc = r->st->set_moments(r->sampler, pooled, err);
        else
            hb_fail(err, HB_ERR_INTERNAL, "MPI reduction failed");
        free(pooled);
        memset(r->moments, 0, nm * r->nb_local * sizeof *r->moments);
        if (rc) return rc;
    }
    return HB_OK;
}

typedef struct draw_buffers {
    double *pos;  /* [n_local][nd][dim] */
    void **stats; /* n_stats + 1 arrays [n_local][nd] (last: n_steps, int64) */
    hb_stat_spec *spec;
} draw_buffers;

static size_t stat_size(hb_stat_type t) {
    return t == HB_STAT_BOOL ? 1 : 8;
}

static void store_stat(void *arr, hb_stat_type t, size_t idx, double v) {
    if (t == HB_STAT_F64)
        ((double *)arr)[idx] = v;
    else if (t == HB_STAT_BOOL)
        ((int8_t *)arr)[idx] = v != 0;
    else
        ((int64_t *)arr)[idx] = (int64_t)v;
}

/* Sampling iterations for draws [j0, j0 + nd): each batch runs all of them on its own
   (no reductions in sampling), which keeps a batch in cache. Draws land in db laid out
   [n_local][nd][dim], as the writer takes them. */
static void sample_block(run *r, size_t j0, size_t nd, draw_buffers *db) {
    const int keep = db->pos != NULL; /* output = none: sample, keep nothing */
    size_t d = r->dim, ns = r->n_stats;
    int64_t grads = 0;
    const int64_t thin = r->rs.thin;
#pragma omp parallel for schedule(dynamic) reduction(+ : grads)
    for (size_t k = 0; k < r->nb_local; k++) {
        int t = omp_get_thread_num();
        hb_batch *b = &r->batches[k];
        double *stats = r->lane_stats + (size_t)t * (ns + 1) * L;
        hb_step_out out = {.stats = stats, .red = NULL};
        size_t lc0 = k * L; /* local chain index of lane 0 */
        for (size_t j = 0; j < nd; j++) {
            int64_t nsteps[L] = {0};
            for (int64_t it = 0; it < thin; it++) {
                uint64_t iter =
                    (uint64_t)r->rs.warmup + (uint64_t)((j0 + j) * (size_t)thin) + (uint64_t)it;
                hb_step_ctx ctx = {&r->model, d, r->rs.seed, iter, 0, r->sampler};
                r->st->step(&ctx, b, r->ws + (size_t)t * r->n_ws, &out);
                for (int c = 0; c < L; c++) nsteps[c] += out.n_grad[c];
            }
            /* The draw as the output reports it: the model's constrained outputs when it
               has them (tau, not log tau), else the coordinates. */
            const double *src = b->x;
            if (keep && r->has_out) {
                double *ob = r->outbuf + (size_t)t * (r->n_out * L + d + r->n_out);
                hb_model_outputs_lanes(&r->model, b->x, ob, ob + r->n_out * L);
                src = ob;
            }
            for (int c = 0; keep && c < b->n_real; c++) {
                size_t row = (lc0 + (size_t)c) * nd + j;
                double *dst = db->pos + row * r->n_out;
                for (size_t i = 0; i < r->n_out; i++) dst[i] = src[i * L + c];
                for (size_t s = 0; s < ns; s++)
                    store_stat(db->stats[s], db->spec[s].type, row, stats[s * L + c]);
                ((int64_t *)db->stats[ns])[row] = nsteps[c];
                grads += nsteps[c];
            }
            if (!keep)
                for (int c = 0; c < b->n_real; c++) grads += nsteps[c];
        }
    }
    r->grads_sampling += grads;
}

static int write_attrs(run *r, hb_h5out *o, double tw, double ts, hb_error *err) {
    int64_t gl[2] = {r->grads_warmup, r->grads_sampling}, gg[2];
    MPI_Allreduce(gl, gg, 2, MPI_INT64_T, MPI_SUM, r->comm);
    double tl[2] = {tw, ts}, tg[2];
    MPI_Allreduce(tl, tg, 2, MPI_DOUBLE, MPI_MAX, r->comm);
    if (hb_h5out_attr_int(o, "gradient_evals_warmup", gg[0], err) ||
        hb_h5out_attr_int(o, "gradient_evals_sampling", gg[1], err) ||
        hb_h5out_attr_double(o, "wall_time_warmup", tg[0], err) ||
        hb_h5out_attr_double(o, "wall_time_sampling", tg[1], err))
        return err->code;
    return HB_OK;
}

/* The sampler's adaptation report into /adaptation. COLLECTIVE. */
static int write_adaptation(run *r, hb_h5out *out, hb_error *err) {
    hb_adapt_item items[16];
    size_t n = r->st->report(r->sampler, items, 16);
    double step = r->st->step_size(r->sampler);
    const double *metric = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].name, "inv_metric") == 0 && items[i].cols == 1) metric = items[i].data;
    if (!metric)
        return hb_fail(err, HB_ERR_INTERNAL, "sampler %s reports no inv_metric", r->st->name);
    int rc = hb_h5out_adaptation(out, step, metric, r->dim, err);
    /* Every further item: scalars and text as attributes of /adaptation, arrays as datasets. */
    for (size_t i = 0; rc == HB_OK && i < n; i++) {
        const hb_adapt_item *it = &items[i];
        if (strcmp(it->name, "step_size") == 0 || strcmp(it->name, "inv_metric") == 0) continue;
        if (it->text)
            rc = hb_h5out_adaptation_attr_string(out, it->name, it->text, err);
        else if (it->rows == 1 && it->cols == 1)
            rc = hb_h5out_adaptation_attr(out, it->name, it->data[0], err);
        else
            rc = hb_h5out_adaptation_matrix(out, it->name, it->data, it->rows, it->cols, err);
    }
    return rc;
}

static void run_free(run *r) {
    if (r->sampler) r->st->destroy(r->sampler);
    if (r->model_open) hb_model_close(&r->model);
    free(r->batches);
    free(r->mem);
    free(r->ws);
    free(r->lane_stats);
    free(r->outbuf);
    free(r->red);
    free(r->moments);
    free(r->dense);
    free(r->effective);
    hb_config_free(r->cfg);
}

/* Parse and validate everything before any file is touched. Not collective beyond the seed
   broadcast; errors are identical on all ranks (same input). */
static int prepare(run *r, const hb_run_options *opt, hb_error *err) {
    if (hb_config_load(&r->cfg, opt->config_path, err)) return err->code;
    for (size_t i = 0; i < opt->n_overrides; i++)
        if (hb_config_override(r->cfg, opt->overrides[i], err)) return err->code;
    if (opt->output) {
        char *a = NULL;
        if (asprintf(&a, "run.output=%s", opt->output) < 0) abort();
        hb_config_override(r->cfg, a, err);
        free(a);
    }
    if (read_run_settings(r, err)) return err->code;
    if (hb_cfg_string(r->cfg, "sampler", "algorithm", NULL, &r->rs.algorithm, err))
        return err->code;
    r->st = hb_sampler_find(r->rs.algorithm);
    if (!r->st) {
        char names[256] = "";
        for (const hb_sampler_type *const *t = hb_sampler_types(); *t; t++) {
            strncat(names, t == hb_sampler_types() ? "" : ", ", sizeof names - strlen(names) - 1);
            strncat(names, (*t)->name, sizeof names - strlen(names) - 1);
        }
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [sampler] algorithm: unknown sampler '%s' (known: %s)",
                       hb_config_path(r->cfg), r->rs.algorithm, names);
    }
    if (hb_model_open(&r->model, r->cfg, err)) return err->code;
    r->model_open = 1;
    r->dim = r->model.dim;
    r->has_out = hb_model_has_outputs(&r->model);
    r->n_out = hb_model_n_outputs(&r->model);
    if (r->st->create(r->cfg, &r->model, (long)r->rs.warmup, &r->sampler, err)) {
        r->sampler = NULL;
        return err->code;
    }
    if (hb_cfg_finish(r->cfg, err)) return err->code;
    r->effective = hb_cfg_effective(r->cfg);
    r->n_state = r->st->state_doubles(r->sampler, r->dim);
    r->n_ws = r->st->workspace_doubles(r->sampler, r->dim);
    r->n_stats = r->st->n_stats;
    r->n_red = r->st->red_doubles ? r->st->red_doubles(r->sampler, r->dim) : r->st->n_red;
    return HB_OK;
}

int hb_run(MPI_Comm comm, const hb_run_options *opt, hb_error *err) {
    run R = {0}, *r = &R;
    r->comm = comm;
    MPI_Comm_rank(comm, &r->rank);
    MPI_Comm_size(comm, &r->size);
    hb_error_clear(err);
    prepare(r, opt, err);
    if (agree(comm, err)) {
        run_free(r);
        return err->code;
    }
    setup_batches(r);

    /* Output layout. */
    size_t d = r->dim, ns = r->n_stats;
    size_t D = (size_t)r->rs.draws;
    size_t nd = (size_t)r->rs.write_batch;
    if (nd == 0) {
        /* about 256 MB of draws over all ranks per write, at most 1000 draws */
        double per_draw = (double)r->rs.chains * (double)(r->n_out + ns + 1) * 8.0;
        nd = (size_t)fmax(1.0, fmin(1000.0, floor(268435456.0 / per_draw)));
    }
    if (nd > D) nd = D;
    const char **names = malloc((r->n_out ? r->n_out : 1) * sizeof *names);
    hb_stat_spec *spec = malloc((ns + 1) * sizeof *spec);
    if (!names || !spec) abort();
    for (size_t i = 0; i < r->n_out; i++) names[i] = hb_model_output_name(&r->model, i);
    for (size_t s = 0; s < ns; s++) spec[s] = r->st->stats[s];
    spec[ns] = (hb_stat_spec){"n_steps", HB_STAT_I64};
    hb_out_layout lay = {.n_chains = (size_t)r->rs.chains,
                         .chain0 = r->chain0,
                         .n_local = r->n_local,
                         .n_draws = D,
                         .dim = r->n_out,
                         .coord_names = names,
                         .n_stats = ns + 1,
                         .stats = spec,
                         .chunk_draws = nd,
                         .deflate = (int)r->rs.deflate};
    lay.chunk_chains = chunk_chains(r, nd);
    hb_h5out *out = NULL;
    /* output = none: sample without writing (benchmarks, dry runs). */
    const int write = strcmp(r->rs.output, "none") != 0;
    int rc = write ? hb_h5out_create(&out, comm, r->rs.output, &lay, err) : HB_OK;
    if (rc == HB_OK && write) {
        char seed[32];
        snprintf(seed, sizeof seed, "%u", r->rs.seed);
        if (hb_h5out_attr_string(out, "config", r->effective, err) ||
            hb_h5out_attr_int(out, "seed", (int64_t)r->rs.seed, err) ||
            hb_h5out_attr_int(out, "n_threads", r->nthreads, err) ||
            hb_h5out_attr_string(out, "algorithm", r->st->name, err) ||
            hb_h5out_attr_string(out, "model", r->model.name, err))
            rc = err->code;
    }
    if (rc) {
        if (out) hb_h5out_abort(out);
        free(names);
        free(spec);
        run_free(r);
        return err->code;
    }

    hb_progress prog;
    hb_progress_init(&prog, r->rank == 0 && !opt->quiet, r->rs.progress_every, (long)r->rs.warmup,
                     (long)(D * (size_t)r->rs.thin), (double)r->rs.chains);

    /* Initial positions. */
    long failed = init_positions(r), failed_all = 0;
    MPI_Allreduce(&failed, &failed_all, 1, MPI_LONG, MPI_SUM, comm);
    if (failed_all > 0) {
        hb_fail(err, HB_ERR_MODEL,
                "model %s: %ld chain(s) found no point with finite log density in 100 draws from "
                "[-%g, %g]^%zu (set [run] init_radius, or check the model)",
                r->model.name, failed_all, r->rs.init_radius, r->rs.init_radius, d);
        rc = err->code;
    }
    if (rc == HB_OK && r->st->init_batch) {
        for (size_t k = 0; k < r->nb_local; k++) {
            hb_step_ctx ctx = {&r->model, d, r->rs.seed, 0, 1, r->sampler};
            r->st->init_batch(&ctx, &r->batches[k]);
        }
    }

    /* Warmup. */
    double t0 = MPI_Wtime();
    for (long k = 0; rc == HB_OK && k < (long)r->rs.warmup; k++) {
        rc = warmup_iteration(r, k, &prog, err);
        rc = agree(comm, err);
        prog.step_size = r->st->step_size(r->sampler);
        hb_progress_update(&prog, HB_PHASE_WARMUP, k + 1,
                           (double)(r->grads_warmup) * (double)r->size);
    }
    if (rc == HB_OK) r->st->end_warmup(r->sampler);
    double t_warm = MPI_Wtime() - t0;

    /* Sampling, in write batches. */
    draw_buffers db = {.spec = spec};
    db.stats = calloc(ns + 1, sizeof *db.stats);
    if (!db.stats) abort();
    if (write) {
        db.pos = malloc((r->n_local * nd * r->n_out + 1) * sizeof *db.pos);
        if (!db.pos) abort();
        for (size_t s = 0; s <= ns; s++) {
            db.stats[s] = calloc(r->n_local * nd + 1, stat_size(spec[s].type));
            if (!db.stats[s]) abort();
        }
    }
    t0 = MPI_Wtime();
    prog.step_size = r->st->step_size(r->sampler);
    hb_progress_update(&prog, HB_PHASE_SAMPLING, 0, 0);
    for (size_t j0 = 0; rc == HB_OK && j0 < D; j0 += nd) {
        size_t m = D - j0 < nd ? D - j0 : nd;
        sample_block(r, j0, m, &db);
        if (write)
            rc = hb_h5out_write_draws(out, j0, m, db.pos, (const void *const *)db.stats, err);
        hb_progress_update(&prog, HB_PHASE_SAMPLING, (long)((j0 + m) * (size_t)r->rs.thin),
                           (double)r->grads_sampling * (double)r->size);
    }
    double t_samp = MPI_Wtime() - t0;
    if (write) {
        if (rc == HB_OK) rc = write_attrs(r, out, t_warm, t_samp, err);
        if (rc == HB_OK) rc = write_adaptation(r, out, err);
        hb_error cerr = {0};
        int crc = hb_h5out_close(out, &cerr);
        if (rc == HB_OK && crc) {
            *err = cerr;
            rc = crc;
        }
    }
    if (rc == HB_OK) hb_progress_finish(&prog, t_warm, t_samp, (double)r->rs.chains * (double)D);
    for (size_t s = 0; s <= ns; s++) free(db.stats[s]);
    free(db.stats);
    free(db.pos);
    free(names);
    free(spec);
    run_free(r);
    return rc;
}
