/* braid inspect FILE.safetensors: tensors (name, dtype, shape, bytes) and metadata.
 * braid inspect DIR: a model folder as the Hub holds it: architecture, parameters, dtype,
 * shards, context, tokenizer, chat template, and what braid runs of it. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "base/fileio.h"
#include "base/safetensors.h"
#include "commands.h"
#include "lm/model.h"
#include "text/jinja.h"
#include "text/tokcfg.h"
#include "text/tokenizer.h"

static void human_bytes(char *buf, size_t cap, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* DIR/name parsed as JSON, or NULL. */
static json_t *load_json(const char *dir, const char *name)
{
    char path[4096];
    if (br_path_join(path, sizeof path, dir, name) || !br_file_exists(path)) return NULL;
    return json_load_file(path, 0, NULL);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "BPE (ByteLevel pre-tokenizer)" etc. from tokenizer.json, and whether braid loads it. */
static void describe_tokenizer(const char *dir, char *kind, size_t cap, char *braid, size_t bcap)
{
    char path[4096];
    json_t *t = load_json(dir, "tokenizer.json");
    if (!t) {
        bool sp = !br_path_join(path, sizeof path, dir, "tokenizer.model") && br_file_exists(path);
        snprintf(kind, cap, "%s", sp ? "tokenizer.model only (SentencePiece)" : "none");
        snprintf(braid, bcap, "%s", "braid needs tokenizer.json: use --prompt-ids, or fetch tokenizer.json");
        return;
    }
    json_t *model = json_object_get(t, "model"), *pre = json_object_get(t, "pre_tokenizer");
    json_t *norm = json_object_get(t, "normalizer");
    const char *mt = jstr(model, "type"), *pt = jstr(pre, "type"), *nt = jstr(norm, "type");
    bool fallback = json_is_true(json_object_get(model, "byte_fallback"));
    snprintf(kind, cap, "tokenizer.json: %s%s, pre-tokenizer %s, normalizer %s", mt ? mt : "?",
             fallback ? " with byte_fallback" : "", pt ? pt : "none", nt ? nt : "none");
    json_decref(t);
    br_tokenizer_t *tok = NULL;
    if (!br_path_join(path, sizeof path, dir, "tokenizer.json") && !br_tokenizer_load(&tok, path))
        snprintf(braid, bcap, "braid loads it (%zu ids)", br_tokenizer_vocab_size(tok));
    else
        snprintf(braid, bcap, "braid cannot load it yet: %s", br_errmsg());
    br_tokenizer_free(tok);
}

/* The chat template as braid's prompt code reads it (text/tokcfg.h: tokenizer_config.json or
 * chat_template.jinja) and whether braid's renderer parses it; NULL when the folder has none. */
static const char *describe_chat_template(const char *dir, char *buf, size_t cap)
{
    br_tokcfg_t tc;
    if (br_tokcfg_load(&tc, dir)) {
        snprintf(buf, cap, "unreadable: %s", br_errmsg());
        return buf;
    }
    if (!tc.chat_template) {
        br_tokcfg_free(&tc);
        return NULL;
    }
    br_jinja_t *t = NULL;
    if (br_jinja_parse(&t, tc.chat_template, strlen(tc.chat_template)) == BR_OK)
        snprintf(buf, cap, "present (%zu bytes); braid renders it (braid tokenizer chat)", strlen(tc.chat_template));
    else
        snprintf(buf, cap, "present; braid cannot render it: %s", br_errmsg());
    br_jinja_free(t);
    br_tokcfg_free(&tc);
    return buf;
}

/* What the weights are stored as: "BF16" or "BF16 98%, F32 2%" (by elements). */
static void describe_dtypes(const br_model_info_t *in, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < BR_DT_COUNT; d++) {
        if (!in->dtype_elements[d]) continue;
        double pct = 100.0 * (double)in->dtype_elements[d] / (double)(in->n_elements ? in->n_elements : 1);
        if (in->dtype_elements[d] == in->n_elements) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s", br_dtype_name((br_dtype)d));
        else n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s %.1f%%", n ? ", " : "", br_dtype_name((br_dtype)d), pct);
    }
}

/* A mixture of experts in one line: its layout (Mixtral's, or braid's documented one), experts,
 * top-k, router, which parts are experts, and how it was built (upcycle.json); NULL when dense. */
static const char *describe_moe(const br_model_config_t *c, const char *dir, char *buf, size_t cap)
{
    if (c->num_local_experts < 2 && c->num_attention_experts < 2) return NULL;
    bool mixtral = c->arch == BR_ARCH_MIXTRAL;
    json_t *up = load_json(dir, "upcycle.json");
    const char *method = jstr(up, "method");
    json_t *from = json_is_object(up) ? json_object_get(up, "extended_from") : NULL;
    size_t n = (size_t)snprintf(buf, cap, "%s: ", mixtral ? "Mixtral layout (block_sparse_moe.gate, experts.N.w1/w2/w3)"
                                                          : "braid MoE layout (docs/moe.md)");
#define ADD(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
    if (c->num_local_experts > 1)
        ADD("%d FFN experts, top-%d%s, %s router%s", c->num_local_experts, c->num_experts_per_tok ? c->num_experts_per_tok : 1,
            c->norm_topk_prob ? " renormalised" : "", c->router_nexus ? "Nexus" : "linear",
            c->shared_expert_intermediate_size ? ", a shared FFN expert" : "");
    if (c->num_attention_experts > 1)
        ADD("%s%d attention experts (%s) under a soft router", c->num_local_experts > 1 ? "; " : "", c->num_attention_experts,
            c->attention_shared_kv ? "own Q and O, shared K and V" : "own Q, K, V and O");
    ADD("; experts: %s%s; embeddings, norms%s and head shared", c->num_local_experts > 1 ? "FFN" : "",
        c->num_attention_experts > 1 ? (c->num_local_experts > 1 ? " and attention" : "attention") : "",
        c->num_attention_experts > 1 ? "" : ", attention");
    const char *kind = c->num_attention_experts > 1 ? (c->attention_shared_kv ? "BAM, shared KV" : "BAM")
                       : c->router_nexus             ? "Nexus"
                       : mixtral                     ? "BTX, sparse upcycling or Mixtral"
                                                     : "FFN mixture";
    if (method) ADD("; built by braid upcycle --method %s%s", method, from ? ", then extended" : "");
    else ADD("; kind: %s", kind);
#undef ADD
    json_decref(up);
    return buf;
}

static int inspect_folder(const char *dir, bool as_json)
{
    br_model_info_t in;
    br_status s = br_model_inspect(dir, &in);
    if (s) return fail_status(s, NULL);
    json_t *raw = load_json(dir, "config.json");
    const char *mt = jstr(raw, "model_type");
    json_t *archs = json_is_object(raw) ? json_object_get(raw, "architectures") : NULL;
    const char *cls = json_is_array(archs) && json_is_string(json_array_get(archs, 0)) ? json_string_value(json_array_get(archs, 0)) : "?";
    const br_model_config_t *c = &in.cfg;
    bool cfg_ok = !in.config_status, ok = cfg_ok && !in.weights_status;
    char dtypes[128], hb[32], tok_kind[256], tok_braid[512], extras[256] = "", support[700];
    describe_dtypes(&in, dtypes, sizeof dtypes);
    human_bytes(hb, sizeof hb, (double)in.bytes);
    describe_tokenizer(dir, tok_kind, sizeof tok_kind, tok_braid, sizeof tok_braid);
    char tmpl_buf[600], moe_buf[600];
    const char *tmpl = describe_chat_template(dir, tmpl_buf, sizeof tmpl_buf);
    const char *moe = cfg_ok ? describe_moe(c, dir, moe_buf, sizeof moe_buf) : NULL;
    if (cfg_ok)
        snprintf(extras, sizeof extras, "%s%s%s%s%s", c->qkv_bias ? "q/k/v biases; " : "", c->qk_norm ? "q/k RMSNorm; " : "",
                 c->rope_type == BR_ROPE_LLAMA3 ? "rope_scaling llama3; " : c->rope_type == BR_ROPE_LINEAR ? "rope_scaling linear; " : "",
                 c->num_local_experts > 1 ? "mixture of experts; " : "", c->tie_word_embeddings ? "tied embeddings" : "untied embeddings");
    if (!cfg_ok) snprintf(support, sizeof support, "no: %s", in.config_error);
    else if (in.weights_status) snprintf(support, sizeof support, "no: %s", in.weights_error);
    else if (in.wt != BR_WT_F32)
        snprintf(support, sizeof support, "yes: generate, score, eval and lora-train run it with the %s weights in place "
                 "(memory-mapped, no F32 copy); branch and train --init train an F32 copy", br_wtype_name(in.wt));
    else snprintf(support, sizeof support, "yes: loaded as F32 (%s)", c->num_local_experts > 1 ? "mixtures run in F32" : "F32 or mixed dtypes");
    if (as_json) {
        json_t *o = json_pack("{s:s, s:s?, s:s, s:I, s:s, s:I, s:I, s:s?, s:b, s:s, s:s?, s:b, s:s}", "folder", dir,
                              "model_type", mt, "architecture", cls, "parameters", (json_int_t)in.n_elements,
                              "dtype", dtypes, "shards", (json_int_t)in.n_shards, "bytes", (json_int_t)in.bytes,
                              "tokenizer", tok_kind, "tokenizer_loads", strstr(tok_braid, "braid loads") != NULL,
                              "tokenizer_note", tok_braid, "chat_template", tmpl, "supported", ok, "support", support);
        if (cfg_ok) json_object_set_new(o, "context", json_integer(c->max_position_embeddings));
        if (moe) json_object_set_new(o, "mixture", json_string(moe));
        json_dumpf(o, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(o);
    } else {
        printf("model folder   %s\n", dir);
        printf("architecture   %s (%s)\n", mt ? mt : "? (no model_type)", cls);
        printf("parameters     %zu in %zu tensors%s\n", in.n_elements, in.n_tensors,
               cfg_ok && br_config_num_params(c) != in.n_elements ? " (the config counts otherwise: see supported)" : "");
        printf("dtype          %s\n", in.n_elements ? dtypes : "?");
        printf("shards         %zu file%s, %s\n", in.n_shards, in.n_shards == 1 ? "" : "s", hb);
        if (cfg_ok) {
            printf("context        %d positions%s\n", c->max_position_embeddings,
                   c->sliding_window && c->sliding_window == c->max_position_embeddings ? " (capped at sliding_window)" : "");
            printf("shape          %d layers, width %d, %d heads / %d KV heads of %d, FFN %d, vocabulary %d\n",
                   c->num_hidden_layers, c->hidden_size, c->num_attention_heads, c->num_key_value_heads, c->head_dim,
                   c->intermediate_size, c->vocab_size);
            printf("extras         %s\n", extras);
            if (moe) printf("mixture        %s\n", moe);
        }
        printf("tokenizer      %s; %s\n", tok_kind, tok_braid);
        printf("chat template  %s\n", tmpl ? tmpl : "none");
        printf("supported      %s\n", support);
    }
    json_decref(raw);
    return ok ? 0 : 1;
}

int cmd_inspect(int argc, char **argv)
{
    bool json = false;
    const opt_t opts[] = {
        {"json", OPT_BOOL, &json, NULL, "print JSON instead of a table", false},
    };
    cmd_spec_t spec = {"braid inspect [options] (FILE.safetensors | MODEL_DIR)",
                       "Lists the tensors (name, dtype, shape, bytes) and the __metadata__ of a "
                       "safetensors file after validating it completely. A malformed file prints "
                       "the problem and exits with status 1. On a model folder (config.json, "
                       "model.safetensors or shards + index, tokenizer.json): architecture, "
                       "parameters, dtype, shards, context, tokenizer, chat template and what "
                       "braid runs of it (exit status 1 when braid cannot run it).",
                       opts, sizeof opts / sizeof *opts, 1, 1};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    struct stat sb;
    char cfg[4096]; /* a model folder has a config.json; any other path is a safetensors file */
    if (stat(pos[0], &sb) == 0 && S_ISDIR(sb.st_mode) && !br_path_join(cfg, sizeof cfg, pos[0], "config.json") &&
        br_file_exists(cfg))
        return inspect_folder(pos[0], json);
    br_safetensors_t *st;
    br_status s = br_st_open(&st, pos[0]);
    if (s != BR_OK) return fail_status(s, NULL);
    size_t n = br_st_count(st), total = 0, params = 0;
    json_t *jt = json_array();
    if (!json) printf("%-56s %-5s %-22s %12s\n", "tensor", "dtype", "shape", "bytes");
    for (size_t i = 0; i < n; i++) {
        const br_st_tensor_t *t = br_st_tensor(st, i);
        char shape[160] = "[";
        json_t *js = json_array();
        for (int d = 0; d < t->ndim; d++) {
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            json_array_append_new(js, json_integer(t->shape[d]));
        }
        strncat(shape, "]", sizeof shape - strlen(shape) - 1);
        json_array_append_new(jt, json_pack("{s:s, s:s, s:o, s:I}", "name", t->name, "dtype",
                                            br_dtype_name(t->dtype), "shape", js, "bytes", (json_int_t)t->nbytes));
        if (!json) printf("%-56s %-5s %-22s %12zu\n", t->name, br_dtype_name(t->dtype), shape, t->nbytes);
        total += t->nbytes;
        params += t->numel;
    }
    json_t *meta = json_object();
    for (size_t i = 0; i < br_st_metadata_count(st); i++)
        json_object_set_new(meta, br_st_metadata_key(st, i), json_string(br_st_metadata_value(st, i)));
    if (json) {
        json_t *root = json_pack("{s:s, s:o, s:o, s:I, s:I}", "file", pos[0], "tensors", jt, "metadata", meta,
                                 "total_bytes", (json_int_t)total, "total_elements", (json_int_t)params);
        json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(root);
    } else {
        char hb[32];
        human_bytes(hb, sizeof hb, (double)total);
        printf("%zu tensors, %zu elements, %s\n", n, params, hb);
        for (size_t i = 0; i < br_st_metadata_count(st); i++)
            printf("metadata %s = %s\n", br_st_metadata_key(st, i), br_st_metadata_value(st, i));
        json_decref(jt);
        json_decref(meta);
    }
    br_st_close(st);
    return 0;
}
