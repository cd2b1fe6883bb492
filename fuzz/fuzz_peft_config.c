/* libFuzzer: arbitrary bytes as a PEFT adapter_config.json next to the real fixture weights
 * (tests/ref/lora_peft/adapter_model.safetensors) must load or fail with a status, never crash;
 * a loaded adapter has every scale finite and in (0, BR_LORA_ALPHA_MAX] (lm/peft.h: larger ones
 * turn logits into Inf/NaN) and ranks within the fixture's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "lm/peft.h"
#include "nn/lora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64], cfg[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/braid-fuzz-peft-%d", (int)getpid());
        char cmd[512];
        /* the fuzzer runs in build-fuzz/ */
        snprintf(cmd, sizeof cmd, "mkdir -p %s && cp ../tests/ref/lora_peft/adapter_model.safetensors %s/", dir, dir);
        if (system(cmd) != 0) abort();
        snprintf(cfg, sizeof cfg, "%s/adapter_config.json", dir);
    }
    if (br_write_file_atomic(cfg, data, size) != BR_OK) return 0;
    /* the shapes of tests/lora_fixture.h */
    br_lora_shapes_t s = {.n_layers = 2};
    size_t in[BR_PROJ_COUNT] = {16, 16, 16, 16, 16, 16, 24};
    size_t out[BR_PROJ_COUNT] = {16, 8, 8, 16, 24, 24, 16};
    memcpy(s.in, in, sizeof in);
    memcpy(s.out, out, sizeof out);
    br_lora_adapter_t *a = NULL;
    if (br_lora_load(&a, dir, &s) == BR_OK) {
        for (int l = 0; l < s.n_layers; l++)
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                const br_lora_module_t *m = br_lora_module(a, l, (br_proj)p);
                if (m->rank < 0 || m->rank > 4) abort();
                if (m->rank && !(isfinite(m->scale) && m->scale > 0 && m->scale <= BR_LORA_ALPHA_MAX)) abort();
            }
        br_lora_free(a);
    } else if (a) {
        abort();
    }
    return 0;
}
