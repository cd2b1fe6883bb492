/* libFuzzer: arbitrary bytes as a model config.json (llama, mixtral, braid_moe) must parse or
 * fail with a status, never crash; an accepted config must validate again, save, and load back
 * to the same sizes; its RoPE tables stay within 512 MB, and the parameter table the loader
 * sizes without allocating (br_model_table, counting only) has the sizes of the filled one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lm/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/braid-fuzz-config-%d.json", (int)getpid());
    br_model_config_t c, d;
    if (br_config_parse(&c, (const char *)data, size) != BR_OK) return 0;
    if (br_config_validate(&c) != BR_OK) abort();
    if (br_config_save(&c, path) != BR_OK) abort();
    if (br_config_load(&d, path) != BR_OK) abort();
    if (d.vocab_size != c.vocab_size || d.hidden_size != c.hidden_size ||
        d.intermediate_size != c.intermediate_size || d.num_hidden_layers != c.num_hidden_layers ||
        d.num_attention_heads != c.num_attention_heads || d.num_key_value_heads != c.num_key_value_heads ||
        d.head_dim != c.head_dim || d.max_position_embeddings != c.max_position_embeddings ||
        d.block != c.block || d.tie_word_embeddings != c.tie_word_embeddings)
        abort();
    if ((long long)c.max_position_embeddings * c.head_dim > (1LL << 27)) abort();
    size_t n, n2;
    size_t floats = br_model_table(&c, NULL, 0, &n);
    if (n < 3 || floats < br_config_num_params(&c)) abort();
    if (n <= 100000) { /* fill it (the table of a huge config is only ever counted) */
        br_tensor_info_t *t = calloc(n, sizeof *t);
        if (!t) return 0;
        if (br_model_table(&c, t, n, &n2) != floats || n2 != n || t[n - 1].offset + t[n - 1].numel > floats) abort();
        free(t);
    }
    return 0;
}
