/* safetensors: read (mmap, fully validated) and write (atomic).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [..],
 *    "data_offsets": [begin, end]}, ...}
 * then the data area; offsets are relative to the data area.
 *
 * The reader validates everything (header length within the file, JSON well-formed, dtype
 * known, shape x dtype size == byte length, offsets inside the data area, no two tensors
 * overlapping, names unique) and returns BR_EFORMAT with a message naming the tensor and the
 * problem.  Tensor data pointers point into the mapping and live until br_st_close. */
#ifndef BR_BASE_SAFETENSORS_H
#define BR_BASE_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "base/dtype.h"
#include "base/status.h"

#define BR_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    br_dtype dtype;
    int ndim;
    int64_t shape[BR_ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* may be unaligned */
} br_st_tensor_t;

typedef struct br_safetensors br_safetensors_t;

/* Maps and validates a file. */
br_status br_st_open(br_safetensors_t **out, const char *path);
/* Validates a buffer the caller keeps alive (used by the fuzzer and by tests). */
br_status br_st_parse(br_safetensors_t **out, const void *buf, size_t size);
void br_st_close(br_safetensors_t *st); /* NULL is a no-op */

size_t br_st_count(const br_safetensors_t *st);
const br_st_tensor_t *br_st_tensor(const br_safetensors_t *st, size_t i); /* in file order */
const br_st_tensor_t *br_st_find(const br_safetensors_t *st, const char *name); /* NULL if absent */
size_t br_st_metadata_count(const br_safetensors_t *st);
const char *br_st_metadata_key(const br_safetensors_t *st, size_t i);
const char *br_st_metadata_value(const br_safetensors_t *st, size_t i);
const char *br_st_metadata_get(const br_safetensors_t *st, const char *key); /* NULL if absent */

/* Copies a floating tensor (F32, F16, BF16, F64) into `out` as float32.  `want_numel` must equal
 * the tensor's element count (BR_EFORMAT naming the tensor otherwise). */
br_status br_st_read_f32(const br_st_tensor_t *t, float *out, size_t want_numel);
/* Same, after checking the exact shape (ndim dims). */
br_status br_st_load_f32(const br_safetensors_t *st, const char *name, float *out, int ndim,
                         const int64_t *shape);

/* Writer.  Tensors are written in the order added.  Data passed to br_st_writer_add is not
 * copied and must stay valid until br_st_writer_save returns. */
typedef struct br_st_writer br_st_writer_t;
br_status br_st_writer_create(br_st_writer_t **out);
br_status br_st_writer_add(br_st_writer_t *w, const char *name, br_dtype dtype, int ndim,
                           const int64_t *shape, const void *data);
/* Adds float32 data stored as `dtype` (F32, F16 or BF16).  F16/BF16 are converted now (copied);
 * F32 data is referenced like br_st_writer_add: keep it valid until br_st_writer_save returns. */
br_status br_st_writer_add_f32(br_st_writer_t *w, const char *name, br_dtype dtype, int ndim,
                               const int64_t *shape, const float *data);
br_status br_st_writer_set_metadata(br_st_writer_t *w, const char *key, const char *value);
/* Atomic: temp file + fsync + rename. */
br_status br_st_writer_save(br_st_writer_t *w, const char *path);
void br_st_writer_free(br_st_writer_t *w);
#endif
