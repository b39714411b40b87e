/* Shared test helpers: run a CUnit suite, run the heartbeat program, temp dirs,
 * read datasets back, z-scores with Monte Carlo standard errors. */
#ifndef HB_TESTS_HBTEST_H
#define HB_TESTS_HBTEST_H

#include <CUnit/Basic.h>
#include <stddef.h>

typedef struct hbt_case {
    const char *name;
    void (*fn)(void);
} hbt_case;

/* Run the cases as one CUnit suite; returns the process exit status (0 = all passed). */
int hbt_run_suite(const char *suite, const hbt_case *cases, size_t n);

/* Environment set by ctest (see tests/CMakeLists.txt); abort the test if missing. */
const char *hbt_env(const char *name);

/* A fresh directory under /tmp for this test process (removed by the caller's choice). */
const char *hbt_tmpdir(void);
/* Write text to dir/name; returns the malloc'd path. */
char *hbt_write_file(const char *name, const char *text);

/* Run a shell command line; capture stdout+stderr (malloc'd, may be NULL) and return the
   exit status (or 128+signal). */
int hbt_sh(char **output, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read a whole double dataset (any rank) from an HDF5 file into a malloc'd array;
 *n = element count; dims (up to 4) written when not NULL. Returns NULL on failure. */
double *hbt_read_dataset(const char *file, const char *path, size_t *n, size_t dims[4], int *rank);
/* Read an integer root attribute; returns -1 on failure. */
long long hbt_read_attr_int(const char *file, const char *name);
/* Read a numeric attribute of /adaptation as a double; NaN on failure. */
double hbt_read_adaptation_attr(const char *file, const char *name);
/* Validate a run file against a reference.json (hb_validate_run, as `heartbeat validate`):
   every compared mean within 4 standard errors, b^2 < 0.01 per block; with chains > 0 also
   the run's shape. CUnit assertions; prints each block's b^2 and worst |z|. */
void hbt_validate_run_file(const char *target, const char *run_file, const char *ref_path,
                           size_t chains, size_t draws);

/* Write TMP/tag.ini ("[run]\nseed = SEED\noutput = TMP/tag.h5\n", then run_keys and body)
   and run it under launch (a command prefix; NULL: OMP_NUM_THREADS=2), asserting exit 0.
   Returns the output path (malloc'd), or NULL if the run failed. With log != NULL the run's
   stderr (progress and final line included) goes to *log; without, the run is --quiet. */
char *hbt_run_cfg(const char *tag, unsigned seed, const char *run_keys, const char *body,
                  const char *launch, char **log);

/* Write TMP/name (INI text) and run it (--quiet); asserts exit 2 (a config error) and that
   the message contains each of the non-NULL strings what and where (e.g. the key and its
   "file:line"), printing the run's output when not. Returns the assertion's outcome. */
int hbt_expect_config_error(const char *name, const char *ini, const char *what, const char *where);

/* Every dataset under /posterior, /sample_stats and /adaptation of a run file as raw bytes,
   concatenated with their names (for bitwise comparisons of runs). Returns malloc'd bytes
   and their count in *len; NULL (len 0) if the file does not open. */
char *hbt_read_run_bytes(const char *file, size_t *len);

/* Assert |est - truth| <= k * se with a message naming what was compared. */
#define HBT_ASSERT_Z(what, est, truth, se, k)                                                      \
    do {                                                                                           \
        double hbt_e_ = (est), hbt_t_ = (truth), hbt_s_ = (se);                                    \
        double hbt_z_ = (hbt_e_ - hbt_t_) / hbt_s_;                                                \
        if (!(hbt_z_ <= (k) && hbt_z_ >= -(k)))                                                    \
            fprintf(stderr, "  %s: estimate %.6g truth %.6g se %.3g z %.2f\n", (what), hbt_e_,     \
                    hbt_t_, hbt_s_, hbt_z_);                                                       \
        CU_ASSERT(hbt_z_ <= (k) && hbt_z_ >= -(k));                                                \
    } while (0)

/* Batch-means estimate of the MCSE of the mean of per-chain series: draws[c*n + j] for
   chains c < nc, draws j < n. Uses the variance of per-chain means (independent chains). */
double hbt_mcse_chain_means(const double *draws, size_t nc, size_t n, double *mean);

#endif
