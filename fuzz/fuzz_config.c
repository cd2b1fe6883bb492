/* libFuzzer: arbitrary bytes as a model config.json (llama, mixtral, braid_moe) must parse or
 * fail with a status, never crash; an accepted config must validate again, save, and load back
 * to the same sizes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lm/model.h"

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
    return 0;
}
