/* Test plugins for check-grad: a 2-D standard normal whose gradient is 1% wrong in x[2] when
 * built with HB_WRONG, and whose log density carries 1e-6 of deterministic round-off-like
 * noise when built with HB_NOISY. check-grad must pass only the noisy-but-right one. */
#include <heartbeat/model.h>

#include <stdlib.h>
#include <string.h>

static void *create(const char *data_path, char *err, size_t errlen) {
    (void)data_path;
    (void)err;
    (void)errlen;
    return malloc(1);
}

static void destroy(void *model) {
    free(model);
}

static size_t dim(const void *model) {
    (void)model;
    return 2;
}

static const char *coord_name(const void *model, size_t i) {
    (void)model;
    return i == 0 ? "x[1]" : "x[2]";
}

#ifdef HB_NOISY
/* Uniform in [-1, 1], a hash of the bits of x: noise that changes with every last bit, like
   the round-off of a long computation. */
static double noise(const double *x) {
    uint64_t a, b;
    memcpy(&a, &x[0], sizeof a);
    memcpy(&b, &x[1], sizeof b);
    uint64_t z = a ^ (b * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}
#endif

static int logp_grad(const void *model, const double *x, double *logp, double *grad) {
    (void)model;
    *logp = -0.5 * (x[0] * x[0] + x[1] * x[1]);
#ifdef HB_NOISY
    *logp += 1e-6 * noise(x);
#endif
#ifdef HB_WRONG
    grad[1] = -1.01 * x[1];
#else
    grad[1] = -x[1];
#endif
    grad[0] = -x[0];
    return 0;
}

static const hb_model_vtable vt = {
    .abi_version = HB_MODEL_ABI_VERSION,
    .struct_size = sizeof(hb_model_vtable),
    .name = "bad_grad",
    .create = create,
    .destroy = destroy,
    .dim = dim,
    .coord_name = coord_name,
    .logp_grad = logp_grad,
    .logp_grad_batch = NULL,
};

const hb_model_vtable *hb_model_plugin(void);
const hb_model_vtable *hb_model_plugin(void) {
    return &vt;
}
