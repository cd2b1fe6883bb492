/* Checkpoints: DIR/config.json + DIR/model.safetensors (HF Llama names), and the optimizer
 * state + trainer position in DIR/optimizer.safetensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/safetensors.h"
#include "lm/model.h"

/* Tensors older HF checkpoints carry that are derived, not learned. */
static bool ignorable(const char *name)
{
    size_t n = strlen(name);
    const char *suf = "rotary_emb.inv_freq";
    return n >= strlen(suf) && !strcmp(name + n - strlen(suf), suf);
}

br_status br_model_load_weights(br_model_t *m, const char *path)
{
    br_safetensors_t *st;
    BR_TRY(br_st_open(&st, path));
    br_status s = BR_OK;
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        const br_st_tensor_t *ft = br_st_find(st, t->name);
        if (!ft) {
            s = br_error(BR_EFORMAT, "%s: missing tensor '%s' (shape [%lld%s%lld])", path, t->name,
                         (long long)t->shape[0], t->ndim == 2 ? ", " : "",
                         t->ndim == 2 ? (long long)t->shape[1] : 0LL);
            break;
        }
        if (ft->ndim != t->ndim || ft->shape[0] != t->shape[0] ||
            (t->ndim == 2 && ft->shape[1] != t->shape[1])) {
            char got[128] = "";
            size_t n = 0;
            for (int k = 0; k < ft->ndim && n < sizeof got; k++)
                n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", k ? ", " : "", (long long)ft->shape[k]);
            s = br_error(BR_EFORMAT, "%s: tensor '%s' has shape [%s], the config needs [%lld%s%lld]",
                         path, t->name, got, (long long)t->shape[0], t->ndim == 2 ? ", " : "",
                         t->ndim == 2 ? (long long)t->shape[1] : 0LL);
            break;
        }
        s = br_st_read_f32(ft, m->params + t->offset, t->numel);
        /* a NaN or Inf weight would not even surface as NaN logits everywhere (masked
         * softmax and max reductions can swallow it): refuse it here, naming the tensor */
        for (size_t j = 0; !s && j < t->numel; j++)
            if (!isfinite(m->params[t->offset + j]))
                s = br_error(BR_EFORMAT, "%s: tensor '%s' contains NaN or Inf (element %zu)", path, t->name, j);
    }
    /* every tensor in the file must be used (a tied lm_head copy is allowed) */
    for (size_t i = 0; i < br_st_count(st) && !s; i++) {
        const char *name = br_st_tensor(st, i)->name;
        if (br_model_find_tensor(m, name) >= 0 || ignorable(name)) continue;
        if (m->cfg.tie_word_embeddings && !strcmp(name, "lm_head.weight")) continue;
        s = br_error(BR_EFORMAT, "%s: unexpected tensor '%s' (not part of this config)", path, name);
    }
    br_st_close(st);
    return s;
}

br_status br_model_load(br_model_t **out, const char *dir, bool with_grads)
{
    *out = NULL;
    char path[4096];
    br_model_config_t cfg;
    BR_TRY(br_path_join(path, sizeof path, dir, "config.json"));
    if (!br_file_exists(path))
        return br_error(BR_ENOTFOUND, "%s: not a model directory (no config.json)", dir);
    BR_TRY(br_config_load(&cfg, path));
    br_model_t *m;
    BR_TRY(br_model_create(&m, &cfg, with_grads));
    BR_TRY(br_path_join(path, sizeof path, dir, "model.safetensors"));
    br_status s = br_model_load_weights(m, path);
    if (s) {
        br_model_free(m);
        return s;
    }
    *out = m;
    return BR_OK;
}

br_status br_model_save(const br_model_t *m, const char *dir, int dtype)
{
    if (dtype != BR_DT_F32 && dtype != BR_DT_F16 && dtype != BR_DT_BF16)
        return br_error(BR_EINVAL, "checkpoint dtype must be F32, F16 or BF16");
    BR_TRY(br_mkdir_p(dir));
    char path[4096];
    br_st_writer_t *w;
    BR_TRY(br_st_writer_create(&w));
    br_status s = br_st_writer_set_metadata(w, "format", "pt");
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        const float *p = m->params + t->offset;
        if (dtype == BR_DT_F32) s = br_st_writer_add(w, t->name, BR_DT_F32, t->ndim, t->shape, p);
        else s = br_st_writer_add_f32(w, t->name, (br_dtype)dtype, t->ndim, t->shape, p);
    }
    if (!s) s = br_path_join(path, sizeof path, dir, "model.safetensors");
    if (!s) s = br_st_writer_save(w, path);
    br_st_writer_free(w);
    if (!s) s = br_path_join(path, sizeof path, dir, "config.json");
    if (!s) s = br_config_save(&m->cfg, path);
    return s;
}

br_status br_model_save_optimizer(const br_model_t *m, const char *dir, const char *extra)
{
    if (!m->adam_m) return br_error(BR_EINVAL, "no optimizer state to save (no AdamW step yet)");
    BR_TRY(br_mkdir_p(dir));
    char path[4096], name[BR_TENSOR_NAME_MAX + 16], step[32];
    br_st_writer_t *w;
    BR_TRY(br_st_writer_create(&w));
    snprintf(step, sizeof step, "%ld", m->step);
    br_status s = br_st_writer_set_metadata(w, "step", step);
    if (!s && extra) s = br_st_writer_set_metadata(w, "extra", extra);
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        snprintf(name, sizeof name, "param.%s", t->name);
        s = br_st_writer_add(w, name, BR_DT_F32, t->ndim, t->shape, m->params + t->offset);
        snprintf(name, sizeof name, "exp_avg.%s", t->name);
        if (!s) s = br_st_writer_add(w, name, BR_DT_F32, t->ndim, t->shape, m->adam_m + t->offset);
        snprintf(name, sizeof name, "exp_avg_sq.%s", t->name);
        if (!s) s = br_st_writer_add(w, name, BR_DT_F32, t->ndim, t->shape, m->adam_v + t->offset);
    }
    if (!s) s = br_path_join(path, sizeof path, dir, "optimizer.safetensors");
    if (!s) s = br_st_writer_save(w, path);
    br_st_writer_free(w);
    return s;
}

br_status br_model_load_optimizer(br_model_t *m, const char *dir, char **extra)
{
    if (extra) *extra = NULL;
    char path[4096], name[BR_TENSOR_NAME_MAX + 16];
    BR_TRY(br_path_join(path, sizeof path, dir, "optimizer.safetensors"));
    if (!m->adam_m) {
        m->adam_m = br_alloc(m->n_params * sizeof(float));
        m->adam_v = br_alloc(m->n_params * sizeof(float));
        if (!m->adam_m || !m->adam_v) return br_error(BR_ENOMEM, "cannot allocate AdamW state");
    }
    br_safetensors_t *st;
    BR_TRY(br_st_open(&st, path));
    br_status s = BR_OK;
    const char *step = br_st_metadata_get(st, "step");
    char *end = NULL;
    long sv = step ? strtol(step, &end, 10) : -1;
    if (!step || *end || sv < 0) s = br_error(BR_EFORMAT, "%s: missing or bad 'step' metadata", path);
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        snprintf(name, sizeof name, "param.%s", t->name);
        s = br_st_load_f32(st, name, m->params + t->offset, t->ndim, t->shape);
        snprintf(name, sizeof name, "exp_avg.%s", t->name);
        if (!s) s = br_st_load_f32(st, name, m->adam_m + t->offset, t->ndim, t->shape);
        snprintf(name, sizeof name, "exp_avg_sq.%s", t->name);
        if (!s) s = br_st_load_f32(st, name, m->adam_v + t->offset, t->ndim, t->shape);
    }
    if (!s) {
        m->step = sv;
        const char *x = br_st_metadata_get(st, "extra");
        if (extra && x && !(*extra = strdup(x))) s = br_error(BR_ENOMEM, "out of memory");
    }
    br_st_close(st);
    if (s) return br_error_wrap(s, "loading optimizer state");
    return BR_OK;
}
