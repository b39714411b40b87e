/* Samplers registered by name (PETSc style): the run loop never switches over names. */
#include <string.h>

#include "samplers/sampler.h"

extern const hb_sampler_type hb_sampler_rwmh, hb_sampler_ula, hb_sampler_mala;
extern const hb_sampler_type hb_sampler_heartbeat;
extern const hb_sampler_type hb_sampler_hmc, hb_sampler_nuts, hb_sampler_chees, hb_sampler_pmm;

static const hb_sampler_type *const registry[] = {
    &hb_sampler_rwmh,
    &hb_sampler_ula,
    &hb_sampler_mala,
    &hb_sampler_heartbeat, /* HEARTBEAT.md */
    &hb_sampler_hmc,       /* ALGORITHMS.md §6.2 */
    &hb_sampler_nuts,      /* ALGORITHMS.md §6.3-6.6 */
    &hb_sampler_chees,     /* ALGORITHMS.md §7.1 */
    &hb_sampler_pmm,       /* ALGORITHMS.md §4.3 */
    NULL,
};

const hb_sampler_type *const *hb_sampler_types(void) {
    return registry;
}

const hb_sampler_type *hb_sampler_find(const char *name) {
    for (size_t i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}
