/* Special functions the diagnostics need: the normal quantile (AS 241), log-beta, the
 * regularised incomplete beta function and its inverse (R's qnorm, lbeta, pbeta, qbeta). */
#include <float.h>
#include <math.h>

#include "diag/diag.h"

/* Wichura, M. J. (1988) Algorithm AS 241: The percentage points of the normal distribution.
   Applied Statistics 37(3), 477-484. PPND16: rational minimax approximations of degree 7,
   one for |p - 1/2| <= 0.425 in r = 0.180625 - q^2, two for the tails in
   r = sqrt(-log(min(p, 1 - p))) (r <= 5 and r > 5). Coefficients as published. */
static const double as241_a[8] = {3.3871328727963666080e0,  1.3314166789178437745e+2,
                                  1.9715909503065514427e+3, 1.3731693765509461125e+4,
                                  4.5921953931549871457e+4, 6.7265770927008700853e+4,
                                  3.3430575583588128105e+4, 2.5090809287301226727e+3};
static const double as241_b[8] = {1.0,
                                  4.2313330701600911252e+1,
                                  6.8718700749205790830e+2,
                                  5.3941960214247511077e+3,
                                  2.1213794301586595867e+4,
                                  3.9307895800092710610e+4,
                                  2.8729085735721942674e+4,
                                  5.2264952788528545610e+3};
static const double as241_c[8] = {1.42343711074968357734e0,  4.63033784615654529590e0,
                                  5.76949722146069140550e0,  3.64784832476320460504e0,
                                  1.27045825245236838258e0,  2.41780725177450611770e-1,
                                  2.27238449892691845833e-2, 7.74545014278341407640e-4};
static const double as241_d[8] = {1.0,
                                  2.05319162663775882187e0,
                                  1.67638483018380384940e0,
                                  6.89767334985100004550e-1,
                                  1.48103976427480074590e-1,
                                  1.51986665636164571966e-2,
                                  5.47593808499534494600e-4,
                                  1.05075007164441684324e-9};
static const double as241_e[8] = {6.65790464350110377720e0,  5.46378491116411436990e0,
                                  1.78482653991729133580e0,  2.96560571828504891230e-1,
                                  2.65321895265761230930e-2, 1.24266094738807843860e-3,
                                  2.71155556874348757815e-5, 2.01033439929228813265e-7};
static const double as241_f[8] = {1.0,
                                  5.99832206555887937690e-1,
                                  1.36929880922735805310e-1,
                                  1.48753612908506148525e-2,
                                  7.86869131145613259100e-4,
                                  1.84631831751005468180e-5,
                                  1.42151175831644588870e-7,
                                  2.04426310338993978564e-15};

/* Horner's rule from the highest coefficient down, the evaluation order of AS 241. */
static double poly7(const double *k, double r) {
    return ((((((k[7] * r + k[6]) * r + k[5]) * r + k[4]) * r + k[3]) * r + k[2]) * r + k[1]) * r +
           k[0];
}

double hb_diag_qnorm(double p) {
    if (isnan(p) || p < 0 || p > 1) return NAN;
    if (p == 0) return -INFINITY;
    if (p == 1) return INFINITY;
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        return q * poly7(as241_a, r) / poly7(as241_b, r);
    }
    double r = sqrt(-log(q < 0 ? p : 1.0 - p));
    double val;
    if (r <= 5.0) {
        r -= 1.6;
        val = poly7(as241_c, r) / poly7(as241_d, r);
    } else {
        r -= 5.0;
        val = poly7(as241_e, r) / poly7(as241_f, r);
    }
    return q < 0 ? -val : val;
}

double hb_diag_pnorm(double x) {
    return 0.5 * erfc(-x / sqrt(2.0));
}

/* Stirling-series remainder lgamma(z) - ((z - 1/2) log z - z + log(2 pi)/2) for z >= 10:
   sum of B_2k / (2k (2k - 1) z^(2k-1)), k = 1..7 (error below 1e-17 at z = 10). */
static double stirling_corr(double z) {
    static const double k[7] = {1.0 / 12,   -1.0 / 360,      1.0 / 1260, -1.0 / 1680,
                                1.0 / 1188, -691.0 / 360360, 1.0 / 156};
    double r = 1.0 / (z * z), s = 0;
    for (int i = 6; i >= 0; i--) s = s * r + k[i];
    return s / z;
}

double hb_diag_lbeta(double a, double b) {
    double p = a < b ? a : b, q = a < b ? b : a;
    const double half_log_2pi = 0.918938533204672741780329736406;
    if (p >= 10) {
        /* Both large: expand all three lgammas, the (p + q) log(p + q) terms cancel
           analytically instead of numerically. */
        double corr = stirling_corr(p) + stirling_corr(q) - stirling_corr(p + q);
        return -0.5 * log(q) + half_log_2pi + corr + (p - 0.5) * log(p / (p + q)) +
               q * log1p(-p / (p + q));
    }
    if (q >= 10) {
        double corr = stirling_corr(q) - stirling_corr(p + q);
        return lgamma(p) + corr + p - p * log(p + q) + (q - 0.5) * log1p(-p / (p + q));
    }
    return lgamma(p) + lgamma(q) - lgamma(p + q);
}

/* Continued fraction of I_x(a, b) / front (Abramowitz & Stegun 26.5.8), modified Lentz;
   converges fast for x < (a + 1) / (a + b + 2). */
static double beta_cf(double x, double a, double b) {
    const double tiny = 1e-300;
    double f = 1.0, c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    f = d;
    for (int m = 1; m < 1000000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + num * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + num / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        f *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + num * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + num / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double delta = d * c;
        f *= delta;
        if (fabs(delta - 1.0) < 4 * DBL_EPSILON) break;
    }
    return f;
}

/* log of x^a (1-x)^b / B(a, b) */
static double log_front(double x, double a, double b) {
    return a * log(x) + b * log1p(-x) - hb_diag_lbeta(a, b);
}

double hb_diag_pbeta(double x, double a, double b) {
    if (isnan(x) || isnan(a) || isnan(b) || a <= 0 || b <= 0) return NAN;
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    if (x < (a + 1.0) / (a + b + 2.0)) return exp(log_front(x, a, b)) * beta_cf(x, a, b) / a;
    return 1.0 - exp(log_front(1.0 - x, b, a)) * beta_cf(1.0 - x, b, a) / b;
}

/* Beta(a, b) density. */
static double dbeta(double x, double a, double b) {
    if (x <= 0 || x >= 1) return 0;
    return exp((a - 1.0) * log(x) + (b - 1.0) * log1p(-x) - hb_diag_lbeta(a, b));
}

double hb_diag_qbeta(double alpha, double a, double b) {
    if (isnan(alpha) || isnan(a) || isnan(b) || a <= 0 || b <= 0 || alpha < 0 || alpha > 1)
        return NAN;
    if (alpha == 0) return 0;
    if (alpha == 1) return 1;
    /* Start from the normal approximation, then Newton inside a shrinking bracket: every
       evaluation of I_x narrows [lo, hi], and a step that leaves it is replaced by
       bisection, so the iteration cannot diverge. */
    double mu = a / (a + b), sd = sqrt(a * b / ((a + b) * (a + b) * (a + b + 1.0)));
    double x = mu + hb_diag_qnorm(alpha) * sd;
    double lo = 0, hi = 1;
    if (!(x > 0 && x < 1)) x = mu;
    for (int it = 0; it < 300; it++) {
        double fx = hb_diag_pbeta(x, a, b) - alpha;
        if (fx == 0) return x;
        if (fx < 0)
            lo = x;
        else
            hi = x;
        double dens = dbeta(x, a, b);
        double nx = dens > 0 ? x - fx / dens : NAN;
        if (!(nx > lo && nx < hi)) nx = 0.5 * (lo + hi);
        if (fabs(nx - x) <= 4 * DBL_EPSILON * fabs(x) || hi - lo <= 4 * DBL_EPSILON * hi) return nx;
        x = nx;
    }
    return x;
}
