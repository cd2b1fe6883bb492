/* UTF-8: the one decoder of braid, and what is built on it.
 *
 * Valid means RFC 3629 (what Python's str.decode("utf-8") accepts): no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing past U+10FFFF, no truncated sequence.  Every caller
 * (BLEU's tokens, the server's streaming and repair, the tokenizer's byte-level alphabet,
 * corpus checks) decodes with br_utf8_decode, so they agree on what a character is. */
#ifndef BR_TEXT_UTF8_H
#define BR_TEXT_UTF8_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

/* br_utf8_decode returns a value >= this for a byte that does not start a valid sequence. */
#define BR_UTF8_INVALID 0x110000u

/* Decodes the code point at s[0..bytes) (bytes >= 1) and sets *len to its byte length.  When
 * s[0] does not start a valid, complete sequence it returns BR_UTF8_INVALID + s[0] with
 * *len = 1: distinct invalid bytes stay distinct from each other and from every code point,
 * and decoding resumes at the next byte. */
uint32_t br_utf8_decode(const unsigned char *s, size_t bytes, size_t *len);
/* Number of code points in s[0..bytes) (each invalid byte counts one). */
size_t br_utf8_count(const char *s, size_t bytes);
/* Writes code point cp (< 0x110000) as UTF-8 into out (>= 4 bytes); returns the bytes written. */
size_t br_utf8_encode(char *out, uint32_t cp);
/* Byte length of the first `count` code points of s[0..bytes) (all of it when shorter). */
size_t br_utf8_prefix(const char *s, size_t bytes, size_t count);
/* BR_OK when s[0..n) is valid UTF-8; otherwise BR_EFORMAT naming `what`, the first bad byte,
 * its offset and line. */
br_status br_utf8_check(const char *what, const char *s, size_t n);
#endif
