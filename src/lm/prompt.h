/* The prompt pipeline: how every command (generate, score, serve, parden) turns a prompt --
 * plain text or chat messages -- into token ids, and which ids end a generation.  One place, so
 * that `braid generate --prompt X` and a completion request for X over HTTP see the same ids.
 *
 * From a model folder (tokenizer.json, tokenizer_config.json, generation_config.json,
 * config.json) it resolves, as Hugging Face does:
 *   - BOS: added before a prompt when tokenizer_config.json's add_bos_token says so, or (when it
 *     does not say) when tokenizer.json's post_processor puts one there (Llama-3); never twice
 *     (a prompt or a rendered template that already starts with it keeps one).  A folder without
 *     tokenizer_config.json (braid's own models) starts a prompt with config.json's bos_token_id,
 *     or else the tokenizer's end-of-text token: braid's token shards separate documents with
 *     it, so a prompt is a document that begins after one.
 *   - EOS appended to plain text when add_eos_token is true (never to a chat).
 *   - Chat: the chat template (tokenizer_config.json, chat_template.jinja, or a --chat-template
 *     file) rendered with bos_token, eos_token and add_generation_prompt = true; a model without
 *     one gets braid's plain template "SYSTEM\n\nUser: ...\nAssistant: ...\nAssistant:" (whose
 *     turns also end at the stop string "\nUser:").  Special-token strings in the text (the
 *     template's <|im_start|>, a prompt's <s>) are encoded as the special tokens.
 *   - Stop ids: generation_config.json's eos_token_id (one or a list: Llama-3-Instruct stops on
 *     <|eot_id|> and <|end_of_text|>; config.json's when there is no generation_config.json)
 *     together with the tokenizer's eos token.
 *   - Sampling defaults: generation_config.json's temperature, top_p, top_k (do_sample false:
 *     greedy), used where the user gives none.
 * A .gguf model file (without a --tokenizer) gives the same from its metadata as llama.cpp reads
 * it: the tokenizer from tokenizer.ggml.*, add_bos_token (absent: BOS iff a bos_token_id is
 * named), add_eos_token, the chat template, and the eos, eot and eom ids as stop ids.
 * A prompt handle is immutable after br_prompt_open and may be shared between threads. */
#ifndef BR_LM_PROMPT_H
#define BR_LM_PROMPT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "lm/model.h"
#include "text/tokenizer.h"

#define BR_PROMPT_MAX_STOP 20

typedef struct br_prompt br_prompt_t;

typedef struct {
    const char *model_dir;           /* the folder with the config files, or a .gguf file (required) */
    const char *tokenizer;           /* a tokenizer path; NULL: model_dir/tokenizer.json */
    const char *chat_template;       /* a Jinja file overriding the model's template, or NULL */
    const br_model_config_t *cfg;    /* the model's config (bos/eos ids, vocab size), or NULL */
} br_prompt_opts_t;

/* Loads the tokenizer and the config files and checks them against cfg (a tokenizer with more
 * ids than the model, a stop id outside the vocabulary, a template that does not parse are
 * errors naming the file).  Free with br_prompt_free. */
br_status br_prompt_open(br_prompt_t **out, const br_prompt_opts_t *o);
void br_prompt_free(br_prompt_t *p); /* NULL is a no-op */

const br_tokenizer_t *br_prompt_tokenizer(const br_prompt_t *p);

/* Plain text -> ids (*ids malloc'd): BOS, the text with special tokens matched, EOS. */
br_status br_prompt_text(const br_prompt_t *p, const char *text, size_t len, int32_t **ids, size_t *n);
/* Chat messages (a JSON array of {"role", "content", ...}) -> the rendered prompt text
 * (*text malloc'd), ending with the assistant turn's opening. */
br_status br_prompt_render(const br_prompt_t *p, const json_t *messages, char **text);
/* Chat messages -> ids: the rendered text, encoded as br_prompt_text does but without EOS. */
br_status br_prompt_chat(const br_prompt_t *p, const json_t *messages, int32_t **ids, size_t *n);

/* The ids that end a generation (*ids valid while p lives); is_stop tests one. */
size_t br_prompt_stop_ids(const br_prompt_t *p, const int32_t **ids);
bool br_prompt_is_stop(const br_prompt_t *p, int32_t id);
/* The text that ends a chat turn besides the stop ids: "\nUser:" for braid's plain template,
 * NULL for a model's own template. */
const char *br_prompt_chat_stop(const br_prompt_t *p);
/* The BOS id put before prompts, or -1. */
int32_t br_prompt_bos(const br_prompt_t *p);

/* generation_config.json's sampling defaults; each is left unchanged when the file does not
 * give it (do_sample false sets temperature 0). */
void br_prompt_sampling(const br_prompt_t *p, float *temperature, float *top_p, int *top_k);
#endif
