/* BLEU exactly as NLTK 3.8 computes it (nltk.translate.bleu_score: sentence_bleu, corpus_bleu).
 *
 * Exact means bit-for-bit on the same libm: modified precision with clipped counts kept as
 * unreduced integer numerator/denominator pairs (NLTK's Fraction(_normalize=False)), corpus
 * sums of those integers, the brevity penalty on the closest reference length (ties -> the
 * shorter reference), smoothing methods 0..4, and the geometric mean as
 * bp * exp(math.fsum(w_i * log(p_i))) with CPython's fsum (correctly rounded sum).
 *
 * Method 0 (no smoothing, what PARDEN uses) keeps NLTK's behaviour for an order with no
 * matches: the precision becomes DBL_MIN (sys.float_info.min), so the score is tiny but not
 * zero (e.g. ~1e-77 for BLEU-4 with no 4-gram match).  When there is no unigram match at all
 * the score is exactly 0.
 *
 * Tokens: BR_BLEU_CHAR — one token per Unicode code point (what NLTK does when given Python
 * strings, as PARDEN does); BR_BLEU_WORD — Python's str.split(): runs of Unicode whitespace
 * separate tokens.  Input is UTF-8; a byte that does not start a valid UTF-8 sequence is its
 * own token, distinct from every code point.
 *
 * Threads: every function may be called from any number of threads at once; calls share no
 * mutable state.  Scoring characters against one reference (br_bleu_pair, or any call with
 * nrefs == 1: PARDEN's case) keeps scratch memory per thread between calls, so that scoring
 * many pairs allocates nothing: at most about 16 MiB per thread (tens of KiB for PARDEN-sized
 * texts), freed when the thread exits.  A thread that outlives its scoring (the main thread, a
 * pooled worker) may free it earlier with br_bleu_thread_cleanup().  Every other path allocates
 * per call and frees before returning. */
#ifndef BR_GUARD_BLEU_H
#define BR_GUARD_BLEU_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"
#include "text/utf8.h" /* the tokens' decoder: br_utf8_decode, br_utf8_count, br_utf8_prefix */

#define BR_BLEU_MAX_N 16 /* highest n-gram order (length of the weight vector) */

typedef enum { BR_BLEU_CHAR = 0, BR_BLEU_WORD = 1 } br_bleu_unit;

/* NLTK's SmoothingFunction().methodN. */
typedef enum {
    BR_BLEU_SMOOTH0 = 0, /* none: zero precision -> DBL_MIN */
    BR_BLEU_SMOOTH1 = 1, /* add epsilon to zero numerators */
    BR_BLEU_SMOOTH2 = 2, /* add 1 to numerator and denominator for n >= 2 */
    BR_BLEU_SMOOTH3 = 3, /* NIST geometric: 1 / (2^k * denominator) */
    BR_BLEU_SMOOTH4 = 4, /* 1 / (2^k * K / ln(hyp_len)) / denominator */
} br_bleu_smoothing;

typedef struct {
    int n;                          /* number of weights = highest order (1..BR_BLEU_MAX_N) */
    double weights[BR_BLEU_MAX_N];  /* default 0.25 x 4 */
    br_bleu_smoothing smoothing;    /* default BR_BLEU_SMOOTH0 */
    double epsilon;                 /* method 1; default 0.1 */
    int k;                          /* method 4; default 5 */
    bool auto_reweigh;              /* NLTK auto_reweigh; default false */
    br_bleu_unit unit;              /* default BR_BLEU_CHAR */
} br_bleu_opts_t;

/* NLTK's defaults (BLEU-4, uniform weights, no smoothing) over characters. */
void br_bleu_opts_default(br_bleu_opts_t *o);

/* Sufficient statistics of one (hypothesis, references) pair, or of a corpus (the sums). */
typedef struct {
    int n;
    int64_t num[BR_BLEU_MAX_N]; /* clipped matches of order i+1 */
    int64_t den[BR_BLEU_MAX_N]; /* max(1, n-grams of order i+1 in the hypothesis) */
    int64_t hyp_len;            /* tokens in the hypothesis */
    int64_t ref_len;            /* length of the closest reference */
} br_bleu_stats_t;

/* Statistics of one hypothesis against nrefs >= 1 references (NUL-terminated UTF-8). */
br_status br_bleu_stats(const br_bleu_opts_t *o, const char *const *refs, int nrefs, const char *hyp,
                        br_bleu_stats_t *st);
/* Same with explicit byte lengths (the strings need not be NUL-terminated). */
br_status br_bleu_stats_n(const br_bleu_opts_t *o, const char *const *refs, const size_t *ref_bytes,
                          int nrefs, const char *hyp, size_t hyp_bytes, br_bleu_stats_t *st);
/* acc += st (corpus_bleu's sums). acc must have been zeroed with the same n. */
void br_bleu_stats_add(br_bleu_stats_t *acc, const br_bleu_stats_t *st);
/* The score from (summed) statistics, with the options' weights and smoothing. */
br_status br_bleu_from_stats(const br_bleu_opts_t *o, const br_bleu_stats_t *st, double *score);

/* sentence_bleu(refs, hyp). */
br_status br_bleu_sentence(const br_bleu_opts_t *o, const char *const *refs, int nrefs, const char *hyp,
                           double *score);
/* sentence_bleu([ref], hyp) with byte lengths: the common one-reference case. */
br_status br_bleu_pair(const br_bleu_opts_t *o, const char *ref, size_t ref_bytes, const char *hyp,
                       size_t hyp_bytes, double *score);
/* corpus_bleu: hyps[i] against refs[i][0..nrefs[i]). */
br_status br_bleu_corpus(const br_bleu_opts_t *o, size_t count, const char *const *const *refs,
                         const int *nrefs, const char *const *hyps, double *score);

/* Frees the calling thread's kept scratch (see "Threads" above); the next call on this thread
 * makes it again.  Safe to call at any time, also when the thread never scored. */
void br_bleu_thread_cleanup(void);

/* CPython's math.fsum over n doubles (correctly rounded; inf/nan as Python returns them). */
double br_fsum(const double *x, int n);

/* Python's str.isspace() for one code point (what str.split(), str.strip() and re's \s use). */
bool br_py_isspace(uint32_t cp);
#endif
