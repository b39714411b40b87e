/* The Heartbeat sampler: its building blocks in process (schedules, one beat against an
 * independent re-implementation, the lp histogram, dense co-moments and the leaf reduction,
 * stage A from a start 100 sd away), then end to end through `heartbeat run` against known
 * moments (100-d Gaussian, bimodal mixture; adjust = mala exact, none within its bias bound),
 * the output of the adaptation, config validation, and bitwise invariance over ranks x
 * threads. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reduce.h"
#include "core/rng.h"
#include "diag/diag.h"
#include "hbtest.h"
#include "io/config.h"
#include "models/models.h"
#include "samplers/heartbeat.h"
#include "samplers/sampler.h"

enum { L = HB_LANES };

/* ---- an in-process driver: the run loop's warmup on one process, without MPI or I/O ---- */

typedef struct driver {
    hb_config *cfg;
    hb_model model;
    const hb_sampler_type *st;
    void *self;
    size_t d, nb, n_state, n_ws, n_red;
    int nchains;
    double *mem, *ws, *stats, *red, *pooled, *mom;
    hb_batch *b;
} driver;

static int driver_open(driver *D, const char *ini, int nchains, long warmup) {
    memset(D, 0, sizeof *D);
    hb_error err;
    hb_error_clear(&err);
    if (hb_config_load_string(&D->cfg, "test.ini", ini, &err) ||
        hb_model_open(&D->model, D->cfg, &err)) {
        fprintf(stderr, "  driver: %s\n", err.msg);
        return -1;
    }
    D->st = hb_sampler_find("heartbeat");
    if (!D->st || D->st->create(D->cfg, &D->model, warmup, &D->self, &err)) {
        fprintf(stderr, "  driver: %s\n", err.msg);
        return -1;
    }
    D->d = D->model.dim;
    D->nchains = nchains;
    D->nb = (size_t)(nchains + L - 1) / L;
    D->n_state = D->st->state_doubles(D->self, D->d);
    D->n_ws = D->st->workspace_doubles(D->self, D->d);
    D->n_red = D->st->red_doubles ? D->st->red_doubles(D->self, D->d) : D->st->n_red;
    size_t per = (2 * D->d + 1 + D->n_state) * L;
    D->mem = calloc(per * D->nb, sizeof *D->mem);
    D->b = calloc(D->nb, sizeof *D->b);
    D->ws = calloc(D->n_ws + 64, sizeof *D->ws);
    D->stats = calloc((D->st->n_stats + 1) * L, sizeof *D->stats);
    D->red = calloc(D->n_red * D->nb, sizeof *D->red);
    D->pooled = calloc(D->n_red, sizeof *D->pooled);
    for (size_t k = 0; k < D->nb; k++) {
        double *p = D->mem + k * per;
        D->b[k] = (hb_batch){.x = p,
                             .g = p + D->d * L,
                             .lp = p + 2 * D->d * L,
                             .state = p + (2 * D->d + 1) * L,
                             .chain0 = k * L,
                             .n_real = nchains - (int)(k * L) < L ? nchains - (int)(k * L) : L};
    }
    return 0;
}

/* Evaluate lp and g at the positions set in b->x and initialise the sampler state. */
static void driver_init(driver *D, uint32_t seed) {
    for (size_t k = 0; k < D->nb; k++) {
        hb_model_eval_lanes(&D->model, D->b[k].x, D->b[k].lp, D->b[k].g, D->ws);
        hb_step_ctx ctx = {&D->model, D->d, seed, 0, 1, D->self, 0};
        if (D->st->init_batch) D->st->init_batch(&ctx, &D->b[k]);
    }
}

/* Warmup iteration k (stage A and B moves, pooled stats summed in block order). */
static void driver_warmup_iter(driver *D, uint32_t seed, long k) {
    hb_iter_plan plan;
    D->st->plan(D->self, k, &plan);
    for (size_t j = 0; j < D->nb; j++) {
        hb_step_ctx ctx = {&D->model, D->d, seed, (uint64_t)k, 1, D->self, 0};
        hb_step_out out = {.stats = D->stats, .red = D->red + j * D->n_red};
        D->st->step(&ctx, &D->b[j], D->ws, &out);
    }
    /* pooled in block order, by the sampler's combine (sums, and init = lbfgs's argmax) */
    memcpy(D->pooled, D->red, D->n_red * sizeof *D->pooled);
    for (size_t j = 1; j < D->nb; j++)
        D->st->combine(D->pooled, D->red + j * D->n_red, D->n_red, D->self);
    D->st->adapt(D->self, k, D->pooled);
    if (plan.accumulate_moments) {
        /* positions of this iteration, merged block by block (one process: plain order) */
        const size_t d = D->d, km = plan.moments == HB_MOMENTS_DENSE ? 1 + d + d * d : 1 + 2 * d;
        if (!D->mom) D->mom = calloc(km, sizeof *D->mom);
        double *leaf = calloc(km, sizeof *leaf);
        for (size_t j = 0; j < D->nb; j++) {
            memset(leaf, 0, km * sizeof *leaf);
            for (int c = 0; c < D->b[j].n_real; c++) {
                if (plan.moments == HB_MOMENTS_DENSE)
                    hb_comoments_add(leaf, d, D->b[j].x + c, L);
                else
                    hb_moments_add(leaf, d, D->b[j].x + c, L);
            }
            if (plan.moments == HB_MOMENTS_DENSE)
                hb_combine_comoments(D->mom, leaf, km, NULL);
            else
                hb_combine_moments(D->mom, leaf, km, NULL);
        }
        free(leaf);
        if (plan.update_metric) {
            hb_error err;
            hb_error_clear(&err);
            CU_ASSERT_EQUAL(D->st->set_moments(D->self, D->mom, &err), HB_OK);
            free(D->mom);
            D->mom = NULL;
        }
    }
}

static void driver_close(driver *D) {
    if (D->self) D->st->destroy(D->self);
    hb_model_close(&D->model);
    hb_config_free(D->cfg);
    free(D->mem);
    free(D->b);
    free(D->ws);
    free(D->stats);
    free(D->red);
    free(D->pooled);
    free(D->mom);
}

/* ---- schedules and one beat ---- */

/* The step sizes of one beat follow the formula of each schedule, and end at step_min. */
static void test_schedule_formulas(void) {
    const double lo = 0.07, hi = 0.6, pi = 3.14159265358979323846;
    const int lengths[] = {2, 3, 8, 13};
    for (int s = 0; s < 4; s++)
        for (int li = 0; li < 4; li++) {
            int n = lengths[li];
            for (int k = 0; k < n; k++) {
                double t = (double)k / (n - 1), f;
                switch (s) {
                case 0:
                    f = (1 - t) * (1 - t);
                    break;
                case 1:
                    f = (1 + cos(pi * t)) / 2;
                    break;
                case 2:
                    f = 1 - t;
                    break;
                default:
                    f = 0;
                }
                double want = lo + (hi - lo) * f;
                double got = hb_beat_step_size((hb_beat_schedule)s, lo, hi, k, n);
                CU_ASSERT(fabs(got - want) <= 1e-15);
            }
            CU_ASSERT_EQUAL(hb_beat_step_size((hb_beat_schedule)s, lo, hi, n - 1, n), lo);
            CU_ASSERT(fabs(hb_beat_step_size((hb_beat_schedule)s, lo, hi, 0, n) -
                           (s == 3 ? lo : hi)) <= 1e-15);
        }
    /* Sub-step purposes are distinct from each other and from rng.h's. */
    CU_ASSERT(hb_beat_purpose(0, HB_RNG_PROPOSAL) > HB_RNG_TEST);
    CU_ASSERT(hb_beat_purpose(0, HB_RNG_PROPOSAL) != hb_beat_purpose(0, HB_RNG_ACCEPT));
    CU_ASSERT(hb_beat_purpose(1, HB_RNG_PROPOSAL) != hb_beat_purpose(0, HB_RNG_PROPOSAL));
}

/* One beat of the kernel against a plain re-implementation on a 3-d standard normal: the
   proposal x + h g + sqrt(2h) xi with the documented noise streams, the MALA test in its
   direct form (log q(b|a) = -|b - a - h g(a)|^2 / 4h), and the per-step adjustment rule of
   each mode. Positions, lp and the acceptance statistics must agree. */
static void beat_case(const char *schedule, const char *adjust) {
    const int n = 8, d = 3, N = 16;
    const double lo = 0.15, hi = 1.4;
    const uint32_t seed = 5;
    const uint64_t iter = 123;
    char ini[512];
    snprintf(ini, sizeof ini,
             "[model]\nname = gaussian\ndim = 3\n[sampler]\nalgorithm = heartbeat\n"
             "metric = identity\n[heartbeat]\nsubchain_length = %d\nschedule = %s\n"
             "adjust = %s\nstep_min = %g\nstep_max = %g\n",
             n, schedule, adjust, lo, hi);
    driver D;
    CU_ASSERT_FATAL(driver_open(&D, ini, N, 0) == 0);
    for (size_t k = 0; k < D.nb; k++)
        for (int i = 0; i < d; i++)
            for (int c = 0; c < L; c++) D.b[k].x[i * L + c] = 0.7 * (i + 1) * ((c % 3) - 1.0);
    driver_init(&D, seed);
    D.st->end_warmup(D.self);
    int sched = strcmp(schedule, "quadratic") == 0 ? 0
                : strcmp(schedule, "cosine") == 0  ? 1
                : strcmp(schedule, "linear") == 0  ? 2
                                                   : 3;
    int mode = strcmp(adjust, "mala") == 0 ? 0 : strcmp(adjust, "hybrid") == 0 ? 1 : 2;
    const int q = n / 4;
    double maxerr = 0;
    for (size_t k = 0; k < D.nb; k++) {
        hb_batch *b = &D.b[k];
        double x0[3 * L];
        memcpy(x0, b->x, sizeof x0);
        hb_step_ctx ctx = {&D.model, (size_t)d, seed, iter, 0, D.self, 0};
        hb_step_out out = {.stats = D.stats, .red = NULL};
        D.st->step(&ctx, b, D.ws, &out);
        for (int c = 0; c < L; c++) {
            double x[3], g[3], lp;
            for (int i = 0; i < d; i++) x[i] = x0[i * L + c];
            D.model.vt->logp_grad(D.model.impl, x, &lp, g);
            double first = 0, last = 0;
            for (int s = 0; s < n; s++) {
                double h = hb_beat_step_size((hb_beat_schedule)sched, lo, hi, s, n);
                double xi[3], y[3], gy[3], lpy, u;
                hb_rng_normals(seed, b->chain0 + (uint64_t)c, iter,
                               hb_beat_purpose(s, HB_RNG_PROPOSAL), 3, xi);
                for (int i = 0; i < d; i++) y[i] = x[i] + h * g[i] + sqrt(2 * h) * xi[i];
                D.model.vt->logp_grad(D.model.impl, y, &lpy, gy);
                double fwd = 0, rev = 0;
                for (int i = 0; i < d; i++) {
                    double a = y[i] - x[i] - h * g[i], r = x[i] - y[i] - h * gy[i];
                    fwd += a * a;
                    rev += r * r;
                }
                double delta = lpy - lp - rev / (4 * h) + fwd / (4 * h);
                double acc = delta < 0 ? exp(delta) : 1;
                if (s < q) first += acc;
                if (s >= n - q) last += acc;
                int adjusted = mode == 0 || (mode == 1 && h > 2 * lo);
                int take = 1;
                if (adjusted) {
                    hb_rng_uniforms(seed, b->chain0 + (uint64_t)c, iter,
                                    hb_beat_purpose(s, HB_RNG_ACCEPT), 1, &u);
                    take = log(u) < delta;
                }
                if (take) {
                    memcpy(x, y, sizeof x);
                    memcpy(g, gy, sizeof g);
                    lp = lpy;
                }
            }
            for (int i = 0; i < d; i++) {
                double e = fabs(x[i] - b->x[i * L + c]);
                if (e > maxerr) maxerr = e;
            }
            CU_ASSERT(fabs(lp - b->lp[c]) <= 1e-9);
            CU_ASSERT(fabs(first / q - D.stats[3 * L + c]) <= 1e-9); /* acceptance_rate_large */
            CU_ASSERT(fabs(last / q - D.stats[2 * L + c]) <= 1e-9);  /* acceptance_rate */
            CU_ASSERT_EQUAL(D.stats[1 * L + c], lo);                 /* step_size */
            CU_ASSERT_EQUAL(out.n_grad[c], n);
        }
    }
    if (maxerr > 1e-9) fprintf(stderr, "  beat %s/%s: max error %.3g\n", schedule, adjust, maxerr);
    CU_ASSERT(maxerr <= 1e-9);
    driver_close(&D);
}

static void test_beat_matches_reference(void) {
    const char *sched[] = {"quadratic", "cosine", "linear", "constant"};
    const char *adj[] = {"mala", "hybrid", "none"};
    for (int s = 0; s < 4; s++)
        for (int a = 0; a < 3; a++) beat_case(sched[s], adj[a]);
}

/* ---- stage A's median, co-moments, the leaf reduction ---- */

static void test_lp_histogram_median(void) {
    /* lp values spread around -300 with sd 7: the histogram median is within a bin width
       (scale) of the exact median, whatever the centre's offset; far centres clamp. */
    const int n = 4001;
    double *v = malloc(n * sizeof *v), counts[HB_LP_HIST_BINS];
    hb_rng_normals(3, 0, 0, HB_RNG_TEST, (size_t)n, v);
    for (int i = 0; i < n; i++) v[i] = -300 + 7 * v[i];
    double sorted_med;
    {
        double *t = malloc(n * sizeof *t);
        memcpy(t, v, n * sizeof *t);
        for (int i = 1; i < n; i++) /* insertion sort is fine for a test */
            for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
                double tmp = t[j];
                t[j] = t[j - 1];
                t[j - 1] = tmp;
            }
        sorted_med = t[n / 2];
        free(t);
    }
    const double scale = 2.5, centres[] = {-300, -290, -330, -250};
    for (int k = 0; k < 4; k++) {
        memset(counts, 0, sizeof counts);
        for (int i = 0; i < n; i++) counts[hb_lp_hist_bin(v[i], centres[k], scale)] += 1;
        double m = hb_lp_hist_median(counts, centres[k], scale);
        double width = scale * (fabs(sorted_med - centres[k]) / scale + 1); /* bin width */
        CU_ASSERT(fabs(m - sorted_med) <= width);
    }
    /* Everything far above the centre: clamped at the top edge, still "higher". */
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < n; i++) counts[hb_lp_hist_bin(v[i] + 1e9, 0, scale)] += 1;
    CU_ASSERT(hb_lp_hist_median(counts, 0, scale) > 1e5);
    free(v);
}

/* Welford co-moments agree with a two-pass covariance; merging halves equals adding all;
   the leaf reduction gives the bits of the array reduction. */
enum { D = 4, NB = 13, K = 1 + D + D * D };

static void leaf_from_array(size_t block, double *out, const void *ctx) {
    const double *a = ctx;
    memcpy(out, a + block * K, K * sizeof *out);
}

/* MPI only for this in-process reduction, and only after every test that starts mpirun
   (Open MPI does not launch a nested mpirun from an initialised process). */
static int g_mpi_up;

static void test_comoments(void) {
    if (!g_mpi_up) {
        MPI_Init(NULL, NULL);
        g_mpi_up = 1;
    }
    double pts[NB * L][D];
    for (int p = 0; p < NB * L; p++) {
        double z[D];
        hb_rng_normals(9, (uint64_t)p, 0, HB_RNG_TEST, D, z);
        for (int i = 0; i < D; i++) pts[p][i] = 3 + z[i] * (i + 1) + (i ? 0.9 * z[0] : 0);
    }
    double all[K] = {0}, leaves[NB][K];
    for (int p = 0; p < NB * L; p++) hb_comoments_add(all, D, pts[p], 1);
    double mean[D] = {0};
    for (int p = 0; p < NB * L; p++)
        for (int i = 0; i < D; i++) mean[i] += pts[p][i] / (NB * L);
    for (int i = 0; i < D; i++) {
        CU_ASSERT(fabs(all[1 + i] - mean[i]) <= 1e-12 * (1 + fabs(mean[i])));
        for (int j = 0; j < D; j++) {
            double c = 0;
            for (int p = 0; p < NB * L; p++) c += (pts[p][i] - mean[i]) * (pts[p][j] - mean[j]);
            CU_ASSERT(fabs(all[1 + D + i * D + j] - c) <= 1e-10 * (1 + fabs(c)));
        }
    }
    double merged[K] = {0};
    for (int b = 0; b < NB; b++) {
        memset(leaves[b], 0, sizeof leaves[b]);
        for (int c = 0; c < L; c++) hb_comoments_add(leaves[b], D, pts[b * L + c], 1);
        hb_combine_comoments(merged, leaves[b], K, NULL);
    }
    for (int k = 0; k < K; k++) CU_ASSERT(fabs(merged[k] - all[k]) <= 1e-10 * (1 + fabs(all[k])));
    double r1[K], r2[K];
    CU_ASSERT_EQUAL(
        hb_tree_reduce(MPI_COMM_SELF, &leaves[0][0], 0, NB, NB, K, hb_combine_comoments, NULL, r1),
        HB_OK);
    CU_ASSERT_EQUAL(hb_tree_reduce_leaves(MPI_COMM_SELF, leaf_from_array, leaves, 0, NB, NB, K,
                                          hb_combine_comoments, NULL, r2),
                    HB_OK);
    CU_ASSERT_EQUAL(memcmp(r1, r2, sizeof r1), 0);
}

/* ---- stage A from far away ---- */

/* 100-d Gaussian, condition number 100 (sd 1 .. 10), every chain started at x_i = 100 sd_i
   (+- 1 sd of jitter): at the end of stage A (it may end early; at most 15% of W = 400),
   99% of the chains have every coordinate within 5 sd. Default stage-A settings. */
static void test_stage_a_far_start(void) {
    const int N = 512, d = 100;
    const long W = 400;
    driver D;
    CU_ASSERT_FATAL(driver_open(&D,
                                "[model]\nname = gaussian\ndim = 100\ncondition_number = 100\n"
                                "[sampler]\nalgorithm = heartbeat\nmetric = diag\n",
                                N, W) == 0);
    const uint32_t seed = 77;
    for (size_t k = 0; k < D.nb; k++)
        for (int c = 0; c < L; c++) {
            double u[100];
            hb_rng_uniforms(seed, k * L + (size_t)c, 0, HB_RNG_TEST, (size_t)d, u);
            for (int i = 0; i < d; i++) {
                double sd = pow(100.0, 0.5 * i / (d - 1));
                D.b[k].x[i * L + c] = sd * (100.0 + (2 * u[i] - 1));
            }
        }
    driver_init(&D, seed);
    long k = 0;
    while (k < W && hb_heartbeat_stage(D.self) == 0) driver_warmup_iter(&D, seed, k++);
    int inside = 0;
    double zz = 0;
    for (int ch = 0; ch < N; ch++) {
        const hb_batch *b = &D.b[ch / L];
        int c = ch % L, ok = 1;
        for (int i = 0; i < d; i++) {
            double z = b->x[i * L + c] / pow(100.0, 0.5 * i / (d - 1));
            ok &= fabs(z) < 5;
            zz += z * z;
        }
        inside += ok;
    }
    fprintf(stderr, "  stage A: %ld iterations, %d of %d chains with every |z| < 5, |z|^2/d %.3f\n",
            k, inside, N, zz / N / d);
    CU_ASSERT(k <= (long)(0.15 * W));
    CU_ASSERT(inside >= 0.99 * N);
    driver_close(&D);
}

/* ---- checkpoint hooks ---- */

/* A run interrupted at warmup iteration k_stop (adaptation blob saved, batches copied) and
   resumed in a fresh instance ends with bitwise the positions and adaptation of the
   uninterrupted run: the per-chain state (Adam moments, eta) lives in the batches, the rest
   in the blob. Checked in stage A, in stage B, and in sampling, for diag and dense. */
static void checkpoint_case(const char *metric, long k_stop, const char *extra, int cfg_chains) {
    const int N = 40;
    const long W = 60;
    const uint32_t seed = 8;
    char ini[512];
    snprintf(ini, sizeof ini,
             "[run]\nchains = %d\n[model]\nname = gaussian\ndim = 4\ncondition_number = 30\n"
             "correlation = 0.5\n[sampler]\nalgorithm = heartbeat\nmetric = %s\n%s",
             cfg_chains, metric, extra);
    driver A, B;
    CU_ASSERT_FATAL(driver_open(&A, ini, N, W) == 0);
    CU_ASSERT_FATAL(driver_open(&B, ini, N, W) == 0);
    for (size_t k = 0; k < A.nb; k++)
        for (int c = 0; c < L; c++) {
            double u[4];
            hb_rng_uniforms(seed, k * L + (size_t)c, 0, HB_RNG_INIT, 4, u);
            for (int i = 0; i < 4; i++) A.b[k].x[i * L + c] = 4 * u[i] - 2;
        }
    driver_init(&A, seed);
    size_t per = (2 * A.d + 1 + A.n_state) * L * A.nb;
    long k = 0;
    for (; k < k_stop && k < W; k++) driver_warmup_iter(&A, seed, k);
    /* checkpoint */
    size_t bytes = A.st->checkpoint_bytes(A.self);
    char *blob = malloc(bytes);
    A.st->save(A.self, blob);
    hb_error err;
    hb_error_clear(&err);
    CU_ASSERT_EQUAL(B.st->restore(B.self, blob, &err), HB_OK);
    memcpy(B.mem, A.mem, per * sizeof *A.mem);
    for (long j = k; j < W; j++) {
        driver_warmup_iter(&A, seed, j);
        driver_warmup_iter(&B, seed, j);
    }
    A.st->end_warmup(A.self);
    B.st->end_warmup(B.self);
    for (uint64_t it = (uint64_t)W; it < (uint64_t)W + 3; it++)
        for (size_t j = 0; j < A.nb; j++) {
            hb_step_ctx ca = {&A.model, A.d, seed, it, 0, A.self, 0}, cb = ca;
            cb.self = B.self;
            hb_step_out oa = {.stats = A.stats}, ob = {.stats = B.stats};
            A.st->step(&ca, &A.b[j], A.ws, &oa);
            B.st->step(&cb, &B.b[j], B.ws, &ob);
        }
    CU_ASSERT_EQUAL(memcmp(A.mem, B.mem, per * sizeof *A.mem), 0);
    char *b2 = malloc(bytes);
    B.st->save(B.self, b2);
    A.st->save(A.self, blob);
    CU_ASSERT_EQUAL(B.st->checkpoint_bytes(B.self), bytes);
    CU_ASSERT_EQUAL(memcmp(blob, b2, bytes), 0);
    free(blob);
    free(b2);
    driver_close(&A);
    driver_close(&B);
}

static void test_checkpoint_roundtrip(void) {
    const char *metrics[] = {"diag", "dense"};
    const long stops[] = {3, 20, 60};
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < 3; s++) checkpoint_case(metrics[m], stops[s], "", 40);
    /* init = lbfgs: after the optimisation, after the Laplace draws, in stage B, in sampling;
       auto with 30 chains (< 10 d) is decided after the optimisation (here: diag) */
    const char *lb = "[heartbeat]\ninit = lbfgs\n";
    const long lstops[] = {1, 2, 20, 60};
    for (int s = 0; s < 4; s++) {
        checkpoint_case("dense", lstops[s], lb, 40);
        checkpoint_case("auto", lstops[s], lb, 30);
    }
}

/* ---- end to end through `heartbeat run` ---- */

/* Run a heartbeat config; returns the output path (malloc'd) or NULL. extra goes after the
   [sampler] algorithm line (so it may set [sampler] keys and then open [heartbeat]). */
static char *run_hb(const char *tag, const char *model, const char *extra, int chains, int warmup,
                    int draws) {
    char keys[128], body[1536];
    snprintf(keys, sizeof keys, "chains = %d\nwarmup = %d\ndraws = %d", chains, warmup, draws);
    snprintf(body, sizeof body, "[model]\n%s\n[sampler]\nalgorithm = heartbeat\n%s", model, extra);
    return hbt_run_cfg(tag, 31337, keys, body, NULL, NULL);
}

static void adapt_text(const char *file, const char *name, char *buf, size_t len) {
    buf[0] = '\0';
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return;
    hid_t a = H5Aopen_by_name(f, "/adaptation", name, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        hid_t t = H5Aget_type(a);
        size_t n = H5Tget_size(t);
        char *tmp = calloc(n + 1, 1);
        if (H5Aread(a, t, tmp) >= 0) snprintf(buf, len, "%s", tmp);
        free(tmp);
        H5Tclose(t);
        H5Aclose(a);
    }
    H5Fclose(f);
}

/* Draws of coordinate i as [chain][draw], optionally transformed: 0 = x, 1 = x^2,
   2 = indicator x > 0. */
static double *coord(const double *all, size_t nc, size_t nd, size_t d, size_t i, int f) {
    double *v = malloc(nc * nd * sizeof *v);
    for (size_t k = 0; k < nc * nd; k++) {
        double x = all[k * d + i];
        v[k] = f == 0 ? x : f == 1 ? x * x : (double)(x > 0);
    }
    return v;
}

/* |estimate - truth| <= 4 MCSE (+ allowance); MCSE from per-chain means (chains are
   independent, so this holds whatever the autocorrelation within a chain). */
static int check_z(const char *what, const double *v, size_t nc, size_t nd, double truth,
                   double allowance) {
    double mean, se = hbt_mcse_chain_means(v, nc, nd, &mean);
    int ok = fabs(mean - truth) <= 4 * se + allowance;
    if (!ok)
        fprintf(stderr, "  %s: %.6g vs %.6g (mcse %.3g, z %.2f, allowance %.3g)\n", what, mean,
                truth, se, (mean - truth) / se, allowance);
    return ok;
}

static const char *GAUSS100 = "name = gaussian\ndim = 100\ncondition_number = 100";

static double gvar(size_t i) {
    return pow(100.0, (double)i / 99.0);
}

/* adjust = mala on the 100-d Gaussian (condition number 100; auto metric = dense with 1024
   chains): every mean and variance within 4 MCSE; the output records the adaptation. */
static void test_gaussian_mala(void) {
    const size_t nc = 1024, nd = 200, d = 100;
    char *out = run_hb("g_mala", GAUSS100, "", (int)nc, 400, (int)nd);
    if (!out) return;
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    int bad = 0;
    for (size_t i = 0; i < d; i++) {
        char what[64];
        double *v = coord(all, nc, nd, d, i, 0);
        snprintf(what, sizeof what, "mala mean x[%zu]", i + 1);
        bad += !check_z(what, v, nc, nd, 0, 0);
        free(v);
        v = coord(all, nc, nd, d, i, 1);
        snprintf(what, sizeof what, "mala E x[%zu]^2", i + 1);
        bad += !check_z(what, v, nc, nd, gvar(i), 0);
        free(v);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(all);
    /* what warmup chose is in the output */
    char text[64];
    double lo = hbt_read_adaptation_attr(out, "step_min"),
           hi = hbt_read_adaptation_attr(out, "step_max");
    CU_ASSERT(lo > 0 && hi > lo);
    CU_ASSERT_EQUAL(hbt_read_adaptation_attr(out, "step_size"), lo);
    CU_ASSERT_EQUAL(hbt_read_adaptation_attr(out, "subchain_length"), 4); /* the default */
    CU_ASSERT(hbt_read_adaptation_attr(out, "stage_a_iterations") <= 60);
    adapt_text(out, "adjust", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "mala");
    adapt_text(out, "metric", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "dense");
    adapt_text(out, "schedule", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "quadratic");
    size_t dims[4] = {0};
    int rank = 0;
    double *S = hbt_read_dataset(out, "/adaptation/inv_metric_dense", &n, dims, &rank);
    CU_ASSERT_PTR_NOT_NULL(S);
    CU_ASSERT(rank == 2 && dims[0] == d && dims[1] == d);
    if (S) CU_ASSERT(fabs(S[99 * 100 + 99] / 100 - 1) < 0.2); /* variance of x[100] is 100 */
    free(S);
    double *ns = hbt_read_dataset(out, "/sample_stats/n_steps", &n, NULL, NULL);
    double *al = hbt_read_dataset(out, "/sample_stats/acceptance_rate_large", &n, NULL, NULL);
    double *as = hbt_read_dataset(out, "/sample_stats/acceptance_rate", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
    CU_ASSERT_PTR_NOT_NULL_FATAL(al);
    CU_ASSERT_PTR_NOT_NULL_FATAL(as);
    double mal = 0, mas = 0;
    for (size_t k = 0; k < n; k++) {
        CU_ASSERT_EQUAL(ns[k], 4);
        mal += al[k] / (double)n;
        mas += as[k] / (double)n;
    }
    CU_ASSERT(mal < mas); /* large steps are accepted less often than the small ones */
    fprintf(stderr, "  mala: step_min %.4g step_max %.4g, acceptance %.3f (large %.3f)\n", lo, hi,
            mas, mal);
    free(ns);
    free(al);
    free(as);
    free(out);
}

/* Relative variance bias (lambda v* - 1) of unadjusted beats on a whitened Gaussian
   coordinate of curvature lambda: v <- (1 - h_k lambda)^2 v + 2 h_k over the beat's steps,
   at its fixed point (the kept state is the beat's last). */
static double beat_bias(hb_beat_schedule s, double lo, double hi, int n, double lambda) {
    double a = 1, b = 0;
    for (int k = 0; k < n; k++) {
        double h = hb_beat_step_size(s, lo, hi, k, n), r = (1 - h * lambda) * (1 - h * lambda);
        a *= r;
        b = r * b + 2 * h;
    }
    return lambda * b / (1 - a) - 1;
}

/* Step size at which MALA on the standard d-dim Gaussian has mean acceptance a: the log
   acceptance ratio is about N(-s^2/2, s^2) with s^2 = d h^3 / 2 (checked by simulation
   against this convention), so a = 2 Phi(-s/2). */
static double h_of_accept(double a, double d) {
    double s = -2 * hb_diag_qnorm(a / 2);
    return cbrt(2 * s * s / d);
}

/* adjust = none on the 100-d Gaussian with a diagonal metric and the default beats (L = 4,
   quadratic). The bound that target_accept_min implies: B = beat_bias(h(target_accept_min),
   h(target_accept_max)) at curvature 1, the relative variance bias of the beat on a Gaussian
   whose MALA acceptance is target_accept_min at step_min and target_accept_max at step_max
   (0.95 and 0.10, the defaults with adjust = none: B = 0.19 for L = 4, 0.118 for L = 8, and
   0.035 = ULA's h/(2 - h) only for the constant schedule: the few small steps at the end do
   not erase the large ones). Asserted: (1) every coordinate's E[x^2] equals the exact
   stationary value of the beat for the adapted step sizes and metric within 4 MCSE (the
   kernel is exactly the unadjusted algorithm); (2) that exact relative bias stays below
   1.25 B for every coordinate (25% for the metric's estimation error, which changes the
   whitened curvature); (3) the measured variance is above the truth (the bias is an
   over-dispersion) and below (1 + 1.25 B) times it, within 4 MCSE. */
static void test_gaussian_none(void) {
    const size_t nc = 1024, nd = 200, d = 100;
    char *out = run_hb("g_none", GAUSS100, "metric = diag\n[heartbeat]\nadjust = none", (int)nc,
                       400, (int)nd);
    if (!out) return;
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    double *m = hbt_read_dataset(out, "/adaptation/inv_metric", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    double lo = hbt_read_adaptation_attr(out, "step_min"),
           hi = hbt_read_adaptation_attr(out, "step_max");
    int L_sub = (int)hbt_read_adaptation_attr(out, "subchain_length");
    CU_ASSERT_EQUAL(L_sub, 4);
    double B = beat_bias(HB_SCHEDULE_QUADRATIC, h_of_accept(0.95, 100), h_of_accept(0.10, 100),
                         L_sub, 1.0);
    char text[32];
    adapt_text(out, "adjust", text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "none");
    int bad = 0;
    double worst = 0, mean_rel = 0;
    for (size_t i = 0; i < d; i++) {
        double lambda = m[i] / gvar(i);
        double rel = beat_bias(HB_SCHEDULE_QUADRATIC, lo, hi, L_sub, lambda);
        if (rel > worst) worst = rel;
        double exact = gvar(i) * (1 + rel);
        char what[64];
        double *v = coord(all, nc, nd, d, i, 1), est;
        snprintf(what, sizeof what, "none E x[%zu]^2 vs the beat's exact law", i + 1);
        bad += !check_z(what, v, nc, nd, exact, 0);
        double se = hbt_mcse_chain_means(v, nc, nd, &est);
        mean_rel += (est / gvar(i) - 1) / (double)d;
        if (!(est > gvar(i) - 4 * se && est < gvar(i) * (1 + 1.25 * B) + 4 * se)) {
            fprintf(stderr, "  none E x[%zu]^2 = %.4g outside (%.4g, %.4g)\n", i + 1, est, gvar(i),
                    gvar(i) * (1 + 1.25 * B));
            bad++;
        }
        free(v);
    }
    fprintf(stderr,
            "  none: step_min %.4g step_max %.4g; bias bound B = %.4f, exact worst %.4f, "
            "measured mean %.4f\n",
            lo, hi, B, worst, mean_rel);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(worst <= 1.25 * B);
    free(all);
    free(m);
    free(out);
}

static const char *MIX2 = "name = mixture\ndim = 2\nweights = 0.3, 0.7\nlocations = -4, 4\n"
                          "scales = 1, 1";

/* The 2-d bimodal mixture: mode weight P(x_1 > 0), mean and variance of each coordinate. */
static int mixture_checks(const char *what, const char *out, size_t nc, size_t nd, int moments) {
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    if (!all) return 0;
    /* P(x > 0) = 0.7 Phi(4) + 0.3 Phi(-4); E x = 0.7*4 - 0.3*4; E x^2 = 16 + 1 */
    const double w = 0.7 * 0.5 * erfc(-4 / sqrt(2.0)) + 0.3 * 0.5 * erfc(4 / sqrt(2.0));
    int ok = 1;
    char buf[96];
    for (size_t i = 0; i < 2; i++) {
        double *v = coord(all, nc, nd, 2, i, 2);
        snprintf(buf, sizeof buf, "%s mode weight x[%zu] > 0", what, i + 1);
        ok &= check_z(buf, v, nc, nd, w, 0);
        free(v);
        if (!moments) continue;
        v = coord(all, nc, nd, 2, i, 0);
        snprintf(buf, sizeof buf, "%s mean x[%zu]", what, i + 1);
        ok &= check_z(buf, v, nc, nd, 1.6, 0);
        free(v);
        v = coord(all, nc, nd, 2, i, 1);
        snprintf(buf, sizeof buf, "%s E x[%zu]^2", what, i + 1);
        ok &= check_z(buf, v, nc, nd, 17.0, 0);
        free(v);
    }
    free(all);
    return ok;
}

/* adjust = mala: mode weight, means and second moments within 4 MCSE. The chains change
   modes during sampling (the large adjusted steps of each beat), so the weight is right
   whatever the split of the chains at the start. */
static void test_mixture_mala(void) {
    char *out = run_hb("mix_mala", MIX2, "", 1024, 400, 400);
    if (!out) return;
    CU_ASSERT(mixture_checks("mala", out, 1024, 400, 1));
    free(out);
}

/* adjust = hybrid (large steps adjusted): the mode weight within 4 MCSE. adjust = none is
   unsafe here, as HEARTBEAT.md says: its unadjusted large steps are unstable along the
   direction joining the modes (the pooled metric spans both), the divergence guard fires
   in most beats and the chains land in either mode about equally often. The test pins
   that down: none's mode weight is NOT asserted; the guard must flag it. */
static void test_mixture_hybrid_none(void) {
    char *out = run_hb("mix_hybrid", MIX2, "[heartbeat]\nadjust = hybrid", 1024, 400, 400);
    if (out) CU_ASSERT(mixture_checks("hybrid", out, 1024, 400, 0));
    free(out);
    out = run_hb("mix_none", MIX2, "[heartbeat]\nadjust = none", 1024, 400, 200);
    if (!out) return;
    size_t n;
    double *dv = hbt_read_dataset(out, "/sample_stats/diverging", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dv);
    double frac = 0;
    for (size_t k = 0; k < n; k++) frac += dv[k] / (double)n;
    fprintf(stderr, "  none on the mixture: %.2f of beats flagged diverging\n", frac);
    CU_ASSERT(frac > 0.1);
    free(dv);
    free(out);
}

/* A far start through the program: [run] init_offset puts every chain 100 sd (of the
   widest coordinate) away; the run still ends right (means and variances within 4 MCSE,
   adjust = mala). */
static void test_far_start_end_to_end(void) {
    const size_t nc = 512, nd = 100, d = 10;
    char text[256];
    snprintf(text, sizeof text, "name = gaussian\ndim = 10\ncondition_number = 100");
    char ini[1024], *o2 = NULL;
    if (asprintf(&o2, "%s/far2.h5", hbt_tmpdir()) < 0) return;
    snprintf(ini, sizeof ini,
             "[run]\nseed = 5\nchains = %zu\nwarmup = 400\ndraws = %zu\noutput = %s\n"
             "init_offset = 1000\n[model]\n%s\n[sampler]\nalgorithm = heartbeat\n",
             nc, nd, o2, text);
    char *cfg = hbt_write_file("far2.ini", ini), *log = NULL;
    int rc = hbt_sh(&log, "OMP_NUM_THREADS=2 %s run %s --quiet", hbt_env("HB_BIN"), cfg);
    if (rc) fprintf(stderr, "  %s\n", log);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    size_t n;
    double *all = hbt_read_dataset(o2, "/posterior/x", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    int bad = 0;
    for (size_t i = 0; i < d; i++) {
        double var = pow(100.0, (double)i / 9.0);
        double *v = coord(all, nc, nd, d, i, 0);
        bad += !check_z("far start mean", v, nc, nd, 0, 0);
        free(v);
        v = coord(all, nc, nd, d, i, 1);
        bad += !check_z("far start E x^2", v, nc, nd, var, 0);
        free(v);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(all);
    free(log);
    free(cfg);
    free(o2);
}

/* ---- config validation ---- */

static void test_bad_config(void) {
    static const struct {
        const char *extra, *needle;
    } cases[] = {
        {"[heartbeat]\nschedule = sawtooth", "schedule"},
        {"[heartbeat]\nadjust = sometimes", "adjust"},
        {"[heartbeat]\nsubchain_length = 1", "subchain_length"},
        {"[heartbeat]\nsubchain_length = eight", "subchain_length"},
        {"[heartbeat]\nstep_min = -1", "step_min"},
        {"[heartbeat]\nstep_max = big", "step_max"},
        {"[heartbeat]\nstep_min = 0.5\nstep_max = 0.1", "step_max"},
        {"[heartbeat]\ntarget_accept_min = 0.2\ntarget_accept_max = 0.5", "target_accept_max"},
        {"[heartbeat]\ntarget_accept_min = 1.5", "target_accept_min"},
        {"[heartbeat]\nwarmup_rate = 0", "warmup_rate"},
        {"[heartbeat]\nadam_beta1 = 1", "adam_beta1"},
        {"[heartbeat]\nadam_beta2 = -0.1", "adam_beta2"},
        {"[heartbeat]\nbeats = 3", "beats"},
        {"step_size = 0.1", "step_min"},
        {"metric = full", "metric"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char ini[512], name[32];
        snprintf(ini, sizeof ini,
                 "[run]\nseed = 1\nchains = 16\nwarmup = 40\ndraws = 5\noutput = none\n"
                 "[model]\nname = gaussian\n[sampler]\nalgorithm = heartbeat\n%s\n",
                 cases[k].extra);
        snprintf(name, sizeof name, "bad%zu.ini", k);
        hbt_expect_config_error(name, ini, cases[k].needle, NULL);
    }
    /* a too short warmup needs fixed step sizes and the identity metric */
    char *cfg = hbt_write_file("short.ini", "[run]\nseed = 1\nchains = 16\nwarmup = 10\n"
                                            "draws = 5\noutput = none\n[model]\nname = gaussian\n"
                                            "[sampler]\nalgorithm = heartbeat\n");
    char *log = NULL;
    CU_ASSERT_EQUAL(hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg), 2);
    CU_ASSERT(log && strstr(log, "warmup"));
    free(log);
    free(cfg);
    cfg = hbt_write_file("short_ok.ini", "[run]\nseed = 1\nchains = 16\nwarmup = 0\n"
                                         "draws = 5\noutput = none\n[model]\nname = gaussian\n"
                                         "[sampler]\nalgorithm = heartbeat\nmetric = identity\n"
                                         "[heartbeat]\nstep_min = 0.1\nstep_max = 0.5\n");
    CU_ASSERT_EQUAL(hbt_sh(NULL, "%s run %s --quiet", hbt_env("HB_BIN"), cfg), 0);
    free(cfg);
}

/* ---- bitwise invariance over ranks x threads ---- */

typedef struct blob {
    char *data;
    size_t len;
} blob;

static void append(blob *b, const void *p, size_t n) {
    b->data = realloc(b->data, b->len + n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    blob *b = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), nt = H5Tget_native_type(t, H5T_DIR_ASCEND);
    hid_t s = H5Dget_space(d);
    size_t n = (size_t)H5Sget_simple_extent_npoints(s) * H5Tget_size(nt);
    char *buf = malloc(n ? n : 1);
    if (H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
        append(b, name, strlen(name) + 1);
        append(b, buf, n);
    }
    free(buf);
    H5Sclose(s);
    H5Tclose(nt);
    H5Tclose(t);
    H5Dclose(d);
    return 0;
}

static blob read_all(const char *file) {
    blob b = {0};
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return b;
    const char *groups[] = {"/posterior", "/sample_stats", "/adaptation"};
    for (int i = 0; i < 3; i++) {
        hid_t g = H5Gopen2(f, groups[i], H5P_DEFAULT);
        if (g < 0) continue;
        append(&b, groups[i], strlen(groups[i]) + 1);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &b);
        H5Gclose(g);
    }
    H5Fclose(f);
    const char *attrs[] = {"step_min", "step_max", "step_size_stage_b", "stage_a_iterations"};
    for (int i = 0; i < 4; i++) {
        double v = hbt_read_adaptation_attr(file, attrs[i]);
        append(&b, &v, sizeof v);
    }
    return b;
}

/* 100 chains (padding lanes, uneven rank blocks): 1x1 = 1x2 = 2x1 = 4x1 = 2x2 (another
   write batch), for the dense metric (auto: 100 >= 10 d) and for diag with other beats. */
static void invariance_case(const char *tag, const char *extra) {
    char text[1024], name[64];
    snprintf(text, sizeof text,
             "[run]\nseed = 99\nchains = 100\nwarmup = 150\ndraws = 30\n"
             "[model]\nname = gaussian\ndim = 5\ncondition_number = 20\ncorrelation = 0.3\n"
             "[sampler]\nalgorithm = heartbeat\n%s\n",
             extra);
    snprintf(name, sizeof name, "inv_%s.ini", tag);
    char *cfg = hbt_write_file(name, text);
    const char *layouts[][3] = {
        {"1", "1", "16"}, {"1", "2", "16"}, {"2", "1", "16"}, {"4", "1", "16"}, {"2", "2", "7"}};
    blob ref = {0};
    for (int k = 0; k < 5; k++) {
        char out[512], *log = NULL;
        snprintf(out, sizeof out, "%s/inv_%s_%sx%s_%s.h5", hbt_tmpdir(), tag, layouts[k][0],
                 layouts[k][1], layouts[k][2]);
        int rc = hbt_sh(&log,
                        "OMP_NUM_THREADS=%s %s -n %s --oversubscribe --bind-to none %s run %s "
                        "--output %s --set run.write_batch=%s --quiet",
                        layouts[k][1], hbt_env("HB_MPIEXEC"), layouts[k][0], hbt_env("HB_BIN"), cfg,
                        out, layouts[k][2]);
        if (rc != 0)
            fprintf(stderr, "  %s %s x %s failed: %s\n", tag, layouts[k][0], layouts[k][1], log);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        free(log);
        blob b = read_all(out);
        CU_ASSERT(b.len > 100 * 30 * 5 * 8);
        if (k == 0) {
            ref = b;
        } else {
            int same = b.len == ref.len && memcmp(b.data, ref.data, b.len) == 0;
            if (!same)
                fprintf(stderr, "  %s: %s ranks x %s threads differs from 1 x 1\n", tag,
                        layouts[k][0], layouts[k][1]);
            CU_ASSERT(same);
            free(b.data);
        }
    }
    free(ref.data);
    free(cfg);
}

static void test_invariance(void) {
    invariance_case("dense", "");
    invariance_case("diag", "metric = diag\n[heartbeat]\nschedule = cosine\nadjust = hybrid\n"
                            "subchain_length = 5");
    /* explicit dense with fewer than 10 chains per dimension pools several iterations */
    invariance_case("dense_pooled", "metric = dense\n[heartbeat]\nadjust = none");
    /* init = lbfgs: the best chain's optimum (a pooled argmax) and the Laplace draws */
    invariance_case("lbfgs", "[heartbeat]\ninit = lbfgs");
}

int main(void) {
    static const hbt_case cases[] = {
        {"schedules: step sizes of a beat follow the formulas", test_schedule_formulas},
        {"one beat equals a plain re-implementation (4 schedules x 3 adjust modes)",
         test_beat_matches_reference},
        {"stage A's histogram median", test_lp_histogram_median},
        {"stage A from 100 sd away reaches |z| < 5 for 99% of chains", test_stage_a_far_start},
        {"checkpoint save/restore resumes bitwise (stage A, B, sampling; diag, dense; lbfgs)",
         test_checkpoint_roundtrip},
        {"mala on the 100-d Gaussian (kappa 100): moments within 4 MCSE; adaptation output",
         test_gaussian_mala},
        {"none on the 100-d Gaussian: exact beat law, bias below the target_accept_min bound",
         test_gaussian_none},
        {"mala on the bimodal mixture: mode weight and moments within 4 MCSE", test_mixture_mala},
        {"hybrid on the mixture: mode weight; none: flagged by the divergence guard",
         test_mixture_hybrid_none},
        {"a start 1000 away ([run] init_offset) still ends right", test_far_start_end_to_end},
        {"bad [heartbeat] and [sampler] keys: exit 2 naming the key", test_bad_config},
        {"bitwise invariance: 1x1 = 1x2 = 2x1 = 4x1 = 2x2 (also init = lbfgs)", test_invariance},
        {"dense co-moments and the leaf reduction (last: initialises MPI)", test_comoments},
    };
    int rc = hbt_run_suite("heartbeat", cases, sizeof cases / sizeof *cases);
    if (g_mpi_up) MPI_Finalize();
    return rc;
}
