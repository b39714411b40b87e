/* Dense metrics shared by the samplers that support `metric = dense`. */
#include "adapt/dense.h"

#include <math.h>
#include <string.h>

#include "heartbeat/heartbeat.h"

enum { L = HB_LANES };

int hb_cholesky(double *A, size_t d) {
    for (size_t j = 0; j < d; j++) {
        double s = A[j * d + j];
        for (size_t k = 0; k < j; k++) s -= A[j * d + k] * A[j * d + k];
        if (!(s > 0) || !isfinite(s)) return -1;
        double ljj = sqrt(s);
        A[j * d + j] = ljj;
        for (size_t i = j + 1; i < d; i++) {
            double t = A[i * d + j];
            for (size_t k = 0; k < j; k++) t -= A[i * d + k] * A[j * d + k];
            A[i * d + j] = t / ljj;
        }
        for (size_t i = 0; i < j; i++) A[i * d + j] = 0;
    }
    return 0;
}

int hb_dense_metric_from_comoments(const double *mom, size_t d, double *S) {
    const double n = mom[0];
    if (!(n >= 2)) return -1;
    const double w = n / (n + 5.0), reg = 1e-3 * (5.0 / (n + 5.0));
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double v = w * mom[1 + d + i * d + j] / (n - 1) + (i == j ? reg : 0.0);
            if (!isfinite(v) || (i == j && !(v > 0))) return -1;
            S[i * d + j] = v;
        }
    return 0;
}

void hb_lanes_lower_mul(const double *Lc, size_t d, const double *v, double *out) {
    for (size_t i = 0; i < d; i++) {
        const double *row = Lc + i * d;
        double acc[L] = {0};
        for (size_t j = 0; j <= i; j++) {
            const double f = row[j];
#pragma omp simd
            for (int c = 0; c < L; c++) acc[c] += f * v[j * L + c];
        }
        for (int c = 0; c < L; c++) out[i * L + c] = acc[c];
    }
}

void hb_lanes_lower_mul_t(const double *Lc, size_t d, const double *v, double *out) {
    memset(out, 0, d * L * sizeof *out);
    for (size_t i = 0; i < d; i++) {
        const double *row = Lc + i * d, *vi = v + i * L;
        for (size_t j = 0; j <= i; j++) {
            const double f = row[j];
#pragma omp simd
            for (int c = 0; c < L; c++) out[j * L + c] += f * vi[c];
        }
    }
}
