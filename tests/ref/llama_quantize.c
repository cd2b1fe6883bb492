/* Test-only: llama.cpp's own quantizer (llama_model_quantize in the libllama that npm's
 * node-llama-cpp@3.21.1 ships, release v0.4.0) run on a GGUF file, so tests/test_lm_gguf.c can
 * check that braid loads what llama.cpp writes.
 *
 *   llama_quantize LIBLLAMA.so IN.gguf OUT.gguf FTYPE [pure]
 *
 * FTYPE is a llama_ftype number (2 Q4_0, 7 Q8_0, 14 Q4_K_S, 15 Q4_K_M, 18 Q6_K); "pure" stores
 * every matrix in FTYPE's base type (llama.cpp's --pure).  The library is dlopen'd, so this
 * builds without it (the Makefile still builds it only where it exists).
 *
 * The struct below is llama_model_quantize_params exactly as include/llama.h of that release
 * declares it (node-llama-cpp ships the source as llama/gitRelease.bundle, tag v0.4.0; lines
 * 433-449 of include/llama.h): field order and types must match, since the library fills it
 * (llama_model_quantize_default_params) and reads it.  Enums are int-sized in the ABI; the
 * pointers are opaque here (always left NULL by the defaults). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t nthread;
    int ftype;                /* enum llama_ftype */
    int output_tensor_type;   /* enum ggml_type */
    int token_embedding_type; /* enum ggml_type */
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const void *imatrix;
    const void *kv_overrides;
    const void *tt_overrides;
    const int32_t *prune_layers;
    size_t max_buf_size;
} llama_model_quantize_params;

typedef llama_model_quantize_params (*default_params_fn)(void);
typedef uint32_t (*quantize_fn)(const char *in, const char *out, const llama_model_quantize_params *p);

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6 || (argc == 6 && strcmp(argv[5], "pure"))) {
        fprintf(stderr, "usage: %s LIBLLAMA.so IN.gguf OUT.gguf FTYPE [pure]\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "llama_quantize: %s\n", dlerror());
        return 3;
    }
    default_params_fn defaults = (default_params_fn)(uintptr_t)dlsym(lib, "llama_model_quantize_default_params");
    quantize_fn quantize = (quantize_fn)(uintptr_t)dlsym(lib, "llama_model_quantize");
    if (!defaults || !quantize) {
        fprintf(stderr, "llama_quantize: %s lacks llama_model_quantize\n", argv[1]);
        return 3;
    }
    llama_model_quantize_params p = defaults();
    p.nthread = 1;
    p.ftype = atoi(argv[4]);
    p.pure = argc == 6;
    uint32_t rc = quantize(argv[2], argv[3], &p);
    if (rc) fprintf(stderr, "llama_quantize: llama_model_quantize returned %u\n", rc);
    return rc ? 1 : 0;
}
