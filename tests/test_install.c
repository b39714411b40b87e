/* The installed package (issue 2, deliverable 1): `cmake --install` of this build into a
 * temporary prefix gives the library, the public headers, the `heartbeat` program (which
 * runs from the prefix with no LD_LIBRARY_PATH) and a CMake package config with which a
 * project outside the tree builds a program linked against libheartbeat and a model plugin
 * from the installed headers only; that program samples that plugin through hb_run. */
#include <heartbeat/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"

static char prefix[512];

static int installed(void) {
    static int done = -1;
    if (done >= 0) return done;
    snprintf(prefix, sizeof prefix, "%s/prefix", hbt_tmpdir());
    char *log = NULL;
    int rc = hbt_sh(&log, "rm -rf %s && %s --install %s --prefix %s", prefix, hbt_env("HB_CMAKE"),
                    hbt_env("HB_BUILD_DIR"), prefix);
    if (rc != 0) fprintf(stderr, "  cmake --install: exit %d: %s\n", rc, log ? log : "");
    free(log);
    done = rc == 0;
    return done;
}

/* What the prefix holds. */
static void test_layout(void) {
    CU_ASSERT_FATAL(installed());
    static const char *const files[] = {"bin/heartbeat",
                                        "include/heartbeat/heartbeat.h",
                                        "include/heartbeat/model.h",
                                        "include/heartbeat/diag.h",
                                        "include/heartbeat/version.h",
                                        "lib/libheartbeat.so",
                                        "lib/cmake/heartbeat/heartbeatConfig.cmake",
                                        "lib/cmake/heartbeat/heartbeatConfigVersion.cmake",
                                        "lib/cmake/heartbeat/heartbeatTargets.cmake",
                                        NULL};
    for (int i = 0; files[i]; i++) {
        char path[768];
        snprintf(path, sizeof path, "%s/%s", prefix, files[i]);
        FILE *f = fopen(path, "rb");
        if (!f) fprintf(stderr, "  missing from the prefix: %s\n", files[i]);
        CU_ASSERT_PTR_NOT_NULL(f);
        if (f) fclose(f);
    }
}

/* The installed program runs from the prefix, finding its library by its RUNPATH. */
static void test_program_runs(void) {
    CU_ASSERT_FATAL(installed());
    char *log = NULL;
    int rc = hbt_sh(&log, "env -u LD_LIBRARY_PATH %s/bin/heartbeat --version", prefix);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(log && strstr(log, HB_VERSION_STRING));
    if (rc != 0 || !log || !strstr(log, HB_VERSION_STRING))
        fprintf(stderr, "  heartbeat --version: exit %d: %s\n", rc, log ? log : "");
    free(log);
    log = NULL;
    rc = hbt_sh(&log, "env -u LD_LIBRARY_PATH %s/bin/heartbeat models", prefix);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(log && strstr(log, "gaussian") && strstr(log, "mixture"));
    free(log);
}

/* find_package(heartbeat) from a project outside the tree; its program samples its plugin. */
static void test_consumer_project(void) {
    CU_ASSERT_FATAL(installed());
    char build[600], *log = NULL;
    snprintf(build, sizeof build, "%s/consumer", hbt_tmpdir());
    int rc = hbt_sh(&log,
                    "rm -rf %s && %s -S %s/tests/install -B %s -DCMAKE_PREFIX_PATH=%s "
                    "-DHB_EXAMPLE_PLUGIN=%s/examples/plugin/banana_plugin.c "
                    "-DCMAKE_C_FLAGS='%s' && %s --build %s",
                    build, hbt_env("HB_CMAKE"), hbt_env("HB_SOURCE_DIR"), build, prefix,
                    hbt_env("HB_SOURCE_DIR"),
                    getenv("HB_CONSUMER_CFLAGS") ? getenv("HB_CONSUMER_CFLAGS") : "",
                    hbt_env("HB_CMAKE"), build);
    if (rc != 0) fprintf(stderr, "  consumer project: exit %d: %s\n", rc, log ? log : "");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    free(log);
    char text[1536], out[700];
    snprintf(out, sizeof out, "%s/consumer.h5", hbt_tmpdir());
    snprintf(text, sizeof text,
             "[run]\nseed = 3\nchains = 16\nwarmup = 100\ndraws = 40\noutput = %s\n"
             "[model]\nname = plugin\nplugin = %s/libconsumer_model.so\n"
             "[sampler]\nalgorithm = mala\n",
             out, build);
    char *cfg = hbt_write_file("consumer.ini", text);
    log = NULL;
    rc = hbt_sh(&log, "rm -f %s && env -u LD_LIBRARY_PATH %s/consumer %s", out, build, cfg);
    if (rc != 0) fprintf(stderr, "  consumer: exit %d: %s\n", rc, log ? log : "");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(log && strstr(log, "libheartbeat " HB_VERSION_STRING) && strstr(log, "run ok"));
    CU_ASSERT_EQUAL(hbt_read_attr_int(out, "draws_committed"), 40);
    free(log);
    free(cfg);
}

int main(void) {
    static const hbt_case cases[] = {
        {"cmake --install: library, headers, program, package config", test_layout},
        {"the installed program runs from the prefix", test_program_runs},
        {"find_package(heartbeat) builds a program and a plugin that sample",
         test_consumer_project},
    };
    return hbt_run_suite("install", cases, sizeof cases / sizeof *cases);
}
