/* braid data prepare: tokenise every domain of a raw corpus into token shards.
 *   <raw>/<domain>/{train,val}.txt  (UTF-8; documents separated by BR_DOC_SEPARATOR)
 *   -> <out>/<domain>/{train,val}.bin  (text/data.h format; <|endoftext|> after every document;
 *      header `bytes` = UTF-8 bytes of the documents, for bits per byte) + <out>/MANIFEST.json.
 * Documents are encoded in parallel (OpenMP, dynamic schedule); shards are written atomically. */
#ifndef BR_TEXT_PREPARE_H
#define BR_TEXT_PREPARE_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

#define BR_PREPARE_MAX_DOMAINS 32

typedef struct {
    int threads;         /* 0: all cores */
    int quiet;           /* no progress bars */
    const char *domains; /* comma-separated subset (NULL: every domain folder) */
    const char *exclude; /* comma-separated domains to skip (NULL: none) */
} br_prepare_opts_t;

typedef struct {
    size_t docs, tokens;
    uint64_t bytes;
    double seconds; /* encoding time */
} br_prepare_split_t;

typedef struct {
    char name[64];
    br_prepare_split_t train, val;
} br_prepare_domain_t;

typedef struct {
    size_t vocab, ndomains;
    br_prepare_domain_t domains[BR_PREPARE_MAX_DOMAINS];
    uint64_t bytes;
    double seconds;
} br_prepare_result_t;

br_status br_data_prepare(const char *raw_dir, const char *tokenizer, const char *out_dir, const br_prepare_opts_t *opts,
                          br_prepare_result_t *res);
#endif
