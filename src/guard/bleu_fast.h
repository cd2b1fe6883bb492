/* BLEU's fast path, internal to guard/bleu.c: character n-grams of one hypothesis against one
 * reference, orders <= 4, texts under 65535 characters with at most 255 distinct characters
 * in the pair — what PARDEN scores, at a fraction of the general path's cost.  The scratch it
 * keeps per thread, and how to free it, is the "Threads" contract in bleu.h. */
#ifndef BR_GUARD_BLEU_FAST_H
#define BR_GUARD_BLEU_FAST_H
#include <stddef.h>
#include "guard/bleu.h"

/* Statistics of orders 1..N of hyp[0..hb) against ref[0..rb) into st (zeroed by the caller,
 * with st->n set).  Returns 1 when done; 0 when the pair is outside the limits above (st is
 * then undefined: clear it and use the general path); -1 when out of memory. */
int br_bleu_fast_char_stats(int N, const char *ref, size_t rb, const char *hyp, size_t hb, br_bleu_stats_t *st);
#endif
