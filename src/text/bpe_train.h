/* Byte-level BPE training: count pre-token words (PCRE2 regex, threads), then learn merges with
 * incremental pair-count updates over unique words (a max-heap with lazy invalidation, never a
 * rescan per merge), and write a Hugging Face tokenizer.json (ByteLevel pre-tokenizer and
 * decoder, BPE model with vocab + merges, <|endoftext|> as the last id). */
#ifndef BR_TEXT_BPE_TRAIN_H
#define BR_TEXT_BPE_TRAIN_H
#include <stddef.h>
#include "base/status.h"

/* Documents inside a corpus text file are separated by this line (see docs/data.md). */
#define BR_DOC_SEPARATOR "\n<|endoftext|>\n"

typedef struct {
    size_t vocab_size;    /* total ids: 256 bytes + merges + 1 special; 258..1048576 */
    size_t min_frequency; /* stop early when the best pair is rarer (>= 1; 0 means 2) */
    size_t max_bytes;     /* read at most this much text (0: all) */
    const char *pattern;  /* pre-tokenisation regex; NULL: br_pattern_gpt2 */
    const char *split;    /* folder input: only files named <split>.txt (NULL: every *.txt) */
    const char *exclude;  /* folder input: comma-separated domain folders to skip (NULL: none) */
    int threads;          /* 0: all cores */
    int quiet;            /* no progress bar */
} br_bpe_train_opts_t;

typedef struct {
    size_t files, bytes, words, unique_words, merges, vocab_size;
    double seconds_count, seconds_merge;
} br_bpe_train_stats_t;

/* input: a text file or a folder (searched recursively, in sorted order).  Writes out_json
 * atomically.  stats may be NULL. */
br_status br_bpe_train(const char *input, const char *out_json, const br_bpe_train_opts_t *opts,
                       br_bpe_train_stats_t *stats);

/* Lists the corpus files under `input` the way br_bpe_train does (sorted; *paths and each
 * string malloc'd; free with br_free_paths). */
br_status br_list_text_files(const char *input, const char *split, const char *exclude, char ***paths,
                             size_t *n);
void br_free_paths(char **paths, size_t n);
#endif
