/* Building a domain corpus from real text: a set of documents (id + UTF-8 text), cleaners for
 * the source formats braid fetches, and the deterministic budgeted train/val split writer.
 *
 * Output of br_docs_write: <dir>/train.txt and <dir>/val.txt, documents separated by
 * BR_DOC_SEPARATOR ("\n<|endoftext|>\n"), in id order.  Which documents are kept under the byte
 * budget and which go to val depend only on hashes of their ids, so the same sources give the
 * same files on every machine. */
#ifndef BR_TEXT_CORPUS_H
#define BR_TEXT_CORPUS_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
    char *id;   /* unique and stable, e.g. "glibc:stdlib/qsort.c" */
    char *text; /* UTF-8, no "<|endoftext|>" inside */
    size_t len;
} br_doc_t;

typedef struct {
    br_doc_t *v;
    size_t n, cap;
    size_t bytes;
    size_t skipped; /* rejected: not UTF-8, empty, or holding the separator */
} br_docs_t;

/* Copies a document in.  A document that is empty (only whitespace), not valid UTF-8, or holds
 * "<|endoftext|>" is counted in `skipped` and not added (BR_OK): sources are real files and a
 * few of them are Latin-1.  Trailing whitespace is trimmed. */
br_status br_docs_add(br_docs_t *d, const char *id, const char *text, size_t len);
void br_docs_free(br_docs_t *d);

typedef struct {
    size_t docs[2];     /* train, val */
    uint64_t bytes[2];
    size_t dropped;     /* over the byte budget */
} br_split_stats_t;

/* Keeps documents in the order of hash(id) until max_bytes (0: all), sends a document to val
 * when hash2(id) falls below val_frac, and writes train.txt / val.txt atomically.  Errors when
 * no document is left or either split would be empty. */
br_status br_docs_write(const br_docs_t *d, const char *dir, size_t max_bytes, double val_frac,
                        br_split_stats_t *st);

/* Brown corpus file ("The/at jury/nn ,/, ...") -> plain text: tags removed, `` '' -> ",
 * spaces before punctuation removed, one sentence per line.  *out malloc'd. */
br_status br_clean_brown(const char *s, size_t n, char **out, size_t *out_len);
/* Metamath database: compressed and normal proofs ("$= ... $.") become "$= ... $." with the
 * proof dropped; the statements and comments stay.  *out malloc'd. */
br_status br_clean_metamath(const char *s, size_t n, char **out, size_t *out_len);
/* Nonzero when `name` is one of the comma-separated names in list (NULL or "" holds none). */
int br_name_in_list(const char *list, const char *name);

/* Splits text into chunks of about `target` bytes at blank lines; calls add(id_prefix:k). */
br_status br_docs_add_chunked(br_docs_t *d, const char *id_prefix, const char *text, size_t len, size_t target);
#endif
