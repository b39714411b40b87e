/* Gradient evaluations per second on one core of any model a config's [model] section names
 * (built-in with its data file, or a plugin), through the two entries samplers use:
 * hb_model_eval_one (one chain, as NUTS calls it) and hb_model_eval_lanes (a SIMD batch of
 * HB_LANES chains). bench/stan/compare.py uses it for the models bench_grad does not cover
 * (the 100-d Gaussian) and for the logistic data file Stan reads.
 * Usage: grad_rate CONFIG.ini [seconds per measurement]   -> one JSON line on stdout */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "io/config.h"
#include "models/models.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile double sink;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: grad_rate CONFIG.ini [seconds]\n");
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    hb_config *cfg;
    hb_error err;
    hb_error_clear(&err);
    hb_model m;
    if (hb_config_load(&cfg, argv[1], &err) != HB_OK || hb_model_open(&m, cfg, &err) != HB_OK) {
        fprintf(stderr, "grad_rate: %s\n", err.msg);
        return 3;
    }
    size_t D = m.dim;
    /* Points: 0.1 z with z standard normal, one per lane (the cost does not depend on them
       for these models; the batch entry gets HB_LANES different points). */
    double *x = malloc(D * HB_LANES * sizeof *x), *g = malloc(D * HB_LANES * sizeof *g);
    double *x1 = malloc(D * sizeof *x1), *ws = malloc(2 * D * sizeof *ws), lp[HB_LANES];
    hb_rng_normals(7, 0, 0, HB_RNG_TEST, D * HB_LANES, x);
    for (size_t i = 0; i < D * HB_LANES; i++) x[i] *= 0.1;
    for (size_t i = 0; i < D; i++) x1[i] = x[i * HB_LANES];

    size_t calls = 0;
    double t0 = now(), t1;
    do {
        for (int r = 0; r < 8; r++) {
            x1[0] = x[0] + 1e-9 * r;
            sink += hb_model_eval_one(&m, x1, g);
        }
        calls += 8;
    } while ((t1 = now() - t0) < secs);
    double one = (double)calls / t1;

    calls = 0;
    t0 = now();
    do {
        for (int r = 0; r < 8; r++) {
            hb_model_eval_lanes(&m, x, lp, g, ws);
            sink += lp[0];
        }
        calls += 8;
    } while ((t1 = now() - t0) < secs);
    double batch = (double)(calls * HB_LANES) / t1;

    printf("{\"model\": \"%s\", \"dim\": %zu, \"grads_per_s_one_chain\": %.6g, "
           "\"grads_per_s_batch\": %.6g, \"lanes\": %d}\n",
           m.name, D, one, batch, HB_LANES);
    free(x);
    free(g);
    free(x1);
    free(ws);
    hb_model_close(&m);
    hb_config_free(cfg);
    return 0;
}
