/* L-BFGS in lock step over the lanes of a batch, and a finite-difference Hessian (see
 * lbfgs.h). Written from the textbook algorithm (Nocedal & Wright, Numerical Optimization,
 * 2nd ed., algorithms 7.4 and 7.5; the bracketing weak-Wolfe line search of Lewis & Overton,
 * "Nonsmooth optimization via quasi-Newton methods", Math. Program. 2013). We minimise
 * f = -lp, so "gradient" below is -g. */
#include "samplers/lbfgs.h"

#include <math.h>
#include <string.h>

enum { L = HB_LANES, M = HB_LBFGS_MEMORY, LS_MAX = 40 };
static const double C1 = 1e-4, C2 = 0.9, GAIN_TOL = 1e-8, REL_TOL = 1e-12;

/* Per-lane doubles: S[M][d], Y[M][d], x0, g0, p, xl, gl [d], rho [M]. */
static size_t lane_doubles(size_t d) {
    return 2 * M * d + 5 * d + M;
}

size_t hb_lbfgs_ws(size_t d) {
    return L * lane_doubles(d) + 2 * d * L + 2 * d + 8;
}

typedef struct lane {
    int active, in_ls, n_pairs, head, failed;
    long iter, n_ls;
    double f0, dphi0, alpha, lo, hi, fl, fprev;
} lane;

static double dot(size_t d, const double *a, const double *b) {
    double s = 0;
    for (size_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

/* p = -H g by the two-loop recursion over the stored pairs (H0 = gamma I with Nocedal and
   Wright's gamma = s.y / y.y of the newest pair); without pairs, the unit step -g/|g|. */
static void direction(size_t d, const lane *st, double *base) {
    double *S = base, *Y = S + M * d, *g0 = Y + M * d + d, *p = g0 + d;
    double *rho = base + 2 * M * d + 5 * d, a[M];
    memcpy(p, g0, d * sizeof *p);
    if (st->n_pairs == 0) {
        double n = sqrt(dot(d, g0, g0));
        for (size_t i = 0; i < d; i++) p[i] = -p[i] / n;
        return;
    }
    for (int k = 0; k < st->n_pairs; k++) {
        int j = (st->head - 1 - k + M) % M;
        a[j] = rho[j] * dot(d, S + j * d, p);
        for (size_t i = 0; i < d; i++) p[i] -= a[j] * Y[j * d + i];
    }
    int nw = (st->head - 1 + M) % M;
    double gamma = 1.0 / (rho[nw] * dot(d, Y + nw * d, Y + nw * d));
    for (size_t i = 0; i < d; i++) p[i] *= gamma;
    for (int k = st->n_pairs - 1; k >= 0; k--) {
        int j = (st->head - 1 - k + M) % M;
        double b = rho[j] * dot(d, Y + j * d, p);
        for (size_t i = 0; i < d; i++) p[i] += (a[j] - b) * S[j * d + i];
    }
    for (size_t i = 0; i < d; i++) p[i] = -p[i];
}

/* Start a line search from x0 along a fresh direction; 0 if there is nothing to do (the
   predicted gain is below GAIN_TOL, or the direction is not one of descent even after
   dropping the memory). */
static int start_search(size_t d, lane *st, double *base) {
    double *g0 = base + 2 * M * d + d, *p = g0 + d;
    for (int tries = 0; tries < 2; tries++) {
        direction(d, st, base);
        st->dphi0 = dot(d, g0, p);
        if (st->dphi0 < 0 && isfinite(st->dphi0)) break;
        if (st->n_pairs == 0) return 0;
        st->n_pairs = st->head = 0; /* not a descent direction: drop the memory */
    }
    if (!(st->dphi0 < 0) || !isfinite(st->dphi0)) return 0;
    if (st->n_pairs > 0 && -st->dphi0 < GAIN_TOL) return 0;
    st->alpha = 1;
    st->lo = 0;
    st->hi = INFINITY;
    st->n_ls = 0;
    st->in_ls = 1;
    return 1;
}

/* The step from x0 to the accepted point y (f1, gradient gf1) ends an iteration: store the
   pair (when its curvature s.y is positive), move x0 and decide whether to go on. */
static void accept(size_t d, long max_iter, lane *st, double *base, const double *y, double f1,
                   const double *gf1) {
    double *S = base, *Y = S + M * d, *x0 = Y + M * d, *g0 = x0 + d;
    double *rho = base + 2 * M * d + 5 * d;
    double *s = S + st->head * d, *yy = Y + st->head * d;
    for (size_t i = 0; i < d; i++) {
        s[i] = y[i] - x0[i];
        yy[i] = gf1[i] - g0[i];
    }
    double sy = dot(d, s, yy), y2 = dot(d, yy, yy);
    if (sy > 1e-12 * y2 && isfinite(sy) && y2 > 0) {
        rho[st->head] = 1.0 / sy;
        st->head = (st->head + 1) % M;
        if (st->n_pairs < M) st->n_pairs++;
    }
    memcpy(x0, y, d * sizeof *x0);
    memcpy(g0, gf1, d * sizeof *g0);
    st->fprev = st->f0;
    st->f0 = f1;
    st->iter++;
    st->in_ls = 0;
    st->failed = 0;
    int small = st->fprev - f1 <= REL_TOL * (1 + fabs(f1));
    if (st->iter >= max_iter || small || !start_search(d, st, base)) st->active = 0;
}

long hb_lbfgs_lanes(const hb_model *m, size_t d, int n_real, long max_iter, double *x, double *g,
                    double *lp, double *ws, long *iters) {
    const size_t per = lane_doubles(d);
    double *ybuf = ws + L * per, *gy = ybuf + d * L, *mws = gy + d * L;
    double lpy[L], trial[L]; /* trial: the lane's alpha at this evaluation */
    lane st[L];
    memset(st, 0, sizeof st);
    for (int c = 0; c < L; c++) {
        double *base = ws + c * per, *x0 = base + 2 * M * d, *g0 = x0 + d;
        if (c >= n_real || !isfinite(lp[c])) continue;
        for (size_t i = 0; i < d; i++) {
            x0[i] = x[i * L + c];
            g0[i] = -g[i * L + c];
        }
        st[c].f0 = -lp[c];
        st[c].active = max_iter > 0 && start_search(d, &st[c], base);
    }
    long evals = 0;
    for (;;) {
        int any = 0;
        for (int c = 0; c < L; c++) {
            const double *base = ws + c * per, *x0 = base + 2 * M * d, *p = x0 + 2 * d;
            trial[c] = st[c].alpha;
            if (st[c].active) {
                any = 1;
                for (size_t i = 0; i < d; i++) ybuf[i * L + c] = x0[i] + st[c].alpha * p[i];
            } else {
                for (size_t i = 0; i < d; i++) ybuf[i * L + c] = x[i * L + c];
            }
        }
        if (!any) break;
        hb_model_eval_lanes(m, ybuf, lpy, gy, mws);
        evals++;
        for (int c = 0; c < L; c++) {
            if (!st[c].active) continue;
            lane *sc = &st[c];
            double *base = ws + c * per, *x0 = base + 2 * M * d, *p = x0 + 2 * d;
            double *xl = p + d, *gl = xl + d;
            const double a = trial[c], f1 = -lpy[c];
            int finite = isfinite(f1);
            double dphi = 0;
            for (size_t i = 0; i < d && finite; i++) {
                double gi = -gy[i * L + c];
                if (!isfinite(gi)) finite = 0;
                dphi += gi * p[i];
            }
            int done = 0;
            if (!finite || f1 > sc->f0 + C1 * a * sc->dphi0) {
                /* too far (or off the support): shrink */
                sc->hi = a;
                if (!finite) {
                    sc->alpha = sc->lo + 0.1 * (a - sc->lo);
                } else if (sc->lo == 0) {
                    /* minimiser of the quadratic through f0, f0' and f1, kept in [0.01, 0.5] a */
                    double den = 2 * (f1 - sc->f0 - sc->dphi0 * a);
                    double aq = den > 0 ? -sc->dphi0 * a * a / den : 0.5 * a;
                    sc->alpha = fmin(fmax(aq, 0.01 * a), 0.5 * a);
                } else {
                    sc->alpha = 0.5 * (sc->lo + sc->hi);
                }
            } else if (dphi < C2 * sc->dphi0) {
                /* Armijo holds but the slope is still steep: remember it, go further */
                sc->lo = a;
                sc->fl = f1;
                for (size_t i = 0; i < d; i++) {
                    xl[i] = x0[i] + a * p[i];
                    gl[i] = -gy[i * L + c];
                }
                sc->alpha = isfinite(sc->hi) ? 0.5 * (sc->lo + sc->hi) : 4 * a;
            } else {
                for (size_t i = 0; i < d; i++) {
                    xl[i] = x0[i] + a * p[i];
                    gl[i] = -gy[i * L + c];
                }
                accept(d, max_iter, sc, base, xl, f1, gl);
                done = 1;
            }
            if (!done && ++sc->n_ls >= LS_MAX) {
                if (sc->lo > 0) {
                    /* the best Armijo point of the search (its slope test failed) */
                    accept(d, max_iter, sc, base, xl, sc->fl, gl);
                    done = 1;
                } else if (!sc->failed && sc->n_pairs > 0) {
                    sc->failed = 1;
                    sc->n_pairs = sc->head = 0;
                    if (!start_search(d, sc, base)) sc->active = 0;
                } else {
                    sc->active = 0;
                }
            }
            if (!done && !sc->active) continue;
            if (done) {
                /* publish the accepted point: lp only rises */
                for (size_t i = 0; i < d; i++) {
                    x[i * L + c] = x0[i];
                    g[i * L + c] = -(base + 2 * M * d + d)[i];
                }
                lp[c] = -sc->f0;
            }
        }
    }
    if (iters)
        for (int c = 0; c < L; c++) iters[c] = st[c].iter;
    return evals;
}

/* xb, gb [d][L], the steps [d], the model's scratch [2d + 8] */
size_t hb_fd_hessian_ws(size_t d) {
    return 2 * d * L + 3 * d + 8;
}

/* One pass: H[j*d + i] = -(g_j(x0 + e_i) - g_j(x0 - e_i)) / (2 e_i), four coordinates per
   batch evaluation (lanes 2k, 2k+1: +e, -e of coordinate i0 + k); *evals += 8 per batch
   evaluation. */
static int fd_pass(const hb_model *m, size_t d, const double *x0, const double *step, double *H,
                   double *ws, long *evals) {
    double *xb = ws, *gb = xb + d * L, *mws = gb + d * L + d, lpb[L];
    for (size_t i0 = 0; i0 < d; i0 += L / 2) {
        for (int c = 0; c < L; c++) {
            size_t i = i0 + (size_t)c / 2;
            for (size_t j = 0; j < d; j++) xb[j * L + c] = x0[j];
            if (i < d) xb[i * L + c] += c % 2 ? -step[i] : step[i];
        }
        hb_model_eval_lanes(m, xb, lpb, gb, mws);
        *evals += L;
        for (int c = 0; c < L; c += 2) {
            size_t i = i0 + (size_t)c / 2;
            if (i >= d) break;
            if (!isfinite(lpb[c]) || !isfinite(lpb[c + 1])) return -1;
            for (size_t j = 0; j < d; j++) {
                double gp = gb[j * L + c], gm = gb[j * L + c + 1];
                if (!isfinite(gp) || !isfinite(gm)) return -1;
                H[j * d + i] = -(gp - gm) / (2 * step[i]);
            }
        }
    }
    return 0;
}

int hb_fd_hessian(const hb_model *m, size_t d, const double *x0, double *H, double *ws,
                  long *evals) {
    double *step = ws + 2 * d * L; /* fd_pass leaves these d doubles alone */
    *evals = 0;
    for (size_t i = 0; i < d; i++) step[i] = 1e-4 * fmax(1.0, fabs(x0[i]));
    if (fd_pass(m, d, x0, step, H, ws, evals)) return -1;
    for (size_t i = 0; i < d; i++) {
        double h = H[i * d + i];
        double sig = isfinite(h) && h > 0 ? 1.0 / sqrt(h) : fmax(1.0, fabs(x0[i]));
        step[i] = 1e-3 * sig;
    }
    if (fd_pass(m, d, x0, step, H, ws, evals)) return -1;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++) {
            double v = 0.5 * (H[i * d + j] + H[j * d + i]);
            H[i * d + j] = H[j * d + i] = v;
        }
    return 0;
}
