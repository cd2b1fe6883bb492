/* The tokenizer in GGUF metadata (lm/gguf.h): a Hugging Face tokenizer.json (+
 * tokenizer_config.json) as llama.cpp's tokenizer.ggml.* keys, and those keys back as a braid
 * tokenizer.
 *
 * Byte-level BPE only (GPT-2, Llama-3, Qwen2 style: llama.cpp's tokenizer.ggml.model "gpt2"):
 * tokens are the vocabulary's strings in GPT-2's byte-level spelling, exactly as tokenizer.json
 * holds them, merges "a b" in rank order, and the pre-tokeniser regex is named by
 * tokenizer.ggml.pre as llama.cpp knows it (gpt-2, llama-bpe, qwen2).  Added tokens become
 * CONTROL (special) or USER_DEFINED (not special) token types.  SentencePiece vocabularies
 * (llama.cpp's "llama" model, merged by token scores rather than ranks) are refused with a
 * message in both directions. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "lm/gguf.h"
#include "text/tokenizer.h"

/* llama.cpp's token types (llama_token_type / gguf TokenType). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* tokenizer.ggml.pre names and the pre-tokeniser regex llama.cpp runs for each (as the model's
 * tokenizer.json spells it; llama.cpp adapts the (?i:...) groups, same matches). */
static const struct { const char *pre, *regex; } pres[] = {
    {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                  "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
              "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

/* ---- writing: tokenizer.json -> br_gguf_vocab_t ---- */

typedef struct {
    br_gguf_vocab_t v; /* first: br_gguf_vocab_free casts back */
    json_t *tok, *cfg;
    const char **tokens;
    char **merges;
    int32_t *types;
    size_t n_merges_owned;
} owned_vocab_t;

void br_gguf_vocab_free(br_gguf_vocab_t *v)
{
    owned_vocab_t *o = (owned_vocab_t *)v;
    if (!o) return;
    for (size_t i = 0; i < o->n_merges_owned; i++) free(o->merges[i]);
    free(o->merges), free(o->tokens), free(o->types);
    json_decref(o->tok), json_decref(o->cfg);
    free(o);
}

/* The pre name for the tokenizer braid loaded from the same file (its regex). */
static br_status pre_of(const char *dir, const char **pre)
{
    br_tokenizer_t *t = NULL;
    BR_TRY(br_tokenizer_load(&t, dir));
    const char *re = br_tokenizer_pattern(t);
    br_status s = BR_OK;
    *pre = NULL;
    for (size_t i = 0; re && i < sizeof pres / sizeof *pres; i++)
        if (!strcmp(re, pres[i].regex)) *pre = pres[i].pre;
    if (!br_tokenizer_lossless(t))
        s = br_error(BR_EUNSUPPORTED, "%s: a SentencePiece-style or normalising tokenizer; GGUF export writes "
                     "byte-level BPE vocabularies only (llama.cpp's \"gpt2\" model)", dir);
    else if (!*pre)
        s = br_error(BR_EUNSUPPORTED, "%s: llama.cpp has no tokenizer.ggml.pre for the pre-tokenizer regex "
                     "\"%.80s\" (known: gpt-2, llama-bpe, qwen2)", dir, re ? re : "(none)");
    br_tokenizer_free(t);
    return s;
}

/* Places token content at id (types[id] = type); ids must be new and < n. */
static br_status place(owned_vocab_t *o, size_t n, json_int_t id, const char *content, int32_t type, const char *dir)
{
    if (id < 0 || (size_t)id >= n || o->tokens[id])
        return br_error(BR_EFORMAT, "%s/tokenizer.json: token id %lld is repeated or out of range", dir, (long long)id);
    o->tokens[id] = content, o->types[id] = type;
    return BR_OK;
}

static br_status fill_tokens(owned_vocab_t *o, json_t *vocab, json_t *added, const char *dir)
{
    size_t n = 0, i;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24))
            return br_error(BR_EFORMAT, "%s/tokenizer.json: vocab entry \"%.40s\" has a bad id", dir, key);
        n = (size_t)json_integer_value(val) + 1 > n ? (size_t)json_integer_value(val) + 1 : n;
    }
    json_array_foreach(added, i, val) {
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        if (id < 0 || id >= (1 << 24)) return br_error(BR_EFORMAT, "%s/tokenizer.json: added token %zu has a bad id", dir, i);
        n = (size_t)id + 1 > n ? (size_t)id + 1 : n;
    }
    if (!(o->tokens = calloc(n ? n : 1, sizeof *o->tokens)) || !(o->types = calloc(n ? n : 1, sizeof *o->types)))
        return br_error(BR_ENOMEM, "out of memory");
    json_array_foreach(added, i, val) {
        const char *content = json_string_value(json_object_get(val, "content"));
        if (!content) return br_error(BR_EFORMAT, "%s/tokenizer.json: added token %zu has no content", dir, i);
        json_t *sp = json_object_get(val, "special");
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        json_t *in_vocab = json_object_get(vocab, content);
        if (in_vocab && json_integer_value(in_vocab) == id) json_object_del(vocab, content); /* once */
        BR_TRY(place(o, n, id, content, !sp || json_is_true(sp) ? TT_CONTROL : TT_USER_DEFINED, dir));
    }
    json_object_foreach(vocab, key, val) BR_TRY(place(o, n, json_integer_value(val), key, TT_NORMAL, dir));
    for (size_t k = 0; k < n; k++)
        if (!o->tokens[k]) return br_error(BR_EFORMAT, "%s/tokenizer.json: no token has id %zu", dir, k);
    o->v.tokens = o->tokens, o->v.n_tokens = n, o->v.token_type = o->types;
    return BR_OK;
}

static br_status fill_merges(owned_vocab_t *o, json_t *merges, const char *dir)
{
    size_t n = json_array_size(merges), i;
    json_t *m;
    if (!(o->merges = calloc(n ? n : 1, sizeof *o->merges))) return br_error(BR_ENOMEM, "out of memory");
    json_array_foreach(merges, i, m) {
        const char *a = json_string_value(m), *b = NULL;
        if (!a && json_array_size(m) == 2)
            a = json_string_value(json_array_get(m, 0)), b = json_string_value(json_array_get(m, 1));
        if (!a || (json_is_array(m) && !b))
            return br_error(BR_EFORMAT, "%s/tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", dir, i);
        size_t la = strlen(a), lb = b ? strlen(b) : 0;
        char *s = malloc(la + lb + 2);
        if (!s) return br_error(BR_ENOMEM, "out of memory");
        memcpy(s, a, la + 1);
        if (b) s[la] = ' ', memcpy(s + la + 1, b, lb + 1);
        o->merges[o->n_merges_owned++] = s;
    }
    o->v.merges = (const char *const *)o->merges, o->v.n_merges = n;
    return BR_OK;
}

/* add_bos_token, chat_template and the pad token from tokenizer_config.json, when present. */
static void fill_config(owned_vocab_t *o, const char *dir)
{
    char path[4096];
    if (br_path_join(path, sizeof path, dir, "tokenizer_config.json") || !br_file_exists(path)) return;
    json_error_t je;
    if (!(o->cfg = json_load_file(path, 0, &je))) return; /* optional: a bad file only loses these keys */
    json_t *ab = json_object_get(o->cfg, "add_bos_token");
    if (json_is_boolean(ab)) o->v.add_bos = json_is_true(ab) ? 2 : 1;
    o->v.chat_template = json_string_value(json_object_get(o->cfg, "chat_template"));
    json_t *pad = json_object_get(o->cfg, "pad_token");
    const char *ps = json_is_string(pad) ? json_string_value(pad) : json_string_value(json_object_get(pad, "content"));
    for (size_t i = 0; ps && i < o->v.n_tokens; i++)
        if (!strcmp(o->v.tokens[i], ps)) o->v.pad_id = (int32_t)i, o->v.has_pad = true;
}

br_status br_gguf_vocab_load(br_gguf_vocab_t **out, const char *dir)
{
    *out = NULL;
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, dir, "tokenizer.json"));
    if (!br_file_exists(path)) return br_error(BR_ENOTFOUND, "%s: no tokenizer.json", dir);
    const char *pre;
    BR_TRY(pre_of(path, &pre));
    owned_vocab_t *o = calloc(1, sizeof *o);
    if (!o) return br_error(BR_ENOMEM, "out of memory");
    json_error_t je;
    br_status s = BR_OK;
    if (!(o->tok = json_load_file(path, 0, &je)))
        s = br_error(BR_EFORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    json_t *model = json_object_get(o->tok, "model");
    if (!s) s = fill_tokens(o, json_object_get(model, "vocab"), json_object_get(o->tok, "added_tokens"), dir);
    if (!s) s = fill_merges(o, json_object_get(model, "merges"), dir);
    if (s) {
        br_gguf_vocab_free(&o->v);
        return s;
    }
    o->v.model = "gpt2", o->v.pre = pre;
    fill_config(o, dir);
    *out = &o->v;
    return BR_OK;
}

/* ---- reading: tokenizer.ggml.* -> a braid tokenizer ---- */

static br_status str_kv(const br_gguf_t *g, const char *key, const char **v)
{
    const br_gguf_kv_t *kv = br_gguf_find_kv(g, key);
    if (!kv) return br_error(BR_ENOTFOUND, "GGUF: no %s (the file carries no tokenizer; pass --tokenizer)", key);
    if (kv->type != BR_GGUF_STRING) return br_error(BR_EFORMAT, "GGUF: %s is not a string", key);
    *v = kv->str;
    return BR_OK;
}

/* A string array's element i as a JSON string (NULL when it is not valid UTF-8). */
static json_t *arr_json(const br_gguf_kv_t *kv, size_t i)
{
    size_t len;
    const char *s = br_gguf_arr_str(kv, i, &len);
    return json_stringn(s, len);
}

static br_status build_model(const br_gguf_t *g, json_t *root)
{
    const br_gguf_kv_t *toks = br_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const br_gguf_kv_t *types = br_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const br_gguf_kv_t *merges = br_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!toks || toks->type != BR_GGUF_ARRAY || toks->arr_type != BR_GGUF_STRING)
        return br_error(BR_EFORMAT, "GGUF: tokenizer.ggml.tokens is missing or not a string array");
    if (types && (types->type != BR_GGUF_ARRAY || types->arr_type != BR_GGUF_I32 || types->arr_n != toks->arr_n))
        return br_error(BR_EFORMAT, "GGUF: tokenizer.ggml.token_type is not one i32 per token");
    if (merges && (merges->type != BR_GGUF_ARRAY || merges->arr_type != BR_GGUF_STRING))
        return br_error(BR_EFORMAT, "GGUF: tokenizer.ggml.merges is not a string array");
    json_t *vocab = json_object(), *mlist = json_array(), *added = json_array(), *model = json_object();
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", mlist);
    json_object_set_new(root, "model", model);
    json_object_set_new(root, "added_tokens", added);
    for (size_t i = 0; i < toks->arr_n; i++) {
        int32_t tt = TT_NORMAL;
        if (types) memcpy(&tt, types->arr + 4 * i, 4);
        json_t *s = arr_json(toks, i);
        if (!s) return br_error(BR_EFORMAT, "GGUF: token %zu is not valid UTF-8", i);
        if (tt == TT_CONTROL || tt == TT_USER_DEFINED || tt == TT_UNUSED) {
            json_t *a = json_pack("{s:I,s:o,s:b}", "id", (json_int_t)i, "content", s, "special", tt != TT_USER_DEFINED);
            json_array_append_new(added, a);
        } else {
            const char *k = json_string_value(s);
            if (json_object_get(vocab, k)) {
                json_decref(s);
                return br_error(BR_EFORMAT, "GGUF: token \"%.40s\" appears twice", k);
            }
            json_object_set_new(vocab, k, json_integer((json_int_t)i));
            json_decref(s);
        }
    }
    for (size_t i = 0; merges && i < merges->arr_n; i++) {
        json_t *s = arr_json(merges, i);
        if (!s) return br_error(BR_EFORMAT, "GGUF: merge %zu is not valid UTF-8", i);
        json_array_append_new(mlist, s);
    }
    return BR_OK;
}

static br_status build_pre(const br_gguf_t *g, json_t *root)
{
    const char *pre = "gpt-2", *regex = NULL;
    if (br_gguf_find_kv(g, "tokenizer.ggml.pre")) BR_TRY(str_kv(g, "tokenizer.ggml.pre", &pre));
    for (size_t i = 0; i < sizeof pres / sizeof *pres; i++)
        if (!strcmp(pre, pres[i].pre) || (!strcmp(pre, "llama3") && i == 1)) regex = pres[i].regex;
    if (!regex)
        return br_error(BR_EUNSUPPORTED, "GGUF: tokenizer.ggml.pre '%s' is not one braid knows (gpt-2, llama-bpe, "
                        "qwen2); pass --tokenizer tokenizer.json", pre);
    json_t *bl = json_pack("{s:s,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "use_regex", 0);
    json_t *split = json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", "Regex", regex, "behavior",
                              "Isolated", "invert", 0);
    json_object_set_new(root, "pre_tokenizer", json_pack("{s:s,s:[o,o]}", "type", "Sequence", "pretokenizers", split, bl));
    json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "ByteLevel"));
    return BR_OK;
}

/* tokenizer.json text for the file's tokenizer.ggml.* keys (*json malloc'd). */
static br_status gguf_tokenizer_json(const br_gguf_t *g, char **json)
{
    const char *model = NULL;
    BR_TRY(str_kv(g, "tokenizer.ggml.model", &model));
    if (strcmp(model, "gpt2"))
        return br_error(BR_EUNSUPPORTED, "GGUF: tokenizer.ggml.model '%s'; braid reads byte-level BPE ('gpt2') "
                        "vocabularies from GGUF (pass --tokenizer tokenizer.json)", model);
    json_t *root = json_object();
    br_status s = root ? build_model(g, root) : br_error(BR_ENOMEM, "out of memory");
    if (!s) s = build_pre(g, root);
    if (!s && !(*json = json_dumps(root, JSON_COMPACT))) s = br_error(BR_ENOMEM, "out of memory");
    json_decref(root);
    return s;
}

br_status br_gguf_load_tokenizer(br_tokenizer_t **out, const char *path)
{
    *out = NULL;
    br_gguf_t *g;
    BR_TRY(br_gguf_open(&g, path));
    char *json = NULL, tmp[4096];
    br_status s = gguf_tokenizer_json(g, &json);
    br_gguf_close(g);
    /* br_tokenizer_load reads files: the JSON goes through a private temp file */
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/braid-gguf-tokenizer-XXXXXX", td && *td ? td : "/tmp");
    int fd = s ? -1 : mkstemp(tmp);
    if (!s && fd < 0) s = br_error(BR_EIO, "cannot create a temp file in %s", td && *td ? td : "/tmp");
    if (!s) {
        size_t n = strlen(json);
        bool ok = write(fd, json, n) == (ssize_t)n;
        close(fd);
        s = ok ? br_tokenizer_load(out, tmp) : br_error(BR_EIO, "cannot write %s", tmp);
        unlink(tmp);
    }
    free(json);
    return s ? br_error_wrap(s, "%s", path) : BR_OK;
}
