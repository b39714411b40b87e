/* `heartbeat validate RUN.h5 REFERENCE.json`: compare a run's committed draws with reference
 * posterior summaries — per coordinate the z-score of the mean (run MCSE and reference Monte
 * Carlo error combined), the ratio of sds, and the b^2 second-moment metric of
 * targets/README.md, for each reference block (parameters, unconstrained, derived) whose
 * names all appear in the run file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "heartbeat/heartbeat.h"
#include "io/h5in.h"
#include "io/reference.h"

static void usage(FILE *f) {
    fprintf(f, "usage: heartbeat validate RUN.h5 REFERENCE.json [--format table|json]\n"
               "\n"
               "Compares the committed draws of RUN.h5 with a posteriordb reference.json (as in\n"
               "shared/targets/<name>/): for every coordinate the z-score of the mean,\n"
               "  z = (mean - ref_mean) / sqrt(mcse^2 + ref_sd^2 / ref_n_draws)\n"
               "(mcse: the run's MCSE of the mean, from its ESS), the ratio sd / ref_sd, and\n"
               "  b^2 = mean over coordinates of (E[x^2] - ref_mean_sq)^2 / ref_var_sq.\n"
               "The headline is the 'parameters' block (constrained space); 'unconstrained' and\n"
               "'derived' are compared too when the run file holds those names.\n"
               "Exit status: 0 compared, 2 usage, 3 malformed reference or no block of it in the\n"
               "run, 4 unreadable file or no committed draws.\n");
}

static void print_table(const hb_validation *val) {
    for (size_t b = 0; b < val->n_blocks; b++) {
        const hb_vblock *v = &val->blocks[b];
        printf("\n%s (%zu):\n", v->rb->block, v->rb->n);
        printf("%-24s %12s %12s %10s %7s %11s %11s %8s\n", "name", "mean", "ref_mean", "se", "z",
               "sd", "ref_sd", "sd_ratio");
        for (size_t j = 0; j < v->rb->n; j++) {
            const hb_vrow *r = &v->rows[j];
            printf("%-24s %12.5g %12.5g %10.3g %7.2f %11.5g %11.5g %8.3f\n", r->ref->name, r->mean,
                   r->ref->mean, r->se, r->z, r->sd, r->ref->sd, r->sd_ratio);
        }
        printf("b2 = %.3e   max |z| = %.2f (%s)\n", v->b2, v->max_abs_z,
               v->rows[v->worst].ref->name);
    }
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void json_num(double x) {
    if (isfinite(x))
        printf("%.17g", x);
    else
        printf("null");
}

static void print_json(const hb_reference *ref, const hb_validation *val) {
    printf("{\"posterior_name\": ");
    json_str(ref->posterior_name);
    printf(", \"chains\": %zu, \"draws\": %zu, \"blocks\": [", val->n_chains, val->n_draws);
    for (size_t b = 0; b < val->n_blocks; b++) {
        const hb_vblock *v = &val->blocks[b];
        printf("%s\n {\"block\": \"%s\", \"b2\": ", b ? "," : "", v->rb->block);
        json_num(v->b2);
        printf(", \"max_abs_z\": ");
        json_num(v->max_abs_z);
        printf(", \"rows\": [");
        for (size_t j = 0; j < v->rb->n; j++) {
            const hb_vrow *r = &v->rows[j];
            printf("%s\n  {\"name\": ", j ? "," : "");
            json_str(r->ref->name);
            const char *keys[] = {"mean", "ref_mean", "mcse",     "se",      "z",
                                  "sd",   "ref_sd",   "sd_ratio", "mean_sq", "ref_mean_sq"};
            double vals[] = {r->mean, r->ref->mean, r->mcse,     r->se,      r->z,
                             r->sd,   r->ref->sd,   r->sd_ratio, r->mean_sq, r->ref->mean_sq};
            for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
                printf(", \"%s\": ", keys[k]);
                json_num(vals[k]);
            }
            printf("}");
        }
        printf("]}");
    }
    printf("]}\n");
}

int hb_cli_validate(int argc, char **argv) {
    const char *run_path = NULL, *ref_path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return HB_OK;
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            const char *fmt = argv[++i];
            if (strcmp(fmt, "json") == 0)
                json = 1;
            else if (strcmp(fmt, "table") == 0)
                json = 0;
            else {
                fprintf(stderr, "heartbeat validate: --format %s: expected table or json\n", fmt);
                return HB_ERR_USAGE;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "heartbeat validate: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return HB_ERR_USAGE;
        } else if (!run_path)
            run_path = argv[i];
        else if (!ref_path)
            ref_path = argv[i];
        else {
            fprintf(stderr, "heartbeat validate: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return HB_ERR_USAGE;
        }
    }
    if (!run_path || !ref_path) {
        usage(stderr);
        return HB_ERR_USAGE;
    }

    hb_error err;
    hb_error_clear(&err);
    hb_reference *ref = NULL;
    hb_h5in *f = NULL;
    hb_validation val;
    memset(&val, 0, sizeof val);
    int rc = hb_reference_load(&ref, ref_path, &err);
    if (rc == HB_OK) rc = hb_h5in_open(&f, run_path, &err);
    if (rc == HB_OK) rc = hb_validate_run(f, ref, &val, &err);
    if (rc == HB_OK) {
        if (json)
            print_json(ref, &val);
        else {
            printf("validate %s against %s (%s)\n", run_path, ref_path, ref->posterior_name);
            printf("run: %zu chains x %zu committed draws; reference: %.0f draws\n", val.n_chains,
                   val.n_draws, ref->n_draws);
            if (val.missing_param)
                printf("note: the run file has no '%s' (unconstrained coordinates only?): the "
                       "headline constrained block is not compared\n",
                       val.missing_param);
            print_table(&val);
        }
    } else
        fprintf(stderr, "heartbeat validate: %s\n", err.msg);
    hb_validation_free(&val);
    if (f) hb_h5in_close(f);
    hb_reference_free(ref);
    return rc;
}
