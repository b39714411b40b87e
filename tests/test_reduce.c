/* Reductions over chain blocks give the same bits for any split over ranks (run under
 * mpirun with 1, 2 and 4 ranks), and the moments merge matches a two-pass variance. */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "core/reduce.h"
#include "core/rng.h"
#include "hbtest.h"

static int g_rank, g_size;

/* Partial of block b: k values with wildly different magnitudes, so that a different
   summation order would change the bits. */
static void block_partial(size_t b, size_t k, double *out) {
    double z[64];
    hb_rng_normals(11, b, 0, HB_RNG_TEST, k, z);
    for (size_t i = 0; i < k; i++) out[i] = z[i] * pow(10.0, (double)((b * 7 + i) % 17) - 8);
}

/* Reduce n_total blocks split over ranks at the given cut points (fractions), and also on
   this rank alone; compare bits. */
static void check_split(size_t n_total, size_t k, int uneven) {
    size_t b0, b1;
    if (uneven) {
        /* rank r gets a share growing with r; rank 0 may get nothing */
        size_t tot = (size_t)g_size * (size_t)(g_size + 1) / 2;
        size_t before = (size_t)g_rank * (size_t)(g_rank + 1) / 2;
        b0 = n_total * before / tot;
        b1 = n_total * (before + (size_t)g_rank + 1) / tot;
    } else {
        b0 = (size_t)g_rank * n_total / (size_t)g_size;
        b1 = (size_t)(g_rank + 1) * n_total / (size_t)g_size;
    }
    double *local = malloc(((b1 - b0) * k + 1) * sizeof *local);
    double *all = malloc(n_total * k * sizeof *all);
    for (size_t b = b0; b < b1; b++) block_partial(b, k, local + (b - b0) * k);
    for (size_t b = 0; b < n_total; b++) block_partial(b, k, all + b * k);
    double got[64], want[64];
    CU_ASSERT_EQUAL(
        hb_tree_reduce(MPI_COMM_WORLD, local, b0, b1 - b0, n_total, k, hb_combine_sum, NULL, got),
        HB_OK);
    CU_ASSERT_EQUAL(
        hb_tree_reduce(MPI_COMM_SELF, all, 0, n_total, n_total, k, hb_combine_sum, NULL, want),
        HB_OK);
    CU_ASSERT_EQUAL(memcmp(got, want, k * sizeof *got), 0);
    /* The sum is close to the plain sum (it is a sum, just in tree order). */
    for (size_t i = 0; i < k; i++) {
        double s = 0, a = 0;
        for (size_t b = 0; b < n_total; b++) {
            s += all[b * k + i];
            a += fabs(all[b * k + i]);
        }
        CU_ASSERT(fabs(s - got[i]) <= 1e-13 * a);
    }
    free(local);
    free(all);
}

static void test_sum_any_split(void) {
    size_t sizes[] = {1, 2, 3, 5, 8, 17, 64, 100, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (int uneven = 0; uneven < 2; uneven++) check_split(sizes[i], 3, uneven);
}

/* Moments: per-block Welford of points, tree-merged, equal a two-pass mean/variance and are
   split-invariant. */
static void test_moments(void) {
    enum { D = 3, PTS = 5 };
    size_t n_total = 37, k = 1 + 2 * D;
    size_t b0 = (size_t)g_rank * n_total / (size_t)g_size,
           b1 = (size_t)(g_rank + 1) * n_total / (size_t)g_size;
    double *loc = calloc((b1 - b0) * k + 1, sizeof *loc), *all = calloc(n_total * k, sizeof *all);
    double x[D * PTS], sum[D] = {0}, sum2[D] = {0};
    for (size_t b = 0; b < n_total; b++) {
        hb_rng_normals(5, b, 0, HB_RNG_TEST, D * PTS, x);
        for (int p = 0; p < PTS; p++) {
            for (int i = 0; i < D; i++) x[p * D + i] = 1e6 + x[p * D + i] * (i + 1);
            hb_moments_add(all + b * k, D, x + p * D, 1);
            if (b >= b0 && b < b1) hb_moments_add(loc + (b - b0) * k, D, x + p * D, 1);
            for (int i = 0; i < D; i++) sum[i] += x[p * D + i];
        }
    }
    double n = (double)(n_total * PTS);
    for (size_t b = 0; b < n_total; b++) {
        hb_rng_normals(5, b, 0, HB_RNG_TEST, D * PTS, x);
        for (int p = 0; p < PTS; p++)
            for (int i = 0; i < D; i++) {
                double v = 1e6 + x[p * D + i] * (i + 1) - sum[i] / n;
                sum2[i] += v * v;
            }
    }
    double got[1 + 2 * D], want[1 + 2 * D];
    hb_tree_reduce(MPI_COMM_WORLD, loc, b0, b1 - b0, n_total, k, hb_combine_moments, NULL, got);
    hb_tree_reduce(MPI_COMM_SELF, all, 0, n_total, n_total, k, hb_combine_moments, NULL, want);
    CU_ASSERT_EQUAL(memcmp(got, want, sizeof got), 0);
    CU_ASSERT_EQUAL(got[0], n);
    for (int i = 0; i < D; i++) {
        CU_ASSERT_DOUBLE_EQUAL(got[1 + i], sum[i] / n, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(got[1 + D + i] / sum2[i], 1.0, 1e-9);
        /* variance of normal * (i+1): close to (i+1)^2 */
        double var = got[1 + D + i] / (n - 1);
        CU_ASSERT(fabs(var / ((i + 1.0) * (i + 1.0)) - 1) < 0.3);
    }
    free(loc);
    free(all);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    static const hbt_case cases[] = {
        {"sum: same bits for any split", test_sum_any_split},
        {"moments: merge and split invariance", test_moments},
    };
    int rc = hbt_run_suite("reduce", cases, sizeof cases / sizeof *cases);
    int worst = 0;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
