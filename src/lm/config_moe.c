/* config.json fields and tensor names of mixtures of experts (see lm/config_moe.h). */
#include "lm/config_moe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool br_config_has_moe_ffn(const br_model_config_t *c) { return c->num_local_experts > 1; }
bool br_config_has_moa(const br_model_config_t *c) { return c->num_attention_experts > 1; }

static br_status opt_int(json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return BR_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 24))
        return br_error(BR_EINVAL, "config.json: field '%s' must be a non-negative integer", key);
    *out = (int)json_integer_value(v);
    return BR_OK;
}

static br_status opt_float(json_t *root, const char *key, float *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return BR_OK;
    if (!json_is_number(v)) return br_error(BR_EINVAL, "config.json: field '%s' must be a number", key);
    *out = (float)json_number_value(v);
    return BR_OK;
}

static br_status opt_bool(json_t *root, const char *key, bool *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return BR_OK;
    if (!json_is_boolean(v)) return br_error(BR_EINVAL, "config.json: field '%s' must be true or false", key);
    *out = json_is_true(v);
    return BR_OK;
}

br_status br_config_moe_parse(br_model_config_t *c, json_t *root)
{
    json_t *mt = json_object_get(root, "model_type");
    bool mixtral = json_is_string(mt) && !strcmp(json_string_value(mt), "mixtral");
    BR_TRY(opt_int(root, "num_local_experts", &c->num_local_experts));
    BR_TRY(opt_int(root, "num_experts_per_tok", &c->num_experts_per_tok));
    c->norm_topk_prob = mixtral; /* Mixtral always renormalises the chosen probabilities */
    BR_TRY(opt_bool(root, "norm_topk_prob", &c->norm_topk_prob));
    BR_TRY(opt_int(root, "shared_expert_intermediate_size", &c->shared_expert_intermediate_size));
    BR_TRY(opt_float(root, "router_aux_loss_coef", &c->router_aux_loss_coef));
    BR_TRY(opt_float(root, "router_z_loss_coef", &c->router_z_loss_coef));
    json_t *v = json_object_get(root, "router");
    if (v && !json_is_null(v)) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (!strcmp(s, "nexus")) c->router_nexus = 1;
        else if (!strcmp(s, "linear")) c->router_nexus = 0;
        else return br_error(BR_EINVAL, "config.json: router must be \"linear\" or \"nexus\"");
    }
    BR_TRY(opt_int(root, "nexus_domain_dim", &c->nexus_domain_dim));
    BR_TRY(opt_int(root, "nexus_hidden_size", &c->nexus_hidden_size));
    BR_TRY(opt_int(root, "num_attention_experts", &c->num_attention_experts));
    BR_TRY(opt_bool(root, "attention_shared_kv", &c->attention_shared_kv));
    if (mixtral && c->num_local_experts < 1)
        return br_error(BR_EINVAL, "config.json: a mixtral config needs num_local_experts");
    return BR_OK;
}

#define BAD(...) (*nb += (size_t)snprintf(bad + *nb, *nb < cap ? cap - *nb : 0, __VA_ARGS__))
void br_config_moe_validate(const br_model_config_t *c, char *bad, size_t cap, size_t *nb)
{
    int E = c->num_local_experts, k = c->num_experts_per_tok ? c->num_experts_per_tok : 1;
    if (E < 0 || E > 4096) BAD("; num_local_experts must be between 0 and 4096 (got %d)", E);
    if (E > 1 && (k < 1 || k > E)) BAD("; num_experts_per_tok must be between 1 and num_local_experts (%d), got %d", E, k);
    if (c->shared_expert_intermediate_size < 0 || c->shared_expert_intermediate_size > (1 << 22))
        BAD("; shared_expert_intermediate_size out of range");
    if (!(c->router_aux_loss_coef >= 0) || !isfinite(c->router_aux_loss_coef)) BAD("; router_aux_loss_coef must be >= 0");
    if (!(c->router_z_loss_coef >= 0) || !isfinite(c->router_z_loss_coef)) BAD("; router_z_loss_coef must be >= 0");
    if (c->router_nexus) {
        if (E < 2) BAD("; router \"nexus\" needs num_local_experts >= 2");
        if (c->nexus_domain_dim <= 0 || c->nexus_domain_dim > (1 << 20)) BAD("; nexus_domain_dim must be > 0");
        if (c->nexus_hidden_size <= 0 || c->nexus_hidden_size > (1 << 20)) BAD("; nexus_hidden_size must be > 0");
    }
    if (c->num_attention_experts < 0 || c->num_attention_experts > 256)
        BAD("; num_attention_experts must be between 0 and 256 (got %d)", c->num_attention_experts);
    if (c->attention_shared_kv && c->num_attention_experts < 2)
        BAD("; attention_shared_kv needs num_attention_experts >= 2");
}
#undef BAD

static bool mixtral_compatible(const br_model_config_t *c)
{
    return br_config_has_moe_ffn(c) && !c->router_nexus && !c->shared_expert_intermediate_size &&
           !br_config_has_moa(c) && c->block == BR_BLOCK_SEQUENTIAL && c->norm_topk_prob;
}

void br_config_moe_save(const br_model_config_t *c, json_t *o)
{
    if (!br_config_has_moe_ffn(c) && !br_config_has_moa(c)) return;
    bool mixtral = mixtral_compatible(c);
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(mixtral ? "MixtralForCausalLM" : "BraidMoeForCausalLM"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string(mixtral ? "mixtral" : "braid_moe"));
    json_t *pat = json_array();
    if (br_config_has_moe_ffn(c)) {
        json_object_set_new(o, "num_local_experts", json_integer(c->num_local_experts));
        json_object_set_new(o, "num_experts_per_tok", json_integer(c->num_experts_per_tok ? c->num_experts_per_tok : 1));
        json_object_set_new(o, "norm_topk_prob", json_boolean(c->norm_topk_prob));
        json_object_set_new(o, "router_aux_loss_coef", json_real(c->router_aux_loss_coef));
        json_object_set_new(o, "router_z_loss_coef", json_real(c->router_z_loss_coef));
        json_object_set_new(o, "router", json_string(c->router_nexus ? "nexus" : "linear"));
        if (mixtral) {
            json_object_set_new(o, "output_router_logits", json_false());
            if (!c->sliding_window) json_object_set_new(o, "sliding_window", json_null()); /* Mistral's stays */
        }
        json_array_append_new(pat, json_string(BR_NAME_MOE_EXPERT));
        if (c->router_nexus) {
            json_object_set_new(o, "nexus_domain_dim", json_integer(c->nexus_domain_dim));
            json_object_set_new(o, "nexus_hidden_size", json_integer(c->nexus_hidden_size));
            json_array_append_new(pat, json_string(BR_NAME_NEXUS_IN));
            json_array_append_new(pat, json_string(BR_NAME_NEXUS_OUT));
            json_array_append_new(pat, json_string(BR_NAME_NEXUS_DOMAINS));
        } else {
            json_array_append_new(pat, json_string(BR_NAME_MOE_ROUTER));
        }
        if (c->shared_expert_intermediate_size) {
            json_object_set_new(o, "shared_expert_intermediate_size", json_integer(c->shared_expert_intermediate_size));
            json_array_append_new(pat, json_string(BR_NAME_MOE_SHARED));
        }
    }
    if (br_config_has_moa(c)) {
        json_object_set_new(o, "num_attention_experts", json_integer(c->num_attention_experts));
        json_object_set_new(o, "attention_shared_kv", json_boolean(c->attention_shared_kv));
        json_array_append_new(pat, json_string(BR_NAME_MOA_ROUTER));
        json_array_append_new(pat, json_string(BR_NAME_MOA_EXPERT));
    }
    if (mixtral) json_decref(pat);
    else json_object_set_new(o, "braid_moe_tensors", pat);
}

br_moe_cfg_t br_config_moe_ffn(const br_model_config_t *c)
{
    br_moe_cfg_t m = {
        .C = (size_t)c->hidden_size,
        .F = (size_t)c->intermediate_size,
        .E = c->num_local_experts > 1 ? (size_t)c->num_local_experts : 1,
        .k = c->num_local_experts > 1 && c->num_experts_per_tok > 0 ? (size_t)c->num_experts_per_tok : 1,
        .renorm = c->norm_topk_prob,
        .Fs = (size_t)c->shared_expert_intermediate_size,
        .alpha = c->router_aux_loss_coef,
        .beta = c->router_z_loss_coef,
    };
    return m;
}

br_moa_cfg_t br_config_moa(const br_model_config_t *c)
{
    size_t hd = (size_t)(c->head_dim ? c->head_dim : c->hidden_size / c->num_attention_heads);
    br_moa_cfg_t m = {
        .C = (size_t)c->hidden_size,
        .NH = (size_t)c->num_attention_heads,
        .NKV = (size_t)c->num_key_value_heads,
        .hd = hd,
        .n = c->num_attention_experts > 1 ? (size_t)c->num_attention_experts : 1,
        .shared_kv = c->attention_shared_kv && c->num_attention_experts > 1,
        .beta = c->router_z_loss_coef,
    };
    return m;
}

br_nexus_cfg_t br_config_nexus(const br_model_config_t *c)
{
    br_nexus_cfg_t n = {
        .E = (size_t)c->num_local_experts,
        .D = (size_t)c->nexus_domain_dim,
        .H = (size_t)c->nexus_hidden_size,
        .C = (size_t)c->hidden_size,
    };
    return n;
}

size_t br_config_moe_layer_params(const br_model_config_t *c)
{
    br_moe_cfg_t f = br_config_moe_ffn(c);
    br_moa_cfg_t a = br_config_moa(c);
    size_t n = br_moe_nparams(&f) + br_moa_nparams(&a);
    if (c->router_nexus) {
        br_nexus_cfg_t x = br_config_nexus(c);
        n -= f.E * f.C;                     /* no learned router matrix */
        n += 2 * x.H * x.D + x.C * x.H;     /* projector */
    }
    return n;
}
