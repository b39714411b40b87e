/* The posteriordb target low_dim_gauss_mix-low_dim_gauss_mix: a two-component normal
 * mixture with ordered means; one pass over the data serves all chains of a batch. */
#include <math.h>
#include <stdlib.h>

#include "io/data.h"
#include "models/data_models.h"
#include "models/target_util.h"

typedef struct gauss_mix {
    hb_mhead h;
    size_t N;
    double *y;
} gauss_mix;

static void gm_destroy(void *model) {
    gauss_mix *m = model;
    if (!m) return;
    hb_mhead_free(&m->h);
    free(m->y);
    free(m);
}

static int gm_constrain(const void *model, const double *x, double *out) {
    (void)model;
    out[0] = x[0];
    out[1] = x[0] + exp(x[1]);
    out[2] = exp(x[2]);
    out[3] = exp(x[3]);
    out[4] = x[4] >= 0 ? 1.0 / (1.0 + exp(-x[4])) : exp(x[4]) / (1.0 + exp(x[4]));
    return isfinite(out[1]) && isfinite(out[2]) && isfinite(out[3]) ? 0 : 1;
}

/* Products of up to this many factors in [1, 2] stay finite; log1p(e) summed as the log of
   their product costs one logarithm per block instead of one per observation. */
#define GM_BLOCK 64

static HB_ALWAYS_INLINE void gm_kernel(const gauss_mix *m, size_t L, size_t ld, const double *x,
                                       double *lp, double *g) {
    double mu1[HB_LANES], mu2[HB_LANES], d12[HB_LANES], s1[HB_LANES], s2[HB_LANES], is1[HB_LANES],
        is2[HB_LANES];
    double e4[HB_LANES], l4[HB_LANES], th[HB_LANES], omth[HB_LANES], c1[HB_LANES], c2[HB_LANES],
        t[HB_LANES];
    double sw1[HB_LANES], sw1a[HB_LANES], sw1aa[HB_LANES], sw2a[HB_LANES], sw2aa[HB_LANES],
        acc[HB_LANES], prod[HB_LANES], lg[HB_LANES], e[HB_LANES];
    hb_lanes_exp(d12, x + ld, L);
    hb_lanes_exp(s1, x + 2 * ld, L);
    hb_lanes_exp(s2, x + 3 * ld, L);
    HB_LANES_FOR(c, L) t[c] = -fabs(x[4 * ld + c]);
    hb_lanes_exp(e4, t, L);
    hb_lanes_log1p(l4, e4, L);
    HB_LANES_FOR(c, L) {
        double u4 = x[4 * ld + c], i4 = 1.0 / (1.0 + e4[c]);
        mu1[c] = x[c];
        mu2[c] = mu1[c] + d12[c];
        is1[c] = 1.0 / s1[c];
        is2[c] = 1.0 / s2[c];
        th[c] = u4 >= 0 ? i4 : e4[c] * i4;
        omth[c] = u4 >= 0 ? e4[c] * i4 : i4;
        double lth = (u4 < 0.0 ? u4 : 0.0) - l4[c], lomth = -(u4 > 0.0 ? u4 : 0.0) - l4[c];
        /* constant parts of the two log components */
        c1[c] = lth - x[2 * ld + c];
        c2[c] = lomth - x[3 * ld + c];
        /* priors and log|J| */
        lp[c] = -(mu1[c] * mu1[c] + mu2[c] * mu2[c] + s1[c] * s1[c] + s2[c] * s2[c]) / 8.0 +
                5.0 * (lth + lomth) + x[ld + c] + x[2 * ld + c] + x[3 * ld + c];
        sw1[c] = sw1a[c] = sw1aa[c] = sw2a[c] = sw2aa[c] = acc[c] = 0.0;
        prod[c] = 1.0;
    }
    for (size_t n0 = 0; n0 < m->N; n0 += GM_BLOCK) {
        size_t n1 = n0 + GM_BLOCK < m->N ? n0 + GM_BLOCK : m->N;
        for (size_t n = n0; n < n1; n++) {
            double yn = m->y[n];
            double a1[HB_LANES], a2[HB_LANES], dl[HB_LANES];
            HB_LANES_FOR(c, L) {
                a1[c] = (yn - mu1[c]) * is1[c];
                a2[c] = (yn - mu2[c]) * is2[c];
                double l1 = c1[c] - 0.5 * a1[c] * a1[c], l2 = c2[c] - 0.5 * a2[c] * a2[c];
                dl[c] = l1 - l2;
                acc[c] += (l1 > l2 ? l1 : l2);
                t[c] = -fabs(dl[c]);
            }
            hb_lanes_exp(e, t, L);
            HB_LANES_FOR(c, L) {
                double op = 1.0 + e[c], ip = 1.0 / op;
                double w1 = dl[c] >= 0 ? ip : e[c] * ip, w2 = dl[c] >= 0 ? e[c] * ip : ip;
                prod[c] *= op;
                sw1[c] += w1;
                sw1a[c] += w1 * a1[c];
                sw1aa[c] += w1 * a1[c] * a1[c];
                sw2a[c] += w2 * a2[c];
                sw2aa[c] += w2 * a2[c] * a2[c];
            }
        }
        hb_lanes_log(lg, prod, L);
        HB_LANES_FOR(c, L) {
            acc[c] += lg[c];
            prod[c] = 1.0;
        }
    }
    const double N = (double)m->N;
    HB_LANES_FOR(c, L) {
        double sw2 = N - sw1[c];
        double gmu1 = sw1a[c] * is1[c] - mu1[c] / 4.0, gmu2 = sw2a[c] * is2[c] - mu2[c] / 4.0;
        double gs1 = (sw1aa[c] - sw1[c]) * is1[c] - s1[c] / 4.0;
        double gs2 = (sw2aa[c] - sw2) * is2[c] - s2[c] / 4.0;
        lp[c] += acc[c];
        g[c] = gmu1 + gmu2;
        g[ld + c] = gmu2 * d12[c] + 1.0;
        g[2 * ld + c] = gs1 * s1[c] + 1.0;
        g[3 * ld + c] = gs2 * s2[c] + 1.0;
        /* G_theta theta (1 - theta) + (1 - 2 theta), Beta(5,5) prior included */
        g[4 * ld + c] = (sw1[c] + 5.0) * omth[c] - (sw2 + 5.0) * th[c];
    }
}

HB_LANE_MODEL_ENTRIES(gauss_mix, gm_kernel)

static int gm_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t N;
    size_t n;
    const double *y;
    if ((rc = hb_data_int(d, "N", 1, INT32_MAX, &N, err)) != HB_OK) goto done;
    n = (size_t)N;
    if ((rc = hb_data_vector(d, "y", &n, &y, err)) != HB_OK) goto done;
    gauss_mix *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->N = n;
    m->y = malloc(n * sizeof *m->y);
    if (!m->y) abort();
    for (size_t k = 0; k < n; k++) m->y[k] = y[k];
    hb_mhead_init(&m->h, 5, 5);
    m->h.constrain = gm_constrain;
    static const char *const coord[] = {"mu[1]", "log(mu[2]-mu[1])", "log(sigma[1])",
                                        "log(sigma[2])", "logit(theta)"};
    static const char *const out[] = {"mu[1]", "mu[2]", "sigma[1]", "sigma[2]", "theta"};
    for (size_t i = 0; i < 5; i++) {
        hb_mhead_name(&m->h.coord[i], "%s", coord[i]);
        hb_mhead_name(&m->h.out[i], "%s", out[i]);
    }
    *impl = m;
done:
    hb_data_close(d);
    return rc;
}

HB_LANE_MODEL_VTABLE(gm_vt, "low_dim_gauss_mix-low_dim_gauss_mix", gm_kernel, gm_destroy);

const hb_builtin_model hb_builtin_gauss_mix = {
    "low_dim_gauss_mix-low_dim_gauss_mix",
    "posteriordb two-component normal mixture, ordered means, N = 1000 (dim 5)",
    "data = (required) ; CmdStan JSON or HDF5, e.g. "
    "$HB_SHARED_DIR/targets/low_dim_gauss_mix-low_dim_gauss_mix/data.json\n",
    gm_create, &gm_vt};
