/* braid data overlap and the near-duplicate check of braid data fetch --dedupe
 * (cli/data_overlap.c). */
#ifndef BR_CLI_DATA_OVERLAP_H
#define BR_CLI_DATA_OVERLAP_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct {
    size_t val_docs, leaked_docs;   /* documents of val.txt; those with a near-duplicate in train */
    size_t val_bytes, leaked_bytes;
    size_t val_shingles;            /* distinct n-grams summed over val documents */
    size_t val_shingles_in_train;   /* of those, found in some train document */
} br_overlap_stats_t;

/* Measures DIR/{train,val}.txt (documents separated by "\n<|endoftext|>\n"): a val document
 * is leaked when a train document has word-n-gram Jaccard >= thr with it.  drop: rewrites
 * DIR/val.txt atomically without the leaked documents (untouched when none leaked).  Stats are
 * of the files as they were. */
br_status br_overlap_domain(const char *dir, int n, double thr, bool drop, br_overlap_stats_t *st);

/* braid data overlap [--raw DIR] [--domains LIST] [--ngram N] [--threshold J] [--dedupe] [--json FILE] */
int data_overlap(int argc, char **argv);
#endif
