/* The pieces of one random-walk Metropolis step on the 1-D mixture, each timed alone on one
 * core, for the seed benchmark's floor: what a draw costs at least with Philox4x32-10 blocks,
 * Box-Muller normals and double-precision exp/log. Each piece runs over the same shape as the
 * sampler (a group of HB_STEP_GROUP batches of HB_LANES chains, one variate per chain and
 * iteration), best of 5 repetitions (the machine is shared). Usage: bench_kernels [iterations] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "core/vmath.h"
#include "io/config.h"
#include "models/models.h"
#include "samplers/sampler.h"

enum { NL = HB_STEP_GROUP * HB_LANES }; /* chains per call, as rwmh's step_group */

static double best_of(double (*f)(long, double *), long iters, double *sink) {
    double best = INFINITY;
    for (int r = 0; r < 5; r++) {
        const double t0 = omp_get_wtime();
        *sink += f(iters, sink);
        const double t = omp_get_wtime() - t0;
        if (t < best) best = t;
    }
    return best / ((double)iters * NL) * 1e9; /* ns per chain-iteration */
}

/* The proposal the way rwmh draws it in 1-d: y = x + s z and the Metropolis uniform, one Philox
   block per chain for two iterations (hb_rng_walk_pair_wide: two normals from one log and one
   sincos, two uniforms), i.e. per iteration half a call plus the fma. */
static double walk(long iters, double *sink) {
    enum { NV = NL / HB_LANES };
    double x[NL], y[NL], u[NL], zk[NL], uk[NL], s = 0;
    const double *xv[NV];
    double *zkv[NV], *ukv[NV];
    for (int c = 0; c < NL; c++) x[c] = 0.01 * c;
    for (int v = 0; v < NV; v++)
        xv[v] = x + v * HB_LANES, zkv[v] = zk + v * HB_LANES, ukv[v] = uk + v * HB_LANES;
    for (long it = 0; it < iters; it += 2) {
        const hb_walk_pair p = {
            .half = 0, .xv = xv, .s = 0.1, .y = y, .u = u, .zk = zkv, .uk = ukv};
        hb_rng_walk_pair_wide(1, (uint64_t)it * NL, NL, (uint64_t)it / 2, HB_RNG_WALK_PAIR, &p);
        s += y[3] + u[5];
        /* the odd iteration: y = x + s z from the kept half */
#pragma omp simd
        for (int c = 0; c < NL; c++) y[c] = fma(0.1, zk[c], x[c]);
        __asm__ volatile("" : : "r"(y) : "memory");
        s += y[3] + uk[5];
    }
    (void)sink;
    return s;
}

static double exps(long iters, double *sink) {
    double x[NL], s = 0;
    for (int c = 0; c < NL; c++) x[c] = -0.01 * c;
    for (long it = 0; it < iters; it++) {
        for (int c = 0; c < NL; c += HB_LANES) {
#ifdef HB_VMATH_AVX512
            _mm512_storeu_pd(x + c, hb_exp8_t16s(_mm512_mul_pd(_mm512_loadu_pd(x + c),
                                                               _mm512_set1_pd(16 * HB_LOG2E))));
            /* (as rwmh) */
#else
            hb_vexp_ih(x + c, x + c);
#endif
        }
        __asm__ volatile("" : : "r"(x) : "memory"); /* every exp is kept, not just x[7] */
        s += x[7];
        for (int c = 0; c < NL; c++) x[c] = -0.01 * c - 1e-9 * (double)it;
    }
    (void)sink;
    return s;
}

static const hb_model *mix;
static double mixture(long iters, double *sink) {
    double x[NL], lp[NL], g[NL], ws[64], s = 0;
    for (int c = 0; c < NL; c++) x[c] = -3 + 0.2 * c;
    for (long it = 0; it < iters; it++) {
        hb_model_eval_logp_wide(mix, NL, x, lp, g, ws);
        s += lp[9];
        x[0] += 1e-12;
    }
    (void)sink;
    return s;
}

int main(int argc, char **argv) {
    const long iters = argc > 1 ? atol(argv[1]) : 200000;
    hb_model m;
    hb_error err = {0};
    hb_config *cfg = NULL;
    if (hb_config_load_string(&cfg, "bench", "[model]\nname = mixture\n", &err) ||
        hb_model_open(&m, cfg, &err)) {
        fprintf(stderr, "bench_kernels: %s\n", err.msg);
        return 3;
    }
    mix = &m;
    double sink = 0;
    const double tn = best_of(walk, iters, &sink);
    const double te = best_of(exps, iters, &sink), tm = best_of(mixture, iters, &sink);
    printf("ns per chain and iteration, one core (1-D, groups of %d chains):\n", NL);
    printf("  proposal: half a Philox block, half a Box-Muller pair, x + s z, a uniform %.3f\n",
           tn);
    printf("  exp (acceptance probability)             %.3f\n", te);
    printf("  mixture log density alone (4 exp, log, sanitising) %.3f\n", tm);
    const double sum = tn + te + tm;
    printf("  sum %.3f ns: 10^9 draws on %d cores take at least %.2f s [sink %g]\n", sum,
           omp_get_num_procs(), sum * 1e9 * 1e-9 / omp_get_num_procs(), sink);
    hb_model_close(&m);
    hb_config_free(cfg);
    return 0;
}
