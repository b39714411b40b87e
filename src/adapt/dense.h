/* Dense metrics: Stan's regularised covariance from pooled co-moments, its Cholesky factor,
 * and products of the factor with SoA batches of HB_LANES vectors (v[i*HB_LANES + c]). */
#ifndef HB_ADAPT_DENSE_H
#define HB_ADAPT_DENSE_H

#include <stddef.h>

/* In place lower Cholesky factor of the d x d row-major A (upper part zeroed); -1 if A is
   not numerically positive definite. */
int hb_cholesky(double *A, size_t d);

/* Stan's dense_e rule: S = (n/(n+5)) cov + 1e-3 (5/(n+5)) I, cov the sample covariance
   (denominator n-1) of co-moments packed as hb_combine_comoments packs them
   ([n, mean[d], comoment[d*d]]). Returns 0, or -1 if n < 2 or a variance is not finite or
   not positive. */
int hb_dense_metric_from_comoments(const double *comoments, size_t d, double *S);

/* out = Lc v and out = Lc^T v for the lower triangular row-major d x d Lc, over HB_LANES
   lanes (v and out do not overlap). */
void hb_lanes_lower_mul(const double *Lc, size_t d, const double *v, double *out);
void hb_lanes_lower_mul_t(const double *Lc, size_t d, const double *v, double *out);

#endif
