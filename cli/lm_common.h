/* Helpers shared by the dense-LM commands (train, eval, score, generate, bench train). */
#ifndef BR_CLI_LM_COMMON_H
#define BR_CLI_LM_COMMON_H
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "base/status.h"
#include "lm/prompt.h"

/* Parses whitespace/comma separated token ids ("1 2, 3"); *ids malloc'd.  BR_EINVAL naming
 * the first bad entry. */
br_status lm_parse_ids(const char *text, int32_t **ids, size_t *n);

/* br_prompt_open for a command's --model / --tokenizer / --chat-template flags. */
br_status lm_open_prompt(br_prompt_t **p, const char *model_dir, const char *tokenizer, const char *chat_template,
                         const br_model_config_t *cfg);

/* A prompt as the commands take it: --prompt TEXT alone is plain text; with --chat it is one
 * user message (after --system TEXT when given); --messages FILE is a JSON array of messages. */
typedef struct {
    const char *text, *system, *messages;
    bool chat;
} lm_prompt_flags_t;

/* The prompt's ids through the one pipeline (lm/prompt.h); *ids malloc'd. */
br_status lm_prompt_ids(const br_prompt_t *p, const lm_prompt_flags_t *f, int32_t **ids, size_t *n);
#endif
