/* Data input: CmdStan JSON and HDF5 files read through io/data.h and by the models that use
 * them. Malformed files (tests/data/ and HDF5 files written here) must fail with
 * HB_ERR_MODEL and a message naming the problem and the field; good ones must load. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbtest.h"
#include "io/config.h"
#include "io/data.h"
#include "models/data_models.h"

static char *fixture(const char *name) {
    char *p;
    if (asprintf(&p, "%s/tests/data/%s", hbt_env("HB_SOURCE_DIR"), name) < 0) exit(1);
    return p;
}

/* Build a built-in model on a data file; returns the status, err holds the message. */
static int create_model(const hb_builtin_model *bm, const char *data, hb_error *err) {
    char text[4096];
    snprintf(text, sizeof text, "[model]\nname = %s\ndata = %s\n", bm->name, data);
    hb_config *cfg;
    hb_error_clear(err);
    int rc = hb_config_load_string(&cfg, "test.ini", text, err);
    if (rc != HB_OK) return rc;
    void *impl = NULL;
    rc = bm->create(cfg, &impl, err);
    if (rc == HB_OK) bm->vtable->destroy(impl);
    hb_config_free(cfg);
    return rc;
}

typedef struct bad_case {
    const char *file;
    const hb_builtin_model *model;
    const char *want[3]; /* substrings the message must contain */
} bad_case;

static void t_malformed_json(void) {
    const hb_builtin_model *es = &hb_builtin_eight_schools, *lg = &hb_builtin_logistic;
    const bad_case cases[] = {
        {"not_json.txt", es, {"neither JSON", "HDF5"}},
        {"empty.json", es, {"empty file"}},
        {"syntax_error.json", es, {"syntax_error.json:3:", "not valid JSON"}},
        {"truncated.json", es, {"not valid JSON"}},
        {"top_level_array.json", es, {"must be an object", "an array"}},
        {"duplicate_field.json", es, {"'J'", "twice"}},
        {"nan_value.json", es, {"'y'", "y[2] is NaN"}},
        {"inf_value.json", es, {"'sigma'", "sigma[2] is +Inf"}},
        {"string_value.json", es, {"'y'", "y[2] is a string"}},
        {"null_value.json", es, {"'y'", "y[2] is null"}},
        {"wrong_length.json", es, {"'y'", "length 2", "found length 3"}},
        {"not_integer.json", es, {"'J'", "2.5 is not an integer"}},
        {"missing_field.json", es, {"'sigma' is missing"}},
        {"scalar_for_vector.json", es, {"'y'", "expected a vector", "a scalar"}},
        {"vector_for_scalar.json", es, {"'J'", "expected a scalar", "shape (1)"}},
        {"matrix_for_vector.json", es, {"'y'", "shape (2, 1)"}},
        {"ragged_matrix.json", lg, {"'X'", "ragged"}},
        {"flat_matrix.json", lg, {"'X'", "expected a matrix", "shape (4)"}},
        {"y_not_integer.json", lg, {"'y'", "y[2] = 0.5 is not an integer"}},
        {"trailing_text.json", es, {"text after the data"}},
        {"zero_sigma.json", es, {"'sigma'", "sigma[2] = 0 is not > 0"}},
        {"fake.h5", es, {"HDF5", "cannot be read"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *path = fixture(cases[i].file);
        hb_error err;
        int rc = create_model(cases[i].model, path, &err);
        int ok = rc == HB_ERR_MODEL;
        for (int k = 0; k < 3 && cases[i].want[k]; k++)
            if (!strstr(err.msg, cases[i].want[k])) ok = 0;
        if (!ok) fprintf(stderr, "  %s: status %d, message \"%s\"\n", cases[i].file, rc, err.msg);
        CU_ASSERT(ok);
        free(path);
    }
}

static void t_missing_file_and_key(void) {
    hb_error err;
    CU_ASSERT(create_model(&hb_builtin_eight_schools, "/nonexistent/data.json", &err) == HB_ERR_IO);
    CU_ASSERT(strstr(err.msg, "/nonexistent/data.json") != NULL);
    /* `data` is required by the data-driven models: a config error (file:line, key). */
    hb_config *cfg;
    hb_error_clear(&err);
    CU_ASSERT_FATAL(hb_config_load_string(&cfg, "t.ini", "[model]\nname = logistic\n", &err) ==
                    HB_OK);
    void *impl = NULL;
    CU_ASSERT(hb_builtin_logistic.create(cfg, &impl, &err) == HB_ERR_USAGE);
    CU_ASSERT(strstr(err.msg, "data") != NULL);
    hb_config_free(cfg);
}

/* CmdStan conventions that must be accepted. */
static void t_good_json(void) {
    char *p = hbt_write_file(
        "good.json",
        "\xEF\xBB\xBF{\n \"a\": 3, \"b\": -2.5e-3, \"v\": [], \"w\": [1, 2.5, -3],\n"
        " \"m\": [[1, 2, 3], [4, 5, 6]], \"t\": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]],\n"
        " \"unused_inf\": \"Inf\", \"unused_str\": \"text\", \"i\": 4.0,\n"
        " \"e\": []}\n");
    hb_data *d;
    hb_error err;
    hb_error_clear(&err);
    CU_ASSERT_FATAL(hb_data_open(&d, p, &err) == HB_OK);
    int64_t a, i;
    double b;
    CU_ASSERT(hb_data_int(d, "a", 0, 10, &a, &err) == HB_OK && a == 3);
    CU_ASSERT(hb_data_real(d, "b", &b, &err) == HB_OK && b == -2.5e-3);
    CU_ASSERT(hb_data_int(d, "i", 0, 10, &i, &err) == HB_OK && i == 4);
    size_t n = HB_DATA_ANY, r = HB_DATA_ANY, c = 3;
    const double *v;
    CU_ASSERT(hb_data_vector(d, "v", &n, &v, &err) == HB_OK && n == 0);
    n = 3;
    CU_ASSERT(hb_data_vector(d, "w", &n, &v, &err) == HB_OK && v[1] == 2.5 && v[2] == -3);
    CU_ASSERT(hb_data_matrix(d, "m", &r, &c, &v, &err) == HB_OK && r == 2 && v[4] == 5);
    r = 0;
    c = 7;
    CU_ASSERT(hb_data_matrix(d, "e", &r, &c, &v, &err) == HB_OK && r == 0);
    int nd;
    size_t dims[HB_DATA_MAX_DIM];
    CU_ASSERT(hb_data_shape(d, "t", &nd, dims, &err) == HB_OK && nd == 3 && dims[0] == 2 &&
              dims[2] == 2);
    CU_ASSERT(hb_data_has(d, "unused_str") && !hb_data_has(d, "nope"));
    /* Out of range and wrong sizes name the field and the bound. */
    hb_error_clear(&err);
    CU_ASSERT(hb_data_int(d, "a", 5, 10, &a, &err) == HB_ERR_MODEL);
    CU_ASSERT(strstr(err.msg, "'a'") && strstr(err.msg, "outside [5, 10]"));
    hb_error_clear(&err);
    r = 3;
    c = 3;
    CU_ASSERT(hb_data_matrix(d, "m", &r, &c, &v, &err) == HB_ERR_MODEL);
    CU_ASSERT(strstr(err.msg, "3 x 3") && strstr(err.msg, "2 x 3"));
    hb_error_clear(&err);
    CU_ASSERT(hb_data_real(d, "unused_inf", &b, &err) == HB_ERR_MODEL);
    CU_ASSERT(strstr(err.msg, "+Inf") != NULL);
    hb_data_close(d);
    free(p);
}

/* ---- HDF5 ---- */

static void h5_write(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims,
                     const void *buf) {
    hid_t s = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(s);
}

static const double es_y[8] = {28, 8, -3, 7, -1, 1, 18, 12};
static const int es_sigma[8] = {15, 10, 16, 11, 9, 11, 10, 18};

/* eight_schools data as HDF5, with one field spoiled by `spoil`. */
static char *es_h5(const char *name, const char *spoil) {
    char *path;
    if (asprintf(&path, "%s/%s", hbt_tmpdir(), name) < 0) exit(1);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    long long J = 8;
    double Jf = 2.5, ys[8];
    hsize_t d8[1] = {8}, d24[2] = {2, 4};
    memcpy(ys, es_y, sizeof ys);
    if (strcmp(spoil, "J_float") == 0)
        h5_write(f, "J", H5T_NATIVE_DOUBLE, 0, NULL, &Jf);
    else
        h5_write(f, "J", H5T_NATIVE_LLONG, 0, NULL, &J);
    if (strcmp(spoil, "y_string") == 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4);
        h5_write(f, "y", t, 0, NULL, "abc");
        H5Tclose(t);
    } else if (strcmp(spoil, "y_2d") == 0)
        h5_write(f, "y", H5T_NATIVE_DOUBLE, 2, d24, ys);
    else {
        if (strcmp(spoil, "y_nan") == 0) ys[2] = NAN;
        h5_write(f, "y", H5T_NATIVE_DOUBLE, 1, d8, ys);
    }
    if (strcmp(spoil, "no_sigma") != 0) h5_write(f, "sigma", H5T_NATIVE_INT, 1, d8, es_sigma);
    hid_t g = H5Gcreate2(f, "ignored_group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    return path;
}

static void t_hdf5(void) {
    /* Good: the same model as from data.json, point for point. */
    char *h5 = es_h5("es.h5", ""), *js;
    if (asprintf(&js, "%s/targets/eight_schools-eight_schools_noncentered/data.json",
                 hbt_env("HB_SHARED_DIR")) < 0)
        exit(1);
    const hb_builtin_model *bm = &hb_builtin_eight_schools;
    void *m[2];
    const char *paths[2] = {h5, js};
    for (int k = 0; k < 2; k++) {
        char text[2048];
        snprintf(text, sizeof text, "[model]\ndata = %s\n", paths[k]);
        hb_config *cfg;
        hb_error err;
        hb_error_clear(&err);
        CU_ASSERT_FATAL(hb_config_load_string(&cfg, "t.ini", text, &err) == HB_OK);
        int rc = bm->create(cfg, &m[k], &err);
        if (rc) fprintf(stderr, "  %s\n", err.msg);
        CU_ASSERT_FATAL(rc == HB_OK);
        hb_config_free(cfg);
    }
    double x[10] = {0.3, -1, 0.5, 2, -0.2, 0.1, 1, -0.7, 4.0, 1.2}, lp[2], g[2][10];
    for (int k = 0; k < 2; k++) bm->vtable->logp_grad(m[k], x, &lp[k], g[k]);
    CU_ASSERT(lp[0] == lp[1]);
    CU_ASSERT(memcmp(g[0], g[1], sizeof g[0]) == 0);
    for (int k = 0; k < 2; k++) bm->vtable->destroy(m[k]);

    /* Bad HDF5 content. */
    struct {
        const char *spoil;
        const char *want[2];
    } bad[] = {
        {"J_float", {"'J'", "2.5 is not an integer"}},
        {"y_string", {"'y'", "not numeric"}},
        {"y_2d", {"'y'", "shape (2, 4)"}},
        {"y_nan", {"'y'", "y[3] is NaN"}},
        {"no_sigma", {"'sigma' is missing", NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[64];
        snprintf(name, sizeof name, "bad_%s.h5", bad[i].spoil);
        char *p = es_h5(name, bad[i].spoil);
        hb_error err;
        int rc = create_model(bm, p, &err);
        int ok = rc == HB_ERR_MODEL && strstr(err.msg, bad[i].want[0]) &&
                 (!bad[i].want[1] || strstr(err.msg, bad[i].want[1]));
        if (!ok) fprintf(stderr, "  %s: status %d, \"%s\"\n", bad[i].spoil, rc, err.msg);
        CU_ASSERT(ok);
        free(p);
    }
    free(h5);
    free(js);
}

/* Every reference target's data.json loads into its model. */
static void t_targets_load(void) {
    const hb_builtin_model *all[] = {&hb_builtin_eight_schools, &hb_builtin_diamonds,
                                     &hb_builtin_kilpisjarvi,   &hb_builtin_kidiq,
                                     &hb_builtin_arK,           &hb_builtin_garch,
                                     &hb_builtin_gp_regr,       &hb_builtin_gauss_mix};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        char *p;
        if (asprintf(&p, "%s/targets/%s/data.json", hbt_env("HB_SHARED_DIR"), all[i]->name) < 0)
            exit(1);
        hb_error err;
        int rc = create_model(all[i], p, &err);
        if (rc) fprintf(stderr, "  %s: %s\n", all[i]->name, err.msg);
        CU_ASSERT(rc == HB_OK);
        free(p);
    }
}

/* Through the program: `heartbeat run` on broken data exits 3 and says what is wrong; a
   data-driven model without `data` is a config error (exit 2). */
static void t_cli_exit_codes(void) {
    struct {
        const char *file, *model, *want;
        int status;
    } cases[] = {
        {"nan_value.json", "eight_schools-eight_schools_noncentered", "y[2] is NaN", 3},
        {"wrong_length.json", "eight_schools-eight_schools_noncentered", "found length 3", 3},
        {"syntax_error.json", "eight_schools-eight_schools_noncentered", "not valid JSON", 3},
        {"fake.h5", "eight_schools-eight_schools_noncentered", "cannot be read as HDF5", 3},
        {"y_not_integer.json", "logistic", "0.5 is not an integer", 3},
        {"ragged_matrix.json", "logistic", "ragged", 3},
        {NULL, "arK-arK", "data", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *data = cases[i].file ? fixture(cases[i].file) : NULL, *text, *out;
        if (asprintf(&out, "%s/cli_%zu.h5", hbt_tmpdir(), i) < 0 ||
            asprintf(&text,
                     "[run]\nchains = 8\nwarmup = 10\ndraws = 10\noutput = %s\n[model]\n"
                     "name = %s\n%s%s%s[sampler]\nalgorithm = mala\n",
                     out, cases[i].model, data ? "data = " : "", data ? data : "",
                     data ? "\n" : "") < 0)
            exit(1);
        char name[32];
        snprintf(name, sizeof name, "cli_%zu.ini", i);
        char *cfg = hbt_write_file(name, text), *log = NULL;
        int st = hbt_sh(&log, "%s run %s --quiet", hbt_env("HB_BIN"), cfg);
        int ok = st == cases[i].status && log && strstr(log, cases[i].want);
        if (!ok) fprintf(stderr, "  %s: exit %d, output: %s\n", name, st, log ? log : "");
        CU_ASSERT(ok);
        free(log);
        free(cfg);
        free(text);
        free(out);
        free(data);
    }
}

int main(void) {
    static const hbt_case cases[] = {
        {"malformed JSON and fake HDF5 files: exit 3, problem named", t_malformed_json},
        {"missing file (I/O) and missing data key (usage)", t_missing_file_and_key},
        {"CmdStan JSON conventions accepted", t_good_json},
        {"HDF5 data: same model as JSON; bad datasets named", t_hdf5},
        {"all reference data.json files load", t_targets_load},
        {"heartbeat run: exit 3 on broken data, 2 without data", t_cli_exit_codes},
    };
    return hbt_run_suite("data", cases, sizeof cases / sizeof *cases);
}
