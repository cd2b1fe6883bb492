/* The per-architecture part of a Hugging Face config.json (private to src/lm): model_type,
 * and the fields that change the math (biases, q/k norms, RoPE scaling, sliding windows).
 * docs/lm.md, "Bring your own model", lists what each architecture accepts. */
#ifndef BR_LM_CONFIG_HF_H
#define BR_LM_CONFIG_HF_H
#include <jansson.h>

#include "lm/model.h"

/* Reads model_type and the architecture fields of root into c (after the dense fields, before
 * validation).  BR_EUNSUPPORTED naming the field for anything braid would mis-run. */
br_status br_config_hf_parse(br_model_config_t *c, json_t *root);
/* Appends "; reason" for every inconsistent architecture field (snprintf-style at *nb). */
void br_config_hf_validate(br_model_config_t *c, char *bad, size_t cap, size_t *nb);
/* Writes model_type, architectures and the architecture fields (nothing changes for a plain
 * Llama config, so braid's own config.json files keep their bytes). */
void br_config_hf_save(const br_model_config_t *c, json_t *o);
/* RoPE tables (maxpos, hd/2) with the config's rope_scaling applied (br_rope_tables when
 * none, so the default is bit-identical to it). */
void br_config_rope_tables(const br_model_config_t *c, float *cos, float *sin);
#endif
