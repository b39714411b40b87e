/* Pieces of the Heartbeat sampler that tests check on their own: the beat's step-size
 * schedules, the random-number purposes of a beat's sub-steps, the log-density histogram
 * whose median decides when stage A ends, and the current warmup stage. */
#ifndef HB_SAMPLERS_HEARTBEAT_H
#define HB_SAMPLERS_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

/* Schedules s(t), t in [0, 1], of the step size within a beat (HEARTBEAT.md, Sampling). */
typedef enum hb_beat_schedule {
    HB_SCHEDULE_QUADRATIC = 0, /* (1-t)^2 */
    HB_SCHEDULE_COSINE = 1,    /* (1+cos(pi t))/2 */
    HB_SCHEDULE_LINEAR = 2,    /* 1-t */
    HB_SCHEDULE_CONSTANT = 3   /* 0: every step at step_min (a control) */
} hb_beat_schedule;

double hb_beat_schedule_value(hb_beat_schedule s, double t);
/* Step size of sub-step k = 0..n-1 of a beat of n >= 2 steps:
   step_min + (step_max - step_min) s(k/(n-1)); the last is exactly step_min. */
double hb_beat_step_size(hb_beat_schedule s, double step_min, double step_max, int k, int n);

/* RNG purpose of sub-step k of a beat: base (HB_RNG_PROPOSAL or HB_RNG_ACCEPT) + 256 (k+1),
   distinct from every purpose of rng.h and from the other sub-steps (k < 2^23). */
uint32_t hb_beat_purpose(int k, uint32_t base);

/* Stage A's pooled median of the log density comes from a histogram reduced by sum (counts
   are exact in doubles, so the result does not depend on the decomposition). Bins are
   centred on the previous iteration's median c with scale s = sqrt(d)/4 and grow
   geometrically: in t = (lp - c)/s, bin j >= 0 above c covers [2^j - 1, 2^(j+1) - 1), the
   same mirrored below, HB_LP_HIST_K bins per side plus one overflow bin at each end. The
   median is interpolated linearly inside its bin (clamped at the overflow edges): fine
   (resolution s) near c, coarse far away, where it only needs to say "still rising". */
enum { HB_LP_HIST_K = 16, HB_LP_HIST_BINS = 2 * HB_LP_HIST_K + 2 };
int hb_lp_hist_bin(double lp, double center, double scale);
double hb_lp_hist_median(const double *counts, double center, double scale);

/* Warmup stage of a Heartbeat instance: 0 = A (exploration), 1 = B (preconditioner),
   2 = C (step sizes), 3 = done (sampling); with [heartbeat] init = lbfgs 4 = the L-BFGS
   optimisation (warmup iteration 0), 5 = the Laplace draws (iteration 1). */
int hb_heartbeat_stage(const void *self);

#endif
