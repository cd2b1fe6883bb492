/* Model folders as the Hugging Face Hub holds them: config.json + model.safetensors, or
 * shards listed by model.safetensors.index.json ({"weight_map": {tensor: file}}), every file
 * memory-mapped (base/safetensors.c).  br_model_open runs a BF16/F16 checkpoint in place:
 * its matrices stay 16-bit in the mapping (no F32 copy), so a model needs about its file size
 * plus the KV cache and activations (docs/lm.md, "Bring your own model"). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/dtype.h"
#include "base/fileio.h"
#include "lm/config_moe.h"
#include "lm/gguf.h"
#include "lm/model_internal.h"

void br_lm_folder_close(br_lm_folder_t *f)
{
    for (size_t i = 0; i < f->n_shards; i++) br_st_close(f->shards[i]);
    free(f->shards);
    free(f->tensors);
    f->shards = NULL;
    f->tensors = NULL;
    f->n_shards = f->n_tensors = 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const br_st_tensor_t *const *)a)->name, (*(const br_st_tensor_t *const *)b)->name);
}

/* A shard name from the index: a plain file name inside DIR. */
static bool plain_name(const char *s)
{
    return *s && *s != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

/* The distinct shard files of the index's weight_map, in order of first appearance, opened;
 * then each entry checked against the shard it names. */
static br_status open_index(br_lm_folder_t *f, const char *dir, const char *index_path)
{
    json_error_t err;
    json_t *root = json_load_file(index_path, 0, &err);
    if (!root) return br_error(BR_EFORMAT, "%s: line %d: %s", index_path, err.line, err.text);
    json_t *map = json_object_get(root, "weight_map");
    br_status s = json_is_object(map) && json_object_size(map)
                      ? BR_OK
                      : br_error(BR_EFORMAT, "%s: no \"weight_map\" object", index_path);
    size_t cap = json_object_size(map);
    const char **files = calloc(cap ? cap : 1, sizeof *files);
    if (!s) f->shards = calloc(cap, sizeof *f->shards);
    if (!s && (!f->shards || !files)) s = br_error(BR_ENOMEM, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {
        if (s) break;
        const char *file = json_is_string(val) ? json_string_value(val) : "";
        if (!plain_name(file)) {
            s = br_error(BR_EFORMAT, "%s: tensor '%s' names shard '%s', not a file name in the folder",
                         index_path, key, file);
            break;
        }
        size_t j = 0;
        while (j < f->n_shards && strcmp(files[j], file)) j++;
        if (j == f->n_shards) {
            char path[4096];
            s = br_path_join(path, sizeof path, dir, file);
            if (!s) s = br_st_open(&f->shards[j], path);
            if (s) break;
            files[f->n_shards++] = file;
        }
        const br_st_tensor_t *t = br_st_find(f->shards[j], key);
        if (!t)
            s = br_error(BR_EFORMAT, "%s: tensor '%s' is not in shard %s, where the index puts it",
                         index_path, key, file);
    }
    free(files);
    json_decref(root);
    return s;
}

static br_wtype common_type(const br_st_tensor_t *const *found, size_t n);

/* The weight files of DIR, mapped, and every tensor in them (f->cfg untouched). */
static br_status open_weights(br_lm_folder_t *f, const char *dir)
{
    BR_TRY(br_path_join(f->label, sizeof f->label, dir, "model.safetensors"));
    br_status s;
    if (br_file_exists(f->label)) {
        f->shards = calloc(1, sizeof *f->shards);
        if (!f->shards) return br_error(BR_ENOMEM, "out of memory");
        s = br_st_open(&f->shards[0], f->label);
        f->n_shards = !s;
    } else {
        BR_TRY(br_path_join(f->label, sizeof f->label, dir, "model.safetensors.index.json"));
        if (!br_file_exists(f->label))
            return br_error(BR_ENOTFOUND, "%s: no model.safetensors and no model.safetensors.index.json", dir);
        s = open_index(f, dir, f->label);
    }
    size_t n = 0;
    for (size_t i = 0; !s && i < f->n_shards; i++) n += br_st_count(f->shards[i]);
    if (!s && !(f->tensors = malloc((n ? n : 1) * sizeof *f->tensors))) s = br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; !s && i < f->n_shards; i++)
        for (size_t j = 0; j < br_st_count(f->shards[i]); j++) f->tensors[f->n_tensors++] = br_st_tensor(f->shards[i], j);
    if (!s) { /* a name in two shards would make the model depend on which one is read */
        const br_st_tensor_t **sorted = malloc((n ? n : 1) * sizeof *sorted);
        if (!sorted) s = br_error(BR_ENOMEM, "out of memory");
        else {
            memcpy(sorted, f->tensors, n * sizeof *sorted);
            qsort(sorted, n, sizeof *sorted, cmp_name);
            for (size_t i = 1; i < n && !s; i++)
                if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
                    s = br_error(BR_EFORMAT, "%s: tensor '%s' is in two shards", f->label, sorted[i]->name);
            free(sorted);
        }
    }
    if (s) br_lm_folder_close(f);
    return s;
}

br_status br_lm_folder_open(br_lm_folder_t *f, const char *dir)
{
    memset(f, 0, sizeof *f);
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, dir, "config.json"));
    if (!br_file_exists(path))
        return br_error(BR_ENOTFOUND, "%s: not a model directory (no config.json)", dir);
    BR_TRY(br_config_load(&f->cfg, path));
    return open_weights(f, dir);
}

br_status br_model_inspect(const char *dir, br_model_info_t *info)
{
    memset(info, 0, sizeof *info);
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, dir, "config.json"));
    if (!br_file_exists(path))
        return br_error(BR_ENOTFOUND, "%s: not a model directory (no config.json)", dir);
    br_lm_folder_t f;
    memset(&f, 0, sizeof f);
    info->config_status = br_config_load(&info->cfg, path);
    if (info->config_status) snprintf(info->config_error, sizeof info->config_error, "%s", br_errmsg());
    info->weights_status = open_weights(&f, dir);
    for (size_t i = 0; !info->weights_status && i < f.n_tensors; i++) {
        info->dtype_elements[f.tensors[i]->dtype] += f.tensors[i]->numel;
        info->n_elements += f.tensors[i]->numel;
        info->bytes += f.tensors[i]->nbytes;
    }
    info->n_shards = f.n_shards;
    info->n_tensors = f.n_tensors;
    info->wt = BR_WT_F32;
    const br_st_tensor_t **found = NULL;
    if (!info->weights_status && !info->config_status) {
        info->weights_status = br_lm_check_tensors(&info->cfg, f.tensors, f.n_tensors, f.label, &found);
        if (!info->weights_status && !br_config_has_moe_ffn(&info->cfg) && !br_config_has_moa(&info->cfg)) {
            size_t n;
            br_model_table(&info->cfg, NULL, 0, &n);
            info->wt = common_type(found, n);
        }
        free(found);
    }
    if (info->weights_status) snprintf(info->weights_error, sizeof info->weights_error, "%s", br_errmsg());
    br_lm_folder_close(&f);
    return BR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Inference views */

struct br_model_map {
    br_lm_folder_t folder;
    float **ptrs;   /* (n_tensors) each table tensor's data */
    void **owned;   /* (n_tensors) buffers this map allocated (F32 1-D tensors, realigned
                     * matrices), else NULL */
    size_t n;
    void *keep;                 /* another mapping the ptrs point into (a GGUF file), or NULL */
    void (*keep_free)(void *);  /* releases keep */
};

void br_lm_map_free(struct br_model_map *map)
{
    if (!map) return;
    for (size_t i = 0; map->owned && i < map->n; i++) br_free(map->owned[i]);
    free(map->owned);
    free(map->ptrs);
    br_lm_folder_close(&map->folder);
    if (map->keep) map->keep_free(map->keep);
    free(map);
}

/* The one 16-bit type every matrix of found (table order) has, or BR_WT_F32 when they differ
 * or are not all BF16/F16 (then the model is loaded as F32). */
static br_wtype common_type(const br_st_tensor_t *const *found, size_t n)
{
    br_dtype dt = BR_DT_COUNT;
    for (size_t i = 0; i < n; i++) {
        if (found[i]->ndim != 2) continue;
        if (dt == BR_DT_COUNT) dt = found[i]->dtype;
        if (found[i]->dtype != dt) return BR_WT_F32;
    }
    return dt == BR_DT_BF16 ? BR_WT_BF16 : dt == BR_DT_F16 ? BR_WT_F16 : BR_WT_F32;
}

/* Index of the first NaN/Inf of n 16-bit values, or n (all-ones exponent: BF16 0x7f80, F16
 * 0x7c00).  Also faults the mapping in once, so the first forward pays no page faults. */
static size_t first_nonfinite(const uint16_t *p, size_t n, br_wtype wt)
{
    uint16_t mask = wt == BR_WT_BF16 ? 0x7f80 : 0x7c00;
    unsigned bad = 0;
    size_t i = 0;
    for (; i < n; i++) bad |= (p[i] & mask) == mask;
    if (!bad) return n;
    for (i = 0; (p[i] & mask) != mask; i++) {}
    return i;
}

/* Points tensor i of the view at its data: 2-D matrices in place (copied only when the file
 * puts them at an odd address), 1-D tensors converted to F32. */
static br_status place_tensor(struct br_model_map *map, size_t i, const br_tensor_info_t *t,
                              const br_st_tensor_t *ft, br_wtype wt, const char *label)
{
    if (t->ndim == 1) {
        if (!(map->owned[i] = br_alloc(t->numel * sizeof(float)))) return br_error(BR_ENOMEM, "out of memory");
        map->ptrs[i] = map->owned[i];
        BR_TRY(br_st_read_f32(ft, map->ptrs[i], t->numel));
        for (size_t j = 0; j < t->numel; j++)
            if (!isfinite(map->ptrs[i][j]))
                return br_error(BR_EFORMAT, "%s: tensor '%s' contains NaN or Inf (element %zu)", label, t->name, j);
        return BR_OK;
    }
    const void *data = ft->data;
    if ((uintptr_t)data % sizeof(uint16_t)) {
        if (!(map->owned[i] = br_alloc(ft->nbytes))) return br_error(BR_ENOMEM, "out of memory");
        memcpy(map->owned[i], data, ft->nbytes);
        data = map->owned[i];
    }
    map->ptrs[i] = (float *)(uintptr_t)data; /* typed by the view's wt */
    size_t bad = first_nonfinite(data, t->numel, wt);
    if (bad < t->numel)
        return br_error(BR_EFORMAT, "%s: tensor '%s' contains NaN or Inf (element %zu)", label, t->name, bad);
    return BR_OK;
}

br_status br_model_open(br_model_t **out, const char *dir)
{
    *out = NULL;
    if (br_gguf_is_path(dir)) return br_model_open_gguf(out, dir);
    struct br_model_map *map = calloc(1, sizeof *map);
    if (!map) return br_error(BR_ENOMEM, "out of memory");
    const br_st_tensor_t **found = NULL;
    br_lm_folder_t *f = &map->folder;
    br_status s = br_lm_folder_open(f, dir);
    if (!s) s = br_lm_check_tensors(&f->cfg, f->tensors, f->n_tensors, f->label, &found);
    if (!s) br_model_table(&f->cfg, NULL, 0, &map->n);
    br_wtype wt = s ? BR_WT_F32 : common_type(found, map->n);
    if (s || wt == BR_WT_F32 || br_config_has_moe_ffn(&f->cfg) || br_config_has_moa(&f->cfg)) {
        /* F32 files, mixed types and mixtures: the F32 model as br_model_load makes it */
        free(found);
        br_lm_map_free(map);
        return s ? s : br_model_load(out, dir, false);
    }
    br_tensor_info_t *tab = calloc(map->n, sizeof *tab);
    map->ptrs = calloc(map->n, sizeof *map->ptrs);
    map->owned = calloc(map->n, sizeof *map->owned);
    if (!tab || !map->ptrs || !map->owned) s = br_error(BR_ENOMEM, "out of memory");
    if (!s) br_model_table(&f->cfg, tab, map->n, &map->n);
    for (size_t i = 0; i < map->n && !s; i++) s = place_tensor(map, i, &tab[i], found[i], wt, f->label);
    br_model_t *m = NULL;
    if (!s) s = br_model_create_view(&m, &f->cfg, wt, map->ptrs, NULL);
    free(tab);
    free(found);
    if (s) {
        br_lm_map_free(map);
        return s;
    }
    m->map = map;
    *out = m;
    return BR_OK;
}

br_status br_lm_quantize_tensor(void **out, const br_tensor_info_t *t, const float *data, br_wtype wt)
{
    *out = NULL;
    size_t rows = t->ndim == 1 ? 1 : (size_t)t->shape[0], C = t->numel / rows, rb, bytes;
    br_status s = br_wtype_row_bytes(wt, C, &rb);
    if (s) {
        char why[256];
        snprintf(why, sizeof why, "%s", br_errmsg());
        return br_error(s, "tensor '%s' (%zu x %zu) cannot be stored as %s: %s", t->name, rows, C,
                        br_wtype_name(wt), why);
    }
    if (br_mul_size(&bytes, rows, rb)) return br_error(BR_ERANGE, "tensor '%s' is too large", t->name);
    if (!(*out = br_alloc(bytes ? bytes : 1)))
        return br_error(BR_ENOMEM, "cannot allocate %zu bytes for tensor '%s' as %s", bytes, t->name,
                        br_wtype_name(wt));
    return br_wtype_quantize(wt, *out, data, rows, C);
}

br_status br_lm_view_adopt(br_model_t **out, const br_model_config_t *cfg, br_wtype wt, void **owned,
                           size_t n)
{
    float **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    for (size_t i = 0; ptrs && i < n; i++) ptrs[i] = owned[i];
    return br_lm_view_mapped(out, cfg, wt, ptrs, owned, n, NULL, NULL);
}

br_status br_lm_view_mapped(br_model_t **out, const br_model_config_t *cfg, br_wtype wt, float **ptrs,
                            void **owned, size_t n, void *keep, void (*keep_free)(void *))
{
    return br_lm_view_mapped_typed(out, cfg, wt, NULL, ptrs, owned, n, keep, keep_free);
}

br_status br_lm_view_mapped_typed(br_model_t **out, const br_model_config_t *cfg, br_wtype wt,
                                  const br_wtype *wts, float **ptrs, void **owned, size_t n, void *keep,
                                  void (*keep_free)(void *))
{
    *out = NULL;
    struct br_model_map *map = calloc(1, sizeof *map);
    if (!map || !ptrs) {
        for (size_t i = 0; i < n; i++) br_free(owned[i]);
        free(owned), free(map), free(ptrs);
        if (keep) keep_free(keep);
        return br_error(BR_ENOMEM, "out of memory");
    }
    map->n = n, map->owned = owned, map->ptrs = ptrs, map->keep = keep, map->keep_free = keep_free;
    br_model_t *m = NULL;
    br_status s = br_model_create_view(&m, cfg, wt, map->ptrs, wts);
    if (s) {
        br_lm_map_free(map);
        return s;
    }
    m->map = map;
    *out = m;
    return BR_OK;
}

br_status br_model_quantize(br_model_t **out, const br_model_t *src, br_wtype wt)
{
    *out = NULL;
    if (!src->params || src->wt != BR_WT_F32)
        return br_error(BR_EUNSUPPORTED, "quantising needs a model with F32 parameters; this one holds %s "
                        "weights in place (load it with br_model_load)", br_wtype_name(src->wt));
    if (br_config_has_moe_ffn(&src->cfg) || br_config_has_moa(&src->cfg))
        return br_error(BR_EUNSUPPORTED, "a mixture model cannot be quantised in memory (write it as GGUF: "
                        "braid quantize, whose file runs in place)");
    if (wt == BR_WT_F32 || (unsigned)wt >= BR_WT_COUNT)
        return br_error(BR_EINVAL, "br_model_quantize stores matrices as BF16, F16, Q8_0, Q4_0, Q4_K or "
                        "Q6_K, not %s",
                        br_wtype_name(wt));
    size_t n = src->n_tensors;
    void **owned = calloc(n, sizeof *owned);
    if (!owned) return br_error(BR_ENOMEM, "out of memory");
    br_status s = BR_OK;
    for (size_t i = 0; i < n && !s; i++) {
        const br_tensor_info_t *t = &src->tensors[i];
        s = br_lm_quantize_tensor(&owned[i], t, src->params + t->offset, t->ndim == 1 ? BR_WT_F32 : wt);
    }
    if (s) {
        for (size_t i = 0; i < n; i++) br_free(owned[i]);
        free(owned);
        return s;
    }
    return br_lm_view_adopt(out, &src->cfg, wt, owned, n);
}
