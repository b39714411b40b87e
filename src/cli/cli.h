/* Subcommands of the `heartbeat` program; each returns an exit status (enum hb_status). */
#ifndef HB_CLI_CLI_H
#define HB_CLI_CLI_H

int hb_cli_run(int argc, char **argv);        /* heartbeat run CONFIG [--set k=v]... */
int hb_cli_summary(int argc, char **argv);    /* heartbeat summary RUN.h5 [...] */
int hb_cli_models(int argc, char **argv);     /* heartbeat models */
int hb_cli_check_grad(int argc, char **argv); /* heartbeat check-grad CONFIG */
int hb_cli_validate(int argc, char **argv);   /* heartbeat validate RUN.h5 REFERENCE.json */

#endif
