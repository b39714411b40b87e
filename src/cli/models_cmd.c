/* `heartbeat models`: list the built-in models, their options and how to load a plugin,
 * from the registry's own descriptions so the list never goes stale. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "heartbeat/heartbeat.h"
#include "models/models.h"

/* Options are "key = default ; meaning" lines: print them as two aligned columns. */
static void print_options(const char *opts) {
    while (opts && *opts) {
        const char *eol = strchr(opts, '\n');
        size_t len = eol ? (size_t)(eol - opts) : strlen(opts);
        const char *semi = memchr(opts, ';', len);
        size_t klen = semi ? (size_t)(semi - opts) : len;
        while (klen > 0 && opts[klen - 1] == ' ') klen--;
        if (semi) {
            const char *mean = semi + 1;
            while (*mean == ' ') mean++;
            printf("    %-30.*s %.*s\n", (int)klen, opts, (int)(opts + len - mean), mean);
        } else {
            printf("    %.*s\n", (int)klen, opts);
        }
        opts = eol ? eol + 1 : NULL;
    }
}

static void print_model(const hb_builtin_model *b) {
    printf("%s\n    %s\n", b->name, b->summary);
    print_options(b->options);
    printf("\n");
}

static void print_plugin(void) {
    printf("plugin\n    a user model in a shared library exporting hb_model_plugin() "
           "(include/heartbeat/model.h;\n    example and build instructions in "
           "examples/plugin/)\n");
    print_options("plugin = PATH.so ; required: the library (a bare file name means ./NAME)\n"
                  "data = FILE ; optional: passed to the plugin's create() (e.g. Stan JSON)\n");
}

int hb_cli_models(int argc, char **argv) {
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: heartbeat models [NAME]\n"
                   "Lists the built-in models (or one of them) with their [model] options and "
                   "defaults.\n");
            return HB_OK;
        }
        if (argv[i][0] == '-' || only) {
            fprintf(stderr, "heartbeat models: unexpected argument '%s'\n", argv[i]);
            return HB_ERR_USAGE;
        }
        only = argv[i];
    }
    const hb_builtin_model *const *all = hb_builtin_models();
    if (only) {
        if (strcmp(only, "plugin") == 0) {
            print_plugin();
            return HB_OK;
        }
        const hb_builtin_model *b = hb_builtin_model_find(only);
        if (!b) {
            fprintf(stderr, "heartbeat models: no built-in model '%s'; valid names:", only);
            for (size_t i = 0; all[i]; i++) fprintf(stderr, " %s", all[i]->name);
            fprintf(stderr, " plugin\n");
            return HB_ERR_USAGE;
        }
        print_model(b);
        return HB_OK;
    }
    printf("Built-in models: choose one with [model] name = NAME; its options are further keys "
           "of [model]\n(shown with their defaults).\n\n");
    for (size_t i = 0; all[i]; i++) print_model(all[i]);
    print_plugin();
    return HB_OK;
}
