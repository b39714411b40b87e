/* Progress on rank 0: a live line on a terminal, a plain line every few seconds in logs
 * (Slurm), and a final one-line report. Not collective: only rank 0 prints.
 *
 * A line in a log (on a terminal the same, rewritten in place and cut to its width):
 *   sampling 90000/400000   22%  ETA 2s  1.04e+07 draws/s  1.04e+07 grad/s  step 0.661  elapsed 1s
 * and the final one:
 *   done: warmup 0.004 s, sampling 2.454 s, 25600 draws (1.04e+04 draws/s, 1.04e+07 grad/s)
 * and with warmup = auto "done: warmup 0.004 s (auto: 214 of 1000 iterations), ...".
 *
 * Rates are measured from the start of the phase in this process (hb_progress_start: after a
 * resume, from the iteration the checkpoint left); draws/s counts kept draws while sampling
 * (iterations / thin) and chain-iterations in warmup. */
#ifndef HB_CORE_PROGRESS_H
#define HB_CORE_PROGRESS_H

typedef enum hb_phase { HB_PHASE_WARMUP, HB_PHASE_SAMPLING } hb_phase;

typedef struct hb_progress {
    int enabled;  /* rank 0 and not --quiet: the final line */
    int periodic; /* progress lines at all (progress_every > 0) */
    int tty;      /* stderr is a terminal: one live line rewritten in place */
    int live;     /* a live line is on the terminal, not yet ended by a newline */
    double every; /* seconds between lines */
    double t_start, t_phase, t_last;
    long total_warmup, total_sampling; /* iterations of each phase (sampling: draws x thin) */
    long thin;                         /* iterations per kept draw (1 unless the caller sets it) */
    long iter0;                        /* iteration of this phase at hb_progress_start */
    double grads0;                     /* gradient evaluations of this phase at the start */
    double grads[2];                   /* latest gradient count of each phase */
    double t_grads;                    /* when it was reported */
    double chains;
    double accept, step_size; /* set by the caller; accept is NaN (not shown) until set */
    long warmup_used;         /* warmup = auto: iterations it used (shown when > 0) */
    hb_phase phase;
} hb_progress;

void hb_progress_init(hb_progress *p, int enabled, double every, long warmup, long sampling,
                      double chains);
/* The phase starts (or resumes) at iteration iter with grads gradient evaluations done. A
   change of phase in hb_progress_update starts it implicitly at the iteration given there. */
void hb_progress_start(hb_progress *p, hb_phase phase, long iter, double grads);
/* iter: iterations done in this phase; grads: gradient evaluations so far in this phase
   (all chains, estimate). Prints a line when due (always at the last iteration). */
void hb_progress_update(hb_progress *p, hb_phase phase, long iter, double grads);
/* Ends a pending live line (before an error message, after an interruption). */
void hb_progress_stop(hb_progress *p);
/* The final line; times are the totals of the run (over resumed parts). */
void hb_progress_finish(hb_progress *p, double t_warmup, double t_sampling, double draws);

#endif
