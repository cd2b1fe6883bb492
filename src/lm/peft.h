/* LoRA adapters on disk: a folder as Hugging Face PEFT writes it (nn/lora.h does the compute).
 *
 *   adapter_config.json        {"peft_type": "LORA", "r": 8, "lora_alpha": 16,
 *                               "target_modules": ["q_proj", "v_proj"], "use_rslora": false,
 *                               "rank_pattern": {}, "alpha_pattern": {}, "bias": "none", ...}
 *   adapter_model.safetensors  base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight
 *                              (r, C) and ...lora_B.weight (OC, r); mlp.{gate,up,down}_proj.
 *
 * The tensors decide which modules are adapted and their ranks; the config gives alpha (and
 * per-module alpha through alpha_pattern, matched as PEFT does: the key equals the module
 * name or is a dot-separated suffix of it).  Every alpha must be a finite number in
 * (0, BR_LORA_ALPHA_MAX] and every weight finite: an adapter that would turn logits into
 * Inf/NaN is refused when it is loaded, naming the field or tensor. */
#ifndef BR_LM_PEFT_H
#define BR_LM_PEFT_H
#include "base/status.h"
#include "nn/lora.h"

/* Loads a PEFT folder and checks every tensor against the base shapes; BR_EFORMAT /
 * BR_EUNSUPPORTED / BR_ENOTFOUND with a message naming the file and the field or tensor.
 * The adapter's name is the folder's last component. */
br_status br_lora_load(br_lora_adapter_t **out, const char *dir, const br_lora_shapes_t *shapes);
/* The same with base/fileio.h open flags: BR_OPEN_NOFOLLOW for folders a request names (the
 * server's run-time loads), so that neither file is read through a symbolic link. */
br_status br_lora_load_flags(br_lora_adapter_t **out, const char *dir, const br_lora_shapes_t *shapes, int flags);
/* Writes the PEFT folder (created if needed; both files atomically). */
br_status br_lora_save(const br_lora_adapter_t *a, const char *dir);
#endif
