/* The `heartbeat` program: dispatches subcommands (the "driver" layer). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "heartbeat/heartbeat.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage:\n"
            "  heartbeat run CONFIG.ini [--set section.key=value]... [--output PATH] [--quiet]\n"
            "  heartbeat summary RUN.h5 [--format table|csv|json] [--vars NAME,...]\n"
            "                    [--superchain-size K]\n"
            "  heartbeat models                  list built-in models and their options\n"
            "  heartbeat check-grad CONFIG.ini   finite-difference check of the model's gradient\n"
            "  heartbeat validate RUN.h5 REFERENCE.json   compare a run with reference moments\n"
            "  heartbeat --version | --help\n"
            "\n"
            "Run under MPI with: mpirun -n RANKS heartbeat run CONFIG.ini (OMP_NUM_THREADS sets\n"
            "threads per rank). The number of ranks and threads never changes the draws.\n"
            "Exit status: 0 ok, 2 usage/config error, 3 model/data error, 4 I/O error,\n"
            "5 interrupted after a checkpoint.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return HB_ERR_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return HB_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("heartbeat %s\n", hb_version());
        return HB_OK;
    }
    if (strcmp(cmd, "run") == 0) return hb_cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "summary") == 0) return hb_cli_summary(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0) return hb_cli_models(argc - 1, argv + 1);
    if (strcmp(cmd, "check-grad") == 0) return hb_cli_check_grad(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0) return hb_cli_validate(argc - 1, argv + 1);
    fprintf(stderr, "heartbeat: unknown command '%s'\n", cmd);
    usage(stderr);
    return HB_ERR_USAGE;
}
