/* config.json of the dense model: Hugging Face LlamaConfig fields + braid's `block`. */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "lm/config_hf.h"
#include "lm/config_moe.h"
#include "lm/model.h"

void br_config_defaults(br_model_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->rms_norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->max_position_embeddings = 2048;
    c->tie_word_embeddings = false;
    c->initializer_range = 0.02f;
    c->bos_token_id = -1;
    c->eos_token_id = -1;
    c->block = BR_BLOCK_SEQUENTIAL;
}

br_status br_config_validate(br_model_config_t *c)
{
    char bad[512] = "";
    size_t nb = 0;
#define BAD(...) (nb += (size_t)snprintf(bad + nb, nb < sizeof bad ? sizeof bad - nb : 0, __VA_ARGS__))
    if (c->vocab_size <= 0) BAD("; vocab_size must be > 0 (got %d)", c->vocab_size);
    if (c->hidden_size <= 0) BAD("; hidden_size must be > 0 (got %d)", c->hidden_size);
    if (c->intermediate_size <= 0) BAD("; intermediate_size must be > 0 (got %d)", c->intermediate_size);
    if (c->num_hidden_layers <= 0) BAD("; num_hidden_layers must be > 0 (got %d)", c->num_hidden_layers);
    if (c->num_attention_heads <= 0) BAD("; num_attention_heads must be > 0 (got %d)", c->num_attention_heads);
    if (c->num_key_value_heads <= 0) BAD("; num_key_value_heads must be > 0 (got %d)", c->num_key_value_heads);
    if (c->max_position_embeddings <= 0) BAD("; max_position_embeddings must be > 0 (got %d)", c->max_position_embeddings);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps)) BAD("; rms_norm_eps must be > 0");
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta)) BAD("; rope_theta must be > 0");
    if (!(c->initializer_range >= 0) || !isfinite(c->initializer_range)) BAD("; initializer_range must be >= 0");
    if (c->block != BR_BLOCK_SEQUENTIAL && c->block != BR_BLOCK_PARALLEL) BAD("; block must be sequential or parallel");
    if (nb == 0) {
        if (c->num_attention_heads % c->num_key_value_heads)
            BAD("; num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
                c->num_attention_heads, c->num_key_value_heads);
        if (c->head_dim == 0) {
            if (c->hidden_size % c->num_attention_heads)
                BAD("; hidden_size (%d) must be a multiple of num_attention_heads (%d)",
                    c->hidden_size, c->num_attention_heads);
            else c->head_dim = c->hidden_size / c->num_attention_heads;
        }
        if (c->head_dim <= 0 || c->head_dim % 2) BAD("; head_dim must be positive and even (got %d)", c->head_dim);
        /* keep every tensor and activation row well inside int/size_t arithmetic */
        if ((long long)c->num_attention_heads * c->head_dim > (1 << 20) ||
            c->hidden_size > (1 << 20) || c->intermediate_size > (1 << 22) ||
            c->vocab_size > (1 << 24) || c->num_hidden_layers > 4096 ||
            c->max_position_embeddings > (1 << 24))
            BAD("; sizes are beyond what braid supports");
        /* the RoPE tables (cos and sin, max_position_embeddings x head_dim/2 floats each) are
         * the one allocation no tensor in a checkpoint vouches for: cap them at 512 MB, room
         * for a 1M-token context at head_dim 128 */
        else if ((long long)c->max_position_embeddings * c->head_dim > (1LL << 27))
            BAD("; max_position_embeddings (%d) x head_dim (%d) is beyond what braid supports (2^27: RoPE "
                "tables of 512 MB)", c->max_position_embeddings, c->head_dim);
        if (c->bos_token_id >= c->vocab_size) BAD("; bos_token_id %d >= vocab_size %d", c->bos_token_id, c->vocab_size);
        if ((c->qkv_bias || c->qk_norm) && c->num_attention_experts > 1)
            BAD("; q/k/v biases and q/k norms are not supported with a mixture of attention");
        if (c->eos_token_id >= c->vocab_size) BAD("; eos_token_id %d >= vocab_size %d", c->eos_token_id, c->vocab_size);
    }
#undef BAD
    br_config_hf_validate(c, bad, sizeof bad, &nb);
    br_config_moe_validate(c, bad, sizeof bad, &nb);
    if (nb) return br_error(BR_EINVAL, "invalid model config: %s", bad + 2);
    return BR_OK;
}

static br_status get_int(json_t *root, const char *key, int *out, bool required)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return br_error(BR_EINVAL, "config.json: missing required field '%s'", key);
        return BR_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)
        return br_error(BR_EINVAL, "config.json: field '%s' must be an integer", key);
    *out = (int)json_integer_value(v);
    return BR_OK;
}

static br_status get_float(json_t *root, const char *key, float *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return BR_OK;
    if (!json_is_number(v)) return br_error(BR_EINVAL, "config.json: field '%s' must be a number", key);
    *out = (float)json_number_value(v);
    return BR_OK;
}

/* eos_token_id may be a list in HF configs: take the first entry. */
static br_status get_token_id(json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (json_is_array(v)) v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    if (!v || json_is_null(v)) return BR_OK;
    if (!json_is_integer(v)) return br_error(BR_EINVAL, "config.json: field '%s' must be an integer", key);
    *out = (int)json_integer_value(v);
    return BR_OK;
}

static br_status parse_obj(br_model_config_t *c, json_t *root)
{
    if (!json_is_object(root)) return br_error(BR_EFORMAT, "config.json: not a JSON object");
    br_config_defaults(c);
    BR_TRY(br_config_hf_parse(c, root));
    BR_TRY(get_int(root, "vocab_size", &c->vocab_size, true));
    BR_TRY(get_int(root, "hidden_size", &c->hidden_size, true));
    BR_TRY(get_int(root, "intermediate_size", &c->intermediate_size, true));
    BR_TRY(get_int(root, "num_hidden_layers", &c->num_hidden_layers, true));
    BR_TRY(get_int(root, "num_attention_heads", &c->num_attention_heads, true));
    c->num_key_value_heads = c->num_attention_heads;
    BR_TRY(get_int(root, "num_key_value_heads", &c->num_key_value_heads, false));
    BR_TRY(get_int(root, "head_dim", &c->head_dim, false));
    BR_TRY(get_int(root, "max_position_embeddings", &c->max_position_embeddings, false));
    BR_TRY(get_float(root, "rms_norm_eps", &c->rms_norm_eps));
    BR_TRY(get_float(root, "rope_theta", &c->rope_theta));
    BR_TRY(get_float(root, "initializer_range", &c->initializer_range));
    BR_TRY(get_token_id(root, "bos_token_id", &c->bos_token_id));
    BR_TRY(get_token_id(root, "eos_token_id", &c->eos_token_id));
    json_t *v = json_object_get(root, "tie_word_embeddings");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) return br_error(BR_EINVAL, "config.json: tie_word_embeddings must be true or false");
        c->tie_word_embeddings = json_is_true(v);
    }
    v = json_object_get(root, "block");
    if (v && !json_is_null(v)) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        if (!strcmp(s, "sequential")) c->block = BR_BLOCK_SEQUENTIAL;
        else if (!strcmp(s, "parallel")) c->block = BR_BLOCK_PARALLEL;
        else return br_error(BR_EINVAL, "config.json: block must be \"sequential\" or \"parallel\"");
    }
    BR_TRY(br_config_moe_parse(c, root));
    return br_config_validate(c);
}

br_status br_config_parse(br_model_config_t *c, const char *json_text, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(json_text, len, 0, &err);
    if (!root)
        return br_error(BR_EFORMAT, "config.json: line %d: %s", err.line, err.text);
    br_status s = parse_obj(c, root);
    json_decref(root);
    return s;
}

br_status br_config_load(br_model_config_t *c, const char *path)
{
    char *text;
    size_t n;
    BR_TRY(br_read_file(path, &text, &n));
    br_status s = br_config_parse(c, text, n);
    free(text);
    if (s) return br_error_wrap(s, "%s", path);
    return BR_OK;
}

br_status br_config_save(const br_model_config_t *c, const char *path)
{
    json_t *o = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string("LlamaForCausalLM"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string("llama"));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_hidden_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->num_attention_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->num_key_value_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(o, "initializer_range", json_real(c->initializer_range));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "mlp_bias", json_false());
    json_object_set_new(o, "rope_scaling", json_null());
    json_object_set_new(o, "bos_token_id", c->bos_token_id >= 0 ? json_integer(c->bos_token_id) : json_null());
    json_object_set_new(o, "eos_token_id", c->eos_token_id >= 0 ? json_integer(c->eos_token_id) : json_null());
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    json_object_set_new(o, "block", json_string(c->block == BR_BLOCK_PARALLEL ? "parallel" : "sequential"));
    br_config_hf_save(c, o);
    br_config_moe_save(c, o);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    json_decref(o);
    if (!text) return br_error(BR_ENOMEM, "config.json: out of memory");
    size_t n = strlen(text);
    text[n] = 0;
    br_status s = br_write_file_atomic(path, text, n);
    free(text);
    return s;
}

size_t br_config_num_params(const br_model_config_t *c)
{
    size_t C = (size_t)c->hidden_size, V = (size_t)c->vocab_size, F = (size_t)c->intermediate_size;
    size_t hd = (size_t)(c->head_dim ? c->head_dim : c->hidden_size / c->num_attention_heads);
    size_t Dq = (size_t)c->num_attention_heads * hd, Dkv = (size_t)c->num_key_value_heads * hd;
    size_t per_layer = C * (c->block == BR_BLOCK_PARALLEL ? 1 : 2) + 2 * Dq * C + 2 * Dkv * C + 3 * F * C +
                       (c->qkv_bias ? Dq + 2 * Dkv : 0) + (c->qk_norm ? 2 * hd : 0);
    if (br_config_has_moe_ffn(c) || br_config_has_moa(c))
        per_layer = C * (c->block == BR_BLOCK_PARALLEL ? 1 : 2) + br_config_moe_layer_params(c);
    size_t domains = c->router_nexus && br_config_has_moe_ffn(c) ? (size_t)c->num_local_experts * (size_t)c->nexus_domain_dim : 0;
    return V * C * (c->tie_word_embeddings ? 1 : 2) + C + (size_t)c->num_hidden_layers * per_layer + domains;
}
