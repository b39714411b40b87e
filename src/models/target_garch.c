/* The posteriordb target garch-garch11: GARCH(1,1) with flat priors; the gradient is carried
 * forward through the volatility recursion, all chains of a batch in step. */
#include <math.h>
#include <stdlib.h>

#include "io/data.h"
#include "models/data_models.h"
#include "models/target_util.h"

typedef struct garch {
    hb_mhead h;
    size_t T;
    double *y;
    double h1; /* sigma1^2 */
} garch;

static void garch_destroy(void *model) {
    garch *m = model;
    if (!m) return;
    hb_mhead_free(&m->h);
    free(m->y);
    free(m);
}

static double logistic(double v) {
    return v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
}

static int garch_constrain(const void *model, const double *x, double *out) {
    (void)model;
    double a1 = logistic(x[2]);
    out[0] = x[0];
    out[1] = exp(x[1]);
    out[2] = a1;
    out[3] = logistic(-x[2]) * logistic(x[3]); /* (1 - alpha1) s */
    return isfinite(out[1]) ? 0 : 1;
}

static HB_ALWAYS_INLINE void garch_kernel(const garch *m, size_t L, size_t ld, const double *x,
                                          double *lp, double *g) {
    double mu[HB_LANES], a0[HB_LANES], a1[HB_LANES], om1[HB_LANES], s[HB_LANES], b1[HB_LANES];
    double e3[HB_LANES], e4[HB_LANES], l3[HB_LANES], l4[HB_LANES], t3[HB_LANES], t4[HB_LANES];
    double h[HB_LANES], logh[HB_LANES], dmu[HB_LANES], da0[HB_LANES], da1[HB_LANES], db1[HB_LANES];
    double gmu[HB_LANES], ga0[HB_LANES], ga1[HB_LANES], gb1[HB_LANES], acc[HB_LANES], oms[HB_LANES];
    HB_LANES_FOR(c, L) {
        mu[c] = x[c];
        t3[c] = -fabs(x[2 * ld + c]);
        t4[c] = -fabs(x[3 * ld + c]);
    }
    hb_lanes_exp(a0, x + ld, L);
    hb_lanes_exp(e3, t3, L); /* exp(-|u3|) */
    hb_lanes_exp(e4, t4, L);
    hb_lanes_log1p(l3, e3, L);
    hb_lanes_log1p(l4, e4, L);
    HB_LANES_FOR(c, L) {
        double u3 = x[2 * ld + c], u4 = x[3 * ld + c];
        double i3 = 1.0 / (1.0 + e3[c]), i4 = 1.0 / (1.0 + e4[c]);
        a1[c] = u3 >= 0 ? i3 : e3[c] * i3;
        om1[c] = u3 >= 0 ? e3[c] * i3 : i3;
        s[c] = u4 >= 0 ? i4 : e4[c] * i4;
        oms[c] = u4 >= 0 ? e4[c] * i4 : i4;
        b1[c] = om1[c] * s[c];
        /* log|J| = u2 + log a1 + 2 log(1 - a1) + log s + log(1 - s) */
        double la1 = (u3 < 0.0 ? u3 : 0.0) - l3[c], lom1 = -(u3 > 0.0 ? u3 : 0.0) - l3[c];
        double ls = (u4 < 0.0 ? u4 : 0.0) - l4[c], loms = -(u4 > 0.0 ? u4 : 0.0) - l4[c];
        lp[c] = x[ld + c] + la1 + 2.0 * lom1 + ls + loms;
        h[c] = m->h1;
        dmu[c] = da0[c] = da1[c] = db1[c] = 0.0;
        double e = m->y[0] - mu[c];
        acc[c] = -0.5 * e * e / m->h1;
        gmu[c] = e / m->h1;
        ga0[c] = ga1[c] = gb1[c] = 0.0;
    }
    double log_h1 = log(m->h1);
    HB_LANES_FOR(c, L) acc[c] -= 0.5 * log_h1;
    for (size_t t = 1; t < m->T; t++) {
        double yp = m->y[t - 1], yt = m->y[t];
        HB_LANES_FOR(c, L) {
            double ep = yp - mu[c], ep2 = ep * ep, hp = h[c];
            double hn = a0[c] + a1[c] * ep2 + b1[c] * hp;
            dmu[c] = -2.0 * a1[c] * ep + b1[c] * dmu[c];
            da0[c] = 1.0 + b1[c] * da0[c];
            da1[c] = ep2 + b1[c] * da1[c];
            db1[c] = hp + b1[c] * db1[c];
            h[c] = hn;
            double e = yt - mu[c], ih = 1.0 / hn, q = e * e * ih;
            double ct = 0.5 * ih * (q - 1.0);
            acc[c] -= 0.5 * q;
            gmu[c] += e * ih + ct * dmu[c];
            ga0[c] += ct * da0[c];
            ga1[c] += ct * da1[c];
            gb1[c] += ct * db1[c];
        }
        hb_lanes_log(logh, h, L);
        HB_LANES_FOR(c, L) acc[c] -= 0.5 * logh[c];
    }
    HB_LANES_FOR(c, L) {
        double aa = a1[c] * om1[c], sos = s[c] * oms[c];
        lp[c] += acc[c];
        g[c] = gmu[c];
        g[ld + c] = ga0[c] * a0[c] + 1.0;
        g[2 * ld + c] = ga1[c] * aa - gb1[c] * s[c] * aa + (1.0 - 3.0 * a1[c]);
        g[3 * ld + c] = gb1[c] * om1[c] * sos + (1.0 - 2.0 * s[c]);
    }
}

HB_LANE_MODEL_ENTRIES(garch, garch_kernel)

static int garch_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t T;
    size_t n;
    const double *y;
    double sigma1;
    if ((rc = hb_data_int(d, "T", 1, INT32_MAX, &T, err)) != HB_OK) goto done;
    n = (size_t)T;
    if ((rc = hb_data_vector(d, "y", &n, &y, err)) != HB_OK ||
        (rc = hb_data_real(d, "sigma1", &sigma1, err)) != HB_OK)
        goto done;
    if (!(sigma1 > 0)) {
        rc = hb_fail(err, HB_ERR_MODEL, "%s: data field 'sigma1' = %g is not > 0", hb_data_path(d),
                     sigma1);
        goto done;
    }
    garch *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->T = n;
    m->y = malloc(n * sizeof *m->y);
    if (!m->y) abort();
    for (size_t t = 0; t < n; t++) m->y[t] = y[t];
    m->h1 = sigma1 * sigma1;
    hb_mhead_init(&m->h, 4, 4);
    m->h.constrain = garch_constrain;
    static const char *const coord[] = {"mu", "log(alpha0)", "logit(alpha1)",
                                        "logit(beta1/(1-alpha1))"};
    static const char *const out[] = {"mu", "alpha0", "alpha1", "beta1"};
    for (size_t i = 0; i < 4; i++) {
        hb_mhead_name(&m->h.coord[i], "%s", coord[i]);
        hb_mhead_name(&m->h.out[i], "%s", out[i]);
    }
    *impl = m;
done:
    hb_data_close(d);
    return rc;
}

HB_LANE_MODEL_VTABLE(garch_vt, "garch-garch11", garch_kernel, garch_destroy);

const hb_builtin_model hb_builtin_garch = {
    "garch-garch11", "posteriordb GARCH(1,1) volatility model, flat priors (dim 4)",
    "data = (required) ; CmdStan JSON or HDF5, e.g. "
    "$HB_SHARED_DIR/targets/garch-garch11/data.json\n",
    garch_create, &garch_vt};
