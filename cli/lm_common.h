/* Helpers shared by the dense-LM commands (train, eval, score, generate, bench train). */
#ifndef BR_CLI_LM_COMMON_H
#define BR_CLI_LM_COMMON_H
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Parses whitespace/comma separated token ids ("1 2, 3"); *ids malloc'd.  BR_EINVAL naming
 * the first bad entry. */
br_status lm_parse_ids(const char *text, int32_t **ids, size_t *n);
#endif
