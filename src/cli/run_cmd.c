/* `heartbeat run`: parse arguments, start MPI (funneled threads), run, report errors once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "heartbeat/heartbeat.h"

int hb_cli_run(int argc, char **argv) {
    hb_run_options opt = {0};
    const char **sets = calloc((size_t)argc, sizeof *sets);
    if (!sets) return HB_ERR_INTERNAL;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--set") == 0 && i + 1 < argc)
            sets[opt.n_overrides++] = argv[++i];
        else if (strncmp(a, "--set=", 6) == 0)
            sets[opt.n_overrides++] = a + 6;
        else if (strcmp(a, "--output") == 0 && i + 1 < argc)
            opt.output = argv[++i];
        else if (strcmp(a, "--resume") == 0)
            opt.resume = 1;
        else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0)
            opt.quiet = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: heartbeat run CONFIG.ini [--set section.key=value]... [--output PATH] "
                   "[--resume] [--quiet]\n"
                   "  --resume  continue from OUTPUT.ckpt and OUTPUT (same config; the result is\n"
                   "            bitwise that of an uninterrupted run)\n");
            free(sets);
            return HB_OK;
        } else if (a[0] != '-' && !opt.config_path)
            opt.config_path = a;
        else {
            fprintf(stderr, "heartbeat run: unexpected argument '%s'\n", a);
            bad = 1;
        }
    }
    if (!bad && !opt.config_path) {
        fprintf(stderr, "heartbeat run: missing CONFIG.ini\n");
        bad = 1;
    }
    if (bad) {
        free(sets);
        return HB_ERR_USAGE;
    }
    opt.overrides = sets;
    int provided = 0, rank = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    hb_error err = {0};
    int rc = HB_ERR_INTERNAL;
    if (provided < MPI_THREAD_FUNNELED)
        hb_fail(&err, HB_ERR_INTERNAL, "MPI does not provide MPI_THREAD_FUNNELED");
    else
        rc = hb_run(MPI_COMM_WORLD, &opt, &err);
    if (rc != HB_OK && rank == 0) fprintf(stderr, "heartbeat: error: %s\n", err.msg);
    MPI_Finalize();
    free(sets);
    return rc;
}
