/* Heartbeat: many-chain MCMC on MPI ranks x OpenMP threads x SIMD lanes (umbrella header). */
#ifndef HEARTBEAT_HEARTBEAT_H
#define HEARTBEAT_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>
#include <mpi.h>

#include "heartbeat/model.h"
#include "heartbeat/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. They double as the exit codes of the `heartbeat` program. */
enum hb_status {
    HB_OK = 0,
    HB_ERR_INTERNAL = 1, /* a bug or an unexpected library failure */
    HB_ERR_USAGE = 2,    /* command line or configuration */
    HB_ERR_MODEL = 3,    /* model, plugin or data */
    HB_ERR_IO = 4,       /* files: output, input, disk */
    HB_ERR_INTERRUPTED = 5
};

/* Error detail travels in a caller-owned context, never in a global. */
typedef struct hb_error {
    int code;       /* enum hb_status */
    char msg[1024]; /* "file:line: key: what is wrong" */
} hb_error;

/* Record an error (printf-style); returns code so callers can `return hb_fail(...)`.
   Keeps the first error: a later call does not overwrite it. */
int hb_fail(hb_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hb_error_clear(hb_error *err);

/* Run-time version string ("0.1.0"). */
const char *hb_version(void);

/* Number of chains in one SIMD batch (a multiple of the widest SIMD width). Ranks own
   whole batches; reductions run over batches in global order. */
#define HB_LANES 8

/* Options of one run beyond the config file. */
typedef struct hb_run_options {
    const char *config_path;      /* INI file */
    const char *const *overrides; /* "section.key=value" strings */
    size_t n_overrides;
    const char *output; /* overrides [run] output when not NULL */
    int resume;         /* continue from the checkpoint <output>.ckpt and the output file */
    int quiet;          /* no progress output */
} hb_run_options;

/* Run a sampler as the config says and write the output file.
   Collective over comm: every rank calls it with the same options. Error messages are
   identical on all ranks. */
int hb_run(MPI_Comm comm, const hb_run_options *opt, hb_error *err);

#ifdef __cplusplus
}
#endif
#endif
