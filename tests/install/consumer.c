/* Uses an installed libheartbeat (test_install): prints its version, then runs the config
   given as argv[1] through hb_run and reports the outcome. */
#include <heartbeat/heartbeat.h>
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: consumer CONFIG\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    printf("libheartbeat %s\n", hb_version());
    const hb_run_options opt = {.config_path = argv[1], .quiet = 1};
    hb_error err = {0};
    const int rc = hb_run(MPI_COMM_WORLD, &opt, &err);
    if (rc)
        fprintf(stderr, "consumer: %s\n", err.msg);
    else
        printf("run ok\n");
    MPI_Finalize();
    return rc;
}
