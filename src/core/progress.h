/* Progress on rank 0: a live line on a terminal, a plain line every few seconds in logs
 * (Slurm), and a final one-line report. Not collective: only rank 0 prints. */
#ifndef HB_CORE_PROGRESS_H
#define HB_CORE_PROGRESS_H

typedef enum hb_phase { HB_PHASE_WARMUP, HB_PHASE_SAMPLING } hb_phase;

typedef struct hb_progress {
    int enabled, tty;
    double every; /* seconds between plain lines */
    double t_start, t_phase, t_last;
    long total_warmup, total_sampling;
    double chains;
    double accept, step_size;
    hb_phase phase;
} hb_progress;

void hb_progress_init(hb_progress *p, int enabled, double every, long warmup, long sampling,
                      double chains);
/* iter: iterations done in this phase; grads: gradient evaluations so far in this phase
   (all chains, estimate). */
void hb_progress_update(hb_progress *p, hb_phase phase, long iter, double grads);
void hb_progress_finish(hb_progress *p, double t_warmup, double t_sampling, double draws);

#endif
