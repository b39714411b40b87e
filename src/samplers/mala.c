/* MALA: Metropolis-adjusted Langevin with pooled warmup (ALGORITHMS.md §2). */
#include <stdlib.h>

#include "samplers/basic.h"

static int mala_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                       hb_error *err) {
    hb_basic *s = malloc(sizeof *s);
    if (!s) abort();
    if (hb_basic_create(s, cfg, "mala", 0.574, 0.1, model->dim, warmup, err)) {
        hb_basic_destroy(s);
        free(s);
        return err->code;
    }
    *self = s;
    return HB_OK;
}

static void basic_free(void *self) {
    hb_basic_destroy(self);
    free(self);
}

static size_t no_state(const void *self, size_t dim) {
    (void)self;
    (void)dim;
    return 0;
}

static size_t langevin_ws(const void *self, size_t dim) {
    const hb_basic *s = self;
    return s->metric_dense ? hb_langevin_dense_workspace(dim) : hb_langevin_workspace(dim);
}

/* The kernel for the instance's metric (dense: the diagonal one until the first estimate). */
static void langevin(const hb_step_ctx *ctx, int adjusted, hb_batch *b, double *ws,
                     hb_step_out *out) {
    const hb_basic *s = ctx->self;
    if (s->metric_dense)
        hb_langevin_step_dense(ctx, s, adjusted, b, ws, out);
    else
        hb_langevin_step(ctx, s, adjusted, b, ws, out);
}

static void mala_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    langevin(ctx, 1, b, ws, out);
}

const hb_sampler_type hb_sampler_mala = {
    .name = "mala",
    .summary = "Metropolis-adjusted Langevin; step size and diagonal metric from pooled warmup",
    .create = mala_create,
    .destroy = basic_free,
    .state_doubles = no_state,
    .workspace_doubles = langevin_ws,
    .step = mala_step,
    HB_BASIC_HOOKS,
};

/* ULA: warmup runs adjusted (MALA) moves so that the acceptance gauge is read on chains
   distributed as the target (HEARTBEAT.md, stage C); sampling moves are unadjusted. */
static int ula_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                      hb_error *err) {
    hb_basic *s = malloc(sizeof *s);
    if (!s) abort();
    static const char *const yesno[] = {"true", "false", NULL};
    int gauge = 0;
    if (hb_basic_create(s, cfg, "ula", 0.95, 0.1, model->dim, warmup, err) ||
        hb_cfg_choice(cfg, "ula", "gauge", "true", yesno, &gauge, err)) {
        hb_basic_destroy(s);
        free(s);
        return err->code;
    }
    s->no_gauge = gauge == 1;
    *self = s;
    return HB_OK;
}

static void ula_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    langevin(ctx, ctx->warmup, b, ws, out);
}

const hb_sampler_type hb_sampler_ula = {
    .name = "ula",
    .summary = "unadjusted Langevin (Euler-Maruyama); step size set in warmup by a MALA "
               "acceptance gauge ([ula] target_accept)",
    .create = ula_create,
    .destroy = basic_free,
    .state_doubles = no_state,
    .workspace_doubles = langevin_ws,
    .alt_buffers = 1, /* sampling moves swap x, g with the proposal's pair (basic.c) */
    .step = ula_step,
    HB_BASIC_HOOKS,
};
