/* config.json: model_type and the architecture fields (lm/config_hf.h).
 *
 * Accepted: llama (rope_scaling linear | llama3), mistral (sliding_window: the context is
 * capped at the window, where full attention and sliding-window attention agree), qwen2
 * (q/k/v biases; use_sliding_window false), qwen3 (q/k RMSNorm; attention_bias false),
 * mixtral and braid_moe (lm/config_moe.c).  Everything else that would change the computed
 * function is refused naming the field: a model braid cannot run exactly is never run. */
#include <math.h>
#include <string.h>

#include "base/log.h"
#include "lm/config_hf.h"
#include "nn/nn.h"

static const char *const arch_names[] = {
    [BR_ARCH_LLAMA] = "llama",     [BR_ARCH_MISTRAL] = "mistral", [BR_ARCH_QWEN2] = "qwen2",
    [BR_ARCH_QWEN3] = "qwen3",     [BR_ARCH_MIXTRAL] = "mixtral", [BR_ARCH_BRAID_MOE] = "braid_moe",
};
static const char *const arch_classes[] = {
    [BR_ARCH_LLAMA] = "LlamaForCausalLM", [BR_ARCH_MISTRAL] = "MistralForCausalLM",
    [BR_ARCH_QWEN2] = "Qwen2ForCausalLM", [BR_ARCH_QWEN3] = "Qwen3ForCausalLM",
    [BR_ARCH_MIXTRAL] = "MixtralForCausalLM", [BR_ARCH_BRAID_MOE] = "LlamaForCausalLM",
};

const char *br_arch_name(br_arch a)
{
    return (unsigned)a < sizeof arch_names / sizeof *arch_names ? arch_names[a] : "?";
}

static bool is_set(json_t *v) { return v && !json_is_null(v) && !json_is_false(v); }

static br_status get_num(json_t *o, const char *key, const char *where, float *out, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return br_error(BR_EINVAL, "config.json: %s needs '%s'", where, key);
        return BR_OK;
    }
    if (!json_is_number(v)) return br_error(BR_EINVAL, "config.json: %s.%s must be a number", where, key);
    *out = (float)json_number_value(v);
    return BR_OK;
}

static br_status parse_rope_scaling(br_model_config_t *c, json_t *rs)
{
    if (!rs || json_is_null(rs)) return BR_OK;
    if (!json_is_object(rs)) return br_error(BR_EINVAL, "config.json: rope_scaling must be an object or null");
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type"); /* the older spelling */
    const char *type = json_is_string(t) ? json_string_value(t) : NULL;
    if (!type) return br_error(BR_EINVAL, "config.json: rope_scaling needs a rope_type");
    if (!strcmp(type, "default")) return BR_OK;
    if (!strcmp(type, "linear")) c->rope_type = BR_ROPE_LINEAR;
    else if (!strcmp(type, "llama3")) c->rope_type = BR_ROPE_LLAMA3;
    else
        return br_error(BR_EUNSUPPORTED, "config.json: rope_scaling.rope_type '%s' is not supported "
                        "(braid implements linear and llama3)", type);
    BR_TRY(get_num(rs, "factor", "rope_scaling", &c->rope_factor, true));
    if (c->rope_type == BR_ROPE_LLAMA3) {
        float orig = 0;
        BR_TRY(get_num(rs, "low_freq_factor", "rope_scaling", &c->rope_low_freq_factor, true));
        BR_TRY(get_num(rs, "high_freq_factor", "rope_scaling", &c->rope_high_freq_factor, true));
        BR_TRY(get_num(rs, "original_max_position_embeddings", "rope_scaling", &orig, true));
        c->rope_original_max_position_embeddings = (int)orig;
    }
    return BR_OK;
}

/* Fields of other architectures' configs that change the function computed: present and not
 * null/false/1 means braid would mis-run the model. */
static br_status refuse_foreign(json_t *root)
{
    static const char *const keys[] = {
        "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar",
        "logit_scale", "logits_scaling", "embedding_multiplier", "residual_multiplier",
        "attention_multiplier", "use_qk_norm", "clip_qkv", "use_parallel_residual",
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (is_set(json_object_get(root, keys[i])))
            return br_error(BR_EUNSUPPORTED, "config.json: %s is not supported (braid would compute "
                            "a different function)", keys[i]);
    json_t *v = json_object_get(root, "partial_rotary_factor");
    if (v && !json_is_null(v) && (!json_is_number(v) || json_number_value(v) != 1.0))
        return br_error(BR_EUNSUPPORTED, "config.json: partial_rotary_factor other than 1 is not supported");
    json_t *lt = json_object_get(root, "layer_types");
    for (size_t i = 0; json_is_array(lt) && i < json_array_size(lt); i++) {
        json_t *e = json_array_get(lt, i);
        if (!json_is_string(e) || strcmp(json_string_value(e), "full_attention"))
            return br_error(BR_EUNSUPPORTED, "config.json: layer_types[%zu] is not \"full_attention\" "
                            "(sliding-window layers are not supported)", i);
    }
    v = json_object_get(root, "hidden_act");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "silu")))
        return br_error(BR_EUNSUPPORTED, "config.json: hidden_act must be \"silu\" (got %s)",
                        json_is_string(v) ? json_string_value(v) : "a non-string");
    if (is_set(json_object_get(root, "mlp_bias")))
        return br_error(BR_EUNSUPPORTED, "config.json: mlp_bias = true is not supported");
    return BR_OK;
}

br_status br_config_hf_parse(br_model_config_t *c, json_t *root)
{
    json_t *mt = json_object_get(root, "model_type");
    c->arch = BR_ARCH_LLAMA;
    if (mt) {
        const char *s = json_is_string(mt) ? json_string_value(mt) : "";
        size_t i = 0;
        while (i < sizeof arch_names / sizeof *arch_names && strcmp(s, arch_names[i])) i++;
        if (i == sizeof arch_names / sizeof *arch_names)
            return br_error(BR_EUNSUPPORTED, "config.json: model_type '%s' is not supported (llama, mistral, "
                            "qwen2, qwen3, mixtral or braid_moe)", json_is_string(mt) ? s : "?");
        c->arch = (br_arch)i;
    }
    BR_TRY(refuse_foreign(root));
    bool attn_bias = is_set(json_object_get(root, "attention_bias"));
    if (c->arch == BR_ARCH_QWEN2) c->qkv_bias = true; /* Qwen2Attention: q, k, v biased, o not */
    else if (attn_bias)
        return br_error(BR_EUNSUPPORTED, "config.json: attention_bias = true is not supported for %s",
                        br_arch_name(c->arch));
    c->qk_norm = c->arch == BR_ARCH_QWEN3;
    if ((c->arch == BR_ARCH_QWEN2 || c->arch == BR_ARCH_QWEN3) &&
        is_set(json_object_get(root, "use_sliding_window")))
        return br_error(BR_EUNSUPPORTED, "config.json: use_sliding_window = true is not supported");
    json_t *sw = json_object_get(root, "sliding_window");
    if ((c->arch == BR_ARCH_MISTRAL || c->arch == BR_ARCH_MIXTRAL) && sw && !json_is_null(sw)) {
        if (!json_is_integer(sw) || json_integer_value(sw) <= 0 || json_integer_value(sw) > (1 << 30))
            return br_error(BR_EINVAL, "config.json: sliding_window must be a positive integer or null");
        c->sliding_window = (int)json_integer_value(sw);
    }
    return parse_rope_scaling(c, json_object_get(root, "rope_scaling"));
}

void br_config_hf_validate(br_model_config_t *c, char *bad, size_t cap, size_t *nb)
{
#define BAD(...) (*nb += (size_t)snprintf(bad + *nb, *nb < cap ? cap - *nb : 0, __VA_ARGS__))
    if (c->rope_type != BR_ROPE_DEFAULT && !(c->rope_factor >= 1 && isfinite(c->rope_factor)))
        BAD("; rope_scaling.factor must be >= 1 (got %g)", c->rope_factor);
    if (c->rope_type == BR_ROPE_LLAMA3 &&
        (!(c->rope_low_freq_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
         c->rope_original_max_position_embeddings <= 0))
        BAD("; rope_scaling (llama3) needs 0 < low_freq_factor < high_freq_factor and "
            "original_max_position_embeddings > 0");
#undef BAD
    /* Full attention equals sliding-window attention while no position reaches the window. */
    if (c->sliding_window > 0 && c->sliding_window < c->max_position_embeddings) {
        BR_WARN("config.json: sliding_window %d < max_position_embeddings %d: braid runs full attention, "
                "exact only inside the window, so the context is capped at %d positions",
                c->sliding_window, c->max_position_embeddings, c->sliding_window);
        c->max_position_embeddings = c->sliding_window;
    }
}

void br_config_hf_save(const br_model_config_t *c, json_t *o)
{
    if (c->arch == BR_ARCH_LLAMA && c->rope_type == BR_ROPE_DEFAULT) return;
    if (c->arch != BR_ARCH_MIXTRAL && c->arch != BR_ARCH_BRAID_MOE) {
        json_t *arch = json_array();
        json_array_append_new(arch, json_string(arch_classes[c->arch]));
        json_object_set_new(o, "architectures", arch);
        json_object_set_new(o, "model_type", json_string(arch_names[c->arch]));
    }
    if (c->qkv_bias) json_object_del(o, "attention_bias"); /* implied by qwen2 */
    if (c->sliding_window) json_object_set_new(o, "sliding_window", json_integer(c->sliding_window));
    if (c->rope_type != BR_ROPE_DEFAULT) {
        json_t *rs = json_object();
        json_object_set_new(rs, "rope_type", json_string(c->rope_type == BR_ROPE_LINEAR ? "linear" : "llama3"));
        json_object_set_new(rs, "factor", json_real(c->rope_factor));
        if (c->rope_type == BR_ROPE_LLAMA3) {
            json_object_set_new(rs, "low_freq_factor", json_real(c->rope_low_freq_factor));
            json_object_set_new(rs, "high_freq_factor", json_real(c->rope_high_freq_factor));
            json_object_set_new(rs, "original_max_position_embeddings",
                                json_integer(c->rope_original_max_position_embeddings));
        }
        json_object_set_new(o, "rope_scaling", rs);
    }
}

/* Hugging Face's _compute_llama3_parameters / linear scaling of the inverse frequencies, in
 * double; then the same float angle and cos/sin as br_rope_tables. */
static double scaled_inv_freq(const br_model_config_t *c, double inv)
{
    double f = c->rope_factor;
    if (c->rope_type == BR_ROPE_LINEAR) return inv / f;
    double old = c->rope_original_max_position_embeddings;
    double lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    double wavelen = 2 * M_PI / inv, low_wl = old / lo, high_wl = old / hi;
    if (wavelen < high_wl) return inv;
    if (wavelen > low_wl) return inv / f;
    double smooth = (old / wavelen - lo) / (hi - lo);
    return (1 - smooth) * inv / f + smooth * inv;
}

void br_config_rope_tables(const br_model_config_t *c, float *cs, float *sn)
{
    size_t maxpos = (size_t)c->max_position_embeddings, hd = (size_t)c->head_dim, half = hd / 2;
    if (c->rope_type == BR_ROPE_DEFAULT) {
        br_rope_tables(cs, sn, maxpos, hd, c->rope_theta);
        return;
    }
    for (size_t i = 0; i < half; i++) {
        double inv = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)hd);
        double s = scaled_inv_freq(c, inv);
        for (size_t p = 0; p < maxpos; p++) {
            double a = (double)p * s;
            cs[p * half + i] = (float)cos(a);
            sn[p * half + i] = (float)sin(a);
        }
    }
}
