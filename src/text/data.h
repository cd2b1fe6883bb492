/* Token shards and the mixed-domain data loader.
 *
 * Shard file (data/tok/<domain>/{train,val}.bin), little-endian:
 *   offset 0  char[8]  magic "BRAIDTOK"
 *          8  u32      version (1)
 *         12  u32      vocab size
 *         16  u32      bytes per token (2 = uint16, 4 = uint32)
 *         20  u32      reserved (0)
 *         24  u64      token count
 *         32  u64      UTF-8 bytes of text these tokens encode (for bits per byte)
 *         40  u64[3]   reserved (0)
 *         64  tokens
 * Documents are separated by the tokenizer's end-of-text token. */
#ifndef BR_TEXT_DATA_H
#define BR_TEXT_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct br_shard br_shard_t;
br_status br_shard_open(br_shard_t **out, const char *path); /* mmap + validate header */
void br_shard_close(br_shard_t *s);
size_t br_shard_ntokens(const br_shard_t *s);
uint64_t br_shard_nbytes(const br_shard_t *s);
uint32_t br_shard_vocab(const br_shard_t *s);
/* Copies tokens [start, start+n) as int32. */
br_status br_shard_read(const br_shard_t *s, size_t start, size_t n, int32_t *out);
/* Sequential evaluation windows: window n holds tokens [n*T, n*T + T + 1) (inputs + shifted
 * targets; consecutive windows overlap by one token so every token but the first is predicted
 * exactly once).  br_shard_nwindows gives how many full windows fit (0 when ntokens < T + 1). */
size_t br_shard_nwindows(const br_shard_t *s, size_t T);
br_status br_shard_window(const br_shard_t *s, size_t n, size_t T, int32_t *out);
/* Writes a shard atomically. */
br_status br_shard_write(const char *path, const uint32_t *tokens, size_t n, uint32_t vocab,
                         uint64_t nbytes);

/* A weighted mix of domains, e.g. "general=1,code=1" over <tok_dir>/<domain>/<split>.bin.
 * Random windows of T+1 tokens: a domain is drawn by weight, then a uniform start. */
typedef struct br_mix br_mix_t;
br_status br_mix_create(br_mix_t **out, const char *tok_dir, const char *mix_spec,
                        const char *split, uint64_t seed);
void br_mix_free(br_mix_t *m);
size_t br_mix_ndomains(const br_mix_t *m);
const char *br_mix_domain(const br_mix_t *m, size_t i);
uint32_t br_mix_vocab(const br_mix_t *m);
/* tokens (B, T+1): row b holds one window; inputs are [:, :T], targets [:, 1:]. */
br_status br_mix_next_batch(br_mix_t *m, int32_t *tokens, size_t B, size_t T);
/* Opaque loader position for exact resume (RNG state and counters), 64 bytes. */
typedef struct { uint64_t words[8]; } br_mix_state_t;
void br_mix_get_state(const br_mix_t *m, br_mix_state_t *st);
void br_mix_set_state(br_mix_t *m, const br_mix_state_t *st);
#endif
