/* Routing report of an MoE (braid eval). */
#ifndef BR_CLI_MOE_REPORT_H
#define BR_CLI_MOE_REPORT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm/model.h"

/* Zeroed counts (nd, L, E) for m->route_counts, or NULL when m has no MoE FFN.  free(). */
uint64_t *moe_routing_alloc(const br_model_t *m, size_t nd);
/* Prints the per-layer routing tables (markdown) and/or adds "routing" to root (when not NULL).
 * Experts are labelled with their domain when DIR/upcycle.json says which one they come from. */
void moe_routing_report(const br_model_t *m, const char *model_dir, char **doms, size_t nd,
                        const uint64_t *counts, bool markdown, json_t *root);
#endif
