/* A byte buffer for strings and paths: the one place braid builds a string whose length the
 * input decides (file paths, messages).
 *
 * The content is always NUL-terminated (br_buf_str never returns NULL).  A buffer either grows
 * (br_buf_init: heap, doubled as needed, BR_ENOMEM when memory is short) or is fixed
 * (br_buf_fixed over caller storage: BR_ERANGE when the text would not fit, and the content is
 * then left unchanged).  A failing call never leaves a truncated string behind.
 *
 *     br_buf_t path = BR_BUF_INIT;
 *     br_status s = br_buf_path(&path, dir, "config.json");
 *     if (!s) s = br_config_load(&cfg, br_buf_str(&path));
 *     br_buf_free(&path);
 */
#ifndef BR_BASE_BUF_H
#define BR_BASE_BUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include "base/status.h"

typedef struct {
    char *data; /* (cap) NULL until the first append of a growable buffer */
    size_t len; /* bytes before the terminating NUL */
    size_t cap; /* bytes of storage, NUL included */
    bool fixed; /* caller storage: never grown, never freed */
} br_buf_t;

#define BR_BUF_INIT {NULL, 0, 0, false}

void br_buf_init(br_buf_t *b);
/* A buffer over `storage` (cap >= 1 bytes), emptied. */
void br_buf_fixed(br_buf_t *b, char *storage, size_t cap);
/* Frees a growable buffer's memory and empties it (a fixed one is only emptied). */
void br_buf_free(br_buf_t *b);
/* Empties the content, keeps the memory. */
void br_buf_clear(br_buf_t *b);
/* The content ("" when empty). Valid until the next call that changes b. */
const char *br_buf_str(const br_buf_t *b);

/* Appends n bytes / a string / printf output.  On failure b is unchanged. */
br_status br_buf_append(br_buf_t *b, const void *data, size_t n);
br_status br_buf_puts(br_buf_t *b, const char *s);
br_status br_buf_printf(br_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
br_status br_buf_vprintf(br_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Replaces the content with dir "/" name (no doubled '/' when dir ends with one; an empty dir
 * gives "/name").  Errors name both parts: "path too long: DIR/NAME" (fixed) or out of memory. */
br_status br_buf_path(br_buf_t *b, const char *dir, const char *name);
#endif
