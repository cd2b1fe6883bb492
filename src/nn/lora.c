#include "nn/lora.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "kernels/gemm.h"

static const char *const proj_names[BR_PROJ_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
};
/* Module path inside a Llama decoder layer (Hugging Face naming). */
static const char *const proj_parent[BR_PROJ_COUNT] = {
    "self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp",
};

const char *br_lora_proj_name(br_proj p)
{
    return (unsigned)p < BR_PROJ_COUNT ? proj_names[p] : "?";
}

int br_lora_proj_parse(const char *name)
{
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if (!strcmp(name, proj_names[p])) return p;
    return -1;
}

br_status br_lora_parse_targets(const char *list, unsigned *mask)
{
    *mask = 0;
    if (!strcmp(list, "all") || !strcmp(list, "all-linear")) {
        *mask = (1u << BR_PROJ_COUNT) - 1;
        return BR_OK;
    }
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        if (n == 0 || n >= sizeof name)
            return br_error(BR_EINVAL, "LoRA targets '%s': empty or too long module name", list);
        memcpy(name, p, n);
        name[n] = 0;
        int proj = br_lora_proj_parse(name);
        if (proj < 0)
            return br_error(BR_EINVAL,
                            "LoRA target '%s' is not one of q_proj, k_proj, v_proj, o_proj, "
                            "gate_proj, up_proj, down_proj",
                            name);
        *mask |= 1u << proj;
        p += n + (comma ? 1 : 0);
    }
    if (!*mask) return br_error(BR_EINVAL, "LoRA targets: none given");
    return BR_OK;
}

/* ---- allocation ---- */

/* ranks (n_layers * BR_PROJ_COUNT) decide the layout; carves A and B from one allocation. */
static br_status adapter_alloc(br_lora_adapter_t **out, const br_lora_shapes_t *s, const int *ranks)
{
    *out = NULL;
    if (s->n_layers <= 0) return br_error(BR_EINVAL, "LoRA: base model has no layers");
    size_t nmod = (size_t)s->n_layers * BR_PROJ_COUNT, n = 0;
    for (size_t i = 0; i < nmod; i++) {
        size_t p = i % BR_PROJ_COUNT;
        n += (size_t)ranks[i] * (s->in[p] + s->out[p]);
    }
    br_lora_adapter_t *a = calloc(1, sizeof *a);
    if (!a) return br_error(BR_ENOMEM, "LoRA: out of memory");
    a->shapes = *s;
    a->mods = calloc(nmod, sizeof *a->mods);
    a->params = n ? br_alloc(n * sizeof(float)) : NULL;
    if (!a->mods || (n && !a->params)) {
        br_lora_free(a);
        return br_error(BR_ENOMEM, "LoRA: out of memory for %zu parameters", n);
    }
    a->n_params = n;
    float *p = a->params;
    for (size_t i = 0; i < nmod; i++) {
        size_t pr = i % BR_PROJ_COUNT;
        br_lora_module_t *m = &a->mods[i];
        m->rank = ranks[i];
        if (!m->rank) continue;
        m->A = p;
        p += (size_t)m->rank * s->in[pr];
        m->B = p;
        p += (size_t)m->rank * s->out[pr];
        a->targets |= 1u << pr;
    }
    *out = a;
    return BR_OK;
}

void br_lora_free(br_lora_adapter_t *a)
{
    if (!a) return;
    br_free(a->params);
    br_free(a->grads);
    free(a->mods);
    free(a);
}

size_t br_lora_bytes(const br_lora_adapter_t *a)
{
    size_t nmod = (size_t)a->shapes.n_layers * BR_PROJ_COUNT;
    return sizeof *a + nmod * sizeof *a->mods + a->n_params * sizeof(float) * (a->grads ? 2 : 1);
}

static float module_scale(float alpha, int r, bool rslora)
{
    return rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
}

br_status br_lora_create(br_lora_adapter_t **out, const br_lora_shapes_t *shapes, int rank,
                         float alpha, unsigned targets, bool rslora, uint64_t seed)
{
    *out = NULL;
    if (rank <= 0 || rank > 4096) return br_error(BR_EINVAL, "LoRA rank %d must be in 1..4096", rank);
    if (!(alpha > 0) || !isfinite(alpha)) return br_error(BR_EINVAL, "LoRA alpha must be > 0");
    if (!targets || targets >= (1u << BR_PROJ_COUNT))
        return br_error(BR_EINVAL, "LoRA: no valid target projection");
    size_t nmod = (size_t)shapes->n_layers * BR_PROJ_COUNT;
    int *ranks = calloc(nmod ? nmod : 1, sizeof *ranks);
    if (!ranks) return br_error(BR_ENOMEM, "LoRA: out of memory");
    for (size_t i = 0; i < nmod; i++) {
        size_t p = i % BR_PROJ_COUNT;
        if (!(targets & (1u << p))) continue;
        if ((size_t)rank > shapes->in[p] || (size_t)rank > shapes->out[p]) {
            free(ranks);
            return br_error(BR_EINVAL, "LoRA rank %d exceeds %s's size (%zu x %zu)", rank,
                            proj_names[p], shapes->out[p], shapes->in[p]);
        }
        ranks[i] = rank;
    }
    br_status s = adapter_alloc(out, shapes, ranks);
    free(ranks);
    if (s != BR_OK) return s;
    br_lora_adapter_t *a = *out;
    a->rank = rank;
    a->alpha = alpha;
    a->rslora = rslora;
    br_rng_t rng;
    br_rng_seed(&rng, seed);
    for (size_t i = 0; i < nmod; i++) {
        br_lora_module_t *m = &a->mods[i];
        if (!m->rank) continue;
        size_t C = shapes->in[i % BR_PROJ_COUNT];
        /* PEFT: kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(C), 1/sqrt(C)); B = 0 */
        float bound = 1.0f / sqrtf((float)C);
        br_rng_fill_uniform(&rng, m->A, (size_t)m->rank * C, -bound, bound);
        m->scale = module_scale(alpha, rank, rslora);
    }
    return BR_OK;
}

br_status br_lora_alloc_grads(br_lora_adapter_t *a)
{
    if (a->grads) {
        br_lora_zero_grads(a);
        return BR_OK;
    }
    if (!a->n_params) return BR_OK;
    a->grads = br_alloc(a->n_params * sizeof(float));
    if (!a->grads) return br_error(BR_ENOMEM, "LoRA: out of memory for gradients");
    size_t nmod = (size_t)a->shapes.n_layers * BR_PROJ_COUNT;
    for (size_t i = 0; i < nmod; i++) {
        br_lora_module_t *m = &a->mods[i];
        if (!m->rank) continue;
        m->dA = a->grads + (m->A - a->params);
        m->dB = a->grads + (m->B - a->params);
    }
    return BR_OK;
}

void br_lora_zero_grads(br_lora_adapter_t *a)
{
    if (a->grads) memset(a->grads, 0, a->n_params * sizeof(float));
}

void br_lora_merge(float *W, const br_lora_adapter_t *a, int layer, br_proj p, float sign)
{
    const br_lora_module_t *m = br_lora_module(a, layer, p);
    if (!m->rank) return;
    /* W (OC,C) += sign*scale * B (OC,r) @ A (r,C) */
    br_sgemm(false, false, a->shapes.out[p], a->shapes.in[p], (size_t)m->rank, sign * m->scale,
             m->B, (size_t)m->rank, m->A, a->shapes.in[p], 1.0f, W, a->shapes.in[p]);
}

/* ---- PEFT files ---- */

/* PEFT's key matching for rank_pattern / alpha_pattern: the pattern equals the module name or
 * is a suffix of it starting after a '.'. */
static bool pattern_matches(const char *module, const char *key)
{
    size_t lm = strlen(module), lk = strlen(key);
    if (lk > lm) return false;
    if (strcmp(module + lm - lk, key)) return false;
    return lk == lm || module[lm - lk - 1] == '.';
}

/* Parses "base_model.model.model.layers.N.<parent>.<proj>.lora_{A,B}[.default].weight".
 * Returns 0 and fills layer/proj/is_b, or -1 when the name has another form. */
static int parse_tensor_name(const char *name, int *layer, int *proj, int *is_b, char *module,
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
    for (int k = 0; k < BR_PROJ_COUNT; k++) {
        size_t lp = strlen(proj_parent[k]), ln = strlen(proj_names[k]);
        if (!strncmp(p, proj_parent[k], lp) && p[lp] == '.' && !strncmp(p + lp + 1, proj_names[k], ln) &&
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
    snprintf(module, cap, "model.layers.%ld.%s.%s", l, proj_parent[found], proj_names[found]);
    return 0;
}

/* Reads and checks adapter_config.json; fills alpha, r, rslora, base model; keeps the
 * alpha_pattern object (borrowed reference inside *root). */
static br_status read_config(const char *dir, json_t **root, br_lora_adapter_t *cfg)
{
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, dir, "adapter_config.json"));
    if (!br_file_exists(path)) return br_error(BR_ENOTFOUND, "%s: no such file (not a PEFT adapter folder?)", path);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
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
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return br_error(BR_EFORMAT, "%s: \"lora_alpha\" must be a positive number", path);
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
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) return br_error(BR_EFORMAT, "%s: target_modules[%zu] is not a string", path, i);
            if (br_lora_proj_parse(json_string_value(e)) < 0)
                return br_error(BR_EUNSUPPORTED, "%s: target module '%s' is not a Llama projection", path,
                                json_string_value(e));
        }
    } else if (v && !json_is_string(v) && !json_is_null(v)) {
        return br_error(BR_EFORMAT, "%s: target_modules must be a list or a string", path);
    }
    v = json_object_get(j, "alpha_pattern");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) return br_error(BR_EFORMAT, "%s: alpha_pattern must be an object", path);
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            if (!json_is_number(e) || !(json_number_value(e) > 0))
                return br_error(BR_EFORMAT, "%s: alpha_pattern[\"%s\"] must be a positive number", path, k);
        }
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

static br_status load_tensors(br_lora_adapter_t **out, const char *dir, const char *path,
                              br_safetensors_t *st, json_t *cfgj, const br_lora_adapter_t *cfg,
                              const br_lora_shapes_t *s)
{
    size_t nmod = (size_t)s->n_layers * BR_PROJ_COUNT, nt = br_st_count(st);
    int *ranks = calloc(nmod, sizeof *ranks);
    const br_st_tensor_t **ta = calloc(nmod, sizeof *ta), **tb = calloc(nmod, sizeof *tb);
    br_status rc = BR_OK;
    if (!ranks || !ta || !tb) {
        rc = br_error(BR_ENOMEM, "LoRA: out of memory");
        goto done;
    }
    char module[160];
    for (size_t i = 0; i < nt; i++) {
        const br_st_tensor_t *t = br_st_tensor(st, i);
        int layer, proj, is_b;
        if (parse_tensor_name(t->name, &layer, &proj, &is_b, module, sizeof module)) {
            rc = br_error(BR_EUNSUPPORTED, "%s: tensor '%s' is not a LoRA A/B matrix of a Llama projection", path,
                          t->name);
            goto done;
        }
        if (layer >= s->n_layers) {
            rc = br_error(BR_EFORMAT, "%s: tensor '%s' is for layer %d but the base model has %d layers", path,
                          t->name, layer, s->n_layers);
            goto done;
        }
        if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0) {
            rc = br_error(BR_EFORMAT, "%s: tensor '%s' must be a non-empty matrix", path, t->name);
            goto done;
        }
        if (t->dtype != BR_DT_F32 && t->dtype != BR_DT_F16 && t->dtype != BR_DT_BF16 && t->dtype != BR_DT_F64) {
            rc = br_error(BR_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (want F32, F16 or BF16)", path, t->name,
                          br_dtype_name(t->dtype));
            goto done;
        }
        size_t idx = (size_t)layer * BR_PROJ_COUNT + (size_t)proj;
        const br_st_tensor_t **slot = is_b ? &tb[idx] : &ta[idx];
        if (*slot) {
            rc = br_error(BR_EFORMAT, "%s: two tensors for %s.lora_%c", path, module, is_b ? 'B' : 'A');
            goto done;
        }
        *slot = t;
    }
    for (size_t i = 0; i < nmod; i++) {
        if (!ta[i] && !tb[i]) continue;
        int layer = (int)(i / BR_PROJ_COUNT), proj = (int)(i % BR_PROJ_COUNT);
        snprintf(module, sizeof module, "model.layers.%d.%s.%s", layer, proj_parent[proj], proj_names[proj]);
        if (!ta[i] || !tb[i]) {
            rc = br_error(BR_EFORMAT, "%s: %s has lora_%c but no lora_%c", path, module, ta[i] ? 'A' : 'B',
                          ta[i] ? 'B' : 'A');
            goto done;
        }
        int64_t r = ta[i]->shape[0];
        if (ta[i]->shape[1] != (int64_t)s->in[proj] || tb[i]->shape[0] != (int64_t)s->out[proj] ||
            tb[i]->shape[1] != r) {
            rc = br_error(BR_EFORMAT,
                          "%s: %s: lora_A is [%lld, %lld] and lora_B [%lld, %lld], but the base %s is "
                          "[%zu, %zu] (want A [r, %zu], B [%zu, r])",
                          path, module, (long long)ta[i]->shape[0], (long long)ta[i]->shape[1],
                          (long long)tb[i]->shape[0], (long long)tb[i]->shape[1], proj_names[proj], s->out[proj],
                          s->in[proj], s->in[proj], s->out[proj]);
            goto done;
        }
        if (r > 4096) {
            rc = br_error(BR_EFORMAT, "%s: %s: rank %lld is too large", path, module, (long long)r);
            goto done;
        }
        ranks[i] = (int)r;
    }
    rc = adapter_alloc(out, s, ranks);
    if (rc != BR_OK) goto done;
    br_lora_adapter_t *a = *out;
    if (!a->targets) {
        rc = br_error(BR_EFORMAT, "%s: no LoRA tensors", path);
        goto done;
    }
    a->rank = cfg->rank;
    a->alpha = cfg->alpha;
    a->rslora = cfg->rslora;
    memcpy(a->base_model, cfg->base_model, sizeof a->base_model);
    for (size_t i = 0; i < nmod && rc == BR_OK; i++) {
        br_lora_module_t *m = &a->mods[i];
        if (!m->rank) continue;
        int layer = (int)(i / BR_PROJ_COUNT), proj = (int)(i % BR_PROJ_COUNT);
        snprintf(module, sizeof module, "model.layers.%d.%s.%s", layer, proj_parent[proj], proj_names[proj]);
        m->scale = module_scale(alpha_for(cfgj, module, cfg->alpha), m->rank, cfg->rslora);
        rc = br_st_read_f32(ta[i], m->A, (size_t)m->rank * s->in[proj]);
        if (rc == BR_OK) rc = br_st_read_f32(tb[i], m->B, (size_t)m->rank * s->out[proj]);
    }
    for (size_t i = 0; i < a->n_params && rc == BR_OK; i++)
        if (!isfinite(a->params[i])) rc = br_error(BR_EFORMAT, "%s: LoRA weights contain NaN or Inf", path);
    if (rc != BR_OK) {
        br_lora_free(a);
        *out = NULL;
        goto done;
    }
    /* registry name: the folder's last component */
    const char *base = dir + strlen(dir);
    while (base > dir && base[-1] == '/') base--;
    const char *stop = base;
    while (base > dir && base[-1] != '/') base--;
    snprintf(a->name, sizeof a->name, "%.*s", (int)(stop - base), base);
done:
    free(ranks);
    free(ta);
    free(tb);
    return rc;
}

br_status br_lora_load(br_lora_adapter_t **out, const char *dir, const br_lora_shapes_t *shapes)
{
    *out = NULL;
    if (shapes->n_layers <= 0) return br_error(BR_EINVAL, "LoRA: base model has no layers");
    br_lora_adapter_t cfg;
    memset(&cfg, 0, sizeof cfg);
    json_t *cfgj = NULL;
    br_status rc = read_config(dir, &cfgj, &cfg);
    if (rc != BR_OK) {
        json_decref(cfgj);
        return rc;
    }
    char path[4096];
    rc = br_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    if (rc == BR_OK && !br_file_exists(path)) {
        char bin[4096];
        if (br_path_join(bin, sizeof bin, dir, "adapter_model.bin") == BR_OK && br_file_exists(bin))
            rc = br_error(BR_EUNSUPPORTED, "%s: pickled adapters are not loaded (save with safe_serialization)", bin);
        else
            rc = br_error(BR_ENOTFOUND, "%s: no such file", path);
    }
    br_safetensors_t *st = NULL;
    if (rc == BR_OK) rc = br_st_open(&st, path);
    if (rc == BR_OK) rc = load_tensors(out, dir, path, st, cfgj, &cfg, shapes);
    br_st_close(st);
    json_decref(cfgj);
    return rc;
}

br_status br_lora_save(const br_lora_adapter_t *a, const char *dir)
{
    BR_TRY(br_mkdir_p(dir));
    char path[4096];
    br_st_writer_t *w = NULL;
    BR_TRY(br_st_writer_create(&w));
    br_status rc = br_st_writer_set_metadata(w, "format", "pt");
    char name[256];
    int rank0 = 0;
    json_t *targets = json_array(), *rank_pattern = json_object(), *alpha_pattern = json_object();
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if (a->targets & (1u << p)) json_array_append_new(targets, json_string(proj_names[p]));
    for (int l = 0; l < a->shapes.n_layers && rc == BR_OK; l++) {
        for (int p = 0; p < BR_PROJ_COUNT && rc == BR_OK; p++) {
            const br_lora_module_t *m = br_lora_module(a, l, (br_proj)p);
            if (!m->rank) continue;
            if (!rank0) rank0 = m->rank;
            char module[160];
            snprintf(module, sizeof module, "model.layers.%d.%s.%s", l, proj_parent[p], proj_names[p]);
            if (m->rank != a->rank) json_object_set_new(rank_pattern, module, json_integer(m->rank));
            float want = module_scale(a->alpha, m->rank, a->rslora);
            if (fabsf(want - m->scale) > 1e-6f * fabsf(want)) {
                float alpha = a->rslora ? m->scale * sqrtf((float)m->rank) : m->scale * (float)m->rank;
                json_object_set_new(alpha_pattern, module, json_real(alpha));
            }
            int64_t sa[2] = {m->rank, (int64_t)a->shapes.in[p]}, sb[2] = {(int64_t)a->shapes.out[p], m->rank};
            snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", module);
            rc = br_st_writer_add_f32(w, name, BR_DT_F32, 2, sa, m->A);
            snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", module);
            if (rc == BR_OK) rc = br_st_writer_add_f32(w, name, BR_DT_F32, 2, sb, m->B);
        }
    }
    if (rc == BR_OK) rc = br_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    if (rc == BR_OK) rc = br_st_writer_save(w, path);
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
    if (rc == BR_OK) rc = br_path_join(path, sizeof path, dir, "adapter_config.json");
    if (rc == BR_OK) rc = br_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* ---- batched application ---- */

struct br_lora_batch {
    size_t N;
    const br_lora_adapter_t **uniq; /* (nuniq) */
    size_t nuniq, cap_uniq;
    int32_t *row_group;  /* (N) index into uniq, -1: none */
    size_t *perm;        /* (N) rows sorted by group (stable) */
    size_t *goff;        /* (nuniq+1) group g's rows are perm[goff[g] .. goff[g+1]) */
    bool *contig;        /* (nuniq) the group's rows are consecutive in the batch */
    size_t cap_rows;
    float *xs, *vs, *ys; /* scratch: gathered inputs (N, maxC), v (N, maxR), outputs (N, maxOC) */
    size_t cap_x, cap_v, cap_y;
};

br_status br_lora_batch_create(br_lora_batch_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? BR_OK : br_error(BR_ENOMEM, "LoRA batch: out of memory");
}

void br_lora_batch_free(br_lora_batch_t *b)
{
    if (!b) return;
    free(b->uniq);
    free(b->row_group);
    free(b->perm);
    free(b->goff);
    free(b->contig);
    br_free(b->xs);
    br_free(b->vs);
    br_free(b->ys);
    free(b);
}

size_t br_lora_batch_nadapters(const br_lora_batch_t *b) { return b->nuniq; }

static br_status grow_floats(float **p, size_t *cap, size_t n)
{
    if (n <= *cap) return BR_OK;
    float *q = br_alloc(n * sizeof(float));
    if (!q) return br_error(BR_ENOMEM, "LoRA batch: out of memory for %zu floats of scratch", n);
    br_free(*p);
    *p = q;
    *cap = n;
    return BR_OK;
}

br_status br_lora_batch_set(br_lora_batch_t *b, const br_lora_adapter_t *const *rows, size_t N)
{
    b->N = 0;
    b->nuniq = 0;
    if (N > b->cap_rows) {
        int32_t *rg = realloc(b->row_group, N * sizeof *rg);
        if (rg) b->row_group = rg;
        size_t *pm = realloc(b->perm, N * sizeof *pm);
        if (pm) b->perm = pm;
        if (!rg || !pm) return br_error(BR_ENOMEM, "LoRA batch: out of memory for %zu rows", N);
        b->cap_rows = N;
    }
    size_t maxC = 0, maxOC = 0, maxR = 0;
    for (size_t i = 0; i < N; i++) {
        const br_lora_adapter_t *a = rows[i];
        b->row_group[i] = -1;
        if (!a) continue;
        /* consecutive rows usually share an adapter: check the last group first */
        size_t g = b->nuniq;
        if (g && b->uniq[g - 1] == a) g = g - 1;
        else
            for (g = 0; g < b->nuniq && b->uniq[g] != a; g++) {}
        if (g == b->nuniq) {
            if (b->nuniq == b->cap_uniq) {
                size_t nc = b->cap_uniq ? 2 * b->cap_uniq : 16;
                const br_lora_adapter_t **u = realloc(b->uniq, nc * sizeof *u);
                size_t *go = realloc(b->goff, (nc + 1) * sizeof *go);
                if (u) b->uniq = u;
                if (go) b->goff = go;
                bool *ct = realloc(b->contig, nc * sizeof *ct);
                if (ct) b->contig = ct;
                if (!u || !go || !ct) return br_error(BR_ENOMEM, "LoRA batch: out of memory");
                b->cap_uniq = nc;
            }
            b->uniq[b->nuniq++] = a;
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                if (!(a->targets & (1u << p))) continue;
                if (a->shapes.in[p] > maxC) maxC = a->shapes.in[p];
                if (a->shapes.out[p] > maxOC) maxOC = a->shapes.out[p];
            }
            size_t nmod = (size_t)a->shapes.n_layers * BR_PROJ_COUNT;
            for (size_t m = 0; m < nmod; m++)
                if ((size_t)a->mods[m].rank > maxR) maxR = (size_t)a->mods[m].rank;
        }
        b->row_group[i] = (int32_t)g;
    }
    /* counting sort of rows by group (stable) */
    size_t G = b->nuniq;
    if (G) {
        memset(b->goff, 0, (G + 1) * sizeof *b->goff);
        for (size_t i = 0; i < N; i++)
            if (b->row_group[i] >= 0) b->goff[b->row_group[i] + 1]++;
        for (size_t g = 0; g < G; g++) b->goff[g + 1] += b->goff[g];
        size_t *fill = calloc(G, sizeof *fill);
        if (!fill) return br_error(BR_ENOMEM, "LoRA batch: out of memory");
        for (size_t i = 0; i < N; i++) {
            int32_t g = b->row_group[i];
            if (g >= 0) b->perm[b->goff[g] + fill[g]++] = i;
        }
        free(fill);
        for (size_t g = 0; g < G; g++) {
            size_t lo = b->goff[g], hi = b->goff[g + 1];
            b->contig[g] = b->perm[hi - 1] - b->perm[lo] == hi - 1 - lo;
        }
    }
    size_t nx, nv, ny;
    BR_TRY(br_mul_size(&nx, N, maxC));
    BR_TRY(br_mul_size(&nv, N, maxR));
    BR_TRY(br_mul_size(&ny, N, maxOC > maxC ? maxOC : maxC));
    BR_TRY(grow_floats(&b->xs, &b->cap_x, nx));
    BR_TRY(grow_floats(&b->vs, &b->cap_v, nv));
    BR_TRY(grow_floats(&b->ys, &b->cap_y, ny));
    b->N = N;
    return BR_OK;
}

/* Lone row (BGMV): out (OC) += scale * B (A x). */
static void bgmv_row(float *out, const float *x, const br_lora_module_t *m, size_t C, size_t OC)
{
    float v[m->rank];
    for (int k = 0; k < m->rank; k++) {
        const float *a = m->A + (size_t)k * C;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t c = 0; c < C; c++) s += a[c] * x[c];
        v[k] = s * m->scale;
    }
    for (size_t o = 0; o < OC; o++) {
        const float *bo = m->B + o * (size_t)m->rank;
        float s = 0;
        for (int k = 0; k < m->rank; k++) s += bo[k] * v[k];
        out[o] += s;
    }
}

static void lora_apply(const br_lora_hook_t *h, float *out, const float *inp, size_t N, size_t C,
                       size_t OC, int layer, br_proj proj)
{
    br_lora_batch_t *b = h->ctx;
    BR_ASSERT(N == b->N);
    size_t G = b->nuniq;
    /* lone rows first, in parallel (each writes only its own output row) */
#pragma omp parallel for schedule(dynamic, 1) if (G > 1)
    for (size_t g = 0; g < G; g++) {
        if (b->goff[g + 1] - b->goff[g] != 1) continue;
        const br_lora_adapter_t *a = b->uniq[g];
        if (layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, proj);
        if (!m->rank) continue;
        size_t i = b->perm[b->goff[g]];
        bgmv_row(out + i * OC, inp + i * C, m, C, OC);
    }
    /* segments (SGMV): two GEMMs per adapter over its rows */
    for (size_t g = 0; g < G; g++) {
        size_t lo = b->goff[g], L = b->goff[g + 1] - lo;
        if (L < 2) continue;
        const br_lora_adapter_t *a = b->uniq[g];
        if (layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, proj);
        if (!m->rank) continue;
        size_t r = (size_t)m->rank;
        if (b->contig[g]) {
            size_t i0 = b->perm[lo];
            br_sgemm(false, true, L, r, C, 1.0f, inp + i0 * C, C, m->A, C, 0.0f, b->vs, r);
            br_sgemm(false, true, L, OC, r, m->scale, b->vs, r, m->B, r, 1.0f, out + i0 * OC, OC);
            continue;
        }
        for (size_t j = 0; j < L; j++) memcpy(b->xs + j * C, inp + b->perm[lo + j] * C, C * sizeof(float));
        br_sgemm(false, true, L, r, C, 1.0f, b->xs, C, m->A, C, 0.0f, b->vs, r);
        br_sgemm(false, true, L, OC, r, m->scale, b->vs, r, m->B, r, 0.0f, b->ys, OC);
        for (size_t j = 0; j < L; j++) {
            float *o = out + b->perm[lo + j] * OC;
            const float *y = b->ys + j * OC;
            for (size_t c = 0; c < OC; c++) o[c] += y[c];
        }
    }
}

/* Backward of y += s * (x A^T) B^T over a group's rows:
 *   v = x A^T (L,r);  dB += s dout^T v;  dv = s dout B (L,r);  dA += dv^T x;  dinp += dv A. */
static void lora_backward(const br_lora_hook_t *h, float *dinp, const float *dout, const float *inp,
                          size_t N, size_t C, size_t OC, int layer, br_proj proj)
{
    br_lora_batch_t *b = h->ctx;
    BR_ASSERT(N == b->N);
    for (size_t g = 0; g < b->nuniq; g++) {
        size_t lo = b->goff[g], L = b->goff[g + 1] - lo;
        const br_lora_adapter_t *a = b->uniq[g];
        if (layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, proj);
        if (!m->rank) continue;
        size_t r = (size_t)m->rank;
        const float *x, *dy;
        size_t ldx = C;
        float *ys = b->ys, *xs = b->xs;
        if (b->contig[g]) {
            x = inp + b->perm[lo] * C;
            dy = dout + b->perm[lo] * OC;
        } else {
            for (size_t j = 0; j < L; j++) {
                memcpy(xs + j * C, inp + b->perm[lo + j] * C, C * sizeof(float));
                memcpy(ys + j * OC, dout + b->perm[lo + j] * OC, OC * sizeof(float));
            }
            x = xs;
            dy = ys;
        }
        float *v = b->vs;
        br_sgemm(false, true, L, r, C, 1.0f, x, ldx, m->A, C, 0.0f, v, r);
        if (m->dB) br_sgemm(true, false, OC, r, L, m->scale, dy, OC, v, r, 1.0f, m->dB, r);
        /* v <- dv = s dout B */
        br_sgemm(false, false, L, r, OC, m->scale, dy, OC, m->B, r, 0.0f, v, r);
        if (m->dA) br_sgemm(true, false, r, C, L, 1.0f, v, r, x, ldx, 1.0f, m->dA, C);
        if (!dinp) continue;
        if (b->contig[g]) {
            br_sgemm(false, false, L, C, r, 1.0f, v, r, m->A, C, 1.0f, dinp + b->perm[lo] * C, C);
        } else {
            /* xs is free again: dx rows there, then scatter-add */
            br_sgemm(false, false, L, C, r, 1.0f, v, r, m->A, C, 0.0f, xs, C);
            for (size_t j = 0; j < L; j++) {
                float *d = dinp + b->perm[lo + j] * C;
                const float *s = xs + j * C;
                for (size_t c = 0; c < C; c++) d[c] += s[c];
            }
        }
    }
}

br_lora_hook_t br_lora_batch_hook(br_lora_batch_t *b)
{
    br_lora_hook_t h = {lora_apply, lora_backward, b};
    return h;
}

void br_lora_apply_ref(float *out, const float *inp, const br_lora_adapter_t *const *rows, size_t N,
                       size_t C, size_t OC, int layer, br_proj p)
{
    for (size_t i = 0; i < N; i++) {
        const br_lora_adapter_t *a = rows[i];
        if (!a || layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, p);
        if (!m->rank) continue;
        double v[m->rank];
        for (int k = 0; k < m->rank; k++) {
            double s = 0;
            for (size_t c = 0; c < C; c++) s += (double)m->A[(size_t)k * C + c] * inp[i * C + c];
            v[k] = s;
        }
        for (size_t o = 0; o < OC; o++) {
            double s = 0;
            for (int k = 0; k < m->rank; k++) s += (double)m->B[o * (size_t)m->rank + (size_t)k] * v[k];
            out[i * OC + o] += (float)(m->scale * s);
        }
    }
}
