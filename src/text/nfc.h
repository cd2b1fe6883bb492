/* Unicode NFC normalization (canonical decomposition, canonical ordering, canonical
 * composition), with tables generated from the Unicode Character Database by
 * scripts/gen_nfc_table.py.  Used by tokenizers whose tokenizer.json asks for {"type": "NFC"}. */
#ifndef BR_TEXT_NFC_H
#define BR_TEXT_NFC_H
#include <stddef.h>
#include "base/status.h"

/* NFC of s[0..n): *out is malloc'd (NUL-terminated), *out_len its length.  Bytes that are not
 * valid UTF-8 are kept as they are and act as starters that compose with nothing. */
br_status br_nfc(const char *s, size_t n, char **out, size_t *out_len);
/* Nonzero when s[0..n) is certainly unchanged by NFC (a fast check: ASCII, or no code point that
 * decomposes, combines or composes). */
int br_nfc_quick(const char *s, size_t n);
#endif
