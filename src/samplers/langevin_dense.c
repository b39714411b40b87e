/* The MALA/ULA kernel with a dense metric M = Lc Lc^T (ALGORITHMS.md §1-2 with the
 * preconditioner written out): y = x + h M g(x) + sqrt(2h) Lc xi, and the acceptance
 * log q(x|y) - log q(y|x) = -1/2 (y-x).(g(x)+g(y)) - h/4 (g(y)'M g(y) - g(x)'M g(x)),
 * where g'M g = |Lc' g|^2. Same random streams as the diagonal kernel. */
#include <math.h>

#include "adapt/dense.h"
#include "core/rng.h"
#include "core/vmath.h"
#include "samplers/basic.h"

enum { L = HB_LANES };

size_t hb_langevin_dense_workspace(size_t dim) {
    size_t dense = 5 * dim * L + 4 * L + 2 * dim, diag = hb_langevin_workspace(dim);
    return dense > diag ? dense : diag;
}

static void sq_norm(size_t d, const double *w, double *out) {
    for (int c = 0; c < L; c++) out[c] = 0;
    for (size_t i = 0; i < d; i++)
#pragma omp simd
        for (int c = 0; c < L; c++) out[c] += w[i * L + c] * w[i * L + c];
}

void hb_langevin_step_dense(const hb_step_ctx *ctx, const hb_basic *s, int adjusted, hb_batch *b,
                            double *ws, hb_step_out *out) {
    if (!s->dense_active) {
        hb_langevin_step(ctx, s, adjusted, b, ws, out);
        return;
    }
    const size_t d = ctx->dim;
    const double h = s->h, noise_sd = sqrt(2.0 * h);
    double *xi = ws, *z = xi + d * L, *w = z + d * L, *y = w + d * L, *gy = y + d * L;
    double *lpy = gy + d * L, *u = lpy + L, *acc = u + L, *tmp = acc + L;
    double *model_ws = tmp + L;
    double gmg_x[L], gmg_y[L], dot[L];

    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, xi);
    hb_lanes_lower_mul(s->Lc, d, xi, z);     /* z = Lc xi */
    hb_lanes_lower_mul_t(s->Lc, d, b->g, w); /* w = Lc' g(x) */
    sq_norm(d, w, gmg_x);
    hb_lanes_lower_mul(s->Lc, d, w, y); /* y = M g(x), then the proposal in place */
    for (size_t i = 0; i < d * L; i++) y[i] = b->x[i] + h * y[i] + noise_sd * z[i];
    hb_model_eval_lanes(ctx->model, y, lpy, gy, model_ws);
    /* no gauge: acceptance 1 for a move, 0 for a proposal kept, and neither Lc' g(y) (a
       quarter of the step's O(d^2) work) nor the dot product */
    const int no_gauge = hb_langevin_no_gauge(ctx, s, adjusted);
    for (int c = 0; c < L; c++) dot[c] = gmg_y[c] = 0;
    if (!no_gauge) {
        hb_lanes_lower_mul_t(s->Lc, d, gy, w);
        sq_norm(d, w, gmg_y);
    }
    for (size_t i = 0; !no_gauge && i < d; i++) {
        const double *x_i = b->x + i * L, *g_i = b->g + i * L, *y_i = y + i * L, *gy_i = gy + i * L;
#pragma omp simd
        for (int c = 0; c < L; c++) dot[c] += (y_i[c] - x_i[c]) * (g_i[c] + gy_i[c]);
    }
    if (adjusted) hb_rng_uniforms_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_ACCEPT, 1, u);
    for (int c = 0; c < L; c++) {
        double delta = lpy[c] - b->lp[c] - 0.5 * dot[c] - 0.25 * h * (gmg_y[c] - gmg_x[c]);
        if (!isfinite(lpy[c]) || !isfinite(delta)) delta = -INFINITY;
        tmp[c] = delta < 0 ? delta : 0;
        out->stats[HB_BASIC_DIVERGING * L + c] = !isfinite(lpy[c]) || b->lp[c] - lpy[c] > 1000.0;
        out->n_grad[c] = 1;
    }
    hb_vexp(acc, tmp);
    if (no_gauge)
        for (int c = 0; c < L; c++) acc[c] = isfinite(lpy[c]) ? 1.0 : 0.0;
    double sum_acc = 0;
    for (int c = 0; c < L; c++) {
        /* Adjusted: accept iff u < exp(min(delta, 0)); unadjusted: every finite proposal. */
        const int take = adjusted ? u[c] < acc[c] : isfinite(lpy[c]);
        if (take) {
            for (size_t i = 0; i < d; i++) {
                b->x[i * L + c] = y[i * L + c];
                b->g[i * L + c] = gy[i * L + c];
            }
            b->lp[c] = lpy[c];
        }
        out->stats[HB_BASIC_LP * L + c] = b->lp[c];
        out->stats[HB_BASIC_ACCEPT * L + c] = acc[c];
        out->stats[HB_BASIC_STEP * L + c] = h;
        if (c < b->n_real) sum_acc += acc[c];
    }
    if (out->red) {
        out->red[0] = sum_acc;
        out->red[1] = b->n_real;
    }
}
