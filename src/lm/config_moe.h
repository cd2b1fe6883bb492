/* The mixture-of-experts part of config.json and of checkpoint tensor names (docs/moe.md).
 *
 * config.json fields (all optional; absent = dense):
 *   num_local_experts, num_experts_per_tok, router_aux_loss_coef   (Mixtral's names)
 *   norm_topk_prob, shared_expert_intermediate_size                 (Qwen2-MoE's names)
 *   router_z_loss_coef, router ("linear" | "nexus"), nexus_domain_dim, nexus_hidden_size,
 *   num_attention_experts, attention_shared_kv                      (braid's)
 * A model whose only MoE part is a linear-router FFN in sequential blocks is saved as
 * model_type "mixtral" (MixtralForCausalLM; tensors below are Mixtral's); anything else as
 * "braid_moe", with the extra tensor name patterns listed under "braid_moe_tensors". */
#ifndef BR_LM_CONFIG_MOE_H
#define BR_LM_CONFIG_MOE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lm/model.h"
#include "nn/moe.h"

/* Tensor names (printf patterns; N = layer, J = expert). */
#define BR_NAME_MOE_ROUTER "model.layers.%d.block_sparse_moe.gate.weight"          /* (E,C) */
#define BR_NAME_MOE_EXPERT "model.layers.%d.block_sparse_moe.experts.%d.%s.weight" /* w1 gate (F,C), w2 down (C,F), w3 up (F,C) */
#define BR_NAME_MOE_SHARED "model.layers.%d.block_sparse_moe.shared_expert.%s.weight" /* gate_proj, up_proj, down_proj */
#define BR_NAME_NEXUS_IN "model.layers.%d.block_sparse_moe.nexus.proj_in.weight"   /* (2H,D) */
#define BR_NAME_NEXUS_OUT "model.layers.%d.block_sparse_moe.nexus.proj_out.weight" /* (C,H) */
#define BR_NAME_NEXUS_DOMAINS "model.nexus.domain_embeddings"                       /* (E,D), fixed */
#define BR_NAME_MOA_ROUTER "model.layers.%d.self_attn.router.weight"                /* (n,C) */
#define BR_NAME_MOA_EXPERT "model.layers.%d.self_attn.experts.%d.%s.weight"         /* q_proj, k_proj, v_proj, o_proj */

/* Whether the FFN part / attention part of c is a mixture. */
bool br_config_has_moe_ffn(const br_model_config_t *c);
bool br_config_has_moa(const br_model_config_t *c);
/* Reads the fields above (after the dense ones); BR_EINVAL naming a bad field. */
br_status br_config_moe_parse(br_model_config_t *c, json_t *root);
/* Appends "; reason" for every inconsistent MoE field to bad (snprintf-style at *nb). */
void br_config_moe_validate(const br_model_config_t *c, char *bad, size_t cap, size_t *nb);
/* Adds the fields (and sets model_type/architectures) when c has any mixture. */
void br_config_moe_save(const br_model_config_t *c, json_t *o);
/* Parameters of one layer's attention part and FFN part (router, experts, projector). */
size_t br_config_moe_layer_params(const br_model_config_t *c);
/* The layer configurations the nn/ layers take. */
br_moe_cfg_t br_config_moe_ffn(const br_model_config_t *c);
br_moa_cfg_t br_config_moa(const br_model_config_t *c);
br_nexus_cfg_t br_config_nexus(const br_model_config_t *c);
#endif
