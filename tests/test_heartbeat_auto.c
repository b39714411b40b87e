/* [run] warmup = auto for the Heartbeat sampler: warmup stops well before warmup_max on the
 * 100-d Gaussian (kappa 100) and on eight_schools and the draws still agree with the truth /
 * reference within 4 MCSE; on kidiq (dense metric, a needle whose stage A runs to its cap)
 * auto keeps the long schedule and still validates; draws are bitwise the same over 1x1,
 * 2x1 and 1x2 ranks x threads; bad values are rejected with exit 2 and file:line. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

/* hbt_run_cfg with this file's seed. */
static char *run_cfg(const char *tag, const char *run_keys, const char *body, const char *launch,
                     char **log) {
    return hbt_run_cfg(tag, 20261122, run_keys, body, launch, log);
}

static int gauss_moments(const char *out, size_t nc, size_t nd, size_t d, double kappa);

/* 100-d Gaussian, condition number 100 (variance of x[i] is 100^(i/99)), 256 chains: auto
   stops before 500 of the 1000 iterations, and every mean and E x^2 is within 4 MCSE. */
static void test_gaussian(void) {
    const size_t nc = 256, nd = 300, d = 100;
    char *log = NULL;
    char *out = run_cfg("g_auto", "chains = 256\nwarmup = auto\nwarmup_max = 1000\ndraws = 300",
                        "[model]\nname = gaussian\ndim = 100\ncondition_number = 100\n"
                        "[sampler]\nalgorithm = heartbeat\n",
                        NULL, &log);
    if (!out) return;
    double used = hbt_read_adaptation_attr(out, "warmup_used");
    fprintf(stderr, "  gauss100: warmup_used %g, nested R-hat %g, step change %g\n", used,
            hbt_read_adaptation_attr(out, "warmup_rhat"),
            hbt_read_adaptation_attr(out, "warmup_step_change"));
    CU_ASSERT(used >= 60 && used < 500);
    CU_ASSERT(hbt_read_adaptation_attr(out, "warmup_rhat") < 1.01);
    CU_ASSERT(hbt_read_adaptation_attr(out, "warmup_step_change") < 0.02);
    /* the final progress line says how much warmup was used */
    char want[64];
    snprintf(want, sizeof want, "(auto: %.0f of 1000 iterations)", used);
    CU_ASSERT(log && strstr(log, want));
    free(log);
    CU_ASSERT_EQUAL(gauss_moments(out, nc, nd, d, 100), 0);
    free(out);
}

/* Every mean and E x^2 of the gaussian model's draws within 4 MCSE (variance of x[i] is
   kappa^(i/(d-1))); returns the number of failures. */
static int gauss_moments(const char *out, size_t nc, size_t nd, size_t d, double kappa) {
    size_t n;
    double *all = hbt_read_dataset(out, "/posterior/x", &n, NULL, NULL);
    if (!all || n != nc * nd * d) {
        free(all);
        return 1;
    }
    double *v = malloc(nc * nd * sizeof *v);
    int bad = 0;
    for (size_t i = 0; i < d; i++) {
        const double var = pow(kappa, (double)i / (double)(d - 1));
        for (int f = 0; f < 2; f++) {
            for (size_t k = 0; k < nc * nd; k++) {
                double x = all[k * d + i];
                v[k] = f == 0 ? x : x * x;
            }
            double mean, se = hbt_mcse_chain_means(v, nc, nd, &mean), truth = f ? var : 0;
            if (fabs(mean - truth) > 4 * se) {
                fprintf(stderr, "  x[%zu] %s: %g vs %g (mcse %g)\n", i + 1, f ? "E x^2" : "mean",
                        mean, truth, se);
                bad++;
            }
        }
    }
    free(v);
    free(all);
    return bad;
}

/* A start 1000 away ([run] init_offset; the smallest sd is 1): auto must not stop where a
   start inside [-2, 2] would (it needs a longer warmup), and the draws are right. */
static void test_far_start(void) {
    const char *model = "[model]\nname = gaussian\ndim = 10\ncondition_number = 100\n"
                        "[sampler]\nalgorithm = heartbeat\n";
    char *near =
        run_cfg("near_auto", "chains = 512\nwarmup = auto\ndraws = 200", model, NULL, NULL);
    char *far = run_cfg("far_auto", "chains = 512\nwarmup = auto\ndraws = 200\ninit_offset = 1000",
                        model, NULL, NULL);
    if (!near || !far) {
        free(near);
        free(far);
        return;
    }
    double un = hbt_read_adaptation_attr(near, "warmup_used"),
           uf = hbt_read_adaptation_attr(far, "warmup_used");
    fprintf(stderr, "  warmup_used: near start %g, 1000 away %g\n", un, uf);
    CU_ASSERT(un < 500);
    CU_ASSERT(uf >= 1.5 * un && uf < 1000);
    CU_ASSERT_EQUAL(gauss_moments(near, 512, 200, 10, 100), 0);
    CU_ASSERT_EQUAL(gauss_moments(far, 512, 200, 10, 100), 0);
    free(near);
    free(far);
}

/* A reference target with auto: warmup_used in [lo, hi), every compared mean within 4 of its
   standard errors and b^2 < 0.01 (hb_validate_run, the work of `heartbeat validate`). */
static void target_case(const char *target, const char *sampler_keys, double lo, double hi) {
    const char *shared = hbt_env("HB_SHARED_DIR");
    char *body = NULL, *ref_path = NULL;
    if (asprintf(&body, "[model]\nname = %s\ndata = %s/targets/%s/data.json\n[sampler]\n%s", target,
                 shared, target, sampler_keys) < 0 ||
        asprintf(&ref_path, "%s/targets/%s/reference.json", shared, target) < 0)
        exit(1);
    char tag[64];
    snprintf(tag, sizeof tag, "auto_%.20s", target);
    char *out = run_cfg(tag, "chains = 256\nwarmup = auto\ndraws = 1000", body, NULL, NULL);
    free(body);
    if (!out) {
        free(ref_path);
        return;
    }
    double used = hbt_read_adaptation_attr(out, "warmup_used");
    fprintf(stderr, "  %s: warmup_used %g (want [%g, %g))\n", target, used, lo, hi);
    CU_ASSERT(used >= lo && used < hi);
    hbt_validate_run_file(target, out, ref_path, 0, 0);
    free(ref_path);
    free(out);
}

static void test_eight_schools(void) {
    target_case("eight_schools-eight_schools_noncentered", "algorithm = heartbeat\n", 60, 500);
}

/* kidiq needs a long warmup (README: W ~ 1000): stage A runs to its cap (15% of 1000), so
   auto keeps the fixed schedule's stages A and B (600 iterations) and may only end stage C
   early. */
static void test_kidiq_long(void) {
    target_case("kidiq-kidscore_interaction", "algorithm = heartbeat\nmetric = dense\n", 600, 1001);
}

/* 100 chains (padding lanes: 12 full superchains + one partial batch) over 1x1, 2x1, 1x2. */
static void test_invariance(void) {
    const char *layouts[][2] = {{"1", "1"}, {"2", "1"}, {"1", "2"}};
    char *ref = NULL;
    size_t ref_len = 0;
    double ref_used = 0;
    for (int k = 0; k < 3; k++) {
        char tag[32], launch[512];
        snprintf(tag, sizeof tag, "inv_auto_%sx%s", layouts[k][0], layouts[k][1]);
        snprintf(launch, sizeof launch,
                 "OMP_NUM_THREADS=%s %s -n %s --oversubscribe --bind-to none", layouts[k][1],
                 hbt_env("HB_MPIEXEC"), layouts[k][0]);
        char *out = run_cfg(tag,
                            "chains = 100\nwarmup = auto\nwarmup_max = 400\ndraws = 30\n"
                            "write_batch = 7",
                            "[model]\nname = gaussian\ndim = 5\ncondition_number = 20\n"
                            "correlation = 0.3\n[sampler]\nalgorithm = heartbeat\n",
                            launch, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        size_t len;
        char *bytes = hbt_read_run_bytes(out, &len);
        double used = hbt_read_adaptation_attr(out, "warmup_used");
        CU_ASSERT(len > 100 * 30 * 5 * 8);
        if (k == 0) {
            ref = bytes;
            ref_len = len;
            ref_used = used;
            CU_ASSERT(used > 0 && used < 400);
        } else {
            int same = len == ref_len && memcmp(bytes, ref, len) == 0 && used == ref_used;
            if (!same)
                fprintf(stderr, "  %s ranks x %s threads differs from 1 x 1 (warmup %g vs %g)\n",
                        layouts[k][0], layouts[k][1], used, ref_used);
            CU_ASSERT(same);
            free(bytes);
        }
        free(out);
    }
    free(ref);
}

/* Exit 2 naming the key (and file:line where the value is in the file). */
static void test_bad_config(void) {
    static const struct {
        const char *run, *sampler, *needle;
    } cases[] = {
        {"warmup = auto", "mala", "bad_auto0.ini:4: [run] warmup = auto: the mala sampler"},
        {"warmup = auto", "nuts", "bad_auto1.ini:4: [run] warmup = auto: the nuts sampler"},
        {"warmup = automatic", "heartbeat", "warmup"},
        {"warmup = auto\nwarmup_max = 10", "heartbeat", "warmup_max"},
        {"warmup = auto\nwarmup_max = lots", "heartbeat", "warmup_max"},
        {"warmup = 100\nwarmup_max = 400", "heartbeat", "bad_auto5.ini:5: [run] warmup_max"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char ini[512], name[32];
        snprintf(ini, sizeof ini,
                 "[run]\nseed = 1\nchains = 16\n%s\ndraws = 5\noutput = none\n"
                 "[model]\nname = gaussian\n[sampler]\nalgorithm = %s\n",
                 cases[k].run, cases[k].sampler);
        snprintf(name, sizeof name, "bad_auto%zu.ini", k);
        hbt_expect_config_error(name, ini, cases[k].needle, NULL);
    }
}

int main(void) {
    static const hbt_case cases[] = {
        {"auto on the 100-d Gaussian: stops early, moments within 4 MCSE", test_gaussian},
        {"auto from 1000 away: a longer warmup than from near, moments within 4 MCSE",
         test_far_start},
        {"auto on eight_schools: stops early, validates", test_eight_schools},
        {"auto on kidiq (dense): keeps the long warmup, validates", test_kidiq_long},
        {"auto: bitwise invariance 1x1 = 2x1 = 1x2", test_invariance},
        {"auto: bad values and other samplers rejected (exit 2, file:line)", test_bad_config},
    };
    return hbt_run_suite("heartbeat_auto", cases, sizeof cases / sizeof *cases);
}
