/* The conformance suite, run against every registered sampler (and the variants of those
 * with modes): on a correlated 10-d Gaussian, posterior means (and, for exact samplers,
 * variances) within 4 Monte Carlo standard errors of the truth; determinism given the seed
 * (the same run twice gives the same bytes); bitwise invariance over 1x1, 2x1 and 1x2 ranks
 * x threads. A sampler that is registered but missing from the table below fails the suite,
 * so a new sampler cannot skip it. MCSEs come from the spread of per-chain means (chains
 * are independent, whatever the autocorrelation within a chain). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"
#include "samplers/sampler.h"

enum { DIM = 10, CHAINS = 128 };
static const double KAPPA = 10.0, RHO = 0.5;

typedef enum law {
    EXACT,  /* the chain's law is the target: means and variances within 4 MCSE */
    BIASED, /* unadjusted discretisation (ULA, PMM): the mean is exact by symmetry on a centred
               Gaussian; the variance carries the known O(h) bias, tested in the sampler's own
               suite (test_samplers: ULA's exact law; test_pmm: PMM's bias ratio) */
} law;

typedef struct variant {
    const char *algorithm;
    const char *extra; /* extra config lines (its own section) */
    law law;
    int draws; /* per chain; slow movers need more */
} variant;

static const variant variants[] = {
    {"rwmh", "", EXACT, 1000}, {"ula", "", BIASED, 250},
    {"mala", "", EXACT, 250},  {"heartbeat", "", EXACT, 250},
    {"hmc", "", EXACT, 250},   {"hmc", "[hmc]\nstep_size_jitter = 0.3\n", EXACT, 250},
    {"nuts", "", EXACT, 250},  {"nuts", "[nuts]\nadapt = per_chain\n", EXACT, 250},
    {"chees", "", EXACT, 250}, {"pmm", "", BIASED, 250},
};
enum { N_VARIANTS = sizeof variants / sizeof *variants };

static double gauss_var(size_t i) {
    return pow(KAPPA, (double)i / (DIM - 1));
}

static const char *tag_of(int v) {
    static char tag[64];
    snprintf(tag, sizeof tag, "%s%d", variants[v].algorithm, v);
    return tag;
}

/* Run variant v as ranks x threads; returns the output path (malloc'd) or NULL. */
static char *run_variant(int v, int ranks, int threads, const char *suffix) {
    const variant *V = &variants[v];
    char text[2048], name[128], *out = NULL;
    snprintf(text, sizeof text,
             "[run]\nseed = 2718\nchains = %d\nwarmup = 400\ndraws = %d\n"
             "[model]\nname = gaussian\ndim = %d\ncondition_number = %g\ncorrelation = %g\n"
             "[sampler]\nalgorithm = %s\n%s",
             CHAINS, V->draws, DIM, KAPPA, RHO, V->algorithm, V->extra);
    snprintf(name, sizeof name, "conf_%s.ini", tag_of(v));
    char *cfg = hbt_write_file(name, text);
    if (asprintf(&out, "%s/conf_%s_%dx%d%s.h5", hbt_tmpdir(), tag_of(v), ranks, threads, suffix) <
        0)
        abort();
    char *log = NULL;
    int rc = hbt_sh(&log,
                    "OMP_NUM_THREADS=%d %s -n %d --oversubscribe --bind-to none %s run %s "
                    "--output %s --quiet",
                    threads, hbt_env("HB_MPIEXEC"), ranks, hbt_env("HB_BIN"), cfg, out);
    if (rc != 0)
        fprintf(stderr, "  %s (%s) %d x %d failed (%d): %s\n", V->algorithm, V->extra, ranks,
                threads, rc, log ? log : "");
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    free(cfg);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void check_moments(int v, const char *file) {
    const variant *V = &variants[v];
    size_t n, dims[4], nc = CHAINS, nd = (size_t)V->draws;
    int rank;
    double *all = hbt_read_dataset(file, "/posterior/x", &n, dims, &rank);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all);
    CU_ASSERT_FATAL(rank == 3 && dims[0] == nc && dims[1] == nd && dims[2] == DIM);
    double *a = malloc(nc * nd * sizeof *a), *sq = malloc(nc * nd * sizeof *sq);
    for (size_t i = 0; i < DIM; i++) {
        for (size_t k = 0; k < nc * nd; k++) {
            a[k] = all[k * DIM + i];
            sq[k] = a[k] * a[k];
        }
        char what[160];
        double mean, se = hbt_mcse_chain_means(a, nc, nd, &mean);
        snprintf(what, sizeof what, "%s (%s) x[%zu] mean", V->algorithm, V->extra, i + 1);
        HBT_ASSERT_Z(what, mean, 0.0, se, 4.0);
        if (V->law != EXACT) continue;
        double m2, se2 = hbt_mcse_chain_means(sq, nc, nd, &m2);
        snprintf(what, sizeof what, "%s (%s) x[%zu] variance", V->algorithm, V->extra, i + 1);
        HBT_ASSERT_Z(what, m2, gauss_var(i), se2, 4.0);
    }
    free(a);
    free(sq);
    free(all);
}

static int same_bytes(const char *f1, const char *f2) {
    size_t n1, n2;
    char *b1 = hbt_read_run_bytes(f1, &n1), *b2 = hbt_read_run_bytes(f2, &n2);
    int same = b1 && b2 && n1 == n2 && n1 > (size_t)CHAINS * DIM * 8 && memcmp(b1, b2, n1) == 0;
    free(b1);
    free(b2);
    return same;
}

static void conform(int v) {
    const variant *V = &variants[v];
    if (!hb_sampler_find(V->algorithm)) {
        printf("\n  %s is not registered (yet): skipped\n", V->algorithm);
        return;
    }
    char *ref = run_variant(v, 1, 1, "");
    if (!ref) return;
    check_moments(v, ref);
    CU_ASSERT_EQUAL(hbt_read_attr_int(ref, "draws_committed"), V->draws);
    /* determinism, then the decompositions */
    const int shapes[][2] = {{1, 1}, {2, 1}, {1, 2}};
    for (int k = 0; k < 3; k++) {
        char *o = run_variant(v, shapes[k][0], shapes[k][1], k == 0 ? "_again" : "");
        if (!o) continue;
        int same = same_bytes(ref, o);
        if (!same)
            fprintf(stderr, "  %s (%s): %d ranks x %d threads differs from the first 1 x 1 run\n",
                    V->algorithm, V->extra, shapes[k][0], shapes[k][1]);
        CU_ASSERT(same);
        remove(o);
        free(o);
    }
    remove(ref);
    free(ref);
}

/* Every registered sampler has a row in the table. */
static void test_registry_covered(void) {
    for (const hb_sampler_type *const *t = hb_sampler_types(); *t; t++) {
        int found = 0;
        for (int v = 0; v < N_VARIANTS; v++)
            found |= strcmp(variants[v].algorithm, (*t)->name) == 0;
        if (!found)
            fprintf(stderr, "  sampler %s is registered but not in the conformance table\n",
                    (*t)->name);
        CU_ASSERT(found);
    }
}

#define CASE(k)                                                                                    \
    static void test_##k(void) {                                                                   \
        if (k < N_VARIANTS) conform(k);                                                            \
    }
CASE(0)
CASE(1)
CASE(2)
CASE(3)
CASE(4)
CASE(5)
CASE(6)
CASE(7)
CASE(8)
CASE(9)

int main(void) {
    static const hbt_case cases[] = {
        {"every registered sampler is in the conformance table", test_registry_covered},
        {"rwmh: moments, determinism, 1x1 = 2x1 = 1x2", test_0},
        {"ula: mean, determinism, 1x1 = 2x1 = 1x2", test_1},
        {"mala: moments, determinism, 1x1 = 2x1 = 1x2", test_2},
        {"heartbeat: moments, determinism, 1x1 = 2x1 = 1x2", test_3},
        {"hmc: moments, determinism, 1x1 = 2x1 = 1x2", test_4},
        {"hmc, jittered step: moments, determinism, 1x1 = 2x1 = 1x2", test_5},
        {"nuts (adapt = per_chain): moments, determinism, 1x1 = 2x1 = 1x2", test_6},
        {"nuts (adapt = pooled): moments, determinism, 1x1 = 2x1 = 1x2", test_7},
        {"chees: moments, determinism, 1x1 = 2x1 = 1x2", test_8},
        {"pmm: mean, determinism, 1x1 = 2x1 = 1x2", test_9},
    };
    _Static_assert(sizeof cases / sizeof *cases == N_VARIANTS + 1, "one case per variant");
    return hbt_run_suite("conformance", cases, sizeof cases / sizeof *cases);
}
