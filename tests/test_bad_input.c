/* Bad input through `heartbeat run`: each broken config or plugin gives exit 2 or 3, a
 * message naming the problem, and no output file that claims draws. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hbtest.h"

static const char *GOOD_RUN = "[run]\nseed = 1\nchains = 8\nwarmup = 20\ndraws = 10\n";

typedef struct bad_case {
    const char *name;
    const char *text; /* appended after [run] ... output = */
    int code;
    const char *want; /* substring of the message */
} bad_case;

static void run_case(const bad_case *bc, int index) {
    char *out = NULL, *text = NULL, cfgname[64];
    if (asprintf(&out, "%s/bad_%d.h5", hbt_tmpdir(), index) < 0) return;
    if (asprintf(&text, "%soutput = %s\n%s", GOOD_RUN, out, bc->text) < 0) return;
    snprintf(cfgname, sizeof cfgname, "bad_%d.ini", index);
    char *cfg = hbt_write_file(cfgname, text);
    char *log = NULL;
    int rc = hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg);
    int ok = rc == bc->code && log && strstr(log, bc->want);
    if (!ok)
        fprintf(stderr, "  case '%s': exit %d (want %d), output: %s(want '%s')\n", bc->name, rc,
                bc->code, log ? log : "", bc->want);
    CU_ASSERT(ok);
    /* No file left behind that claims draws. */
    struct stat st;
    if (stat(out, &st) == 0) CU_ASSERT(hbt_read_attr_int(out, "draws_committed") <= 0);
    free(log);
    free(cfg);
    free(text);
    free(out);
}

static void test_broken_configs(void) {
    static const bad_case cases[] = {
        {"unknown key", "[model]\nname = gaussian\n[sampler]\nalgorithm = mala\nstep_sise = 1\n", 2,
         "[sampler] step_sise: unknown key"},
        {"unknown section",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = mala\n[smapler]\nx = 1\n", 2,
         "[smapler]: unknown section"},
        {"duplicate key", "chains = -4\n[model]\nname = gaussian\n[sampler]\nalgorithm = mala\n", 2,
         "[run] chains: duplicate key"},
        {"thin zero", "thin = 0\n[model]\nname = gaussian\n[sampler]\nalgorithm = mala\n", 2,
         "[run] thin: 0 is out of range"},
        {"missing model name", "[model]\ndim = 3\n[sampler]\nalgorithm = mala\n", 2,
         "[model] name: missing required key"},
        {"missing algorithm", "[model]\nname = gaussian\n", 2,
         "[sampler] algorithm: missing required key"},
        {"unknown model", "[model]\nname = gausian\n[sampler]\nalgorithm = mala\n", 2, "gausian"},
        {"unknown sampler", "[model]\nname = gaussian\n[sampler]\nalgorithm = nutz\n", 2,
         "unknown sampler 'nutz'"},
        {"dim zero", "[model]\nname = gaussian\ndim = 0\n[sampler]\nalgorithm = mala\n", 2,
         "[model] dim"},
        {"dim not a number", "[model]\nname = gaussian\ndim = ten\n[sampler]\nalgorithm = mala\n",
         2, "[model] dim"},
        {"correlation out of range",
         "[model]\nname = gaussian\ndim = 4\ncorrelation = 1.5\n[sampler]\nalgorithm = mala\n", 2,
         "correlation"},
        {"mixture list lengths",
         "[model]\nname = mixture\nweights = 0.5, 0.5\nlocations = 1, 2, 3\nscales = 1, 1\n"
         "[sampler]\nalgorithm = mala\n",
         2, "[model]"},
        {"negative step size",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = mala\nstep_size = -1\n", 2,
         "[sampler] step_size"},
        {"bad metric", "[model]\nname = gaussian\n[sampler]\nalgorithm = mala\nmetric = sideways\n",
         2, "'sideways' is not one of"},
        {"dense metric with rwmh",
         "[model]\nname = gaussian\ndim = 3\n[sampler]\nalgorithm = rwmh\nmetric = dense\n", 2,
         "'dense' is not supported by the rwmh sampler"},
        {"bad target",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = mala\n[mala]\ntarget_accept = 2\n", 2,
         "[mala] target_accept"},
        {"bad ula gauge",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = ula\n[ula]\ngauge = maybe\n", 2,
         "'maybe' is not one of"},
        {"junk line", "[model]\nname = gaussian\nthis is not ini\n[sampler]\nalgorithm = mala\n", 2,
         "cannot parse line"},
        {"missing plugin file",
         "[model]\nname = plugin\nplugin = /nonexistent/libnothing.so\n[sampler]\nalgorithm = "
         "mala\n",
         3, "/nonexistent/libnothing.so"},
        {"plugin is not a library",
         "[model]\nname = plugin\nplugin = /etc/hostname\n[sampler]\nalgorithm = mala\n", 3,
         "/etc/hostname"},
        {"nuts max_depth zero",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = nuts\n[nuts]\nmax_depth = 0\n", 2,
         "[nuts] max_depth"},
        {"nuts unknown adapt mode",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = nuts\n[nuts]\nadapt = global\n", 2,
         "[nuts] adapt"},
        {"mala dense metric above the dimension cap",
         "[model]\nname = gaussian\ndim = 5000\n[sampler]\nalgorithm = mala\nmetric = dense\n", 2,
         "[sampler] metric = dense keeps d x d matrices; the model has dimension 5000"},
        {"heartbeat dense metric above the dimension cap",
         "[model]\nname = gaussian\ndim = 5000\n[sampler]\nalgorithm = heartbeat\nmetric = "
         "dense\n",
         2, "[sampler] metric = dense keeps d x d matrices; the model has dimension 5000"},
        {"heartbeat lbfgs above the dimension cap",
         "[model]\nname = gaussian\ndim = 5000\n[sampler]\nalgorithm = heartbeat\n[heartbeat]\n"
         "init = lbfgs\n",
         2, "[heartbeat] init = lbfgs keeps d x d matrices; the model has dimension 5000"},
        {"nuts dense metric",
         "[model]\nname = gaussian\ndim = 3\n[sampler]\nalgorithm = nuts\nmetric = dense\n", 2,
         "'dense' is not supported by the nuts sampler"},
        {"nuts unknown key",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = nuts\n[nuts]\nmax_tree = 5\n", 2,
         "[nuts] max_tree: unknown key"},
        {"hmc negative integration time",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = hmc\n[hmc]\nintegration_time = -1\n", 2,
         "[hmc] integration_time"},
        {"hmc jitter too large",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = hmc\n[hmc]\nstep_size_jitter = 1.5\n", 2,
         "[hmc] step_size_jitter"},
        {"chees negative trajectory",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = chees\n[chees]\n"
         "initial_trajectory = -1\n",
         2, "[chees] initial_trajectory"},
        {"chees target out of range",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = chees\n[chees]\ntarget_accept = 1.5\n",
         2, "[chees] target_accept"},
        {"pmm K too small", "[model]\nname = gaussian\n[sampler]\nalgorithm = pmm\n[pmm]\nK = 1\n",
         2, "[pmm] K"},
        {"pmm variant unknown",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = pmm\n[pmm]\nvariant = sideways\n", 2,
         ".ini:12: [pmm] variant: 'sideways' is not one of: overdamped, underdamped"},
        {"pmm gamma not positive",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = pmm\n[pmm]\nvariant = underdamped\n"
         "gamma = 0\n",
         2, ".ini:13: [pmm] gamma: 0 is out of range"},
        {"pmm K not an integer",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = pmm\n[pmm]\nK = 2.5\n", 2,
         ".ini:12: [pmm] K: expected an integer"},
        {"pmm dense metric",
         "[model]\nname = gaussian\n[sampler]\nalgorithm = pmm\nmetric = dense\n", 2,
         "[sampler] metric: 'dense' is not supported by the pmm sampler"},
        {"seed out of range", "seed2 = 1\n[model]\nname = gaussian\n[sampler]\nalgorithm = mala\n",
         2, "[run] seed2: unknown key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i], (int)i);
}

static void test_missing_config_and_usage(void) {
    char *log = NULL;
    int rc = hbt_sh(&log, "%s run /nonexistent/config.ini", hbt_env("HB_BIN"));
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(log && strstr(log, "/nonexistent/config.ini: cannot open config"));
    free(log);
    rc = hbt_sh(&log, "%s run", hbt_env("HB_BIN"));
    CU_ASSERT_EQUAL(rc, 2);
    free(log);
    rc = hbt_sh(&log, "%s frobnicate", hbt_env("HB_BIN"));
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(log && strstr(log, "unknown command 'frobnicate'"));
    free(log);
    rc = hbt_sh(&log, "%s --version", hbt_env("HB_BIN"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(log && strstr(log, "heartbeat "));
    free(log);
}

/* An unwritable output path is an I/O error (exit 4) before any sampling. */
static void test_unwritable_output(void) {
    char text[512];
    snprintf(text, sizeof text,
             "%soutput = /nonexistent/dir/out.h5\n[model]\nname = gaussian\n[sampler]\n"
             "algorithm = mala\n",
             GOOD_RUN);
    char *cfg = hbt_write_file("unwritable.ini", text);
    char *log = NULL;
    int rc = hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg);
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NOT_NULL(log && strstr(log, "/nonexistent/dir/out.h5"));
    free(log);
    free(cfg);
}

/* Errors under MPI are printed once, by rank 0, with the same exit status. */
static void test_error_under_mpi(void) {
    char text[512];
    snprintf(text, sizeof text,
             "%s[model]\nname = gaussian\ndim = -3\n[sampler]\nalgorithm = mala\n", GOOD_RUN);
    char *cfg = hbt_write_file("mpi_bad.ini", text);
    char *log = NULL;
    int rc = hbt_sh(&log, "%s -n 2 --oversubscribe %s run %s --quiet", hbt_env("HB_MPIEXEC"),
                    hbt_env("HB_BIN"), cfg);
    CU_ASSERT_EQUAL(rc, 2);
    const char *first = log ? strstr(log, "[model] dim") : NULL;
    CU_ASSERT_PTR_NOT_NULL(first);
    if (first) CU_ASSERT_PTR_NULL(strstr(first + 1, "[model] dim"));
    free(log);
    free(cfg);
}

int main(void) {
    static const hbt_case cases[] = {
        {"broken configs and plugins", test_broken_configs},
        {"missing config, usage errors", test_missing_config_and_usage},
        {"unwritable output", test_unwritable_output},
        {"error under MPI printed once", test_error_under_mpi},
    };
    return hbt_run_suite("bad input", cases, sizeof cases / sizeof *cases);
}
