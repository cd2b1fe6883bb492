#include "base/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *br_alloc(size_t size)
{
    if (size == 0) return NULL;
    size_t rounded = (size + BR_ALIGN - 1) / BR_ALIGN * BR_ALIGN;
    if (rounded < size) return NULL;
    void *p = aligned_alloc(BR_ALIGN, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void br_free(void *p) { free(p); }

br_status br_mul_size(size_t *out, size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a) return br_error(BR_ERANGE, "size overflow: %zu x %zu", a, b);
    *out = a * b;
    return BR_OK;
}

struct br_arena_block {
    br_arena_block_t *next;
    size_t cap, used;
    _Alignas(BR_ALIGN) unsigned char data[];
};

void br_arena_init(br_arena_t *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : (1u << 20);
    a->used_total = 0;
}

void *br_arena_alloc(br_arena_t *a, size_t size)
{
    size_t need = (size + BR_ALIGN - 1) / BR_ALIGN * BR_ALIGN;
    if (need < size) return NULL;
    br_arena_block_t *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = a->block_size;
        if (b && cap < b->cap * 2) cap = b->cap * 2;
        if (cap < need) cap = need;
        b = br_alloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used_total += need;
    memset(p, 0, need);
    return p;
}

char *br_arena_strdup(br_arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = br_arena_alloc(a, n);
    if (p) memcpy(p, s, n);
    return p;
}

void br_arena_reset(br_arena_t *a)
{
    br_arena_block_t *b = a->head;
    if (!b) return;
    /* keep the newest (largest) block, free the rest */
    br_arena_block_t *rest = b->next;
    while (rest) {
        br_arena_block_t *n = rest->next;
        br_free(rest);
        rest = n;
    }
    b->next = NULL;
    b->used = 0;
    a->used_total = 0;
}

void br_arena_free(br_arena_t *a)
{
    br_arena_block_t *b = a->head;
    while (b) {
        br_arena_block_t *n = b->next;
        br_free(b);
        b = n;
    }
    a->head = NULL;
    a->used_total = 0;
}
