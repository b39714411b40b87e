/* The posteriordb target eight_schools-eight_schools_noncentered: a hierarchical normal
 * model in non-centred form, coordinates (theta_trans[1..J], mu, log(tau)). */
#include <math.h>
#include <stdlib.h>

#include "io/data.h"
#include "models/data_models.h"
#include "models/target_util.h"

typedef struct eight_schools {
    hb_mhead h;
    size_t J;
    double *y, *inv_s2; /* y_j, 1/sigma_j^2 */
} eight_schools;

static void es_destroy(void *model) {
    eight_schools *m = model;
    if (!m) return;
    hb_mhead_free(&m->h);
    free(m->y);
    free(m);
}

/* Outputs: theta_trans[1..J], mu, tau, then the derived group effects theta[1..J]. */
static int es_constrain(const void *model, const double *x, double *out) {
    const eight_schools *m = model;
    size_t J = m->J;
    double mu = x[J], tau = exp(x[J + 1]);
    for (size_t j = 0; j < J; j++) {
        out[j] = x[j];
        out[J + 2 + j] = mu + tau * x[j];
    }
    out[J] = mu;
    out[J + 1] = tau;
    return isfinite(tau) ? 0 : 1;
}

static HB_ALWAYS_INLINE void es_kernel(const eight_schools *m, size_t L, size_t ld, const double *x,
                                       double *lp, double *g) {
    const size_t J = m->J;
    double lam[HB_LANES], tau[HB_LANES], gmu[HB_LANES], grz[HB_LANES];
    HB_LANES_FOR(c, L) {
        lam[c] = x[(J + 1) * ld + c];
        gmu[c] = 0.0;
        grz[c] = 0.0;
    }
    hb_lanes_exp(tau, lam, L);
    double t[HB_LANES], l[HB_LANES];
    HB_LANES_FOR(c, L) t[c] = tau[c] * tau[c] / 25.0;
    hb_lanes_log1p(l, t, L);
    HB_LANES_FOR(c, L) {
        double mu = x[J * ld + c];
        lp[c] = -mu * mu / 50.0 - l[c] + lam[c];
    }
    for (size_t j = 0; j < J; j++) {
        double yj = m->y[j], w = m->inv_s2[j];
        HB_LANES_FOR(c, L) {
            double z = x[j * ld + c], r = yj - x[J * ld + c] - tau[c] * z;
            lp[c] += -0.5 * z * z - 0.5 * r * r * w;
            g[j * ld + c] = -z + tau[c] * r * w;
            gmu[c] += r * w;
            grz[c] += r * z * w;
        }
    }
    HB_LANES_FOR(c, L) {
        double t = tau[c];
        g[J * ld + c] = gmu[c] - x[J * ld + c] / 25.0;
        g[(J + 1) * ld + c] = t * (grz[c] - (2.0 * t / 25.0) / (1.0 + t * t / 25.0)) + 1.0;
    }
}

HB_LANE_MODEL_ENTRIES(eight_schools, es_kernel)

static int es_create(hb_config *cfg, void **impl, hb_error *err) {
    hb_data *d;
    int rc = hb_data_open_cfg(&d, cfg, err);
    if (rc != HB_OK) return rc;
    int64_t J;
    size_t n1, n2;
    const double *y, *s;
    if ((rc = hb_data_int(d, "J", 1, INT32_MAX, &J, err)) != HB_OK) goto done;
    n1 = n2 = (size_t)J;
    if ((rc = hb_data_vector(d, "y", &n1, &y, err)) != HB_OK ||
        (rc = hb_data_vector(d, "sigma", &n2, &s, err)) != HB_OK)
        goto done;
    for (size_t j = 0; j < (size_t)J; j++)
        if (!(s[j] > 0)) {
            rc = hb_fail(err, HB_ERR_MODEL, "%s: data field 'sigma': sigma[%zu] = %g is not > 0",
                         hb_data_path(d), j + 1, s[j]);
            goto done;
        }
    eight_schools *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->J = (size_t)J;
    m->y = malloc(2 * m->J * sizeof *m->y);
    if (!m->y) abort();
    m->inv_s2 = m->y + m->J;
    for (size_t j = 0; j < m->J; j++) {
        m->y[j] = y[j];
        m->inv_s2[j] = 1.0 / (s[j] * s[j]);
    }
    hb_mhead_init(&m->h, m->J + 2, 2 * m->J + 2);
    m->h.constrain = es_constrain;
    for (size_t j = 0; j < m->J; j++) {
        hb_mhead_name(&m->h.coord[j], "theta_trans[%zu]", j + 1);
        hb_mhead_name(&m->h.out[j], "theta_trans[%zu]", j + 1);
        hb_mhead_name(&m->h.out[m->J + 2 + j], "theta[%zu]", j + 1);
    }
    hb_mhead_name(&m->h.coord[m->J], "mu");
    hb_mhead_name(&m->h.out[m->J], "mu");
    hb_mhead_name(&m->h.coord[m->J + 1], "log(tau)");
    hb_mhead_name(&m->h.out[m->J + 1], "tau");
    *impl = m;
done:
    hb_data_close(d);
    return rc;
}

HB_LANE_MODEL_VTABLE(es_vt, "eight_schools-eight_schools_noncentered", es_kernel, es_destroy);

const hb_builtin_model hb_builtin_eight_schools = {
    "eight_schools-eight_schools_noncentered",
    "posteriordb eight schools, non-centred hierarchical normal (dim 10)",
    "data = (required) ; CmdStan JSON or HDF5, e.g. "
    "$HB_SHARED_DIR/targets/eight_schools-eight_schools_noncentered/data.json\n",
    es_create, &es_vt};
