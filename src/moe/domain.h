/* Nexus domain embeddings: the seed model's mean final hidden state over a sample of a
 * domain's training tokens (the paper uses an external text embedder; braid uses the seed). */
#ifndef BR_MOE_DOMAIN_H
#define BR_MOE_DOMAIN_H
#include <stddef.h>

#include "base/buf.h"
#include "base/status.h"
#include "lm/model.h"

/* out (C) = mean over about n_tokens tokens (windows of up to T, evenly spaced over the
 * shard file `shard_path`, e.g. data/tok/code/train.bin) of m's final RMSNorm output.
 * BR_EINVAL for an empty shard or a vocabulary that does not match the model. */
br_status br_domain_embedding(br_model_t *m, const char *shard_path, size_t n_tokens, size_t T,
                              float *out);
/* The shard of a domain directory or a .bin path into b (replaced): DIR -> DIR/train.bin.
 * BR_ENOMEM (growable b) or BR_ERANGE (fixed b) when it does not fit. */
br_status br_domain_shard_path(br_buf_t *b, const char *dir_or_bin);
/* BR_ENOTFOUND naming the first domain (folder or .bin) whose shard does not exist. */
br_status br_domain_check(const char *const *dirs, size_t n);
/* The embeddings of n domains with the seed checkpoint at seed_dir: *out (n, C) malloc'd,
 * *dim = C (the seed's hidden size); each from about `tokens` tokens (logged per domain). */
br_status br_domain_embeddings(const char *seed_dir, const char *const *dirs, size_t n, size_t tokens,
                               float **out, int *dim);
#endif
