/* DIR/upcycle.json: how a mixture of experts was built (method, seed, experts, each expert's
 * domain data), written by br_upcycle_assemble and br_extend_assemble and read by extend (the seed
 * that computes Nexus domain embeddings) and by the routing report (which expert is which
 * domain). */
#ifndef BR_MOE_PROVENANCE_H
#define BR_MOE_PROVENANCE_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* Writes OUT/upcycle.json atomically; paths are stored absolute when they resolve. */
br_status br_provenance_write(const char *out, const char *method, const char *base, bool base_as_expert,
                              const char *const *experts, size_t n_experts, const char *const *domain_data,
                              size_t n_domain_data);
/* OUT/upcycle.json = MOE/upcycle.json with the new expert (and its domain data, may be NULL)
 * appended and "extended_from": MOE. */
br_status br_provenance_extend(const char *moe, const char *out, const char *expert, const char *domain_data);
/* The seed recorded in DIR/upcycle.json (malloc'd), or NULL. */
char *br_provenance_base(const char *dir);
/* (E) expert j's domain name (the basename of its domain data, or of its expert folder when
 * that ends in -<domain>; NULL when unknown), or NULL without DIR/upcycle.json.  Free each
 * name and the array. */
char **br_provenance_expert_domains(const char *dir, size_t E);
#endif
