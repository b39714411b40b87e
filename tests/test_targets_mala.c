/* Reference targets sampled end to end: `heartbeat run`, then the run compared with
 * reference.json (hb_validate_run, the work of `heartbeat validate`): every compared
 * coordinate's mean within 4 standard errors of the reference, b^2 < 0.01 per block.
 * MALA (Stan-style windowed warmup, diagonal metric) where it samples in seconds; the
 * needle-shaped posteriors with MALA-adjusted Heartbeat beats and a dense metric; all eight
 * with NUTS (Stan's per-chain warmup). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

/* Not sampled by MALA, with the reason (a sampler limitation, not a model one: their log
   densities and gradients are checked in test_targets):
   - kilpisjarvi_mod-kilpisjarvi, kidiq-kidscore_interaction, diamonds-diamonds: posterior
     condition numbers 2e5..1e7 after diagonal scaling; MALA with a diagonal metric needs
     ~1e5+ iterations, and with `metric = dense` its windowed warmup estimates the covariance
     of chains that have not yet spread along the needle (from [-2, 2]) and settles on a tiny
     step. kidiq and diamonds are sampled below with MALA-adjusted Heartbeat beats (the
     exploring warmup, then a dense metric); kilpisjarvi (correlation 0.9999 between
     intercept and slope) defeats that warmup too (b^2 ~ 1 after 2000 iterations).
   - low_dim_gauss_mix-low_dim_gauss_mix: from overdispersed inits a few chains in a hundred
     settle where both components coincide (mu[1] = mu[2], sigma ~ 2.9, a saddle of the
     likelihood) and MALA, with a step adapted to the main mode, leaves it only after very
     many iterations. */

static const char *const MALA = "algorithm = mala\n";
/* Heartbeat with MALA-adjusted beats and a dense metric: exact. */
static const char *const HB_DENSE = "algorithm = heartbeat\nmetric = dense\n[heartbeat]\n"
                                    "adjust = mala\n";

static void run_and_validate(const char *target, const char *sampler, long chains, long warmup,
                             long draws, double init_radius) {
    const char *shared = hbt_env("HB_SHARED_DIR");
    char *cfg_text, *out_path, *ref_path;
    if (asprintf(&out_path, "%s/%s.h5", hbt_tmpdir(), target) < 0 ||
        asprintf(&ref_path, "%s/targets/%s/reference.json", shared, target) < 0 ||
        asprintf(&cfg_text,
                 "[run]\nseed = 20261122\nchains = %ld\nwarmup = %ld\ndraws = %ld\n"
                 "init_radius = %g\noutput = %s\n\n[model]\nname = %s\n"
                 "data = %s/targets/%s/data.json\n\n[sampler]\n%s",
                 chains, warmup, draws, init_radius, out_path, target, shared, target, sampler) < 0)
        exit(1);
    char cfg_name[300];
    snprintf(cfg_name, sizeof cfg_name, "%s.ini", target);
    char *cfg = hbt_write_file(cfg_name, cfg_text);
    char *log = NULL;
    int st = hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg);
    if (st != 0) fprintf(stderr, "  %s: heartbeat run exited %d:\n%s\n", target, st, log);
    CU_ASSERT_FATAL(st == 0);

    hbt_validate_run_file(target, out_path, ref_path, (size_t)chains, (size_t)draws);
    free(log);
    free(cfg);
    free(cfg_text);
    free(out_path);
    free(ref_path);
}

/* init_radius 0.5, not Stan's 2: from the edge of [-2, 2]^d some chains start where the
   gradient is so steep that MALA, with one step size adapted to the bulk over all chains,
   never accepts a move (seen on arK, garch, gp_regr with 128..256 chains; a sampler issue).
   The reference itself carries Monte Carlo error: its theta_trans[1] mean (0.2903) is 2.6
   of its standard errors from the exact 0.3167 (quadrature over mu, tau), which is why z
   uses sqrt(mcse^2 + ref_sd^2 / 10000). */
static void t_eight_schools(void) {
    run_and_validate("eight_schools-eight_schools_noncentered", MALA, 128, 1000, 1000, 0.5);
}
static void t_arK(void) {
    run_and_validate("arK-arK", MALA, 128, 1000, 1000, 0.5);
}
static void t_garch(void) {
    run_and_validate("garch-garch11", MALA, 128, 1000, 1000, 0.5);
}
static void t_gp_regr(void) {
    run_and_validate("gp_pois_regr-gp_regr", MALA, 128, 1000, 1000, 0.5);
}

/* NUTS as Stan (per-chain windowed warmup): all eight targets, including the needles and
   the mixture that MALA cannot do, with 16 chains (seconds each; diamonds runs trees of
   depth ~10, as in Stan). */
static const char *const NUTS = "algorithm = nuts\n";
#define NUTS_CASE(fn, target)                                                                      \
    static void fn(void) {                                                                         \
        run_and_validate(target, NUTS, 16, 1000, 500, 2.0);                                        \
    }
NUTS_CASE(n_arK, "arK-arK")
NUTS_CASE(n_diamonds, "diamonds-diamonds")
NUTS_CASE(n_eight_schools, "eight_schools-eight_schools_noncentered")
NUTS_CASE(n_garch, "garch-garch11")
NUTS_CASE(n_gp_regr, "gp_pois_regr-gp_regr")
NUTS_CASE(n_kidiq, "kidiq-kidscore_interaction")
NUTS_CASE(n_kilpisjarvi, "kilpisjarvi_mod-kilpisjarvi")
NUTS_CASE(n_gauss_mix, "low_dim_gauss_mix-low_dim_gauss_mix")

static void t_kidiq(void) {
    run_and_validate("kidiq-kidscore_interaction", HB_DENSE, 256, 1000, 1000, 2.0);
}
static void t_diamonds(void) {
    run_and_validate("diamonds-diamonds", HB_DENSE, 256, 1000, 1000, 2.0);
}

/* The program: exit statuses of `heartbeat validate` (run after t_eight_schools, whose run
   file it reads). */
static void t_validate_cli(void) {
    const char *es = "eight_schools-eight_schools_noncentered", *bin = hbt_env("HB_BIN");
    char *run, *ref, *other, *log = NULL;
    if (asprintf(&run, "%s/%s.h5", hbt_tmpdir(), es) < 0 ||
        asprintf(&ref, "%s/targets/%s/reference.json", hbt_env("HB_SHARED_DIR"), es) < 0 ||
        asprintf(&other, "%s/targets/arK-arK/reference.json", hbt_env("HB_SHARED_DIR")) < 0)
        exit(1);
    char *bad = hbt_write_file("bad_ref.json", "{\"parameters\": [{\"name\": \"mu\"}]}");
    int st = hbt_sh(&log, "%s validate %s %s", bin, run, ref);
    /* The run file holds the constrained outputs, so validate compares the constrained
       parameters (tau) and the derived theta[j]. */
    CU_ASSERT(st == 0 && strstr(log, "b2 =") && strstr(log, "\ntau ") && strstr(log, "derived"));
    free(log);
    st = hbt_sh(&log, "%s validate %s %s --format json", bin, run, ref);
    CU_ASSERT(st == 0 && strstr(log, "\"b2\": ") && strstr(log, "\"max_abs_z\": "));
    free(log);
    st = hbt_sh(&log, "%s validate %s/missing.h5 %s", bin, hbt_tmpdir(), ref);
    CU_ASSERT(st == 4);
    free(log);
    st = hbt_sh(&log, "%s validate %s %s/missing.json", bin, run, hbt_tmpdir());
    CU_ASSERT(st == 4);
    free(log);
    st = hbt_sh(&log, "%s validate %s %s", bin, run, bad);
    CU_ASSERT(st == 3 && strstr(log, "\"mean\" is missing"));
    free(log);
    st = hbt_sh(&log, "%s validate %s %s", bin, run, other); /* another posterior's reference */
    CU_ASSERT(st == 3 && strstr(log, "arK-arK"));
    free(log);
    st = hbt_sh(&log, "%s validate %s", bin, run);
    CU_ASSERT(st == 2);
    free(log);
    free(run);
    free(ref);
    free(other);
    free(bad);
}

int main(void) {
    static const hbt_case cases[] = {
        {"eight_schools-eight_schools_noncentered: MALA vs reference", t_eight_schools},
        {"arK-arK: MALA vs reference", t_arK},
        {"garch-garch11: MALA vs reference", t_garch},
        {"gp_pois_regr-gp_regr: MALA vs reference", t_gp_regr},
        {"kidiq-kidscore_interaction: Heartbeat (mala, dense) vs reference", t_kidiq},
        {"diamonds-diamonds: Heartbeat (mala, dense) vs reference", t_diamonds},
        {"heartbeat validate: exit statuses", t_validate_cli},
        {"arK-arK: NUTS vs reference", n_arK},
        {"diamonds-diamonds: NUTS vs reference", n_diamonds},
        {"eight_schools-eight_schools_noncentered: NUTS vs reference", n_eight_schools},
        {"garch-garch11: NUTS vs reference", n_garch},
        {"gp_pois_regr-gp_regr: NUTS vs reference", n_gp_regr},
        {"kidiq-kidscore_interaction: NUTS vs reference", n_kidiq},
        {"kilpisjarvi_mod-kilpisjarvi: NUTS vs reference", n_kilpisjarvi},
        {"low_dim_gauss_mix-low_dim_gauss_mix: NUTS vs reference", n_gauss_mix},
    };
    return hbt_run_suite("targets_mala", cases, sizeof cases / sizeof *cases);
}
