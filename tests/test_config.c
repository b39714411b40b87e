/* The strict config: typed look-ups, ranges, file:line in messages, unknown keys and
 * sections rejected, --set overrides, and the effective config round-trips. */
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"
#include "io/config.h"

static hb_config *load(const char *text, hb_error *err) {
    hb_config *c = NULL;
    hb_error_clear(err);
    hb_config_load_string(&c, "t.ini", text, err);
    return c;
}

static void test_typed_lookups(void) {
    hb_error err;
    hb_config *c = load("[run]\nchains = 16\nstep = 0.5 ; comment\nname = abc\n"
                        "[model]\nlist = 1, 2.5,-3\n",
                        &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int64_t n = 0, def = 4;
    double x = 0, dd = 1;
    const char *s = NULL;
    CU_ASSERT_EQUAL(hb_cfg_int(c, "run", "chains", &def, 1, 100, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 16);
    CU_ASSERT_EQUAL(hb_cfg_int(c, "run", "absent", &def, 1, 100, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(hb_cfg_double(c, "run", "step", &dd, 0, 1, &x, &err), 0);
    CU_ASSERT_DOUBLE_EQUAL(x, 0.5, 0);
    CU_ASSERT_EQUAL(hb_cfg_string(c, "run", "name", NULL, &s, &err), 0);
    CU_ASSERT_STRING_EQUAL(s, "abc");
    double *v = NULL;
    size_t k = 0;
    CU_ASSERT_EQUAL(hb_cfg_double_list(c, "model", "list", NULL, -10, 10, &v, &k, &err), 0);
    CU_ASSERT_EQUAL(k, 3);
    if (k == 3) CU_ASSERT(v[0] == 1 && v[1] == 2.5 && v[2] == -3);
    free(v);
    CU_ASSERT_EQUAL(hb_cfg_finish(c, &err), 0);
    char *eff = hb_cfg_effective(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(eff, "[run]\nchains = 16\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eff, "absent = 4\n"));
    /* The effective config parses again and gives the same values. */
    hb_config *c2 = load(eff, &err);
    CU_ASSERT_PTR_NOT_NULL(c2);
    if (c2) {
        CU_ASSERT_EQUAL(hb_cfg_double_list(c2, "model", "list", NULL, -10, 10, &v, &k, &err), 0);
        CU_ASSERT(k == 3 && v[1] == 2.5);
        free(v);
        hb_config_free(c2);
    }
    free(eff);
    hb_config_free(c);
}

/* Each broken input gives HB_ERR_USAGE and a message containing the expected text. */
static void expect_error(const char *text, const char *want) {
    hb_error err;
    hb_config *c = load(text, &err);
    if (c) {
        int64_t n, def = 1;
        double x, dd = 1;
        const char *s;
        static const char *const ch[] = {"a", "b", NULL};
        int idx;
        if (!hb_cfg_int(c, "run", "chains", &def, 1, 100, &n, &err) &&
            !hb_cfg_double(c, "run", "step", &dd, 0, 1, &x, &err) &&
            !hb_cfg_string(c, "model", "name", NULL, &s, &err) &&
            !hb_cfg_choice(c, "model", "kind", "a", ch, &idx, &err))
            hb_cfg_finish(c, &err);
        hb_config_free(c);
    }
    CU_ASSERT_EQUAL(err.code, HB_ERR_USAGE);
    if (!strstr(err.msg, want)) fprintf(stderr, "  message '%s' lacks '%s'\n", err.msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
}

static void test_errors(void) {
    expect_error("[model]\nname = g\n[run]\nchains = abc\n",
                 "t.ini:4: [run] chains: expected an integer");
    expect_error("[model]\nname = g\n[run]\nchains = 1000\n",
                 "t.ini:4: [run] chains: 1000 is out of range");
    expect_error("[model]\nname = g\n[run]\nchains = 5x\n", "expected an integer");
    expect_error("[model]\nname = g\n[run]\nstep = 2\n", "t.ini:4: [run] step: 2 is out of range");
    expect_error("[model]\nname = g\n[run]\nstep = nan\n", "expected a number");
    expect_error("[run]\nchains = 5\n", "[model] name: missing required key");
    expect_error("[model]\nname = g\nkind = c\n", "t.ini:3: [model] kind: 'c' is not one of: a, b");
    expect_error("[model]\nname = g\ncolour = red\n", "t.ini:3: [model] colour: unknown key");
    expect_error("[model]\nname = g\n[modle]\nx = 1\n", "t.ini:4: [modle]: unknown section");
    expect_error("[model]\nname = g\nname = h\n", "t.ini:3: [model] name: duplicate key");
    expect_error("[model]\nname = g\nthis line is junk\n", "t.ini:3: cannot parse line");
    expect_error("x = 1\n[model]\nname = g\n", "t.ini:1: key 'x' outside any [section]");
    expect_error("[model]\nname =\n", "[model] name: empty value");
}

static void test_override(void) {
    hb_error err;
    hb_config *c = load("[run]\nchains = 16\n", &err);
    CU_ASSERT_EQUAL(hb_config_override(c, "run.chains=32", &err), 0);
    CU_ASSERT_EQUAL(hb_config_override(c, "sampler.algorithm = mala", &err), 0);
    int64_t n, def = 1;
    const char *s;
    CU_ASSERT_EQUAL(hb_cfg_int(c, "run", "chains", &def, 1, 100, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 32);
    CU_ASSERT_EQUAL(hb_cfg_string(c, "sampler", "algorithm", NULL, &s, &err), 0);
    CU_ASSERT_STRING_EQUAL(s, "mala");
    CU_ASSERT_EQUAL(hb_config_override(c, "nodot=3", &err), HB_ERR_USAGE);
    hb_config_free(c);
    /* A bad override value is reported as coming from --set. */
    c = load("[run]\nchains = 16\n", &err);
    hb_config_override(c, "run.chains=-1", &err);
    CU_ASSERT_NOT_EQUAL(hb_cfg_int(c, "run", "chains", &def, 1, 100, &n, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--set: [run] chains"));
    hb_config_free(c);
}

static void test_missing_file(void) {
    hb_error err = {0};
    hb_config *c = NULL;
    CU_ASSERT_EQUAL(hb_config_load(&c, "/nonexistent/x.ini", &err), HB_ERR_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/x.ini: cannot open config"));
}

int main(void) {
    static const hbt_case cases[] = {
        {"typed look-ups and effective config", test_typed_lookups},
        {"errors cite file:line and key", test_errors},
        {"--set overrides", test_override},
        {"missing file", test_missing_file},
    };
    return hbt_run_suite("config", cases, sizeof cases / sizeof *cases);
}
