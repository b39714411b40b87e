/* Tests of the output file: the parallel writer (h5out) and the serial reader (h5in) round trip
 * known values on any number of ranks, with and without deflate, partial and interrupted files,
 * name grouping, dimension scales, netCDF/xarray readability, and error cases. */
#define _GNU_SOURCE
#include "hbtest.h"
#include "io/h5in.h"
#include "io/h5out.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_rank, g_size;
static char g_dir[256]; /* rank 0's temporary directory, shared by all ranks */

#define LANES 8 /* chains per chunk (and per rank block) in these tests */

/* The values every test writes (tests/py/check_arviz.py computes the same). */
static double fpos(size_t c, size_t d, size_t j) {
    return 1e6 * (double)c + 1e3 * (double)d + (double)j + 0.5;
}
static double flp(size_t c, size_t d) {
    return -(double)(c * 1000 + d) - 0.25;
}
static double facc(size_t c, size_t d) {
    return (double)((c + d) % 4) / 4.0;
}
static int8_t fdiverg(size_t c, size_t d) {
    return (int8_t)((c + d) % 3 == 0);
}
static int64_t fnsteps(size_t c, size_t d) {
    return (int64_t)c * 10000000000LL + (int64_t)d + 1;
}

static const char *const std_names[] = {"mu",       "theta[1]", "theta[2]", "theta[3]", "theta[4]",
                                        "theta[5]", "theta[6]", "theta[7]", "theta[8]", "a[1,1]",
                                        "a[1,2]",   "a[1,3]",   "a[2,1]",   "a[2,2]",   "a[2,3]"};
#define STD_DIM (sizeof std_names / sizeof std_names[0])

static const hb_stat_spec std_stats[] = {{"lp", HB_STAT_F64},
                                         {"acceptance_rate", HB_STAT_F64},
                                         {"diverging", HB_STAT_BOOL},
                                         {"n_steps", HB_STAT_I64}};
#define N_STATS 4

enum split { SPLIT_EVEN, SPLIT_LAST };

static char *tpath(const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", g_dir, name) < 0) abort();
    return p;
}

/* Whole blocks of LANES chains: SPLIT_EVEN spreads them in rank order (with 4 ranks and
   3 blocks rank 0 gets none), SPLIT_LAST gives everything to the last rank. */
static hb_out_layout make_layout(size_t n_chains, size_t n_draws, size_t chunk_draws, int deflate,
                                 enum split split, const char *const *names, size_t dim) {
    size_t nb = n_chains / LANES, b0, b1;
    if (split == SPLIT_EVEN) {
        b0 = (size_t)g_rank * nb / (size_t)g_size;
        b1 = (size_t)(g_rank + 1) * nb / (size_t)g_size;
    } else {
        b0 = g_rank == g_size - 1 ? 0 : nb;
        b1 = nb;
    }
    hb_out_layout L = {0};
    L.n_chains = n_chains;
    L.chain0 = b0 * LANES;
    L.n_local = (b1 - b0) * LANES;
    L.n_draws = n_draws;
    L.dim = dim;
    L.coord_names = names;
    L.n_stats = N_STATS;
    L.stats = std_stats;
    L.chunk_chains = LANES;
    L.chunk_draws = chunk_draws;
    L.deflate = deflate;
    return L;
}

/* Write draws [draw0, draw0+nd) of this rank's chains from the formulas. */
static int write_batch(hb_h5out *o, const hb_out_layout *L, size_t draw0, size_t nd,
                       hb_error *err) {
    size_t n = L->n_local * nd;
    double *pos = malloc((n * L->dim + 1) * sizeof *pos);
    double *lp = malloc((n + 1) * sizeof *lp), *acc = malloc((n + 1) * sizeof *acc);
    int8_t *dv = malloc(n + 1);
    int64_t *ns = malloc((n + 1) * sizeof *ns);
    for (size_t c = 0; c < L->n_local; c++)
        for (size_t d = 0; d < nd; d++) {
            size_t gc = L->chain0 + c, gd = draw0 + d, r = c * nd + d;
            for (size_t j = 0; j < L->dim; j++) pos[r * L->dim + j] = fpos(gc, gd, j);
            lp[r] = flp(gc, gd);
            acc[r] = facc(gc, gd);
            dv[r] = fdiverg(gc, gd);
            ns[r] = fnsteps(gc, gd);
        }
    const void *stats[N_STATS] = {lp, acc, dv, ns};
    /* ranks without chains may pass NULL buffers */
    int rc =
        hb_h5out_write_draws(o, draw0, nd, L->n_local ? pos : NULL, L->n_local ? stats : NULL, err);
    free(pos);
    free(lp);
    free(acc);
    free(dv);
    free(ns);
    return rc;
}

/* Same status on every rank? */
static int all_same(int v) {
    int mn = v, mx = v;
    MPI_Allreduce(MPI_IN_PLACE, &mn, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return mn == mx;
}

/* Write a standard file: batches of `batch` draws, only the first n_write of them; optional
   adaptation and attributes. Returns the agreed status. */
static int write_std(const char *path, size_t n_chains, size_t n_draws, size_t batch, int deflate,
                     enum split split, size_t n_write, const char *snapshot) {
    hb_out_layout L = make_layout(n_chains, n_draws, batch, deflate, split, std_names, STD_DIM);
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, path, &L, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (rc) {
        fprintf(stderr, "create: %s\n", err.msg);
        return rc;
    }
    rc = hb_h5out_attr_string(o, "test_pattern", "h5out-v1", &err);
    if (!rc) rc = hb_h5out_attr_string(o, "algorithm", "first", &err);
    if (!rc) rc = hb_h5out_attr_string(o, "algorithm", "heartbeat", &err); /* overwrite */
    if (!rc) rc = hb_h5out_attr_int(o, "seed", 1, &err);
    if (!rc) rc = hb_h5out_attr_int(o, "seed", 20261122, &err);
    if (!rc) rc = hb_h5out_attr_double(o, "wall_time_warmup", 1.5, &err);
    if (!rc) { /* long text: needs dense attribute storage */
        size_t n = 100000;
        char *cfg = malloc(n + 1);
        for (size_t i = 0; i < n; i++) cfg[i] = (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
        cfg[n] = '\0';
        rc = hb_h5out_attr_string(o, "config", cfg, &err);
        free(cfg);
    }
    if (!rc) {
        double im[STD_DIM];
        for (size_t i = 0; i < STD_DIM; i++) im[i] = 1.0 / (double)(i + 1);
        rc = hb_h5out_adaptation(o, 0.25, im, STD_DIM, &err); /* replaced below */
        if (!rc) rc = hb_h5out_adaptation(o, 0.125, im, STD_DIM, &err);
    }
    size_t k = 0;
    for (size_t d0 = 0; !rc && d0 < n_draws && k < n_write; d0 += batch, k++) {
        size_t nd = d0 + batch > n_draws ? n_draws - d0 : batch;
        rc = write_batch(o, &L, d0, nd, &err);
        if (!rc && snapshot && k == 0) { /* what a kill after the first batch would leave */
            MPI_Barrier(MPI_COMM_WORLD);
            if (g_rank == 0) CU_ASSERT_EQUAL(hbt_sh(NULL, "cp '%s' '%s'", path, snapshot), 0);
            MPI_Barrier(MPI_COMM_WORLD);
        }
    }
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (rc) fprintf(stderr, "write: %s\n", err.msg);
    int rc2 = hb_h5out_close(o, &err);
    CU_ASSERT_EQUAL(rc2, HB_OK);
    CU_ASSERT(all_same(rc));
    return rc ? rc : rc2;
}

static int near_eq(double a, double b) {
    return a == b || (isnan(a) && isnan(b));
}

/* Every dataset axis of group g has exactly one dimension scale, the right one. */
static void check_scales(hid_t file, const char *group, const char *var, const char *const *dims,
                         int ndims) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", group, var);
    hid_t d = H5Dopen2(file, p, H5P_DEFAULT);
    CU_ASSERT(d >= 0);
    if (d < 0) return;
    for (int k = 0; k < ndims; k++) {
        CU_ASSERT_EQUAL(H5DSget_num_scales(d, (unsigned)k), 1);
        snprintf(p, sizeof p, "%s/%s", group, dims[k]);
        hid_t s = H5Dopen2(file, p, H5P_DEFAULT);
        CU_ASSERT(s >= 0);
        if (s >= 0) {
            CU_ASSERT(H5DSis_scale(s) > 0);
            CU_ASSERT(H5DSis_attached(d, s, (unsigned)k) > 0);
            H5Dclose(s);
        }
    }
    H5Dclose(d);
}

/* Rank 0: read a standard file back and check every committed value and the layout. */
static void verify_std(const char *path, size_t C, size_t D, size_t committed) {
    hb_error err;
    hb_error_clear(&err);
    hb_h5in *f = NULL;
    int rc = hb_h5in_open(&f, path, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (rc) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
        return;
    }
    CU_ASSERT_EQUAL(hb_h5in_n_chains(f), C);
    CU_ASSERT_EQUAL(hb_h5in_n_draws(f), D);
    CU_ASSERT_EQUAL(hb_h5in_n_committed(f), committed);
    CU_ASSERT_EQUAL(hb_h5in_n_vars(f), 3);
    const char *vn[3] = {"mu", "theta", "a"};
    const int ne[3] = {0, 1, 2};
    const size_t nco[3] = {1, 8, 6}, col0[3] = {0, 1, 9};
    size_t bad = 0;
    for (size_t i = 0; i < 3 && i < hb_h5in_n_vars(f); i++) {
        const hb_h5in_var *v = hb_h5in_var_info(f, i);
        CU_ASSERT_STRING_EQUAL(v->name, vn[i]);
        CU_ASSERT_EQUAL(v->ndim_extra, ne[i]);
        CU_ASSERT_EQUAL(v->n_coords, nco[i]);
        for (size_t k = 0; k < v->n_coords; k++) {
            char nm[64];
            hb_h5in_coord_name(f, i, k, nm, sizeof nm);
            CU_ASSERT_STRING_EQUAL(nm, std_names[col0[i] + k]);
        }
        /* all chains, then a range that starts and ends inside chunks */
        size_t ranges[2][2] = {{0, C}, {3, C > 13 ? 10 : C - 3}};
        for (int r = 0; r < 2; r++) {
            size_t c0 = ranges[r][0], nc = ranges[r][1];
            double *x = malloc((v->n_coords * nc * committed + 1) * sizeof *x);
            rc = hb_h5in_read_var(f, i, c0, nc, x, &err);
            CU_ASSERT_EQUAL(rc, HB_OK);
            for (size_t k = 0; !rc && k < v->n_coords; k++)
                for (size_t c = 0; c < nc; c++)
                    for (size_t d = 0; d < committed; d++)
                        bad += x[(k * nc + c) * committed + d] != fpos(c0 + c, d, col0[i] + k);
            free(x);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(hb_h5in_var_info(f, 3), NULL);
    /* stats as doubles */
    double *s = malloc((C * committed + 1) * sizeof *s);
    for (int k = 0; k < N_STATS; k++) {
        CU_ASSERT(hb_h5in_has_stat(f, std_stats[k].name));
        rc = hb_h5in_read_stat(f, std_stats[k].name, 0, C, s, &err);
        CU_ASSERT_EQUAL(rc, HB_OK);
        size_t sbad = 0;
        for (size_t c = 0; !rc && c < C; c++)
            for (size_t d = 0; d < committed; d++) {
                double want = k == 0   ? flp(c, d)
                              : k == 1 ? facc(c, d)
                              : k == 2 ? (double)fdiverg(c, d)
                                       : (double)fnsteps(c, d);
                sbad += s[c * committed + d] != want;
            }
        CU_ASSERT_EQUAL(sbad, 0);
    }
    rc = hb_h5in_read_stat(f, "lp", 2, 5, s, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (!rc && committed > 1) CU_ASSERT_EQUAL(s[committed + 1], flp(3, 1));
    free(s);
    CU_ASSERT_FALSE(hb_h5in_has_stat(f, "tree_depth"));
    hb_error e2;
    hb_error_clear(&e2);
    double dummy[4];
    CU_ASSERT_EQUAL(hb_h5in_read_stat(f, "tree_depth", 0, 1, dummy, &e2), HB_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e2.msg, "tree_depth"));
    /* root attributes */
    char *str = NULL;
    CU_ASSERT_EQUAL(hb_h5in_attr_string(f, "inference_library", &str, &err), HB_OK);
    if (str) CU_ASSERT_STRING_EQUAL(str, "heartbeat");
    free(str);
    str = NULL;
    CU_ASSERT_EQUAL(hb_h5in_attr_string(f, "inference_library_version", &str, &err), HB_OK);
    if (str) CU_ASSERT_STRING_EQUAL(str, hb_version());
    free(str);
    str = NULL;
    CU_ASSERT_EQUAL(hb_h5in_attr_string(f, "created_at", &str, &err), HB_OK);
    if (str)
        CU_ASSERT(strlen(str) >= 20 && str[4] == '-' && str[10] == 'T' &&
                  str[strlen(str) - 1] == 'Z');
    free(str);
    str = NULL;
    CU_ASSERT_EQUAL(hb_h5in_attr_string(f, "algorithm", &str, &err), HB_OK);
    if (str) CU_ASSERT_STRING_EQUAL(str, "heartbeat");
    free(str);
    str = NULL;
    CU_ASSERT_EQUAL(hb_h5in_attr_string(f, "config", &str, &err), HB_OK);
    if (str) CU_ASSERT_EQUAL(strlen(str), 100000);
    free(str);
    int64_t iv = 0;
    CU_ASSERT_EQUAL(hb_h5in_attr_int(f, "seed", &iv, &err), HB_OK);
    CU_ASSERT_EQUAL(iv, 20261122);
    CU_ASSERT_EQUAL(hb_h5in_attr_int(f, "n_ranks", &iv, &err), HB_OK);
    CU_ASSERT_EQUAL(iv, g_size);
    CU_ASSERT_EQUAL(hb_h5in_attr_int(f, "draws_committed", &iv, &err), HB_OK);
    CU_ASSERT_EQUAL(iv, (int64_t)committed);
    double dv = 0;
    CU_ASSERT_EQUAL(hb_h5in_attr_double(f, "wall_time_warmup", &dv, &err), HB_OK);
    CU_ASSERT_EQUAL(dv, 1.5);
    CU_ASSERT_EQUAL(hb_h5in_attr_double(f, "seed", &dv, &err), HB_OK); /* ints read as doubles */
    CU_ASSERT_EQUAL(dv, 20261122.0);
    hb_error_clear(&e2);
    CU_ASSERT_EQUAL(hb_h5in_attr_int(f, "no_such_attr", &iv, &e2), HB_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e2.msg, "no_such_attr"));
    hb_error_clear(&e2);
    CU_ASSERT_EQUAL(hb_h5in_attr_int(f, "algorithm", &iv, &e2), HB_ERR_IO);
    hb_h5in_close(f);

    /* dimension scales, fill values, adaptation, with plain HDF5 */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT(h >= 0);
    if (h < 0) return;
    const char *d_mu[] = {"chain", "draw"};
    const char *d_theta[] = {"chain", "draw", "theta_dim_0"};
    const char *d_a[] = {"chain", "draw", "a_dim_0", "a_dim_1"};
    check_scales(h, "/posterior", "mu", d_mu, 2);
    check_scales(h, "/posterior", "theta", d_theta, 3);
    check_scales(h, "/posterior", "a", d_a, 4);
    for (int k = 0; k < N_STATS; k++) check_scales(h, "/sample_stats", std_stats[k].name, d_mu, 2);
    const char *d_im[] = {"inv_metric_dim_0"};
    check_scales(h, "/adaptation", "inv_metric", d_im, 1);
    H5Fclose(h);
    size_t n = 0, dims[4];
    int rank = 0;
    double *raw = hbt_read_dataset(path, "/posterior/a", &n, dims, &rank);
    CU_ASSERT_PTR_NOT_NULL(raw);
    CU_ASSERT_EQUAL(rank, 4);
    if (raw && rank == 4) {
        CU_ASSERT(dims[0] == C && dims[1] == D && dims[2] == 2 && dims[3] == 3);
        size_t nbad = 0; /* uncommitted draws are NaN (the fill value) */
        for (size_t c = 0; c < C; c++)
            for (size_t d = 0; d < D; d++)
                for (size_t k = 0; k < 6; k++) {
                    double want = d < committed ? fpos(c, d, 9 + k) : NAN;
                    nbad += !near_eq(raw[(c * D + d) * 6 + k], want);
                }
        CU_ASSERT_EQUAL(nbad, 0);
    }
    free(raw);
    raw = hbt_read_dataset(path, "/adaptation/inv_metric", &n, dims, &rank);
    CU_ASSERT(raw && n == STD_DIM && raw[3] == 0.25);
    free(raw);
}

/* Files for the Python readers, checked together at the end (one interpreter start). */
static char *g_py_files[16];
static size_t g_n_py;

static void run_python(const char *path) {
    if (g_n_py < sizeof g_py_files / sizeof g_py_files[0]) g_py_files[g_n_py++] = strdup(path);
}

/* h5py, xarray (h5netcdf and netcdf4 engines) and netCDF4 read every file written above */
static void test_python_readers(void) {
    if (g_rank == 0) {
        CU_ASSERT(g_n_py >= 6);
        size_t len = 256;
        for (size_t i = 0; i < g_n_py; i++) len += strlen(g_py_files[i]) + 3;
        char *args = calloc(len, 1);
        for (size_t i = 0; i < g_n_py; i++) {
            strcat(args, " '");
            strcat(args, g_py_files[i]);
            strcat(args, "'");
            free(g_py_files[i]);
        }
        char *out = NULL;
        int st = hbt_sh(&out, "'%s' '%s/tests/py/check_arviz.py'%s", hbt_env("HB_PYTHON"),
                        hbt_env("HB_SOURCE_DIR"), args);
        printf("\n%s", out ? out : "");
        CU_ASSERT_EQUAL(st, 0);
        free(out);
        free(args);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Chunks of every draw dataset hold whole LANES blocks and never span two ranks' chains. */
static void check_chunks(const char *path, size_t C, enum split split) {
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT(h >= 0);
    const char *groups[2] = {"/posterior", "/sample_stats"};
    const char *names[2][4] = {{"mu", "theta", "a", NULL},
                               {"lp", "acceptance_rate", "diverging", "n_steps"}};
    for (int gi = 0; h >= 0 && gi < 2; gi++)
        for (int k = 0; k < 4 && names[gi][k]; k++) {
            char p[128];
            snprintf(p, sizeof p, "%s/%s", groups[gi], names[gi][k]);
            hid_t d = H5Dopen2(h, p, H5P_DEFAULT);
            hid_t pl = H5Dget_create_plist(d);
            hsize_t ch[6] = {0};
            CU_ASSERT(H5Pget_chunk(pl, 6, ch) >= 2);
            CU_ASSERT(ch[0] > 0 && ch[0] % LANES == 0);
            for (int r = 0; ch[0] > 0 && r < g_size; r++) {
                size_t nb = C / LANES;
                size_t start = split == SPLIT_EVEN ? (size_t)r * nb / (size_t)g_size * LANES
                                                   : (r == g_size - 1 ? 0 : C);
                if (start < C) CU_ASSERT_EQUAL(start % ch[0], 0);
            }
            H5Pclose(pl);
            H5Dclose(d);
        }
    if (h >= 0) H5Fclose(h);
}

static void test_roundtrip_plain(void) {
    char *p = tpath("plain.h5");
    int rc = write_std(p, 24, 30, 10, 0, SPLIT_EVEN, 99, NULL);
    if (g_rank == 0 && rc == HB_OK) {
        verify_std(p, 24, 30, 30);
        check_chunks(p, 24, SPLIT_EVEN);
        run_python(p);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

/* deflate; every chain on the last rank (the others select nothing); 10, 10, 5 draws */
static void test_roundtrip_deflate(void) {
    char *p = tpath("deflate.h5");
    int rc = write_std(p, 24, 25, 10, 4, SPLIT_LAST, 99, NULL);
    if (g_rank == 0 && rc == HB_OK) {
        verify_std(p, 24, 25, 25);
        check_chunks(p, 24, SPLIT_LAST);
        run_python(p);
        /* really compressed */
        hid_t h = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = H5Dopen2(h, "/posterior/theta", H5P_DEFAULT);
        hid_t pl = H5Dget_create_plist(d);
        CU_ASSERT_EQUAL(H5Pget_nfilters(pl), 2);
        H5Pclose(pl);
        H5Dclose(d);
        H5Fclose(h);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

/* 2 of 3 batches written, then closed; and a copy taken after the first batch while the
   writer still had the file open (what a killed run leaves). */
static void test_partial(void) {
    char *p = tpath("partial.h5"), *snap = tpath("snapshot.h5");
    int rc = write_std(p, 16, 30, 10, 4, SPLIT_EVEN, 2, snap);
    if (g_rank == 0 && rc == HB_OK) {
        verify_std(p, 16, 30, 20);
        verify_std(snap, 16, 30, 10);
        run_python(p);
        run_python(snap);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
    free(snap);
}

/* no_fill: no fill pass at create (fill time NEVER); committed draws are still right */
static void test_no_fill(void) {
    char *p = tpath("nofill.h5");
    hb_out_layout L = make_layout(16, 20, 10, 0, SPLIT_EVEN, std_names, STD_DIM);
    L.no_fill = 1;
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (!rc) {
        CU_ASSERT_EQUAL(write_batch(o, &L, 0, 10, &err), HB_OK);
        CU_ASSERT_EQUAL(hb_h5out_close(o, &err), HB_OK);
    }
    if (g_rank == 0 && !rc) {
        hb_h5in *f = NULL;
        CU_ASSERT_EQUAL(hb_h5in_open(&f, p, &err), HB_OK);
        if (f) {
            CU_ASSERT_EQUAL(hb_h5in_n_committed(f), 10);
            double *x = malloc(8 * 16 * 10 * sizeof *x);
            size_t bad = 0;
            CU_ASSERT_EQUAL(hb_h5in_read_var(f, 1, 0, 16, x, &err), HB_OK);
            for (size_t k = 0; k < 8; k++)
                for (size_t c = 0; c < 16; c++)
                    for (size_t d = 0; d < 10; d++)
                        bad += x[(k * 16 + c) * 10 + d] != fpos(c, d, 1 + k);
            CU_ASSERT_EQUAL(bad, 0);
            free(x);
            hb_h5in_close(f);
        }
        hid_t h = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = H5Dopen2(h, "/posterior/theta", H5P_DEFAULT);
        hid_t pl = H5Dget_create_plist(d);
        H5D_fill_time_t ft = H5D_FILL_TIME_ALLOC;
        H5Pget_fill_time(pl, &ft);
        CU_ASSERT_EQUAL(ft, H5D_FILL_TIME_NEVER);
        H5Pclose(pl);
        H5Dclose(d);
        H5Fclose(h);
        run_python(p);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

static const char *const odd_names[] = {"x[2]",   "x[1]",   "b[1]",        "c",
                                        "b[2]",   "chain",  "weird name!", "9lives",
                                        "m[1,1]", "m[1,2]", "m[2,1]",      "t_dim_0",
                                        "t[1]",   "t[2]",   "mu",          "mu",
                                        "q[0]",   "q[1]",   "s[1]",        "deep[1,1,1,1,1]",
                                        "z"};
static const char *const odd_vars[] = {"x_2",
                                       "x_1",
                                       "b_1",
                                       "c",
                                       "b_2",
                                       "chain_2",
                                       "weird_name",
                                       "v9lives",
                                       "m_1_1",
                                       "m_1_2",
                                       "m_2_1",
                                       "t_dim_0",
                                       "t_2",
                                       "mu",
                                       "mu_2",
                                       "q_0",
                                       "q_1",
                                       "s",
                                       "deep_1_1_1_1_1",
                                       "z"};

/* Names that do not form a clean row-major box become unique sanitised scalars; the reader
   still gives back the original coordinate names. */
static void test_names(void) {
    const size_t dim = sizeof odd_names / sizeof odd_names[0];
    const size_t nv = sizeof odd_vars / sizeof odd_vars[0];
    char *p = tpath("names.h5");
    hb_out_layout L = make_layout(16, 4, 4, 0, SPLIT_EVEN, odd_names, dim);
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    if (!rc) {
        rc = write_batch(o, &L, 0, 4, &err);
        CU_ASSERT_EQUAL(rc, HB_OK);
        CU_ASSERT_EQUAL(hb_h5out_close(o, &err), HB_OK);
    }
    if (g_rank == 0 && rc == HB_OK) {
        hb_h5in *f = NULL;
        CU_ASSERT_EQUAL(hb_h5in_open(&f, p, &err), HB_OK);
        if (f) {
            CU_ASSERT_EQUAL(hb_h5in_n_vars(f), nv);
            size_t col = 0, bad = 0;
            for (size_t i = 0; i < nv && i < hb_h5in_n_vars(f); i++) {
                const hb_h5in_var *v = hb_h5in_var_info(f, i);
                if (strcmp(v->name, odd_vars[i]) != 0)
                    fprintf(stderr, "var %zu: %s, expected %s\n", i, v->name, odd_vars[i]);
                CU_ASSERT_STRING_EQUAL(v->name, odd_vars[i]);
                double *x = malloc(v->n_coords * 16 * 4 * sizeof *x);
                CU_ASSERT_EQUAL(hb_h5in_read_var(f, i, 0, 16, x, &err), HB_OK);
                for (size_t k = 0; k < v->n_coords; k++, col++) {
                    char nm[160];
                    hb_h5in_coord_name(f, i, k, nm, sizeof nm);
                    CU_ASSERT_STRING_EQUAL(nm, odd_names[col]);
                    for (size_t c = 0; c < 16; c++)
                        for (size_t d = 0; d < 4; d++)
                            bad += x[(k * 16 + c) * 4 + d] != fpos(c, d, col);
                }
                free(x);
            }
            CU_ASSERT_EQUAL(col, dim);
            CU_ASSERT_EQUAL(bad, 0);
            hb_h5in_close(f);
        }
        run_python(p);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

/* abort removes a file with no committed draw and keeps one with committed draws */
static void test_abort(void) {
    char *p = tpath("abort.h5");
    hb_out_layout L = make_layout(16, 20, 10, 0, SPLIT_EVEN, std_names, STD_DIM);
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    CU_ASSERT_EQUAL(hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err), HB_OK);
    hb_h5out_abort(o);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
    MPI_Barrier(MPI_COMM_WORLD);
    o = NULL;
    CU_ASSERT_EQUAL(hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err), HB_OK);
    CU_ASSERT_EQUAL(write_batch(o, &L, 0, 10, &err), HB_OK);
    hb_h5out_abort(o);
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) CU_ASSERT_EQUAL(hbt_read_attr_int(p, "draws_committed"), 10);
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

/* writer errors are agreed: every rank returns the same code */
static void test_write_errors(void) {
    hb_out_layout L = make_layout(16, 20, 10, 0, SPLIT_EVEN, std_names, STD_DIM);
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, "/nonexistent-hb-dir/sub/out.h5", &L, &err);
    CU_ASSERT_EQUAL(rc, HB_ERR_IO);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT(all_same(rc));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot create /nonexistent-hb-dir/sub/out.h5"));
    if (g_rank == 0) printf("\n  unwritable path: %s\n", err.msg);

    /* the last rank's block is off by one: only it sees the problem, all ranks fail */
    char *p = tpath("badlayout.h5");
    if (g_rank == g_size - 1) L.chain0 += 1;
    hb_error_clear(&err);
    rc = hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err);
    CU_ASSERT_EQUAL(rc, HB_ERR_INTERNAL);
    CU_ASSERT(all_same(rc));
    CU_ASSERT(all_same((int)strlen(err.msg)));
    if (g_rank == 0) CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);

    /* draws outside the allocation, and ranks disagreeing on the batch */
    L = make_layout(16, 20, 10, 0, SPLIT_EVEN, std_names, STD_DIM);
    hb_error_clear(&err);
    rc = hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (!rc) {
        rc = write_batch(o, &L, 15, 10, &err);
        CU_ASSERT_EQUAL(rc, HB_ERR_INTERNAL);
        hb_error_clear(&err);
        rc = write_batch(o, &L, g_rank == g_size - 1 && g_size > 1 ? 10 : 0, 5, &err);
        CU_ASSERT_EQUAL(rc, g_size > 1 ? HB_ERR_INTERNAL : HB_OK);
        CU_ASSERT(all_same(rc));
        hb_error_clear(&err);
        CU_ASSERT_EQUAL(hb_h5out_close(o, &err), HB_OK);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

/* Fault injection: a file-size limit (EFBIG) makes a compressed batch write fail; every rank
   must return the same HB_ERR_IO, close, and leave the committed batches readable.
   Limitation (HDF5 1.10.8): on 1-2 ranks the failure lands in the collective H5Dwrite, which
   returns on every rank, so our agreement works. On 3+ ranks it lands in H5Fflush on the rank
   writing metadata only, and the other ranks wait inside MPI_File_sync for ever: a failure that
   HDF5 itself sees on some ranks within one collective call cannot be agreed from outside. So
   this case runs on at most 2 ranks. (Uncompressed datasets are fully allocated and filled at
   create, so a full disk is found there, before sampling.) */
static void test_write_fault(void) {
    if (g_size > 2) return;
    char *p = tpath("fault.h5");
    hb_out_layout L = make_layout(16, 40, 10, 1, SPLIT_EVEN, std_names, STD_DIM);
    hb_error err;
    hb_error_clear(&err);
    hb_h5out *o = NULL;
    int rc = hb_h5out_create(&o, MPI_COMM_WORLD, p, &L, &err);
    CU_ASSERT_EQUAL(rc, HB_OK);
    if (rc) return;
    CU_ASSERT_EQUAL(write_batch(o, &L, 0, 10, &err), HB_OK);
    struct stat st;
    long long size = 0;
    if (g_rank == 0 && stat(p, &st) == 0) size = (long long)st.st_size;
    MPI_Bcast(&size, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 4096;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    for (size_t d0 = 10; rc == HB_OK && d0 < 40; d0 += 10) rc = write_batch(o, &L, d0, 10, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    CU_ASSERT_EQUAL(rc, HB_ERR_IO);
    CU_ASSERT(all_same(rc));
    CU_ASSERT(all_same((int)strlen(err.msg)));
    if (g_rank == 0) printf("\n  %s\n", err.msg);
    hb_error_clear(&err);
    hb_h5out_close(o, &err);
    if (g_rank == 0) { /* the batches before the failed one are committed and readable */
        hb_h5in *f = NULL;
        CU_ASSERT_EQUAL(hb_h5in_open(&f, p, &err), HB_OK);
        if (f) {
            size_t n = hb_h5in_n_committed(f), bad = 0;
            CU_ASSERT(n >= 10 && n < 40 && n % 10 == 0);
            double *x = malloc(16 * 40 * sizeof *x);
            CU_ASSERT_EQUAL(hb_h5in_read_var(f, 0, 0, 16, x, &err), HB_OK);
            for (size_t c = 0; c < 16; c++)
                for (size_t d = 0; d < n; d++) bad += x[c * n + d] != fpos(c, d, 0);
            CU_ASSERT_EQUAL(bad, 0);
            free(x);
            hb_h5in_close(f);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(p);
}

static void expect_open_error(const char *path, const char *what) {
    hb_error err;
    hb_error_clear(&err);
    hb_h5in *f = (hb_h5in *)&err; /* must be reset to NULL */
    int rc = hb_h5in_open(&f, path, &err);
    CU_ASSERT_EQUAL(rc, HB_ERR_IO);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what));
    if (!strstr(err.msg, what)) fprintf(stderr, "expected '%s' in: %s\n", what, err.msg);
    printf("\n  %s", err.msg);
}

/* Make a small plain HDF5 file (serial, rank 0) with optional pieces of a run file. */
static char *make_fake(const char *name, int lib_attr, int posterior, int committed) {
    char *p = tpath(name);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR);
    if (lib_attr) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 9);
        hid_t a = H5Acreate2(f, "inference_library", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, "heartbeat");
        H5Aclose(a);
        H5Tclose(t);
    }
    if (committed) {
        int64_t v = 5;
        hid_t a = H5Acreate2(f, "draws_committed", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
    }
    if (posterior) H5Gclose(H5Gcreate2(f, "/posterior", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t n = 4;
    hid_t s1 = H5Screate_simple(1, &n, NULL);
    H5Dclose(H5Dcreate2(f, "x", H5T_IEEE_F64LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(s1);
    H5Sclose(sp);
    H5Fclose(f);
    return p;
}

/* Overwrite the first compressed chunk of /posterior/theta with garbage. */
static int corrupt_chunk(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/posterior/theta", H5P_DEFAULT);
    haddr_t addr = 0;
    hsize_t size = 0, off[3];
    unsigned mask = 0;
    hid_t fs = H5Dget_space(d);
    herr_t rc = H5Dget_chunk_info(d, fs, 0, off, &mask, &addr, &size);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
    if (rc < 0 || size < 16) return -1;
    FILE *fp = fopen(path, "r+b");
    if (!fp) return -1;
    fseek(fp, (long)addr, SEEK_SET);
    for (hsize_t i = 0; i < size; i++) fputc((int)(i * 37 % 251), fp);
    fclose(fp);
    return 0;
}

/* reader errors: clear HB_ERR_IO messages, no crash (rank 0 only) */
static void test_read_errors(void) {
    char *good = tpath("good.h5");
    int wrote = write_std(good, 16, 30, 10, 4, SPLIT_LAST, 99, NULL); /* collective */
    if (g_rank == 0) {
        char *missing = tpath("missing.h5");
        expect_open_error(missing, "No such file");
        char *txt = hbt_write_file("text.h5", "this is not HDF5\n");
        expect_open_error(txt, "not an HDF5 file");
        char *other = make_fake("other.h5", 0, 1, 1);
        expect_open_error(other, "not a heartbeat run file");
        char *nopost = make_fake("nopost.h5", 1, 0, 1);
        expect_open_error(nopost, "missing group /posterior");
        char *nocommit = make_fake("nocommit.h5", 1, 1, 0);
        expect_open_error(nocommit, "missing root attribute draws_committed");
        char *nochain = make_fake("nochain.h5", 1, 1, 1);
        expect_open_error(nochain, "missing /posterior/chain");

        /* a valid file cut in half */
        if (wrote == HB_OK) {
            char *cut = tpath("cut.h5");
            CU_ASSERT_EQUAL(hbt_sh(NULL, "s=$(stat -c %%s '%s'); head -c $((s / 2)) '%s' > '%s'",
                                   good, good, cut),
                            0);
            expect_open_error(cut, "truncated");
            /* a corrupt compressed chunk: opens, reading fails with a message */
            char *bad = tpath("corrupt.h5");
            CU_ASSERT_EQUAL(hbt_sh(NULL, "cp '%s' '%s'", good, bad), 0);
            CU_ASSERT_EQUAL(corrupt_chunk(bad), 0);
            hb_error err;
            hb_error_clear(&err);
            hb_h5in *f = NULL;
            CU_ASSERT_EQUAL(hb_h5in_open(&f, bad, &err), HB_OK);
            if (f) {
                double *x = malloc(8 * 16 * 30 * sizeof *x);
                CU_ASSERT_EQUAL(hb_h5in_read_var(f, 1, 0, 16, x, &err), HB_ERR_IO);
                CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot read /posterior/theta"));
                printf("\n  %s\n", err.msg);
                free(x);
                hb_h5in_close(f);
            }
            free(cut);
            free(bad);
        }
        free(missing);
        free(txt);
        free(other);
        free(nopost);
        free(nocommit);
        free(nochain);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    free(good);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_rank == 0) snprintf(g_dir, sizeof g_dir, "%s", hbt_tmpdir());
    MPI_Bcast(g_dir, sizeof g_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    static const hbt_case cases[] = {
        {"round trip, no compression, even split", test_roundtrip_plain},
        {"round trip, deflate, all chains on the last rank", test_roundtrip_deflate},
        {"partial and interrupted files", test_partial},
        {"no fill pass", test_no_fill},
        {"coordinate names: grouping and fallback", test_names},
        {"abort removes an empty file only", test_abort},
        {"writer errors agreed over ranks", test_write_errors},
        {"failed writes (file size limit) agreed over ranks", test_write_fault},
        {"reader errors", test_read_errors},
        {"python readers", test_python_readers},
    };
    int rc = hbt_run_suite("h5out", cases, sizeof cases / sizeof cases[0]);
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (g_rank == 0 && rc == 0 && !getenv("HB_KEEP_TMP")) hbt_sh(NULL, "rm -rf '%s'", g_dir);
    if (g_rank == 0 && (rc != 0 || getenv("HB_KEEP_TMP"))) printf("files kept in %s\n", g_dir);
    MPI_Finalize();
    return rc;
}
