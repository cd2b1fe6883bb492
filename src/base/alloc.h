/* Aligned allocation and a bump arena. */
#ifndef BR_BASE_ALLOC_H
#define BR_BASE_ALLOC_H
#include <stddef.h>
#include "base/status.h"

#define BR_ALIGN 64 /* cache line; also enough for AVX-512 loads */

/* 64-byte aligned, zero-filled. NULL when size is 0 or memory is short. Free with br_free. */
void *br_alloc(size_t size);
void br_free(void *p);
/* Checked size arithmetic: *out = a * b, BR_ERANGE on overflow. */
br_status br_mul_size(size_t *out, size_t a, size_t b);

/* Bump allocator: many allocations, one free.  Blocks grow geometrically; pointers stay valid
 * until br_arena_reset/br_arena_free. */
typedef struct br_arena_block br_arena_block_t;
typedef struct {
    br_arena_block_t *head;
    size_t block_size; /* default size of a new block */
    size_t used_total; /* bytes handed out since the last reset */
} br_arena_t;

void br_arena_init(br_arena_t *a, size_t block_size);
/* 64-byte aligned, zero-filled; NULL when out of memory. */
void *br_arena_alloc(br_arena_t *a, size_t size);
char *br_arena_strdup(br_arena_t *a, const char *s);
void br_arena_reset(br_arena_t *a); /* keeps the first block */
void br_arena_free(br_arena_t *a);
#endif
