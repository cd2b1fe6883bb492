/* tokenizer_config.json / generation_config.json; see text/tokcfg.h. */
#include "text/tokcfg.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"

/* A token given as "<s>" or as an AddedToken object {"content": "<s>", ...}. */
static br_status token_string(json_t *v, char **out, const char *path, const char *key)
{
    *out = NULL;
    if (!v || json_is_null(v)) return BR_OK;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return br_error(BR_EFORMAT, "%s: %s is neither a string nor {\"content\": string}", path, key);
    *out = strdup(json_string_value(v));
    return *out ? BR_OK : br_error(BR_ENOMEM, "%s: out of memory", path);
}

static int tristate(json_t *v) { return json_is_boolean(v) ? json_is_true(v) : -1; }

static br_status chat_template(json_t *v, char **out, const char *path)
{
    if (!v || json_is_null(v)) return BR_OK;
    if (json_is_array(v)) { /* [{"name": "default", "template": "..."}, {"name": "tool_use", ...}] */
        size_t i;
        json_t *it, *pick = NULL;
        json_array_foreach(v, i, it) {
            const char *name = json_string_value(json_object_get(it, "name"));
            if (!pick || (name && !strcmp(name, "default"))) pick = it;
        }
        v = json_object_get(pick, "template");
    }
    if (!json_is_string(v)) return br_error(BR_EFORMAT, "%s: chat_template is neither a string nor a list of named templates", path);
    *out = strdup(json_string_value(v));
    return *out ? BR_OK : br_error(BR_ENOMEM, "%s: out of memory", path);
}

static br_status load_tokenizer_config(br_tokcfg_t *c, const char *path)
{
    json_error_t je;
    /* model_max_length is often 1e30 written as an integer, too big for jansson's integers */
    json_t *root = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!root) return br_error(BR_EFORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    br_status st = BR_OK;
    if (!json_is_object(root)) st = br_error(BR_EFORMAT, "%s: not a JSON object", path);
    if (st == BR_OK) st = token_string(json_object_get(root, "bos_token"), &c->bos_token, path, "bos_token");
    if (st == BR_OK) st = token_string(json_object_get(root, "eos_token"), &c->eos_token, path, "eos_token");
    if (st == BR_OK) st = chat_template(json_object_get(root, "chat_template"), &c->chat_template, path);
    c->add_bos_token = tristate(json_object_get(root, "add_bos_token"));
    c->add_eos_token = tristate(json_object_get(root, "add_eos_token"));
    json_decref(root);
    return st;
}

static br_status id_value(json_t *v, int32_t *out, const char *path)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24))
        return br_error(BR_EFORMAT, "%s: eos_token_id entries must be token ids (integers 0..2^24)", path);
    *out = (int32_t)json_integer_value(v);
    return BR_OK;
}

static br_status load_generation_config(br_tokcfg_t *c, const char *path)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return br_error(BR_EFORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    br_status st = BR_OK;
    json_t *eos = json_object_get(root, "eos_token_id"), *v;
    size_t i;
    if (json_is_array(eos)) {
        if (json_array_size(eos) > BR_TOKCFG_MAX_EOS) st = br_error(BR_EFORMAT, "%s: more than %d eos_token_id values", path, BR_TOKCFG_MAX_EOS);
        json_array_foreach(eos, i, v) if (st == BR_OK) st = id_value(v, &c->eos_ids[c->n_eos++], path);
    } else if (eos && !json_is_null(eos)) {
        st = id_value(eos, &c->eos_ids[0], path);
        c->n_eos = st == BR_OK;
    }
    json_t *bos = json_object_get(root, "bos_token_id");
    if (st == BR_OK && json_is_integer(bos)) st = id_value(bos, &c->bos_id, path);
    if (json_is_number(json_object_get(root, "temperature"))) c->temperature = json_number_value(json_object_get(root, "temperature"));
    if (json_is_number(json_object_get(root, "top_p"))) c->top_p = json_number_value(json_object_get(root, "top_p"));
    if (json_is_integer(json_object_get(root, "top_k"))) c->top_k = (int)json_integer_value(json_object_get(root, "top_k"));
    c->do_sample = tristate(json_object_get(root, "do_sample"));
    json_decref(root);
    return st;
}

br_status br_tokcfg_load(br_tokcfg_t *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    c->add_bos_token = c->add_eos_token = c->do_sample = -1;
    c->bos_id = -1;
    c->temperature = c->top_p = -1;
    c->top_k = -1;
    char path[4096];
    br_status st = br_path_join(path, sizeof path, dir, "tokenizer_config.json");
    if (st == BR_OK && br_file_exists(path)) st = load_tokenizer_config(c, path);
    if (st == BR_OK && !c->chat_template) {
        st = br_path_join(path, sizeof path, dir, "chat_template.jinja");
        size_t n;
        if (st == BR_OK && br_file_exists(path)) st = br_read_file(path, &c->chat_template, &n);
    }
    if (st == BR_OK) st = br_path_join(path, sizeof path, dir, "generation_config.json");
    if (st == BR_OK && br_file_exists(path)) st = load_generation_config(c, path);
    if (st != BR_OK) br_tokcfg_free(c);
    return st;
}

void br_tokcfg_free(br_tokcfg_t *c)
{
    if (!c) return;
    free(c->bos_token);
    free(c->eos_token);
    free(c->chat_template);
    c->bos_token = c->eos_token = c->chat_template = NULL;
}
