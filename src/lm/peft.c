/* PEFT adapter folders: adapter_config.json + adapter_model.safetensors (lm/peft.h). */
#include "lm/peft.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/safetensors.h"

/* PEFT's key matching for rank_pattern / alpha_pattern: the pattern equals the module name or
 * is a suffix of it starting after a '.'. */
static bool pattern_matches(const char *module, const char *key)
{
    size_t lm = strlen(module), lk = strlen(key);
    if (lk > lm) return false;
    if (strcmp(module + lm - lk, key)) return false;
    return lk == lm || module[lm - lk - 1] == '.';
}

/* Module slots of an adapter on shapes s: the dense ones (layer * P + proj), then the
 * experts' (nmod + (layer * X + expert) * P + proj), as lm/lora.h lays out mods and xmods. */
static size_t n_dense_slots(const br_lora_shapes_t *s) { return (size_t)s->n_layers * BR_PROJ_COUNT; }

/* Layer, expert (-1: dense) and projection of slot i; buf receives its module path. */
static br_proj slot_module(const br_lora_shapes_t *s, size_t i, int *layer, int *expert, char *buf, size_t cap)
{
    size_t nmod = n_dense_slots(s), X = br_lora_expert_stride(s);
    br_proj p = (br_proj)(i % BR_PROJ_COUNT);
    if (i < nmod) {
        *layer = (int)(i / BR_PROJ_COUNT);
        *expert = -1;
        br_lora_module_path(buf, cap, *layer, p);
    } else {
        i -= nmod;
        *layer = (int)(i / (X * BR_PROJ_COUNT));
        *expert = (int)((i / BR_PROJ_COUNT) % X);
        br_lora_expert_path(buf, cap, *layer, *expert, p);
    }
    return p;
}

/* Parses "J.<w1|w2|w3|q_proj...>." after "...experts." for an expert of an FFN (ffn) or of the
 * attention; returns the rest of the name, NULL when it has another form. */
static const char *parse_expert(const char *p, bool ffn, int *expert, int *proj)
{
    if (*p < '0' || *p > '9') return NULL;
    char *end;
    long e = strtol(p, &end, 10);
    if (*end != '.' || e < 0 || e > 1000000) return NULL;
    p = end + 1;
    for (int k = 0; k < BR_PROJ_COUNT; k++) {
        const char *n = ffn ? br_lora_expert_name((br_proj)k) : br_lora_proj_name((br_proj)k);
        if (!n || (!ffn && br_lora_expert_name((br_proj)k))) continue;
        size_t ln = strlen(n);
        if (!strncmp(p, n, ln) && p[ln] == '.') {
            *expert = (int)e;
            *proj = k;
            return p + ln + 1;
        }
    }
    return NULL;
}

/* Parses "base_model.model.model.layers.N.<parent>.<proj>.lora_{A,B}[.default].weight", or
 * an expert's "...layers.N.block_sparse_moe.experts.J.w1..." / "...self_attn.experts.J.q_proj...".
 * Returns 0 and fills layer/expert (-1: dense)/proj/is_b, or -1 when the name has another form. */
static int parse_tensor_name(const char *name, int *layer, int *expert, int *proj, int *is_b, char *module,
                             size_t cap)
{
    static const char *prefixes[] = {"base_model.model.model.layers.", "base_model.model.layers.",
                                     "model.layers."};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes && !p; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) p = name + strlen(prefixes[i]);
    if (!p || *p < '0' || *p > '9') return -1;
    char *end;
    long l = strtol(p, &end, 10);
    if (*end != '.' || l < 0 || l > 1000000) return -1;
    p = end + 1;
    int found = -1;
    *expert = -1;
    static const char ffx[] = "block_sparse_moe.experts.", atx[] = "self_attn.experts.";
    if (!strncmp(p, ffx, sizeof ffx - 1)) {
        if (!(p = parse_expert(p + sizeof ffx - 1, true, expert, &found))) return -1;
    } else if (!strncmp(p, atx, sizeof atx - 1)) {
        if (!(p = parse_expert(p + sizeof atx - 1, false, expert, &found))) return -1;
    }
    for (int k = 0; k < BR_PROJ_COUNT && *expert < 0; k++) {
        const char *parent = br_lora_proj_parent((br_proj)k), *pname = br_lora_proj_name((br_proj)k);
        size_t lp = strlen(parent), ln = strlen(pname);
        if (!strncmp(p, parent, lp) && p[lp] == '.' && !strncmp(p + lp + 1, pname, ln) &&
            p[lp + 1 + ln] == '.') {
            found = k;
            p += lp + 1 + ln + 1;
            break;
        }
    }
    if (found < 0) return -1;
    if (!strcmp(p, "lora_A.weight") || !strcmp(p, "lora_A.default.weight")) *is_b = 0;
    else if (!strcmp(p, "lora_B.weight") || !strcmp(p, "lora_B.default.weight")) *is_b = 1;
    else return -1;
    *layer = (int)l;
    *proj = found;
    if (*expert >= 0) br_lora_expert_path(module, cap, (int)l, *expert, (br_proj)found);
    else br_lora_module_path(module, cap, (int)l, (br_proj)found);
    return 0;
}

/* Appends to bad (snprintf at *nb) why target module `name` is not in the base, if it is not. */
static void check_target(const br_lora_shapes_t *s, const char *name, char *bad, size_t cap, size_t *nb)
{
    static const char *const xn[] = {"w1", "w3", "w2"};
    static const br_proj xp[] = {BR_PROJ_GATE, BR_PROJ_UP, BR_PROJ_DOWN};
    const char *why = NULL;
    int p = br_lora_proj_parse(name);
    if (p >= 0) {
        bool present = !(s->absent & (1u << p)) || (!br_lora_expert_name((br_proj)p) && s->n_attn_experts > 0);
        if (!present) why = "the FFN is a mixture of experts: their projections are w1, w3, w2";
    } else {
        for (size_t i = 0; i < 3 && !why; i++)
            if (!strcmp(name, xn[i]) && br_lora_site_experts(s, xp[i]) <= 0) why = "the base has no block_sparse_moe experts";
    }
    if (why && *nb < cap) *nb += (size_t)snprintf(bad + *nb, cap - *nb, "%s'%s' (%s)", *nb ? ", " : "", name, why);
}

/* Is `name` a target module braid knows: a Llama projection or a Mixtral expert's w1/w2/w3? */
static bool known_target(const char *name)
{
    return br_lora_proj_parse(name) >= 0 || !strcmp(name, "w1") || !strcmp(name, "w2") || !strcmp(name, "w3");
}

/* An alpha becomes the scale of a module's update: it must be a number in
 * (0, BR_LORA_ALPHA_MAX], so that scale * (x A^T) B^T stays finite (1e39 would be Inf as a
 * float, and NaN logits after it). */
static br_status check_alpha(const json_t *v, const char *path, const char *field, const char *key)
{
    double a = json_is_number(v) ? json_number_value(v) : NAN;
    if (a > 0 && a <= BR_LORA_ALPHA_MAX) return BR_OK;
    if (!json_is_number(v))
        return br_error(BR_EFORMAT, "%s: %s%s%s%s must be a number in (0, %g]", path, field, key ? "[\"" : "",
                        key ? key : "", key ? "\"]" : "", BR_LORA_ALPHA_MAX);
    return br_error(BR_EFORMAT, "%s: %s%s%s%s is %g; it must be in (0, %g]", path, field, key ? "[\"" : "",
                    key ? key : "", key ? "\"]" : "", a, BR_LORA_ALPHA_MAX);
}

/* Reads and checks adapter_config.json at `path`; fills alpha, r, rslora, base model; keeps
 * the alpha_pattern object (borrowed reference inside *root). */
static br_status read_config(const char *path, int flags, json_t **root, br_lora_adapter_t *cfg,
                             const br_lora_shapes_t *shapes)
{
    if (!br_file_exists(path)) return br_error(BR_ENOTFOUND, "%s: no such file (not a PEFT adapter folder?)", path);
    char *text;
    size_t n;
    BR_TRY(br_read_file_flags(path, flags, &text, &n));
    json_error_t je;
    json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!j) return br_error(BR_EFORMAT, "%s:%d: %s", path, je.line, je.text);
    *root = j;
    if (!json_is_object(j)) return br_error(BR_EFORMAT, "%s: not a JSON object", path);
    json_t *v = json_object_get(j, "peft_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "LORA")))
        return br_error(BR_EUNSUPPORTED, "%s: peft_type is not \"LORA\"", path);
    v = json_object_get(j, "r");
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 4096)
        return br_error(BR_EFORMAT, "%s: \"r\" must be a positive integer", path);
    cfg->rank = (int)json_integer_value(v);
    v = json_object_get(j, "lora_alpha");
    BR_TRY(check_alpha(v, path, "lora_alpha", NULL));
    cfg->alpha = (float)json_number_value(v);
    v = json_object_get(j, "use_rslora");
    cfg->rslora = json_is_true(v);
    v = json_object_get(j, "use_dora");
    if (json_is_true(v)) return br_error(BR_EUNSUPPORTED, "%s: DoRA adapters (use_dora) are not supported", path);
    v = json_object_get(j, "fan_in_fan_out");
    if (json_is_true(v))
        return br_error(BR_EUNSUPPORTED, "%s: fan_in_fan_out adapters (GPT-2 Conv1D) are not supported", path);
    v = json_object_get(j, "bias");
    if (v && json_is_string(v) && strcmp(json_string_value(v), "none"))
        return br_error(BR_EUNSUPPORTED, "%s: bias \"%s\" is not supported (only \"none\")", path,
                        json_string_value(v));
    v = json_object_get(j, "modules_to_save");
    if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
        return br_error(BR_EUNSUPPORTED, "%s: modules_to_save is not supported", path);
    v = json_object_get(j, "target_modules");
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        char bad[512] = "";
        size_t nb = 0;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) return br_error(BR_EFORMAT, "%s: target_modules[%zu] is not a string", path, i);
            if (!known_target(json_string_value(e)))
                return br_error(BR_EUNSUPPORTED,
                                "%s: target module '%s' is not a Llama projection or a Mixtral expert's w1/w2/w3",
                                path, json_string_value(e));
            check_target(shapes, json_string_value(e), bad, sizeof bad, &nb);
        }
        if (nb) return br_error(BR_EINVAL, "%s: target_modules not in the base model: %s", path, bad);
    } else if (v && !json_is_string(v) && !json_is_null(v)) {
        return br_error(BR_EFORMAT, "%s: target_modules must be a list or a string", path);
    }
    v = json_object_get(j, "alpha_pattern");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) return br_error(BR_EFORMAT, "%s: alpha_pattern must be an object", path);
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) BR_TRY(check_alpha(e, path, "alpha_pattern", k));
    }
    v = json_object_get(j, "base_model_name_or_path");
    if (json_is_string(v)) snprintf(cfg->base_model, sizeof cfg->base_model, "%s", json_string_value(v));
    return BR_OK;
}

static float alpha_for(json_t *cfg, const char *module, float dflt)
{
    json_t *ap = json_object_get(cfg, "alpha_pattern");
    if (!json_is_object(ap)) return dflt;
    const char *k;
    json_t *e;
    json_object_foreach(ap, k, e) {
        if (pattern_matches(module, k)) return (float)json_number_value(e);
    }
    return dflt;
}

/* Why slot (layer, expert, proj) is not in the base (NULL: it is). */
static const char *slot_missing(const br_lora_shapes_t *s, int layer, int expert, br_proj p)
{
    if (layer >= s->n_layers) return "layer";
    if (expert < 0) return (s->absent & (1u << p)) ? "module" : NULL;
    return expert >= br_lora_site_experts(s, p) ? "expert" : NULL;
}

/* Files every tensor of st into ta/tb by slot; checks names, layers, experts, dtypes. */
static br_status index_tensors(const char *path, br_safetensors_t *st, const br_lora_shapes_t *s,
                               const br_st_tensor_t **ta, const br_st_tensor_t **tb)
{
    size_t nt = br_st_count(st), nmod = n_dense_slots(s), X = br_lora_expert_stride(s);
    char module[160];
    for (size_t i = 0; i < nt; i++) {
        const br_st_tensor_t *t = br_st_tensor(st, i);
        int layer, expert, proj, is_b;
        if (parse_tensor_name(t->name, &layer, &expert, &proj, &is_b, module, sizeof module))
            return br_error(BR_EUNSUPPORTED,
                            "%s: tensor '%s' is not a LoRA A/B matrix of a Llama projection or of an MoE expert", path,
                            t->name);
        const char *miss = slot_missing(s, layer, expert, (br_proj)proj);
        if (miss && !strcmp(miss, "layer"))
            return br_error(BR_EFORMAT, "%s: tensor '%s' is for layer %d but the base model has %d layers", path,
                            t->name, layer, s->n_layers);
        if (miss && !strcmp(miss, "expert"))
            return br_error(BR_EFORMAT, "%s: tensor '%s' adapts %s, but the base model has %d %s experts per layer", path,
                            t->name, module, br_lora_site_experts(s, (br_proj)proj),
                            br_lora_expert_name((br_proj)proj) ? "FFN" : "attention");
        if (miss)
            return br_error(BR_EFORMAT, "%s: tensor '%s' adapts %s, which the base model does not have (%s)", path,
                            t->name, module,
                            br_lora_expert_name((br_proj)proj) ? "its FFN is a mixture: block_sparse_moe.experts.J.w1/w3/w2"
                                                               : "its attention is a mixture: self_attn.experts.J");
        if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0)
            return br_error(BR_EFORMAT, "%s: tensor '%s' must be a non-empty matrix", path, t->name);
        if (t->dtype != BR_DT_F32 && t->dtype != BR_DT_F16 && t->dtype != BR_DT_BF16 && t->dtype != BR_DT_F64)
            return br_error(BR_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (want F32, F16 or BF16)", path, t->name,
                            br_dtype_name(t->dtype));
        size_t idx = expert < 0 ? (size_t)layer * BR_PROJ_COUNT + (size_t)proj
                                : nmod + ((size_t)layer * X + (size_t)expert) * BR_PROJ_COUNT + (size_t)proj;
        const br_st_tensor_t **slot = is_b ? &tb[idx] : &ta[idx];
        if (*slot) return br_error(BR_EFORMAT, "%s: two tensors for %s.lora_%c", path, module, is_b ? 'B' : 'A');
        *slot = t;
    }
    return BR_OK;
}

/* ranks[i] of every slot from its A/B pair (0: absent); checks pairs and shapes. */
static br_status slot_ranks(const char *path, const br_lora_shapes_t *s, const br_st_tensor_t **ta,
                            const br_st_tensor_t **tb, int *ranks, size_t nslots)
{
    char module[160];
    for (size_t i = 0; i < nslots; i++) {
        if (!ta[i] && !tb[i]) continue;
        int layer, expert;
        br_proj proj = slot_module(s, i, &layer, &expert, module, sizeof module);
        if (!ta[i] || !tb[i])
            return br_error(BR_EFORMAT, "%s: %s has lora_%c but no lora_%c", path, module, ta[i] ? 'A' : 'B',
                            ta[i] ? 'B' : 'A');
        int64_t r = ta[i]->shape[0];
        if (ta[i]->shape[1] != (int64_t)s->in[proj] || tb[i]->shape[0] != (int64_t)s->out[proj] ||
            tb[i]->shape[1] != r)
            return br_error(BR_EFORMAT,
                            "%s: %s: lora_A is [%lld, %lld] and lora_B [%lld, %lld], but the base %s is "
                            "[%zu, %zu] (want A [r, %zu], B [%zu, r])",
                            path, module, (long long)ta[i]->shape[0], (long long)ta[i]->shape[1],
                            (long long)tb[i]->shape[0], (long long)tb[i]->shape[1], module, s->out[proj],
                            s->in[proj], s->in[proj], s->out[proj]);
        if (r > 4096) return br_error(BR_EFORMAT, "%s: %s: rank %lld is too large", path, module, (long long)r);
        ranks[i] = (int)r;
    }
    return BR_OK;
}

/* Scales (alpha_pattern) and weights of every module of a; checks they are finite. */
static br_status fill_modules(br_lora_adapter_t *a, const char *path, json_t *cfgj, const br_lora_adapter_t *cfg,
                              const br_st_tensor_t **ta, const br_st_tensor_t **tb, size_t nslots)
{
    const br_lora_shapes_t *s = &a->shapes;
    size_t nmod = n_dense_slots(s);
    char module[160];
    for (size_t i = 0; i < nslots; i++) {
        br_lora_module_t *m = i < nmod ? &a->mods[i] : a->xmods ? &a->xmods[i - nmod] : NULL;
        if (!m || !m->rank) continue;
        int layer, expert;
        br_proj proj = slot_module(s, i, &layer, &expert, module, sizeof module);
        m->scale = br_lora_scale(alpha_for(cfgj, module, cfg->alpha), m->rank, cfg->rslora);
        /* every alpha was checked; this holds the invariant the server relies on */
        if (!(isfinite(m->scale) && m->scale > 0 && m->scale <= BR_LORA_ALPHA_MAX))
            return br_error(BR_EFORMAT, "%s: %s: scale %g (alpha / %s) is out of range", path, module,
                            (double)m->scale, cfg->rslora ? "sqrt(r)" : "r");
        BR_TRY(br_st_read_f32(ta[i], m->A, (size_t)m->rank * s->in[proj]));
        BR_TRY(br_st_read_f32(tb[i], m->B, (size_t)m->rank * s->out[proj]));
    }
    for (size_t i = 0; i < a->n_params; i++)
        if (!isfinite(a->params[i])) return br_error(BR_EFORMAT, "%s: LoRA weights contain NaN or Inf", path);
    return BR_OK;
}

static br_status load_tensors(br_lora_adapter_t **out, const char *dir, const char *path,
                              br_safetensors_t *st, json_t *cfgj, const br_lora_adapter_t *cfg,
                              const br_lora_shapes_t *s)
{
    size_t nmod = n_dense_slots(s), nslots = nmod + br_lora_expert_slots(s);
    int *ranks = calloc(nslots, sizeof *ranks);
    const br_st_tensor_t **ta = calloc(nslots, sizeof *ta), **tb = calloc(nslots, sizeof *tb);
    br_status rc = BR_OK;
    if (!ranks || !ta || !tb) rc = br_error(BR_ENOMEM, "LoRA: out of memory");
    if (rc == BR_OK) rc = index_tensors(path, st, s, ta, tb);
    if (rc == BR_OK) rc = slot_ranks(path, s, ta, tb, ranks, nslots);
    if (rc == BR_OK) rc = br_lora_alloc_experts(out, s, ranks, nslots > nmod ? ranks + nmod : NULL);
    br_lora_adapter_t *a = rc == BR_OK ? *out : NULL;
    if (a && !a->targets && !a->xtargets) rc = br_error(BR_EFORMAT, "%s: no LoRA tensors", path);
    if (rc == BR_OK) {
        a->rank = cfg->rank;
        a->alpha = cfg->alpha;
        a->rslora = cfg->rslora;
        memcpy(a->base_model, cfg->base_model, sizeof a->base_model);
        rc = fill_modules(a, path, cfgj, cfg, ta, tb, nslots);
    }
    if (rc != BR_OK) {
        br_lora_free(a);
        *out = NULL;
    } else {
        /* registry name: the folder's last component */
        const char *base = dir + strlen(dir);
        while (base > dir && base[-1] == '/') base--;
        const char *stop = base;
        while (base > dir && base[-1] != '/') base--;
        snprintf(a->name, sizeof a->name, "%.*s", (int)(stop - base), base);
    }
    free(ranks);
    free(ta);
    free(tb);
    return rc;
}

br_status br_lora_load(br_lora_adapter_t **out, const char *dir, const br_lora_shapes_t *shapes)
{
    return br_lora_load_flags(out, dir, shapes, 0);
}

br_status br_lora_load_flags(br_lora_adapter_t **out, const char *dir, const br_lora_shapes_t *shapes, int flags)
{
    *out = NULL;
    if (shapes->n_layers <= 0) return br_error(BR_EINVAL, "LoRA: base model has no layers");
    br_lora_adapter_t cfg;
    memset(&cfg, 0, sizeof cfg);
    json_t *cfgj = NULL;
    br_safetensors_t *st = NULL;
    br_buf_t path = BR_BUF_INIT;
    br_status rc = br_buf_path(&path, dir, "adapter_config.json");
    if (rc == BR_OK) rc = read_config(br_buf_str(&path), flags, &cfgj, &cfg, shapes);
    if (rc == BR_OK) rc = br_buf_path(&path, dir, "adapter_model.safetensors");
    if (rc == BR_OK && !br_file_exists(br_buf_str(&path))) {
        br_buf_t bin = BR_BUF_INIT;
        if (br_buf_path(&bin, dir, "adapter_model.bin") == BR_OK && br_file_exists(br_buf_str(&bin)))
            rc = br_error(BR_EUNSUPPORTED, "%s: pickled adapters are not loaded (save with safe_serialization)",
                          br_buf_str(&bin));
        else
            rc = br_error(BR_ENOTFOUND, "%s: no such file", br_buf_str(&path));
        br_buf_free(&bin);
    }
    char *bytes = NULL; /* BR_OPEN_NOFOLLOW: the file read through the descriptor opened without links */
    size_t nbytes = 0;
    if (rc == BR_OK && !(flags & BR_OPEN_NOFOLLOW)) rc = br_st_open(&st, br_buf_str(&path));
    else if (rc == BR_OK && !(rc = br_read_file_flags(br_buf_str(&path), flags, &bytes, &nbytes)) &&
             (rc = br_st_parse(&st, bytes, nbytes)))
        rc = br_error_wrap(rc, "%s", br_buf_str(&path));
    if (rc == BR_OK) rc = load_tensors(out, dir, br_buf_str(&path), st, cfgj, &cfg, shapes);
    br_st_close(st);
    free(bytes);
    json_decref(cfgj);
    br_buf_free(&path);
    return rc;
}

br_status br_lora_save(const br_lora_adapter_t *a, const char *dir)
{
    BR_TRY(br_mkdir_p(dir));
    br_buf_t path = BR_BUF_INIT;
    br_st_writer_t *w = NULL;
    BR_TRY(br_st_writer_create(&w));
    br_status rc = br_st_writer_set_metadata(w, "format", "pt");
    char name[256];
    int rank0 = 0;
    json_t *targets = json_array(), *rank_pattern = json_object(), *alpha_pattern = json_object();
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if (a->targets & (1u << p)) json_array_append_new(targets, json_string(br_lora_proj_name((br_proj)p)));
    for (int p = 0; p < BR_PROJ_COUNT; p++) { /* experts: Mixtral's w1/w3/w2; attention: q_proj... (suffix match) */
        const char *xn = br_lora_expert_name((br_proj)p);
        if ((a->xtargets & (1u << p)) && (xn || !(a->targets & (1u << p))))
            json_array_append_new(targets, json_string(xn ? xn : br_lora_proj_name((br_proj)p)));
    }
    const br_lora_shapes_t *s = &a->shapes;
    size_t nmod = n_dense_slots(s), nslots = nmod + (a->xmods ? br_lora_expert_slots(s) : 0);
    for (size_t i = 0; i < nslots && rc == BR_OK; i++) {
        const br_lora_module_t *m = i < nmod ? &a->mods[i] : &a->xmods[i - nmod];
        if (!m->rank) continue;
        if (!rank0) rank0 = m->rank;
        char module[160];
        int layer, expert;
        br_proj p = slot_module(s, i, &layer, &expert, module, sizeof module);
        if (m->rank != a->rank) json_object_set_new(rank_pattern, module, json_integer(m->rank));
        float want = br_lora_scale(a->alpha, m->rank, a->rslora);
        if (fabsf(want - m->scale) > 1e-6f * fabsf(want)) {
            float alpha = a->rslora ? m->scale * sqrtf((float)m->rank) : m->scale * (float)m->rank;
            json_object_set_new(alpha_pattern, module, json_real(alpha));
        }
        int64_t sa[2] = {m->rank, (int64_t)s->in[p]}, sb[2] = {(int64_t)s->out[p], m->rank};
        snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", module);
        rc = br_st_writer_add_f32(w, name, BR_DT_F32, 2, sa, m->A);
        snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", module);
        if (rc == BR_OK) rc = br_st_writer_add_f32(w, name, BR_DT_F32, 2, sb, m->B);
    }
    if (rc == BR_OK) rc = br_buf_path(&path, dir, "adapter_model.safetensors");
    if (rc == BR_OK) rc = br_st_writer_save(w, br_buf_str(&path));
    br_st_writer_free(w);
    json_t *cfg = json_object();
    json_object_set_new(cfg, "alpha_pattern", alpha_pattern);
    json_object_set_new(cfg, "auto_mapping", json_null());
    json_object_set_new(cfg, "base_model_name_or_path", json_string(a->base_model));
    json_object_set_new(cfg, "bias", json_string("none"));
    json_object_set_new(cfg, "fan_in_fan_out", json_false());
    json_object_set_new(cfg, "inference_mode", json_true());
    json_object_set_new(cfg, "init_lora_weights", json_true());
    json_object_set_new(cfg, "layers_to_transform", json_null());
    json_object_set_new(cfg, "lora_alpha", json_real(a->alpha));
    json_object_set_new(cfg, "lora_dropout", json_real(0.0));
    json_object_set_new(cfg, "modules_to_save", json_null());
    json_object_set_new(cfg, "peft_type", json_string("LORA"));
    json_object_set_new(cfg, "r", json_integer(a->rank ? a->rank : rank0));
    json_object_set_new(cfg, "rank_pattern", rank_pattern);
    json_object_set_new(cfg, "revision", json_null());
    json_object_set_new(cfg, "target_modules", targets);
    json_object_set_new(cfg, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(cfg, "use_dora", json_false());
    json_object_set_new(cfg, "use_rslora", json_boolean(a->rslora));
    char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(cfg);
    if (rc == BR_OK && !text) rc = br_error(BR_ENOMEM, "LoRA: out of memory");
    if (rc == BR_OK) rc = br_buf_path(&path, dir, "adapter_config.json");
    if (rc == BR_OK) rc = br_write_file_atomic(br_buf_str(&path), text, strlen(text));
    free(text);
    br_buf_free(&path);
    return rc;
}

