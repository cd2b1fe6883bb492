/* Routing report of an MoE (braid eval): per layer, the share of each domain's tokens sent to
 * each FFN expert, the experts' load, and how specialised the routing is. */
#ifndef BR_MOE_ROUTING_REPORT_H
#define BR_MOE_ROUTING_REPORT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lm/model.h"

/* Zeroed counts (nd, L, E) for br_eval_domains' route_counts, or NULL when m has no MoE FFN
 * (or memory is short).  free(). */
uint64_t *br_routing_counts_alloc(const br_model_t *m, size_t nd);
/* Prints the per-layer routing tables (markdown) to md and/or adds "routing" to root (either may
 * be NULL); nothing when counts is NULL.  Experts are labelled with their domain when
 * DIR/upcycle.json says which one they come from (moe/provenance.h). */
/* *out (nd, L, E) malloc'd: the share of domain d's (token, slot) assignments at layer l that
 * went to expert j (each (d, l) row sums to 1, or is all 0 when the domain had no tokens).
 * BR_EINVAL without counts (not an MoE), BR_ENOMEM. */
br_status br_routing_shares(const br_model_t *m, const uint64_t *counts, size_t nd, double **out);
void br_routing_report(const br_model_t *m, const char *model_dir, char *const *doms, size_t nd,
                       const uint64_t *counts, FILE *md, json_t *root);
#endif
