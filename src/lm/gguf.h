/* GGUF v3 files (llama.cpp's format): read and write, and a braid model to and from one
 * (docs/lm.md, "GGUF and quantize").
 *
 * Layout: "GGUF", version 3, tensor count, metadata count (u64); metadata key/value pairs; tensor
 * infos (name, dims with ne[0] the row length, ggml type, offset); padding to general.alignment
 * (32 by default); the tensor data, each tensor at an aligned offset.  Little-endian. */
#ifndef BR_LM_GGUF_H
#define BR_LM_GGUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "kernels/kernels.h"
#include "lm/model.h"
#include "text/tokenizer.h"

typedef enum {
    BR_GGUF_U8, BR_GGUF_I8, BR_GGUF_U16, BR_GGUF_I16, BR_GGUF_U32, BR_GGUF_I32, BR_GGUF_F32,
    BR_GGUF_BOOL, BR_GGUF_STRING, BR_GGUF_ARRAY, BR_GGUF_U64, BR_GGUF_I64, BR_GGUF_F64,
    BR_GGUF_VTYPE_COUNT
} br_gguf_vtype;

typedef struct {
    const char *key;
    br_gguf_vtype type;
    uint64_t u;      /* unsigned and bool scalars */
    int64_t i;       /* signed scalars */
    double f;        /* F32, F64 */
    const char *str; /* STRING (NUL-terminated copy; may hold NULs before the end) */
    size_t str_len;
    br_gguf_vtype arr_type; /* ARRAY: element type (never ARRAY), count, raw elements in the file */
    size_t arr_n;
    const uint8_t *arr;
} br_gguf_kv_t;

typedef struct {
    const char *name;
    uint32_t n_dims;  /* 1..4 */
    uint64_t ne[4];   /* ne[0]: values per row */
    br_wtype wt;      /* F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K */
    const void *data; /* inside the file */
    size_t nbytes;
} br_gguf_tensor_t;

typedef struct br_gguf br_gguf_t;

/* Parses a whole file image (data must outlive *out).  Every count, length, dimension and
 * offset is checked against the buffer before anything is allocated; BR_EFORMAT names what is
 * wrong, BR_EUNSUPPORTED a version or tensor type braid does not read. */
br_status br_gguf_parse(br_gguf_t **out, const uint8_t *data, size_t size);
/* br_gguf_parse over a read-only mapping of path (kept until br_gguf_close). */
br_status br_gguf_open(br_gguf_t **out, const char *path);
void br_gguf_close(br_gguf_t *g); /* NULL is a no-op */
size_t br_gguf_kv_count(const br_gguf_t *g);
const br_gguf_kv_t *br_gguf_kv(const br_gguf_t *g, size_t i);
/* Whether path names a GGUF file (ends in .gguf and is not a folder). */
bool br_gguf_is_path(const char *path);
const br_gguf_kv_t *br_gguf_find_kv(const br_gguf_t *g, const char *key); /* NULL: absent */
size_t br_gguf_tensor_count(const br_gguf_t *g);
const br_gguf_tensor_t *br_gguf_tensor(const br_gguf_t *g, size_t i);
const br_gguf_tensor_t *br_gguf_find_tensor(const br_gguf_t *g, const char *name);
/* The i-th string of a STRING array (i < arr_n), *len bytes (not NUL-terminated). */
const char *br_gguf_arr_str(const br_gguf_kv_t *kv, size_t i, size_t *len);

/* ---- writing ---- */
typedef struct br_gguf_writer br_gguf_writer_t;
br_status br_gguf_writer_create(br_gguf_writer_t **out);
void br_gguf_writer_free(br_gguf_writer_t *w); /* NULL is a no-op */
br_status br_gguf_add_u32(br_gguf_writer_t *w, const char *key, uint32_t v);
br_status br_gguf_add_f32(br_gguf_writer_t *w, const char *key, float v);
br_status br_gguf_add_bool(br_gguf_writer_t *w, const char *key, bool v);
br_status br_gguf_add_str(br_gguf_writer_t *w, const char *key, const char *v);
br_status br_gguf_add_str_array(br_gguf_writer_t *w, const char *key, const char *const *v, size_t n);
br_status br_gguf_add_i32_array(br_gguf_writer_t *w, const char *key, const int32_t *v, size_t n);
br_status br_gguf_add_f32_array(br_gguf_writer_t *w, const char *key, const float *v, size_t n);
/* A tensor of rows x ne0 values of type wt (rows = 0: a 1-D tensor of ne0); data is not copied
 * and must stay valid until br_gguf_write. */
br_status br_gguf_add_tensor(br_gguf_writer_t *w, const char *name, br_wtype wt, size_t ne0,
                             size_t rows, const void *data);
/* A 3-D tensor ne2 x ne1 x ne0 (ne2 = experts: ne2 matrices of ne1 rows, one after the other). */
br_status br_gguf_add_tensor3(br_gguf_writer_t *w, const char *name, br_wtype wt, size_t ne0, size_t ne1,
                              size_t ne2, const void *data);
/* Writes the file atomically (alignment 32). */
br_status br_gguf_write(const br_gguf_writer_t *w, const char *path);

/* ---- models ---- */
/* path = the model as GGUF architecture "llama" (llama.cpp's tensor names, Q and K rows
 * permuted to its RoPE layout as convert_hf_to_gguf.py does), matrices stored as wt (F32, F16,
 * BF16, Q8_0, Q4_0, Q4_K or Q6_K; norms F32).  m must hold F32 parameters.  BR_EUNSUPPORTED naming the field
 * for what GGUF's llama cannot express (biases, q/k norms, mixtures, parallel blocks, RoPE
 * scaling). */
br_status br_model_save_gguf(const br_model_t *m, const char *path, br_wtype wt);
/* A BPE vocabulary for the file's tokenizer.ggml.* keys (model "gpt2": byte-level tokens as
 * GPT-2 spells them, merges "a b"; model "llama": SentencePiece pieces with scores, no merges);
 * llama.cpp needs one to load a file.  The fields after
 * n_merges are optional (zero: not written). */
typedef struct {
    const char *model; /* "gpt2" */
    const char *pre;   /* tokenizer.ggml.pre: gpt-2, llama-bpe, qwen2 (llama.cpp's regex names) */
    const char *const *tokens;
    size_t n_tokens; /* <= vocab_size (the rest is written as [PAD<i>] tokens of type UNUSED) */
    const char *const *merges;
    size_t n_merges;
    const int32_t *token_type;  /* n_tokens llama_token_type values (1 normal, 3 control, 4 user
                                 * defined); NULL: all normal */
    const char *chat_template;  /* tokenizer.chat_template (Jinja) */
    int add_bos;                /* tokenizer.ggml.add_bos_token: 0 not written, 1 false, 2 true */
    bool has_pad;
    int32_t pad_id;             /* tokenizer.ggml.padding_token_id when has_pad */
    const float *scores;        /* n_tokens tokenizer.ggml.scores (model "llama"), or NULL */
    int add_space_prefix;       /* tokenizer.ggml.add_space_prefix: as add_bos */
    bool has_bos, has_eos;      /* bos_id/eos_id are written where the model's config names none */
    int32_t bos_id, eos_id;
    size_t n_more_stops;        /* the folder's second and third stop ids (Llama-3's <|eot_id|>,
                                 * <|eom_id|>) as eot_token_id and eom_token_id: llama.cpp and
                                 * braid's prompt pipeline end generation on each */
    int32_t more_stops[2];
} br_gguf_vocab_t;
/* The vocabulary of a model folder's tokenizer.json (and tokenizer_config.json's
 * add_bos_token, chat_template and pad_token; with a tokenizer_config.json, the BOS rule and ids
 * the prompt pipeline (lm/prompt.h) resolves there, so the file starts and ends prompts as the
 * folder does) for br_model_save_gguf_vocab; *out is freed with
 * br_gguf_vocab_free.  Byte-level BPE as model "gpt2", SentencePiece-style BPE (byte fallback,
 * U+2581 spaces) as model "llama" with scores from the merge ranks (lm/gguf_vocab.c):
 * BR_EUNSUPPORTED naming what llama.cpp cannot express (a pre-tokenizer regex it does not
 * name), BR_ENOTFOUND without tokenizer.json. */
br_status br_gguf_vocab_load(br_gguf_vocab_t **out, const char *dir);
void br_gguf_vocab_free(br_gguf_vocab_t *v); /* NULL is a no-op */
/* braid's tokenizer from a GGUF file's tokenizer.ggml.* keys (model "gpt2" with pre gpt-2,
 * llama-bpe/llama3 or qwen2; model "llama": merges derived from the scores), so a Hub GGUF runs without a tokenizer.json.  BR_ENOTFOUND when
 * the file has no tokenizer, BR_EUNSUPPORTED for other tokenizer models (named). */
br_status br_gguf_load_tokenizer(br_tokenizer_t **out, const char *path);
/* The same from an open file (its errors do not name the path). */
br_status br_gguf_tokenizer(br_tokenizer_t **out, const br_gguf_t *g);
/* Whether the GGUF file at path opens and has tokenizer.ggml.* keys. */
bool br_gguf_has_tokenizer(const char *path);
/* The tokenizer.json text (*json malloc'd) br_gguf_load_tokenizer builds from g's keys. */
br_status br_gguf_tokenizer_json(const br_gguf_t *g, char **json);
/* br_model_save_gguf with the tokenizer in the metadata (vocab may be NULL: none). */
br_status br_model_save_gguf_vocab(const br_model_t *m, const char *path, br_wtype wt,
                                   const br_gguf_vocab_t *vocab);
/* A "llama" GGUF (dense, or Mixtral's experts) as a braid model for inference: a view into the
 * mapped file in which every matrix keeps its own type (F32, F16, BF16, Q8_0, Q4_0, Q4_K or
 * Q6_K: llama.cpp's Q4_K_M mixes Q4_K and Q6_K) and norms stay F32, so loading copies only the
 * Q and K matrices (GGUF permutes their rows) and a router stored in another type than F32.
 * An all-F32 file is such a view too (m->params NULL: br_model_load_gguf gives a trainable,
 * saveable copy).
 * Errors name the key or tensor that is missing, mis-shaped or of a type braid does not run. */
br_status br_model_open_gguf(br_model_t **out, const char *path);
/* The same file as an F32 model of its exact values (trainable, saveable; F32 files as
 * br_model_open_gguf loads them): what a view of it computes in F32. */
br_status br_model_load_gguf(br_model_t **out, const char *path);
#endif
