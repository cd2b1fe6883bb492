/* A model folder written tensor by tensor (braid upcycle / extend at full size).
 *
 * The caller first describes every output tensor (br_moe_out_mix: an element-wise weighted sum
 * of input tensors, a copy being the one-input case; br_moe_out_rows: rows of an input tensor
 * followed by rows given in memory), which costs only the description, so every refusal comes
 * before any byte is written.  br_moe_out_commit then computes and writes the tensors one at a
 * time, each in chunks of at most BR_MOE_CHUNK elements read straight from the inputs'
 * memory-mapped files, whose pages are dropped again after use: peak memory is a few chunks,
 * not a tensor, an expert or the model (docs/moe.md, "Memory").
 *
 * Output: the Hub's layout.  One model.safetensors when everything fits in shard_size bytes,
 * else model-0000i-of-0000n.safetensors shards and model.safetensors.index.json
 * ({"metadata": {"total_size"}, "weight_map"}), each shard's header {"format": "pt"} as
 * transformers writes; config.json (torch_dtype = the output dtype) and the tokenizer files of
 * tok_dir.  Everything goes to a fresh temporary folder beside OUT, which is renamed to OUT at
 * the end (an existing OUT is replaced only when it holds plain files, e.g. an earlier run). */
#ifndef BR_MOE_STREAM_H
#define BR_MOE_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/safetensors.h"
#include "base/status.h"
#include "lm/model.h"

#define BR_MOE_CHUNK ((size_t)1 << 18) /* elements per step of a weighted sum */
#define BR_MOE_MAX_SOURCES 257

typedef struct br_moe_out br_moe_out_t;

/* dtype: BR_DT_F32, BR_DT_BF16 or BR_DT_F16; shard_size: bytes per shard (0: 5 GB, the Hub's
 * default).  n_measured: the number of inputs whose distance to their mean is measured
 * (br_moe_out_mix with measure = true); 0 when none is. */
br_status br_moe_out_create(br_moe_out_t **out, br_dtype dtype, size_t shard_size, size_t n_measured);
void br_moe_out_free(br_moe_out_t *o); /* NULL is a no-op */

/* name = sum_i wts[i] * src[i] (n >= 1 inputs of one shape, F32/F16/BF16/F64; the shapes are
 * checked here, BR_EFORMAT naming the tensor).  measure: src[i] is input i of the n_measured
 * whose distance to their mean is accumulated (n == n_measured; wts are the mean's). */
br_status br_moe_out_mix(br_moe_out_t *o, const char *name, const br_st_tensor_t *const *src,
                         const double *wts, size_t n, bool measure);
/* name (rows_head + n_rows, cols) = the rows of head (may be NULL: none), then rows (copied). */
br_status br_moe_out_rows(br_moe_out_t *o, const char *name, const br_st_tensor_t *head,
                          const float *rows, int64_t n_rows, int64_t cols);

typedef struct {
    size_t n_shards, n_tensors;
    size_t bytes;          /* of the tensors as written */
    br_dtype dtype;
    size_t n_measured;
    double distance[BR_MOE_MAX_SOURCES]; /* relative distance of each measured input's weights to
                                          * their mean: |x_i - mean| / |mean| over every measured
                                          * tensor (0 when nothing was measured) */
} br_moe_out_report_t;

/* Writes the folder described above to dir (config cfg; tokenizer files copied from tok_dir,
 * may be NULL).  report may be NULL. */
br_status br_moe_out_commit(br_moe_out_t *o, const char *dir, const br_model_config_t *cfg,
                            const char *tok_dir, br_moe_out_report_t *report);

/* "f32" | "bf16" | "f16" (any case) -> dtype; BR_EINVAL naming the choices. */
br_status br_moe_dtype_parse(const char *name, br_dtype *out);
/* "5GB", "500MB", "2GiB", "1000000" -> bytes; BR_EINVAL. */
br_status br_moe_size_parse(const char *text, size_t *out);
#endif
