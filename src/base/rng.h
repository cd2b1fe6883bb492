/* Seedable, platform-independent RNG: splitmix64 seeding + xoshiro256**.  The same seed gives
 * the same stream on every machine and compiler (no libc rand, no floating-point surprises). */
#ifndef BR_BASE_RNG_H
#define BR_BASE_RNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } br_rng_t;

void br_rng_seed(br_rng_t *r, uint64_t seed);
/* An independent stream derived from (seed, stream id), e.g. one per thread or per domain. */
void br_rng_seed_stream(br_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t br_rng_u64(br_rng_t *r);
uint32_t br_rng_u32(br_rng_t *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t br_rng_below(br_rng_t *r, uint64_t n);
/* Uniform in [0, 1) with 24 (float) / 53 (double) random bits. */
float br_rng_float(br_rng_t *r);
double br_rng_double(br_rng_t *r);
/* Standard normal (Box-Muller, both values used). */
double br_rng_normal(br_rng_t *r);
/* Fill with N(0, std^2). */
void br_rng_fill_normal(br_rng_t *r, float *out, size_t n, float std);
void br_rng_fill_uniform(br_rng_t *r, float *out, size_t n, float lo, float hi);
/* 64-bit hash of bytes (deterministic, for splits and ids). */
uint64_t br_hash64(const void *data, size_t n, uint64_t seed);
#endif
