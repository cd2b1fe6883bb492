/* Small helpers of the server: names, UTF-8 checks and repair. */
#ifndef BR_SERVE_UTIL_H
#define BR_SERVE_UTIL_H
#include <stdbool.h>
#include <stddef.h>

/* [A-Za-z0-9_.-]{1,max}, not "." or "..": safe as a folder name and a label value. */
bool br_serve_name_ok(const char *s, size_t max);

/* Length of the longest prefix of s[0..n) that is valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF). */
size_t br_utf8_valid_len(const char *s, size_t n);
/* Bytes at the end of s[0..n) that start a multi-byte sequence that is still incomplete (0..3):
 * text to hold back while streaming until the next token completes it. */
size_t br_utf8_incomplete_tail(const char *s, size_t n);
/* Copies s[0..n) into out (capacity >= 3n + 1), replacing each invalid byte with U+FFFD;
 * returns the output length (NUL-terminated). */
size_t br_utf8_repair(char *out, const char *s, size_t n);
#endif
