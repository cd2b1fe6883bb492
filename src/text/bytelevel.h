/* GPT-2's byte-level alphabet: every byte maps to one printable code point (bytes_to_unicode
 * in openai/gpt-2 encoder.py), so that vocab files (encoder.json, tokenizer.json) can hold
 * arbitrary bytes as JSON strings.  Shared by the tokenizer loader and the BPE trainer. */
#ifndef BR_TEXT_BYTELEVEL_H
#define BR_TEXT_BYTELEVEL_H
#include <stddef.h>
#include <stdint.h>

/* Code point for byte b. */
uint32_t br_bytelevel_cp(uint8_t b);
/* Byte for code point cp, or -1 when cp is not in the alphabet. */
int br_bytelevel_byte(uint32_t cp);
/* Writes the byte-level UTF-8 form of bytes[0..n) to out (capacity >= 2*n + 1, NUL-terminated);
 * returns its length. */
size_t br_bytelevel_encode(char *out, const uint8_t *bytes, size_t n);
/* Inverse: decodes the UTF-8 string s[0..n) to raw bytes in out (capacity >= n).  Returns the
 * byte count, or -1 when s is not valid UTF-8 or holds a code point outside the alphabet. */
long br_bytelevel_decode(uint8_t *out, const char *s, size_t n);
#endif
