/* Routing statistics of an MoE: which experts each domain's tokens go to, per layer. */
#ifndef BR_MOE_ROUTING_H
#define BR_MOE_ROUTING_H
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "lm/model.h"

/* Runs m over up to max_tokens tokens of one shard (windows of T, B per forward pass, evenly
 * spaced over the file) and adds every layer's (token, expert) assignments to counts (L, E);
 * *ntok receives the tokens run.  BR_EINVAL when m has no MoE FFN or the shard is empty. */
br_status br_routing_measure(br_model_t *m, const char *shard_path, size_t max_tokens,
                             size_t B, size_t T, uint64_t *counts, uint64_t *ntok);
#endif
