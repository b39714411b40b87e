/* NUTS against Stan's own numbers (rstan 2.21.7 with Stan 2.21, measured on this machine by
 * bench/stan/nuts_gauss100.R and bench/stan/nuts_eight_schools.R): the transition at a fixed
 * step size on the 100-d iid Gaussian (mean accept_stat 0.824 at eps 0.5 and 0.750 at eps 0.6,
 * every tree of depth 3), the leapfrog steps of 4 chains x 1000 draws after Stan's warmup
 * (Stan over seeds 1..10: 28,000 .. 52,496, mean 36,934; ours within 25% of that mean), and
 * eight schools (non-centered) divergences no more than Stan's at adapt_delta 0.8 (Stan: 9
 * over seeds 1..5 of 4 x 1000 draws). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

static char *run_gauss(const char *tag, int chains, int warmup, int draws, const char *extra,
                       int seed) {
    char text[1024], name[128], *out = NULL;
    if (asprintf(&out, "%s/nuts_%s.h5", hbt_tmpdir(), tag) < 0) abort();
    snprintf(text, sizeof text,
             "[run]\nseed = %d\nchains = %d\nwarmup = %d\ndraws = %d\noutput = %s\n"
             "[model]\nname = gaussian\ndim = 100\n[sampler]\nalgorithm = nuts\n%s",
             seed, chains, warmup, draws, out, extra);
    snprintf(name, sizeof name, "nuts_%s.ini", tag);
    char *cfg = hbt_write_file(name, text), *log = NULL;
    int rc = hbt_sh(&log, "OMP_NUM_THREADS=2 %s run %s --quiet", hbt_env("HB_BIN"), cfg);
    if (rc != 0) fprintf(stderr, "  %s: exit %d: %s\n", tag, rc, log ? log : "");
    CU_ASSERT_EQUAL(rc, 0);
    free(log);
    free(cfg);
    return out;
}

/* At a fixed step size and unit metric the transition's statistics are Stan's: the mean
   accept_stat within 4 MCSE (chain-mean spread) of Stan's value, and the tree depths. */
static void fixed_step(double eps, double stan_accept) {
    char tag[32], extra[128];
    snprintf(tag, sizeof tag, "fixed%.2f", eps);
    snprintf(extra, sizeof extra, "step_size = %g\nmetric = identity\n", eps);
    char *out = run_gauss(tag, 16, 0, 1000, extra, 1);
    size_t n;
    double *acc = hbt_read_dataset(out, "/sample_stats/acceptance_rate", &n, NULL, NULL);
    double *depth = hbt_read_dataset(out, "/sample_stats/tree_depth", &n, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(acc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(depth);
    double mean, se = hbt_mcse_chain_means(acc, 16, 1000, &mean);
    char what[64];
    snprintf(what, sizeof what, "accept_stat at eps %.2f", eps);
    HBT_ASSERT_Z(what, mean, stan_accept, se, 4.0);
    int all3 = 1;
    for (size_t k = 0; k < n; k++) all3 &= depth[k] == 3;
    CU_ASSERT(all3);
    free(acc);
    free(depth);
    free(out);
}

static void test_fixed_05(void) {
    fixed_step(0.5, 0.824);
}
static void test_fixed_06(void) {
    fixed_step(0.6, 0.750);
}

/* Stan's warmup, then 4 chains x 1000 draws: leapfrog steps within 25% of Stan's mean. */
static void test_leapfrog_count(void) {
    double total = 0;
    for (int seed = 1; seed <= 3; seed++) {
        char tag[32];
        snprintf(tag, sizeof tag, "count%d", seed);
        char *out = run_gauss(tag, 4, 1000, 1000, "", seed);
        size_t n;
        double *steps = hbt_read_dataset(out, "/sample_stats/n_steps", &n, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(steps);
        double s = 0;
        for (size_t k = 0; k < n; k++) s += steps[k];
        printf("\n  seed %d: %.0f leapfrog steps", seed, s);
        total += s;
        free(steps);
        free(out);
    }
    double mean = total / 3, stan = 36934;
    printf("\n  mean %.0f (Stan %.0f)\n", mean, stan);
    CU_ASSERT(fabs(mean / stan - 1) <= 0.25);
}

/* Eight schools, non-centered, 4 chains x 1000 warmup x 1000 draws at adapt_delta 0.8, seeds
   1..20 on both sides: our divergences per seed against Stan's (rstan 2.21.7 on this machine,
   bench/stan/nuts_eight_schools.R). Divergences cluster in a few seeds, so a single total is a
   coin flip between equal samplers (Stan itself gave 4 over seeds 1..5 and 14 over 6..20):
   the test is one-sided on the mean per seed, ours <= Stan's + 2 standard errors of the
   difference (from the spread over seeds of both samples). It fails for a real excess: with
   target_accept 0.7 our NUTS gives 150 over the 20 seeds (bound ~36). */
static void test_eight_schools_divergences(void) {
    static const int stan[20] = {0, 0, 1, 3, 0, 1, 1, 0, 0, 0, 1, 1, 2, 3, 0, 2, 1, 1, 1, 0};
    enum { NS = 20 };
    const char *t = "eight_schools-eight_schools_noncentered";
    const char *shared = hbt_env("HB_SHARED_DIR");
    double ours[NS];
    for (int seed = 1; seed <= NS; seed++) {
        char text[1024], name[64], *out = NULL, *log = NULL;
        if (asprintf(&out, "%s/nuts_es%d.h5", hbt_tmpdir(), seed) < 0) abort();
        snprintf(text, sizeof text,
                 "[run]\nseed = %d\nchains = 4\nwarmup = 1000\ndraws = 1000\noutput = %s\n"
                 "[model]\nname = %s\ndata = %s/targets/%s/data.json\n[sampler]\n"
                 "algorithm = nuts\n",
                 seed, out, t, shared, t);
        snprintf(name, sizeof name, "nuts_es%d.ini", seed);
        char *cfg = hbt_write_file(name, text);
        CU_ASSERT_EQUAL(hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg), 0);
        free(log);
        size_t n;
        double *div = hbt_read_dataset(out, "/sample_stats/diverging", &n, NULL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(div);
        int d = 0;
        for (size_t k = 0; k < n; k++) d += div[k] != 0;
        ours[seed - 1] = d;
        free(div);
        remove(out);
        free(cfg);
        free(out);
    }
    double mo = 0, ms = 0, vo = 0, vs = 0;
    for (int k = 0; k < NS; k++) mo += ours[k] / NS, ms += stan[k] / (double)NS;
    for (int k = 0; k < NS; k++)
        vo += (ours[k] - mo) * (ours[k] - mo) / (NS - 1),
            vs += (stan[k] - ms) * (stan[k] - ms) / (NS - 1);
    const double se = sqrt((vo + vs) / NS), bound = ms + 2 * se;
    printf("\n  per seed:");
    for (int k = 0; k < NS; k++) printf(" %.0f", ours[k]);
    printf("\n  total %.0f over %d x 4000 draws (Stan: %.0f); mean per seed %.2f, Stan %.2f, "
           "bound %.2f\n",
           mo * NS, NS, ms * NS, mo, ms, bound);
    CU_ASSERT(mo <= bound);
}

int main(void) {
    static const hbt_case cases[] = {
        {"fixed eps 0.5: accept_stat and depths as Stan's", test_fixed_05},
        {"fixed eps 0.6: accept_stat and depths as Stan's", test_fixed_06},
        {"100-d Gaussian, 4 x 1000: leapfrog steps within 25% of Stan's", test_leapfrog_count},
        {"eight schools: no more divergences than Stan", test_eight_schools_divergences},
    };
    return hbt_run_suite("nuts", cases, sizeof cases / sizeof *cases);
}
