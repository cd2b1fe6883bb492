/* Whether two model folders share a tokenizer (upcycling refuses experts that do not: their
 * embedding rows would mean different tokens). */
#ifndef BR_MOE_TOKCHECK_H
#define BR_MOE_TOKCHECK_H
#include "base/status.h"

/* BR_OK when a and b hold the same tokenizer, or when either holds none (tokenizer.json or
 * tokenizer.model; nothing to compare).  BR_EINVAL naming `what` and the first difference (a
 * token with another id, a token only one has, other merges or settings; tokenizer.model
 * files that differ) otherwise. */
br_status br_moe_tokenizer_check(const char *a, const char *b, const char *what);
#endif
