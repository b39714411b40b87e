/* The posteriordb target gp_pois_regr-gp_regr: Gaussian-process regression through its
 * marginal likelihood; Cholesky, solves and the explicit inverse run for all chains of a
 * batch at once (structure of arrays, lanes innermost). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/data.h"
#include "models/data_models.h"
#include "models/target_util.h"

typedef struct gp_regr {
    hb_mhead h;
    size_t N;
    double *y;
    double *dx2; /* N x N, (x_i - x_j)^2 */
} gp_regr;

static void gp_destroy(void *model) {
    gp_regr *m = model;
    if (!m) return;
    hb_mhead_free(&m->h);
    free(m->y);
    free(m->dx2);
    free(m);
}

static int gp_constrain(const void *model, const double *x, double *out) {
    (void)model;
    for (int i = 0; i < 3; i++) out[i] = exp(x[i]);
    return isfinite(out[0]) && isfinite(out[1]) && isfinite(out[2]) ? 0 : 1;
}

/* Matrices are N x N x L: element (i, j) of lane c at [(i*N + j)*L + c]. */
static HB_ALWAYS_INLINE void gp_kernel(const gp_regr *m, size_t L, size_t ld, const double *x,
                                       double *lp, double *g) {
    const size_t N = m->N, NN = N * N;
    double *E = malloc((3 * NN + 2 * N) * L * sizeof *E);
    if (!E) abort();
    double *C = E + NN * L, *Li = C + NN * L, *v = Li + NN * L, *ldg = v + N * L;
    double rho[HB_LANES], al[HB_LANES], sg[HB_LANES], ir2[HB_LANES], t[HB_LANES];
    double logdet[HB_LANES], yv[HB_LANES], grho[HB_LANES], gal[HB_LANES], gsg[HB_LANES];
    hb_lanes_exp(rho, x, L);
    hb_lanes_exp(al, x + ld, L);
    hb_lanes_exp(sg, x + 2 * ld, L);
    HB_LANES_FOR(c, L) ir2[c] = -0.5 / (rho[c] * rho[c]);
    /* E and S = alpha^2 E + sigma I (S goes into C, then is factored in place). */
    for (size_t i = 0; i < N; i++) {
        HB_LANES_FOR(c, L) E[(i * N + i) * L + c] = 1.0;
        for (size_t j = 0; j < i; j++) {
            double d2 = m->dx2[i * N + j];
            HB_LANES_FOR(c, L) t[c] = d2 * ir2[c];
            hb_lanes_exp(E + (i * N + j) * L, t, L);
            memcpy(E + (j * N + i) * L, E + (i * N + j) * L, L * sizeof *E);
        }
    }
    for (size_t k = 0; k < NN; k++) HB_LANES_FOR(c, L) C[k * L + c] = al[c] * al[c] * E[k * L + c];
    for (size_t i = 0; i < N; i++) HB_LANES_FOR(c, L) C[(i * N + i) * L + c] += sg[c];
    /* Cholesky, lower triangle of C. */
    for (size_t j = 0; j < N; j++) {
        double *cjj = C + (j * N + j) * L;
        for (size_t k = 0; k < j; k++) HB_LANES_FOR(c, L) {
                double l = C[(j * N + k) * L + c];
                cjj[c] -= l * l;
            }
        HB_LANES_FOR(c, L) cjj[c] = sqrt(cjj[c]);
        for (size_t i = j + 1; i < N; i++) {
            double *cij = C + (i * N + j) * L;
            for (size_t k = 0; k < j; k++) HB_LANES_FOR(c, L)
            cij[c] -= C[(i * N + k) * L + c] * C[(j * N + k) * L + c];
            HB_LANES_FOR(c, L) cij[c] /= cjj[c];
        }
    }
    HB_LANES_FOR(c, L) logdet[c] = 0.0;
    for (size_t j = 0; j < N; j++) {
        hb_lanes_log(ldg + j * L, C + (j * N + j) * L, L);
        HB_LANES_FOR(c, L) logdet[c] += 2.0 * ldg[j * L + c];
    }
    /* v = S^-1 y: forward then backward substitution. */
    for (size_t i = 0; i < N; i++) {
        HB_LANES_FOR(c, L) t[c] = m->y[i];
        for (size_t k = 0; k < i; k++)
            HB_LANES_FOR(c, L) t[c] -= C[(i * N + k) * L + c] * v[k * L + c];
        HB_LANES_FOR(c, L) v[i * L + c] = t[c] / C[(i * N + i) * L + c];
    }
    for (size_t i = N; i-- > 0;) {
        HB_LANES_FOR(c, L) t[c] = v[i * L + c];
        for (size_t k = i + 1; k < N; k++)
            HB_LANES_FOR(c, L) t[c] -= C[(k * N + i) * L + c] * v[k * L + c];
        HB_LANES_FOR(c, L) v[i * L + c] = t[c] / C[(i * N + i) * L + c];
    }
    /* Li = L^-1 (lower triangular). */
    for (size_t j = 0; j < N; j++) {
        HB_LANES_FOR(c, L) Li[(j * N + j) * L + c] = 1.0 / C[(j * N + j) * L + c];
        for (size_t i = j + 1; i < N; i++) {
            HB_LANES_FOR(c, L) t[c] = 0.0;
            for (size_t k = j; k < i; k++) HB_LANES_FOR(c, L)
            t[c] += C[(i * N + k) * L + c] * Li[(k * N + j) * L + c];
            HB_LANES_FOR(c, L) Li[(i * N + j) * L + c] = -t[c] / C[(i * N + i) * L + c];
        }
    }
    HB_LANES_FOR(c, L) grho[c] = gal[c] = gsg[c] = yv[c] = 0.0;
    for (size_t i = 0; i < N; i++) HB_LANES_FOR(c, L) yv[c] += m->y[i] * v[i * L + c];
    /* W = v v^T - S^-1 with S^-1 = Li^T Li; d loglik/dt = 1/2 sum_ij W_ij dS_ij/dt, summed
       over i >= j with the off-diagonal pairs counted twice. */
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j <= i; j++) {
            double d2 = m->dx2[i * N + j], w2 = i == j ? 0.5 : 1.0;
            HB_LANES_FOR(c, L) t[c] = 0.0;
            for (size_t k = i; k < N; k++) HB_LANES_FOR(c, L)
            t[c] += Li[(k * N + i) * L + c] * Li[(k * N + j) * L + c];
            HB_LANES_FOR(c, L) {
                double w = (v[i * L + c] * v[j * L + c] - t[c]) * w2;
                double e = E[(i * N + j) * L + c];
                grho[c] += w * e * d2;
                gal[c] += w * e;
                if (i == j) gsg[c] += w;
            }
        }
    HB_LANES_FOR(c, L) {
        double r = rho[c], a = al[c], s = sg[c];
        /* grho holds sum W E d2 (half-sum over pairs), times alpha^2/rho^3 */
        double dl_rho = grho[c] * a * a / (r * r * r), dl_al = 2.0 * a * gal[c], dl_sg = gsg[c];
        lp[c] = 24.0 * x[c] - 4.0 * r - a * a / 8.0 - s * s / 2.0 - 0.5 * yv[c] - 0.5 * logdet[c] +
                x[c] + x[ld + c] + x[2 * ld + c];
        g[c] = r * dl_rho + 24.0 - 4.0 * r + 1.0;
        g[ld + c] = a * (dl_al - a / 4.0) + 1.0;
        g[2 * ld + c] = s * (dl_sg - s) + 1.0;
    }
    free(E);
}

HB_LANE_MODEL_ENTRIES(gp_regr, gp_kernel)

static int gp_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t N;
    size_t n1, n2;
    const double *x, *y;
    if ((rc = hb_data_int(d, "N", 1, 2000, &N, err)) != HB_OK) goto done;
    n1 = n2 = (size_t)N;
    if ((rc = hb_data_vector(d, "x", &n1, &x, err)) != HB_OK ||
        (rc = hb_data_vector(d, "y", &n2, &y, err)) != HB_OK)
        goto done;
    gp_regr *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->N = n1;
    m->y = malloc(n1 * sizeof *m->y);
    m->dx2 = malloc(n1 * n1 * sizeof *m->dx2);
    if (!m->y || !m->dx2) abort();
    for (size_t i = 0; i < n1; i++) {
        m->y[i] = y[i];
        for (size_t j = 0; j < n1; j++) m->dx2[i * n1 + j] = (x[i] - x[j]) * (x[i] - x[j]);
    }
    hb_mhead_init(&m->h, 3, 3);
    m->h.constrain = gp_constrain;
    static const char *const names[] = {"rho", "alpha", "sigma"};
    for (size_t i = 0; i < 3; i++) {
        hb_mhead_name(&m->h.coord[i], "log(%s)", names[i]);
        hb_mhead_name(&m->h.out[i], "%s", names[i]);
    }
    *impl = m;
done:
    hb_data_close(d);
    return rc;
}

HB_LANE_MODEL_VTABLE(gp_vt, "gp_pois_regr-gp_regr", gp_kernel, gp_destroy);

const hb_builtin_model hb_builtin_gp_regr = {
    "gp_pois_regr-gp_regr",
    "posteriordb gp_regr: Gaussian-process regression, marginal likelihood (dim 3)",
    "data = (required) ; CmdStan JSON or HDF5, e.g. "
    "$HB_SHARED_DIR/targets/gp_pois_regr-gp_regr/data.json\n",
    gp_create, &gp_vt};
