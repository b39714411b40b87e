/* The run loop (the "evolve" layer): config -> plan -> model + sampler -> batches stepped by
 * OpenMP threads -> pooled warmup statistics over MPI -> draws written in batches. */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/progress.h"
#include "core/reduce.h"
#include "core/rng.h"
#include "heartbeat/heartbeat.h"
#include "io/checkpoint.h"
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
    double checkpoint_every; /* seconds; 0 = only on signal */
    int seed_given;
    int warmup_auto;        /* [run] warmup = auto: warmup is then [run] warmup_max, the cap */
    char warmup_where[300]; /* file:line of warmup = auto */
    const char *output;
    const char *algorithm;
} run_settings;

typedef struct run {
    MPI_Comm comm;
    int rank, size, nthreads;
    int team; /* threads of the sampling region: nthreads, or 2 when one thread per rank
                 writes (the second samples while the first is in the collective write) */
    run_settings rs;
    hb_config *cfg;
    char *effective;
    hb_model model;
    int model_open;
    const hb_sampler_type *st;
    void *sampler;
    size_t dim, n_state, n_ws, n_stats, n_red;
    double *alt;    /* the batches' x_alt, g_alt ([2][dim][L] per batch), or NULL */
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
    /* checkpoint / resume */
    char *ckpt_path;
    int resume;
    hb_ckpt_header ck;       /* the checkpoint resumed from */
    void *ck_blob;           /* its sampler blob */
    double *ck_run;          /* its run doubles */
    double t_ckpt;           /* time of the last checkpoint (rank 0's clock) */
    double wall_w0, wall_s0; /* wall time of the parts before a resume */
} run;

/* SIGTERM / SIGUSR1: set here, acted on at the next batch boundary by all ranks at once. */
static volatile sig_atomic_t g_signal = 0;
static void on_signal(int signo) {
    g_signal = signo;
}

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
    s->seed_given = hb_cfg_has(c, "run", "seed");
    def = 64;
    if (hb_cfg_int(c, "run", "chains", &def, 1, (int64_t)1 << 36, &s->chains, err))
        return err->code;
    def = 1000;
    s->warmup_auto =
        hb_cfg_is_word(c, "run", "warmup", "auto", s->warmup_where, sizeof s->warmup_where);
    if (s->warmup_auto) {
        if (hb_cfg_int(c, "run", "warmup_max", &def, 20, (int64_t)1 << 40, &s->warmup, err))
            return err->code;
    } else {
        if (hb_cfg_int(c, "run", "warmup", &def, 0, (int64_t)1 << 40, &s->warmup, err))
            return err->code;
        char at[300];
        if (hb_cfg_where(c, "run", "warmup_max", at, sizeof at))
            return hb_fail(err, HB_ERR_USAGE,
                           "%s: [run] warmup_max is the cap of warmup = auto; with warmup = "
                           "%lld it has no meaning (remove it)",
                           at, (long long)s->warmup);
    }
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
    double ce = 0;
    if (hb_cfg_double(c, "run", "checkpoint_every", &ce, 0, 1e12, &s->checkpoint_every, err))
        return err->code;
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
    r->alt = r->st->alt_buffers ? alloc_doubles(2 * d * L * r->nb_local) : NULL;
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
        if (r->alt) {
            b->x_alt = r->alt + k * 2 * d * L;
            b->g_alt = b->x_alt + d * L;
        }
        size_t end = b->chain0 + L < N ? b->chain0 + L : N;
        b->n_real = (int)(end - b->chain0);
    }
    r->nthreads = omp_get_max_threads();
    r->team = r->nthreads > 1 || strcmp(r->rs.output, "none") == 0 ? r->nthreads : 2;
    size_t ws = (r->n_ws > 2 * d * L + 2 * d ? r->n_ws : 2 * d * L + 2 * d) + 2 * d + 64;
    r->ws = alloc_doubles(ws * (size_t)r->team);
    r->n_ws = ws;
    r->lane_stats = alloc_doubles((r->n_stats + 1) * L * HB_STEP_GROUP * (size_t)r->team);
    r->outbuf = alloc_doubles((r->n_out * L + d + r->n_out) * (size_t)r->team);
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
        hb_step_ctx ctx = {&r->model, d, r->rs.seed, (uint64_t)k, 1, r->sampler, 0};
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
        hb_combine_fn fn = r->st->combine ? r->st->combine : hb_combine_sum;
        if (hb_tree_reduce(r->comm, r->red, r->b0, r->nb_local, r->nb_total, n_red, fn,
                           r->st->combine ? r->sampler : NULL, pooled)) {
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

/* A batch of draws sampled but not yet written: written collectively by the master thread
   (the only one calling MPI and HDF5) while the other threads sample the next batch. */
typedef struct pending_write {
    hb_h5out *out;
    size_t j0, nd; /* 0 draws: nothing pending */
    const draw_buffers *db;
    int rc;
    hb_error *err;
} pending_write;

/* Write the pending batch, if any. COLLECTIVE (hb_h5out_write_draws). */
static void write_pending(pending_write *w) {
    if (w->nd == 0) return;
    w->rc = hb_h5out_write_draws(w->out, w->j0, w->nd, w->db->pos,
                                 (const void *const *)w->db->stats, w->err);
    w->nd = 0;
}

/* Sampling iterations for draws [j0, j0 + nd): each group of consecutive batches (one batch,
   or up to HB_STEP_GROUP when the sampler has step_group) runs all of them on its own (no
   reductions in sampling), which keeps it in cache. Groups are handed to threads in chunks
   (one shared counter update per chunk, not per batch; threads work on distant memory).
   Draws land in db laid out [n_local][nd][dim], as the writer takes them. If w has draws
   pending, the master thread first writes them (collective over ranks) and then joins the
   loop, which the other threads have started: writing batch k overlaps sampling batch
   k + 1. The draws do not depend on which thread steps which group. COLLECTIVE when w has
   draws pending. */
static void sample_block(run *r, size_t j0, size_t nd, draw_buffers *db, pending_write *w) {
    const int keep = db->pos != NULL; /* output = none: sample, keep nothing */
    size_t d = r->dim, ns = r->n_stats;
    int64_t grads = 0;
    const int64_t thin = r->rs.thin;
    const int team = w->nd > 0 ? r->team : r->nthreads;
    /* Groups of up to HB_STEP_GROUP batches, halved while there would be fewer than 4 groups
       per thread (a small run keeps every thread busy; results do not depend on G). */
    size_t G = r->st->step_group ? HB_STEP_GROUP : 1;
    while (G > 1 && r->nb_local < 4 * G * (size_t)team) G /= 2;
    const size_t ngroups = (r->nb_local + G - 1) / G;
    /* dynamic chunks of about 1/64 of a thread's share, so that the wait for the last chunk
       at the block's end is at most that */
    const int chunk = (int)(ngroups / (64 * (size_t)team)) + 1;
#pragma omp parallel num_threads(team) reduction(+ : grads)
    {
        if (omp_get_thread_num() == 0) write_pending(w);
#pragma omp for schedule(dynamic, chunk) nowait
        for (size_t q = 0; q < ngroups; q++) {
            int t = omp_get_thread_num();
            const size_t k0 = q * G, n = r->nb_local - k0 < G ? r->nb_local - k0 : G;
            hb_batch *bs[HB_STEP_GROUP];
            hb_step_out outs[HB_STEP_GROUP];
            for (size_t g = 0; g < n; g++) {
                bs[g] = &r->batches[k0 + g];
                outs[g] = (hb_step_out){.stats = r->lane_stats +
                                                 ((size_t)t * HB_STEP_GROUP + g) * (ns + 1) * L,
                                        .red = NULL};
            }
            double *ws = r->ws + (size_t)t * r->n_ws;
            int64_t lane_grads[HB_STEP_GROUP][L] = {{0}}; /* over the block, every lane */
            for (size_t j = 0; j < nd; j++) {
                int64_t nsteps[HB_STEP_GROUP][L];
                /* a draw kept counts its own steps; with nothing kept they go straight into the
                   block's sums, and the per-draw pass over the group below is skipped */
                int64_t(*cnt)[L] = keep ? nsteps : lane_grads;
                if (keep) memset(nsteps, 0, sizeof nsteps);
                for (int64_t it = 0; it < thin; it++) {
                    uint64_t iter =
                        (uint64_t)r->rs.warmup + (uint64_t)((j0 + j) * (size_t)thin) + (uint64_t)it;
                    /* only the last iteration of a kept draw has its stats read */
                    hb_step_ctx ctx = {
                        &r->model, d, r->rs.seed, iter, 0, r->sampler, !keep || it + 1 < thin};
                    if (G > 1)
                        r->st->step_group(&ctx, bs, (int)n, ws, outs);
                    else
                        r->st->step(&ctx, bs[0], ws, &outs[0]);
                    for (size_t g = 0; g < n; g++)
                        for (int c = 0; c < L; c++) cnt[g][c] += outs[g].n_grad[c];
                }
                for (size_t g = 0; keep && g < n; g++) {
                    const hb_batch *b = bs[g];
                    const double *stats = outs[g].stats;
                    const size_t lc0 = (k0 + g) * L; /* local chain index of lane 0 */
                    /* The draw as the output reports it: the model's constrained outputs when it
                       has them (tau, not log tau), else the coordinates. */
                    const double *src = b->x;
                    if (r->has_out) {
                        double *ob = r->outbuf + (size_t)t * (r->n_out * L + d + r->n_out);
                        hb_model_outputs_lanes(&r->model, b->x, ob, ob + r->n_out * L);
                        src = ob;
                    }
                    for (int c = 0; c < b->n_real; c++) {
                        size_t row = (lc0 + (size_t)c) * nd + j;
                        double *dst = db->pos + row * r->n_out;
                        for (size_t i = 0; i < r->n_out; i++) dst[i] = src[i * L + c];
                        for (size_t s = 0; s < ns; s++)
                            store_stat(db->stats[s], db->spec[s].type, row, stats[s * L + c]);
                        ((int64_t *)db->stats[ns])[row] = nsteps[g][c];
                    }
                    for (int c = 0; c < L; c++) lane_grads[g][c] += nsteps[g][c];
                }
            }
            /* the real chains' gradients, summed once per block (summed per draw, the profile
               of the RWMH seed benchmark put 2-3% of its time there) */
            for (size_t g = 0; g < n; g++)
                for (int c = 0; c < bs[g]->n_real; c++) grads += lane_grads[g][c];
        }
    }
    r->grads_sampling += grads;
}

/* ---- checkpoint and resume ---- */

/* Steps of samplers with alt buffers swap a batch's x, g with x_alt, g_alt: put the current
   pair back in r->mem, where the checkpoint reads the batches (the values are unchanged). */
static void canonical_batches(run *r) {
    const size_t d = r->dim, pb = (2 * d + 1 + r->n_state) * L;
    for (size_t k = 0; r->alt && k < r->nb_local; k++) {
        hb_batch *b = &r->batches[k];
        double *x = r->mem + k * pb, *g = x + d * L;
        if (b->x == x) continue;
        memcpy(x, b->x, d * L * sizeof *x);
        memcpy(g, b->g, d * L * sizeof *g);
        b->x_alt = b->x, b->g_alt = b->g, b->x = x, b->g = g;
    }
}

static size_t per_batch_doubles(const run *r) {
    return (2 * r->dim + 1 + r->n_state) * L;
}

/* A block in a checkpoint: the batch's x, g, lp, sampler state, then its warmup moments. */
static size_t per_block_doubles(const run *r) {
    return per_batch_doubles(r) + 1 + 2 * r->dim;
}

/* Write a checkpoint of the state after `next` warmup iterations (phase 0) or `next` draws
   (phase 1). COLLECTIVE. */
static int write_checkpoint(run *r, int phase, int64_t next, double t_warm, double t_samp,
                            hb_error *err) {
    size_t pb = per_batch_doubles(r), pk = per_block_doubles(r), nm = 1 + 2 * r->dim;
    size_t kd = 1 + r->dim + r->dim * r->dim;
    double *buf = malloc((r->nb_local ? r->nb_local : 1) * pk * sizeof *buf);
    if (!buf) abort();
    canonical_batches(r);
    for (size_t k = 0; k < r->nb_local; k++) {
        memcpy(buf + k * pk, r->mem + k * pb, pb * sizeof *buf);
        memcpy(buf + k * pk + pb, r->moments + k * nm, nm * sizeof *buf);
    }
    int64_t gl[2] = {r->grads_warmup, r->grads_sampling}, gg[2];
    MPI_Allreduce(gl, gg, 2, MPI_INT64_T, MPI_SUM, r->comm);
    double tl[2] = {t_warm, t_samp}, tg[2];
    MPI_Allreduce(tl, tg, 2, MPI_DOUBLE, MPI_MAX, r->comm);
    hb_ckpt_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, HB_CKPT_MAGIC, 8);
    h.version = 1;
    h.config_hash = hb_ckpt_config_hash(r->effective);
    h.seed = r->rs.seed;
    h.chains = (uint64_t)r->rs.chains;
    h.dim = r->dim;
    h.nb_total = r->nb_total;
    h.per_block = pk;
    h.phase = phase;
    h.next_iter = next;
    h.grads_warmup = gg[0];
    h.grads_sampling = gg[1];
    h.wall_warmup = r->wall_w0 + tg[0];
    h.wall_sampling = r->wall_s0 + tg[1];
    h.blob_bytes = r->st->checkpoint_bytes(r->sampler);
    h.run_doubles = r->dense ? kd : 0;
    snprintf(h.sampler, sizeof h.sampler, "%s", r->st->name);
    void *blob = malloc(h.blob_bytes ? h.blob_bytes : 1);
    if (!blob) abort();
    r->st->save(r->sampler, blob);
    int rc = hb_ckpt_write(r->comm, r->ckpt_path, &h, blob, r->dense, buf, r->b0, r->nb_local, err);
    free(blob);
    free(buf);
    r->t_ckpt = MPI_Wtime();
    return rc;
}

/* At a batch boundary: 0 = go on, 1 = write a checkpoint ([run] checkpoint_every elapsed on
   rank 0's clock), 2 = write one and stop (a signal reached some rank). COLLECTIVE. */
static int checkpoint_due(run *r) {
    int flags[2] = {g_signal != 0, 0};
    if (r->rank == 0 && r->rs.checkpoint_every > 0 &&
        MPI_Wtime() - r->t_ckpt >= r->rs.checkpoint_every)
        flags[1] = 1;
    MPI_Allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MAX, r->comm);
    return flags[0] ? 2 : flags[1];
}

/* The checkpoint a boundary asks for, and the stop after a signal. COLLECTIVE. */
static int at_boundary(run *r, int phase, int64_t next, double t_warm, double t_samp,
                       pending_write *w, hb_error *err) {
    /* Test hook: HB_INTERRUPT_AT=warmup:N or sampling:N sends this process SIGTERM at that
       boundary (after N warmup iterations / N draws), through the real handler. */
    const char *at = getenv("HB_INTERRUPT_AT");
    if (at && r->rank == 0) {
        const char *want = phase == 0 ? "warmup:" : "sampling:";
        if (strncmp(at, want, strlen(want)) == 0 && atoll(at + strlen(want)) == (long long)next)
            raise(SIGTERM);
    }
    int due = checkpoint_due(r);
    if (!due) return HB_OK;
    /* The checkpoint says the draws below `next` are in the output: write them first. */
    if (w) {
        write_pending(w);
        if (w->rc) return w->rc;
    }
    if (write_checkpoint(r, phase, next, t_warm, t_samp, err)) return err->code;
    if (due == 2)
        return hb_fail(err, HB_ERR_INTERRUPTED,
                       "interrupted by a signal: checkpoint %s written after %lld %s; continue "
                       "with `heartbeat run CONFIG --resume`",
                       r->ckpt_path, (long long)next, phase == 0 ? "warmup iterations" : "draws");
    return HB_OK;
}

/* Read the checkpoint's header before the run is set up (its seed is needed when the config
   draws one). COLLECTIVE. */
static int resume_head(run *r, hb_error *err) {
    if (hb_ckpt_read_head(r->comm, r->ckpt_path, &r->ck, &r->ck_blob, &r->ck_run, err))
        return err->code;
    if (!r->rs.seed_given) {
        char buf[32];
        r->rs.seed = (uint32_t)r->ck.seed;
        snprintf(buf, sizeof buf, "%u", r->rs.seed);
        hb_cfg_record(r->cfg, "run", "seed", buf);
    }
    return HB_OK;
}

/* Does the checkpoint belong to this run? (after the sampler is created) */
static int resume_check(run *r, hb_error *err) {
    const hb_ckpt_header *h = &r->ck;
    if (h->config_hash != hb_ckpt_config_hash(r->effective) || h->seed != r->rs.seed ||
        h->chains != (uint64_t)r->rs.chains || h->dim != r->dim ||
        strcmp(h->sampler, r->st->name) != 0 || h->per_block != per_block_doubles(r) ||
        h->blob_bytes != r->st->checkpoint_bytes(r->sampler))
        return hb_fail(err, HB_ERR_USAGE,
                       "--resume: the checkpoint %s was written by another configuration (%s, "
                       "%llu chains, seed %llu); resume with the same config (only [run] output, "
                       "checkpoint_every and progress_every may change)",
                       r->ckpt_path, h->sampler, (unsigned long long)h->chains,
                       (unsigned long long)h->seed);
    if (h->phase == 0 && h->next_iter > r->rs.warmup)
        return hb_fail(err, HB_ERR_USAGE, "--resume: the checkpoint %s is past warmup",
                       r->ckpt_path);
    return HB_OK;
}

/* Chain states, moments, sampler and counters from the checkpoint. COLLECTIVE. */
static int resume_state(run *r, hb_error *err) {
    size_t pb = per_batch_doubles(r), pk = per_block_doubles(r), nm = 1 + 2 * r->dim;
    double *buf = malloc((r->nb_local ? r->nb_local : 1) * pk * sizeof *buf);
    if (!buf) abort();
    if (hb_ckpt_read_blocks(r->comm, r->ckpt_path, &r->ck, buf, r->b0, r->nb_local, err)) {
        free(buf);
        return err->code;
    }
    for (size_t k = 0; k < r->nb_local; k++) {
        memcpy(r->mem + k * pb, buf + k * pk, pb * sizeof *buf);
        memcpy(r->moments + k * nm, buf + k * pk + pb, nm * sizeof *buf);
    }
    free(buf);
    if (r->st->restore(r->sampler, r->ck_blob, err)) return err->code;
    if (r->ck.run_doubles) {
        r->dense = alloc_doubles(r->ck.run_doubles);
        memcpy(r->dense, r->ck_run, r->ck.run_doubles * sizeof *r->dense);
    }
    /* counters are totals over ranks: rank 0 carries them on */
    r->grads_warmup = r->rank == 0 ? r->ck.grads_warmup : 0;
    r->grads_sampling = r->rank == 0 ? r->ck.grads_sampling : 0;
    r->wall_w0 = r->ck.wall_warmup;
    r->wall_s0 = r->ck.wall_sampling;
    return HB_OK;
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
    hb_adapt_item items[32];
    size_t n = r->st->report(r->sampler, items, 32);
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
    free(r->alt);
    free(r->ws);
    free(r->lane_stats);
    free(r->outbuf);
    free(r->red);
    free(r->moments);
    free(r->dense);
    free(r->ckpt_path);
    free(r->ck_blob);
    free(r->ck_run);
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
    if (asprintf(&r->ckpt_path, "%s.ckpt", r->rs.output) < 0) abort();
    r->resume = opt->resume;
    if (r->resume && resume_head(r, err)) return err->code;
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
    if (r->rs.warmup_auto && !(r->st->warmup_auto && r->st->warmup_used))
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [run] warmup = auto: the %s sampler has no automatic warmup (only "
                       "heartbeat has); give a number of iterations",
                       r->rs.warmup_where, r->st->name);
    if (hb_model_open(&r->model, r->cfg, err)) return err->code;
    r->model_open = 1;
    r->dim = r->model.dim;
    r->has_out = hb_model_has_outputs(&r->model);
    r->n_out = hb_model_n_outputs(&r->model);
    if (r->st->create(r->cfg, &r->model, (long)r->rs.warmup, &r->sampler, err)) {
        r->sampler = NULL;
        return err->code;
    }
    if (r->rs.warmup_auto && r->st->warmup_auto(r->sampler, err)) return err->code;
    if (hb_cfg_finish(r->cfg, err)) return err->code;
    r->effective = hb_cfg_effective(r->cfg);
    r->n_state = r->st->state_doubles(r->sampler, r->dim);
    r->n_ws = r->st->workspace_doubles(r->sampler, r->dim);
    r->n_stats = r->st->n_stats;
    r->n_red = r->st->red_doubles ? r->st->red_doubles(r->sampler, r->dim) : r->st->n_red;
    if (r->resume && resume_check(r, err)) return err->code;
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
    if (nd == 0 && strcmp(r->rs.output, "none") == 0) {
        /* nothing is kept: 100 draws per block (a block boundary streams every chain's state
           through memory once, which at 2 draws per block cost 2^20 1-d RWMH chains 17% of
           their time; 100 keeps progress lines and signal checks frequent) */
        nd = 100;
    } else if (nd == 0) {
        /* about 128 MB of draws over all ranks per write, at most 1000 draws: with the batch
           being written and the one being sampled, 256 MB in memory */
        double per_draw = (double)r->rs.chains * (double)(r->n_out + ns + 1) * 8.0;
        nd = (size_t)fmax(1.0, fmin(1000.0, floor(134217728.0 / per_draw)));
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
                         .deflate = (int)r->rs.deflate,
                         /* readers trust only draws below draws_committed, so the NaN fill
                            (a second write pass over the whole file) is skipped where it can
                            be: uncompressed chunks are all allocated at create */
                         .no_fill = r->rs.deflate == 0};
    lay.chunk_chains = chunk_chains(r, nd);
    hb_h5out *out = NULL;
    /* output = none: sample without writing (benchmarks, dry runs). */
    const int write = strcmp(r->rs.output, "none") != 0;
    int rc = !write      ? HB_OK
             : r->resume ? hb_h5out_reopen(&out, comm, r->rs.output, &lay, err)
                         : hb_h5out_create(&out, comm, r->rs.output, &lay, err);
    if (rc == HB_OK && write && !r->resume) {
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

    /* SIGTERM / SIGUSR1 ask for a checkpoint and a clean stop at the next batch boundary. */
    struct sigaction sa, old_term, old_usr1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    g_signal = 0;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGUSR1, &sa, &old_usr1);
    r->t_ckpt = MPI_Wtime();

    /* Initial positions, or the state of the checkpoint. */
    long failed = r->resume ? 0 : init_positions(r), failed_all = 0;
    if (r->resume) rc = resume_state(r, err);
    MPI_Allreduce(&failed, &failed_all, 1, MPI_LONG, MPI_SUM, comm);
    if (failed_all > 0) {
        hb_fail(err, HB_ERR_MODEL,
                "model %s: %ld chain(s) found no point with finite log density in 100 draws from "
                "[-%g, %g]^%zu (set [run] init_radius, or check the model)",
                r->model.name, failed_all, r->rs.init_radius, r->rs.init_radius, d);
        rc = err->code;
    }
    if (rc == HB_OK && r->st->init_batch && !r->resume) {
        for (size_t k = 0; k < r->nb_local; k++) {
            hb_step_ctx ctx = {&r->model, d, r->rs.seed, 0, 1, r->sampler, 0};
            r->st->init_batch(&ctx, &r->batches[k]);
        }
    }

    /* Warmup (from where the checkpoint left it). */
    const int in_sampling = r->resume && r->ck.phase == 1;
    const long k0 = !r->resume ? 0 : in_sampling ? (long)r->rs.warmup : (long)r->ck.next_iter;
    double t0 = MPI_Wtime();
    /* warmup = auto: the sampler's rule may end it early; the sampling iterations' RNG
       counter keeps [run] warmup_max as its base, so draws do not depend on where it ended. */
    for (long k = k0; rc == HB_OK && k < (long)r->rs.warmup &&
                      !(r->rs.warmup_auto && r->st->warmup_used(r->sampler) > 0);
         k++) {
        rc = warmup_iteration(r, k, &prog, err);
        rc = agree(comm, err);
        prog.step_size = r->st->step_size(r->sampler);
        hb_progress_update(&prog, HB_PHASE_WARMUP, k + 1,
                           (double)(r->grads_warmup) * (double)r->size);
        if (rc == HB_OK) rc = at_boundary(r, 0, k + 1, MPI_Wtime() - t0, 0, NULL, err);
    }
    if (rc == HB_OK && !in_sampling) r->st->end_warmup(r->sampler);
    double t_warm = MPI_Wtime() - t0;
    if (r->rs.warmup_auto) prog.warmup_used = r->st->warmup_used(r->sampler);

    /* Sampling, in write batches. Two draw buffers: batch k is written from one while batch
       k + 1 is sampled into the other, so a rank holds at most two batches of draws. */
    draw_buffers db[2];
    for (int k = 0; k < 2; k++) {
        db[k] = (draw_buffers){.spec = spec};
        db[k].stats = calloc(ns + 1, sizeof *db[k].stats);
        if (!db[k].stats) abort();
        if (!write || (k == 1 && D <= nd)) continue; /* one batch needs one buffer */
        db[k].pos = malloc((r->n_local * nd * r->n_out + 1) * sizeof *db[k].pos);
        if (!db[k].pos) abort();
        for (size_t s = 0; s <= ns; s++) {
            db[k].stats[s] = calloc(r->n_local * nd + 1, stat_size(spec[s].type));
            if (!db[k].stats[s]) abort();
        }
    }
    pending_write w = {.out = out, .err = err};
    t0 = MPI_Wtime();
    prog.step_size = r->st->step_size(r->sampler);
    hb_progress_update(&prog, HB_PHASE_SAMPLING, 0, 0);
    /* Draws are written in batches of nd from draw 0, so a checkpoint taken after a batch
       resumes on the same batch boundaries. */
    const size_t j_start = in_sampling ? (size_t)r->ck.next_iter : 0;
    for (size_t j0 = j_start, k = 0; rc == HB_OK && j0 < D; j0 += nd, k ^= 1) {
        size_t m = D - j0 < nd ? D - j0 : nd;
        draw_buffers *cur = &db[D <= nd ? 0 : k];
        sample_block(r, j0, m, cur, &w);
        rc = w.rc;
        if (write && rc == HB_OK) w = (pending_write){out, j0, m, cur, HB_OK, err};
        hb_progress_update(&prog, HB_PHASE_SAMPLING, (long)((j0 + m) * (size_t)r->rs.thin),
                           (double)r->grads_sampling * (double)r->size);
        if (rc == HB_OK)
            rc = at_boundary(r, 1, (int64_t)(j0 + m), t_warm, MPI_Wtime() - t0, &w, err);
    }
    if (rc == HB_OK) { /* the last batch */
        write_pending(&w);
        rc = w.rc;
    }
    double t_samp = MPI_Wtime() - t0;
    t_warm += r->wall_w0;
    t_samp += r->wall_s0;
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
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
    /* A completed run needs its checkpoint no more. */
    if (rc == HB_OK && r->rank == 0) unlink(r->ckpt_path);
    for (int k = 0; k < 2; k++) {
        for (size_t s = 0; s <= ns; s++) free(db[k].stats[s]);
        free(db[k].stats);
        free(db[k].pos);
    }
    free(names);
    free(spec);
    run_free(r);
    return rc;
}
