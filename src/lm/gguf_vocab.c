/* The tokenizer in GGUF metadata (lm/gguf.h): a Hugging Face tokenizer.json (+
 * tokenizer_config.json) as llama.cpp's tokenizer.ggml.* keys, and those keys back as a braid
 * tokenizer.
 *
 * Byte-level BPE (GPT-2, Llama-3, Qwen2 style: llama.cpp's tokenizer.ggml.model "gpt2"):
 * tokens are the vocabulary's strings in GPT-2's byte-level spelling, exactly as tokenizer.json
 * holds them, merges "a b" in rank order, and the pre-tokeniser regex is named by
 * tokenizer.ggml.pre as llama.cpp knows it (gpt-2, llama-bpe, qwen2).  Added tokens become
 * CONTROL (special) or USER_DEFINED (not special) token types.  An NFC normalizer is dropped
 * (llama.cpp does not normalise: texts already in NFC, the usual case, tokenise the same).
 * SentencePiece-style BPE (Llama-2, Mistral, TinyLlama: llama.cpp's "llama" model, which merges
 * the pair making the highest-scoring piece first) goes out with scores derived from the merge
 * ranks and comes back with merges derived from the scores (every split of a piece into two
 * pieces, highest score first, as Hugging Face's converter does). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "lm/gguf.h"
#include "lm/prompt.h"
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
    float *scores;
    size_t n_merges_owned;
} owned_vocab_t;

void br_gguf_vocab_free(br_gguf_vocab_t *v)
{
    owned_vocab_t *o = (owned_vocab_t *)v;
    if (!o) return;
    for (size_t i = 0; i < o->n_merges_owned; i++) free(o->merges[i]);
    free(o->merges), free(o->tokens), free(o->types), free(o->scores);
    json_decref(o->tok), json_decref(o->cfg);
    free(o);
}

/* Whether tokenizer.json describes a SentencePiece-style vocabulary (byte fallback, Metaspace,
 * Prepend/Replace of U+2581), which llama.cpp's "gpt2" model cannot express. */
static bool sentencepiece_style(json_t *root)
{
    if (json_is_true(json_object_get(json_object_get(root, "model"), "byte_fallback"))) return true;
    char *n = json_dumps(json_object_get(root, "normalizer"), JSON_ENCODE_ANY);
    char *p = json_dumps(json_object_get(root, "pre_tokenizer"), JSON_ENCODE_ANY);
    bool sp = (n && (strstr(n, "Prepend") || strstr(n, "Replace"))) || (p && strstr(p, "Metaspace"));
    free(n), free(p);
    return sp;
}

/* The pre name for the tokenizer braid loads from the same file (its regex). */
static br_status pre_of(const char *path, json_t *root, const char **pre)
{
    *pre = NULL;
    (void)root;
    br_tokenizer_t *t = NULL;
    BR_TRY(br_tokenizer_load(&t, path));
    const char *re = br_tokenizer_pattern(t);
    for (size_t i = 0; re && i < sizeof pres / sizeof *pres; i++)
        if (!strcmp(re, pres[i].regex)) *pre = pres[i].pre;
    br_status s = *pre ? BR_OK : br_error(BR_EUNSUPPORTED, "%s: llama.cpp has no tokenizer.ggml.pre for the "
                                          "pre-tokenizer regex \"%.80s\" (known: gpt-2, llama-bpe, qwen2)", path,
                                          re ? re : "(none)");
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
    /* optional: a bad file only loses these keys (model_max_length is often 1e30: as a real) */
    if (!(o->cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je))) return;
    json_t *ab = json_object_get(o->cfg, "add_bos_token");
    if (json_is_boolean(ab)) o->v.add_bos = json_is_true(ab) ? 2 : 1;
    o->v.chat_template = json_string_value(json_object_get(o->cfg, "chat_template"));
    json_t *pad = json_object_get(o->cfg, "pad_token");
    const char *ps = json_is_string(pad) ? json_string_value(pad) : json_string_value(json_object_get(pad, "content"));
    for (size_t i = 0; ps && i < o->v.n_tokens; i++)
        if (!strcmp(o->v.tokens[i], ps)) o->v.pad_id = (int32_t)i, o->v.has_pad = true;
}

/* SentencePiece-style (llama.cpp's "llama" model): pieces as tokenizer.json spells them (U+2581
 * for spaces, <0xXX> byte tokens of type BYTE, the unk token UNKNOWN), and scores that make
 * llama.cpp's highest-score-first merging follow the BPE ranks: a piece first made by merge r
 * scores -(r + 1); single characters 0; pieces no merge makes -1e9 (never preferred). */
static br_status fill_sp(owned_vocab_t *o, json_t *root, const char *dir)
{
    json_t *model = json_object_get(root, "model"), *vocab = json_object_get(model, "vocab");
    size_t n = o->v.n_tokens;
    if (!(o->scores = malloc(n * sizeof *o->scores))) return br_error(BR_ENOMEM, "out of memory");
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    for (size_t i = 0; i < n; i++) {
        const char *t = o->tokens[i];
        size_t len = strlen(t);
        unsigned hx;
        char tail;
        if (len == 6 && sscanf(t, "<0x%2X%c", &hx, &tail) == 2 && tail == '>') o->types[i] = TT_BYTE;
        if (unk && !strcmp(t, unk)) o->types[i] = TT_UNKNOWN;
        bool one_char = len > 0 && len <= 4 && (size_t)((unsigned char)t[0] < 0x80   ? 1
                                                        : (unsigned char)t[0] < 0xE0 ? 2
                                                        : (unsigned char)t[0] < 0xF0 ? 3
                                                                                     : 4) == len;
        o->scores[i] = one_char ? 0.0f : -1e9f;
    }
    for (size_t r = o->n_merges_owned; r-- > 0;) { /* backwards: the first merge making a piece wins */
        char *m = o->merges[r], *sp = strchr(m, ' ');
        if (!sp) return br_error(BR_EFORMAT, "%s/tokenizer.json: merge %zu has no space", dir, r);
        size_t la = (size_t)(sp - m);
        memmove(sp, sp + 1, strlen(sp + 1) + 1); /* "a b" -> "ab" in place (the merges are ours) */
        json_t *id = json_object_get(vocab, m);
        if (json_is_integer(id) && (size_t)json_integer_value(id) < n) o->scores[json_integer_value(id)] = -(float)(r + 1);
        memmove(m + la + 1, m + la, strlen(m + la) + 1), m[la] = ' ';
    }
    o->v.model = "llama", o->v.pre = NULL, o->v.scores = o->scores;
    o->v.merges = NULL, o->v.n_merges = 0;
    o->v.add_space_prefix = 2;
    return BR_OK;
}

/* The id of tokenizer_config.json's token key ("<s>" or {"content": "<s>"}) in tok, or -1. */
static int32_t config_token(const owned_vocab_t *o, const br_tokenizer_t *tok, const char *key)
{
    json_t *t = json_object_get(o->cfg, key);
    const char *str = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "content"));
    return str ? br_tokenizer_token_id(tok, str) : -1;
}

/* The BOS rule and the first three stop ids that the prompt pipeline resolves for a folder with a
 * tokenizer_config.json (add_bos_token, or else tokenizer.json's post-processor; eos_token,
 * generation_config.json's eos_token_id) and tokenizer_config.json's bos_token: written to the
 * GGUF so that llama.cpp and braid start and stop prompts on the file as braid does on the
 * folder, and a chat template's bos_token resolves.  Best effort, as fill_config: a folder the
 * pipeline rejects keeps the keys it gave. */
static void fill_prompt_ids(owned_vocab_t *o, const char *dir)
{
    br_prompt_t *p = NULL;
    br_prompt_opts_t po = {.model_dir = dir};
    if (br_prompt_open(&p, &po)) return;
    int32_t bos = br_prompt_bos(p), named = config_token(o, br_prompt_tokenizer(p), "bos_token");
    const int32_t *stops = NULL;
    size_t n = br_prompt_stop_ids(p, &stops);
    if (!o->v.add_bos) o->v.add_bos = bos >= 0 ? 2 : 1;
    if (bos < 0) bos = named;
    if (bos >= 0) o->v.has_bos = true, o->v.bos_id = bos;
    if (n) o->v.has_eos = true, o->v.eos_id = stops[0];
    for (size_t i = 1; i < n && o->v.n_more_stops < 2; i++) o->v.more_stops[o->v.n_more_stops++] = stops[i];
    br_prompt_free(p);
}

br_status br_gguf_vocab_load(br_gguf_vocab_t **out, const char *dir)
{
    *out = NULL;
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, dir, "tokenizer.json"));
    if (!br_file_exists(path)) return br_error(BR_ENOTFOUND, "%s: no tokenizer.json", dir);
    const char *pre = NULL;
    owned_vocab_t *o = calloc(1, sizeof *o);
    if (!o) return br_error(BR_ENOMEM, "out of memory");
    json_error_t je;
    br_status s = BR_OK;
    if (!(o->tok = json_load_file(path, 0, &je)))
        s = br_error(BR_EFORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    bool spm = !s && sentencepiece_style(o->tok);
    if (!s && !spm) s = pre_of(path, o->tok, &pre);
    json_t *model = json_object_get(o->tok, "model");
    if (!s) s = fill_tokens(o, json_object_get(model, "vocab"), json_object_get(o->tok, "added_tokens"), dir);
    if (!s) s = fill_merges(o, json_object_get(model, "merges"), dir);
    o->v.model = "gpt2", o->v.pre = pre;
    if (!s && spm) s = fill_sp(o, o->tok, dir);
    if (s) {
        br_gguf_vocab_free(&o->v);
        return s;
    }
    fill_config(o, dir);
    if (o->cfg) fill_prompt_ids(o, dir);
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

/* A STRING array's elements, found in one pass (br_gguf_arr_str walks from the start each time,
 * which is quadratic over a vocabulary). */
typedef struct {
    const char **s;
    size_t *len, n;
} strs_t;

static void strs_free(strs_t *a)
{
    free(a->s), free(a->len);
    a->s = NULL, a->len = NULL;
}

static br_status strs_of(const br_gguf_kv_t *kv, strs_t *out)
{
    out->n = kv->arr_n;
    out->s = malloc((out->n ? out->n : 1) * sizeof *out->s);
    out->len = malloc((out->n ? out->n : 1) * sizeof *out->len);
    if (!out->s || !out->len) return strs_free(out), br_error(BR_ENOMEM, "out of memory");
    const uint8_t *p = kv->arr; /* u64 length + bytes, each; validated by the parser */
    for (size_t i = 0; i < out->n; i++) {
        uint64_t n;
        memcpy(&n, p, 8);
        out->s[i] = (const char *)p + 8, out->len[i] = (size_t)n;
        p += 8 + n;
    }
    return BR_OK;
}

/* Element i as a JSON string (NULL when it is not valid UTF-8). */
static json_t *arr_json(const strs_t *a, size_t i) { return json_stringn(a->s[i], a->len[i]); }

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
    strs_t ts = {0}, ms = {0};
    BR_TRY(strs_of(toks, &ts));
    br_status st = merges ? strs_of(merges, &ms) : BR_OK;
    if (st) return strs_free(&ts), st;
    json_t *vocab = json_object(), *mlist = json_array(), *added = json_array(), *model = json_object();
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", mlist);
    json_object_set_new(root, "model", model);
    json_object_set_new(root, "added_tokens", added);
    for (size_t i = 0; i < toks->arr_n && !st; i++) {
        int32_t tt = TT_NORMAL;
        if (types) memcpy(&tt, types->arr + 4 * i, 4);
        json_t *s = arr_json(&ts, i);
        if (!s) {
            st = br_error(BR_EFORMAT, "GGUF: token %zu is not valid UTF-8", i);
            break;
        }
        if (tt == TT_CONTROL || tt == TT_USER_DEFINED || tt == TT_UNUSED) {
            json_t *a = json_pack("{s:I,s:o,s:b}", "id", (json_int_t)i, "content", s, "special", tt != TT_USER_DEFINED);
            json_array_append_new(added, a);
        } else {
            const char *k = json_string_value(s);
            if (json_object_get(vocab, k)) st = br_error(BR_EFORMAT, "GGUF: token \"%.40s\" appears twice", k);
            else json_object_set_new(vocab, k, json_integer((json_int_t)i));
            json_decref(s);
        }
    }
    for (size_t i = 0; merges && i < merges->arr_n && !st; i++) {
        json_t *s = arr_json(&ms, i);
        if (!s) st = br_error(BR_EFORMAT, "GGUF: merge %zu is not valid UTF-8", i);
        else json_array_append_new(mlist, s);
    }
    strs_free(&ts), strs_free(&ms);
    return st;
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

/* ---- model "llama" (SentencePiece): merges from the scores ---- */

typedef struct {
    float score;
    int32_t t, a, b; /* a + b spells t */
} sp_merge_t;

/* Highest score first, as llama.cpp's SentencePiece tokenizer merges (and as Hugging Face's
 * converter orders them: then by the merged piece's id, then by the parts' ids). */
static int sp_merge_cmp(const void *x, const void *y)
{
    const sp_merge_t *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->t != q->t) return p->t < q->t ? -1 : 1;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return (p->b > q->b) - (p->b < q->b);
}

/* vocab's id of the n bytes at s, or -1. */
static int32_t sp_id(json_t *vocab, const char *s, size_t n)
{
    char stack[256], *k = n < sizeof stack ? stack : malloc(n + 1);
    if (!k) return -1;
    memcpy(k, s, n), k[n] = 0;
    json_t *v = json_object_get(vocab, k);
    if (k != stack) free(k);
    return json_is_integer(v) ? (int32_t)json_integer_value(v) : -1;
}

/* Every split of every normal piece into two normal pieces, ordered (Hugging Face's
 * SentencePieceExtractor). */
static br_status sp_merges(json_t *vocab, json_t *mlist, const strs_t *toks, const int32_t *types,
                           const float *scores)
{
    size_t cap = 1024, n = 0;
    sp_merge_t *m = malloc(cap * sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < toks->n; i++) {
        size_t len = toks->len[i];
        const char *t = toks->s[i];
        if (types[i] != TT_NORMAL) continue;
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)t[k] & 0xC0) == 0x80) continue; /* inside a UTF-8 character */
            int32_t a = sp_id(vocab, t, k), b = a < 0 ? -1 : sp_id(vocab, t + k, len - k);
            if (b < 0 || types[a] != TT_NORMAL || types[b] != TT_NORMAL) continue;
            if (n == cap) {
                sp_merge_t *g = realloc(m, 2 * cap * sizeof *m);
                if (!g) return free(m), br_error(BR_ENOMEM, "out of memory");
                m = g, cap *= 2;
            }
            m[n++] = (sp_merge_t){scores[i], (int32_t)i, a, b};
        }
    }
    qsort(m, n, sizeof *m, sp_merge_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t a = (size_t)m[i].a, b = (size_t)m[i].b;
        json_array_append_new(mlist, json_pack("[s%,s%]", toks->s[a], toks->len[a], toks->s[b], toks->len[b]));
    }
    free(m);
    return BR_OK;
}

/* tokenizer.json for a "llama" file: SentencePiece-style BPE with byte fallback. */
static br_status build_sp(const br_gguf_t *g, json_t *root)
{
    const br_gguf_kv_t *toks = br_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const br_gguf_kv_t *types = br_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const br_gguf_kv_t *scores = br_gguf_find_kv(g, "tokenizer.ggml.scores");
    const br_gguf_kv_t *asp = br_gguf_find_kv(g, "tokenizer.ggml.add_space_prefix");
    if (!toks || toks->type != BR_GGUF_ARRAY || toks->arr_type != BR_GGUF_STRING || !types ||
        types->type != BR_GGUF_ARRAY || types->arr_type != BR_GGUF_I32 || types->arr_n != toks->arr_n || !scores ||
        scores->type != BR_GGUF_ARRAY || scores->arr_type != BR_GGUF_F32 || scores->arr_n != toks->arr_n)
        return br_error(BR_EFORMAT, "GGUF: a \"llama\" tokenizer needs tokens, token_type (i32) and scores (f32), "
                        "one per token");
    bool prefix = !asp || asp->type != BR_GGUF_BOOL || asp->u;
    size_t n = toks->arr_n;
    strs_t ts = {0};
    BR_TRY(strs_of(toks, &ts));
    int32_t *tt = malloc((n ? n : 1) * sizeof *tt);
    float *sc = malloc((n ? n : 1) * sizeof *sc);
    json_t *vocab = json_object(), *mlist = json_array(), *added = json_array();
    br_status s = tt && sc ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    const char *unk = NULL;
    size_t unk_len = 0;
    for (size_t i = 0; i < n && !s; i++) {
        memcpy(&tt[i], types->arr + 4 * i, 4), memcpy(&sc[i], scores->arr + 4 * i, 4);
        json_t *str = arr_json(&ts, i);
        if (!str) {
            s = br_error(BR_EFORMAT, "GGUF: token %zu is not valid UTF-8", i);
        } else if (tt[i] == TT_CONTROL || tt[i] == TT_USER_DEFINED || tt[i] == TT_UNUSED) {
            json_array_append_new(added, json_pack("{s:I,s:o,s:b}", "id", (json_int_t)i, "content", str, "special",
                                                   tt[i] != TT_USER_DEFINED));
        } else {
            if (tt[i] == TT_UNKNOWN && !unk) unk = ts.s[i], unk_len = ts.len[i];
            json_object_set_new(vocab, json_string_value(str), json_integer((json_int_t)i));
            json_decref(str);
        }
    }
    if (!s) s = sp_merges(vocab, mlist, &ts, tt, sc);
    free(tt), free(sc);
    json_t *model = json_pack("{s:s,s:o,s:o,s:b,s:b}", "type", "BPE", "vocab", vocab, "merges", mlist, "byte_fallback",
                              1, "fuse_unk", 1);
    if (unk) json_object_set_new(model, "unk_token", json_stringn(unk, unk_len));
    json_object_set_new(root, "model", model);
    json_object_set_new(root, "added_tokens", added);
    json_t *replace = json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xE2\x96\x81");
    json_object_set_new(root, "normalizer",
                        prefix ? json_pack("{s:s,s:[{s:s,s:s},o]}", "type", "Sequence", "normalizers", "type", "Prepend",
                                           "prepend", "\xE2\x96\x81", replace)
                               : replace);
    json_object_set_new(root, "decoder",
                        json_pack("{s:s,s:[{s:s,s:{s:s},s:s},{s:s},{s:s},{s:s,s:s,s:i,s:i}]}", "type", "Sequence",
                                  "decoders", "type", "Replace", "pattern", "String", "\xE2\x96\x81", "content", " ",
                                  "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start",
                                  prefix ? 1 : 0, "stop", 0));
    strs_free(&ts);
    return s;
}

br_status br_gguf_tokenizer_json(const br_gguf_t *g, char **json)
{
    const char *model = NULL;
    BR_TRY(str_kv(g, "tokenizer.ggml.model", &model));
    bool spm = !strcmp(model, "llama");
    if (strcmp(model, "gpt2") && !spm)
        return br_error(BR_EUNSUPPORTED, "GGUF: tokenizer.ggml.model '%s'; braid reads 'gpt2' (byte-level BPE) and "
                        "'llama' (SentencePiece) vocabularies from GGUF (pass --tokenizer tokenizer.json)", model);
    json_t *root = json_object();
    br_status s = !root ? br_error(BR_ENOMEM, "out of memory") : spm ? build_sp(g, root) : build_model(g, root);
    if (!s && !spm) s = build_pre(g, root);
    if (!s && !(*json = json_dumps(root, JSON_COMPACT))) s = br_error(BR_ENOMEM, "out of memory");
    json_decref(root);
    return s;
}

bool br_gguf_has_tokenizer(const char *path)
{
    br_gguf_t *g;
    if (br_gguf_open(&g, path)) return false;
    bool has = br_gguf_find_kv(g, "tokenizer.ggml.model") != NULL;
    br_gguf_close(g);
    return has;
}

br_status br_gguf_tokenizer(br_tokenizer_t **out, const br_gguf_t *g)
{
    *out = NULL;
    char *json = NULL;
    br_status s = br_gguf_tokenizer_json(g, &json);
    if (!s) s = br_tokenizer_load_text(out, json, "the GGUF tokenizer");
    free(json);
    return s;
}

br_status br_gguf_load_tokenizer(br_tokenizer_t **out, const char *path)
{
    *out = NULL;
    br_gguf_t *g;
    BR_TRY(br_gguf_open(&g, path));
    br_status s = br_gguf_tokenizer(out, g);
    br_gguf_close(g);
    return s ? br_error_wrap(s, "%s", path) : BR_OK;
}
