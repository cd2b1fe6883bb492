/* BPE tokenizers.  Loads Hugging Face tokenizer.json (byte-level BPE as GPT-2/Llama-3/Qwen, with
 * an optional NFC normalizer; SentencePiece-style BPE with byte fallback as Llama-2/Mistral/
 * TinyLlama), GPT-2 encoder.json + vocab.bpe folders and tiktoken rank files; trains new
 * byte-level vocabularies (bpe_train.h).  See docs/data.md.  A loaded tokenizer is immutable and
 * safe to share between threads. */
#ifndef BR_TEXT_TOKENIZER_H
#define BR_TEXT_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct br_tokenizer br_tokenizer_t;

/* path: a tokenizer.json, a folder holding encoder.json + vocab.bpe (or tokenizer.json), or a
 * tiktoken rank file. */
br_status br_tokenizer_load(br_tokenizer_t **out, const char *path);
/* The same from a file's text in memory (NUL-terminated; label names it in errors). */
br_status br_tokenizer_load_text(br_tokenizer_t **out, const char *text, const char *label);
void br_tokenizer_free(br_tokenizer_t *t); /* NULL is a no-op */
/* Number of ids (regular + special). */
size_t br_tokenizer_vocab_size(const br_tokenizer_t *t);
/* Encodes UTF-8 (invalid bytes are encoded as their byte tokens, never an error).  Special
 * tokens in the text are matched only when allow_special is nonzero; non-special added tokens
 * (tokenizer.json "special": false) always are.  No BOS/EOS is added.  *ids is malloc'd. */
br_status br_tokenizer_encode(const br_tokenizer_t *t, const char *text, size_t len,
                              int allow_special, int32_t **ids, size_t *n);
/* Decodes ids to bytes (*text malloc'd, NUL-terminated); BR_ERANGE for an id out of range.
 * SentencePiece-style vocabularies drop the leading space their decoder strips. */
br_status br_tokenizer_decode(const br_tokenizer_t *t, const int32_t *ids, size_t n, char **text,
                              size_t *len);
/* Id of a token string such as "<|endoftext|>" (special or regular), or -1. */
int32_t br_tokenizer_token_id(const br_tokenizer_t *t, const char *token);
/* The end-of-text / end-of-sequence id, or -1 when the tokenizer has none. */
int32_t br_tokenizer_eos_id(const br_tokenizer_t *t);
/* The special ids tokenizer.json's post_processor (TemplateProcessing) puts before and after a
 * single sequence, e.g. Llama-3's <|begin_of_text|>; -1 when none (br_tokenizer_encode never
 * adds them: the prompt pipeline, lm/prompt.h, decides). */
void br_tokenizer_post_ids(const br_tokenizer_t *t, int32_t *first, int32_t *last);
/* Raw bytes of one token (not NUL-terminated; valid while t lives), or NULL (len 0) for an id
 * that is out of range or unassigned.  For streaming decode (SentencePiece-style tokens spell
 * U+2581 as a space here, so the first token of a text may start with the space that
 * br_tokenizer_decode drops). */
const unsigned char *br_tokenizer_token_bytes(const br_tokenizer_t *t, int32_t id, size_t *len);
/* Nonzero for special tokens (<|endoftext|>, added tokens marked special). */
int br_tokenizer_is_special(const br_tokenizer_t *t, int32_t id);
/* Nonzero when decode(encode(x, no specials)) == x for every byte string x (byte-level
 * vocabularies without a normalizer); SentencePiece-style and NFC ones may change the text. */
int br_tokenizer_lossless(const br_tokenizer_t *t);
/* The pre-tokenisation regex (PCRE2 syntax), or NULL when the text is not split. */
const char *br_tokenizer_pattern(const br_tokenizer_t *t);

/* Pre-tokenisation regexes of GPT-2 / r50k / p50k and of cl100k. */
extern const char br_pattern_gpt2[];
extern const char br_pattern_cl100k[];
#endif
