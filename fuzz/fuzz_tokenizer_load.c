/* libFuzzer: arbitrary bytes as a tokenizer file (tokenizer.json, tiktoken JSON or text form)
 * must load or fail with a status, never crash; a loaded one must round-trip a sample. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/braid-fuzz-load-%d.json", (int)getpid());
    if (br_write_file_atomic(path, data, size) != BR_OK) return 0;
    br_tokenizer_t *t = NULL;
    if (br_tokenizer_load(&t, path) == BR_OK) {
        const char *s = "Hello, world! \xff\xfe 123 <|endoftext|>";
        int32_t *ids;
        size_t n;
        if (br_tokenizer_encode(t, s, strlen(s), 1, &ids, &n) != BR_OK) abort();
        char *back;
        size_t bl;
        if (br_tokenizer_decode(t, ids, n, &back, &bl) != BR_OK) abort();
        if (br_tokenizer_lossless(t) && (bl != strlen(s) || memcmp(back, s, bl))) abort();
        free(back);
        free(ids);
        br_tokenizer_free(t);
    }
    return 0;
}
