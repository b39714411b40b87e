/* L-BFGS maximisation of the log density for the HB_LANES chains of one SIMD batch, in lock
 * step (Heartbeat's `init = lbfgs`, README "The Heartbeat sampler"), and the central finite
 * difference Hessian of the log density at one point. Both are deterministic: no random
 * numbers, and every lane's result depends only on its own start (all lanes are evaluated
 * together, but a lane's arithmetic never reads another lane's values). */
#ifndef HB_SAMPLERS_LBFGS_H
#define HB_SAMPLERS_LBFGS_H

#include <stddef.h>
#include <stdint.h>

#include "models/models.h"

/* Pairs (s, y) kept by L-BFGS. */
enum { HB_LBFGS_MEMORY = 10 };

/* Workspace doubles of hb_lbfgs_lanes for dimension d. */
size_t hb_lbfgs_ws(size_t d);

/* Maximise the model's log density from each lane's start: x, g, lp ([d][HB_LANES], g and lp
   evaluated at x) are replaced by the best point found (never a worse one: every accepted
   step satisfies Armijo's condition, so lp only rises; non-finite trial points are
   backtracked, never accepted). Lanes c >= n_real are padding and are left alone (they
   are still evaluated, as the batch is). Each lane stops after max_iter accepted steps, or
   when the predicted gain g^T H g of a quasi-Newton step is below 1e-8 (log density
   units, so whatever the scale of x), or when an iteration raised lp by less than
   1e-12 (1 + |lp|), or when its line search fails twice in a row (once after dropping the
   memory). The line search is a bracketing weak-Wolfe search (c1 = 1e-4, c2 = 0.9;
   expansion x4, a safeguarded quadratic interpolation from the first trial, else
   bisection), at most 40 trials per iteration.
   Returns the number of batch evaluations made (every lane's gradient was computed that
   many times); iters[c] (if not NULL) gets lane c's accepted steps. */
long hb_lbfgs_lanes(const hb_model *m, size_t d, int n_real, long max_iter, double *x, double *g,
                    double *lp, double *ws, long *iters);

/* Hessian of the log density at x0 [d] by central differences of the gradient, symmetrised:
   H (row-major d x d) is the negative Hessian, -(d^2 lp / dx_i dx_j). Two passes: steps
   1e-4 max(1, |x_i|) give each coordinate's conditional scale sigma_i = 1/sqrt(H_ii), then
   steps 1e-3 sigma_i give H (so the steps follow the target's own scale, whatever the
   units of x). ws: hb_fd_hessian_ws(d) doubles. *evals gets the gradient evaluations made
   (8 per batch evaluation: 2 ceil(d/4) batch evaluations per pass, padding lanes
   included). Returns 0, or -1 if a log density or gradient was not finite. */
size_t hb_fd_hessian_ws(size_t d);
int hb_fd_hessian(const hb_model *m, size_t d, const double *x0, double *H, double *ws,
                  long *evals);

#endif
