/* Checkpoints: DIR/config.json + DIR/model.safetensors (HF Llama names), and the optimizer
 * state + trainer position in DIR/optimizer.safetensors. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/safetensors.h"
#include "lm/model_internal.h"

/* Tensors older HF checkpoints carry that are derived, not learned. */
static bool ignorable(const char *name)
{
    size_t n = strlen(name);
    const char *suf = "rotary_emb.inv_freq";
    return n >= strlen(suf) && !strcmp(name + n - strlen(suf), suf);
}

/* The config.json fields that decide a tensor's shape, for error messages (matched on the
 * end of the name: the first entry that matches wins). */
static const char *shape_fields(const char *name)
{
    static const struct {
        const char *suffix, *fields;
    } tab[] = {
        {"embed_tokens.weight", "vocab_size, hidden_size"},
        {"lm_head.weight", "vocab_size, hidden_size"},
        {"norm.weight", "hidden_size"}, /* model.norm and every *_layernorm */
        {"self_attn.router.weight", "num_attention_experts, hidden_size"},
        {"q_proj.weight", "num_attention_heads * head_dim, hidden_size"},
        {"k_proj.weight", "num_key_value_heads * head_dim, hidden_size"},
        {"v_proj.weight", "num_key_value_heads * head_dim, hidden_size"},
        {"o_proj.weight", "hidden_size, num_attention_heads * head_dim"},
        {"shared_expert.gate_proj.weight", "shared_expert_intermediate_size, hidden_size"},
        {"shared_expert.up_proj.weight", "shared_expert_intermediate_size, hidden_size"},
        {"shared_expert.down_proj.weight", "hidden_size, shared_expert_intermediate_size"},
        {"gate_proj.weight", "intermediate_size, hidden_size"},
        {"up_proj.weight", "intermediate_size, hidden_size"},
        {"down_proj.weight", "hidden_size, intermediate_size"},
        {"w1.weight", "intermediate_size, hidden_size"},
        {"w3.weight", "intermediate_size, hidden_size"},
        {"w2.weight", "hidden_size, intermediate_size"},
        {"block_sparse_moe.gate.weight", "num_local_experts, hidden_size"},
        {"nexus.proj_in.weight", "2 * nexus_hidden_size, nexus_domain_dim"},
        {"nexus.proj_out.weight", "hidden_size, nexus_hidden_size"},
        {"domain_embeddings", "num_local_experts, nexus_domain_dim"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++) {
        size_t k = strlen(tab[i].suffix);
        if (n >= k && !strcmp(name + n - k, tab[i].suffix)) return tab[i].fields;
    }
    return "the config";
}

/* "[a]" or "[a, b]" of a model tensor into buf. */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    br_buf_t b;
    br_buf_fixed(&b, buf, cap);
    br_buf_puts(&b, "[");
    for (int k = 0; k < ndim; k++) br_buf_printf(&b, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (br_buf_puts(&b, "]")) br_buf_path(&b, "[", "...]"); /* cannot happen with 9 dims in 128 bytes */
    return buf;
}

/* Number of decoder layers the file holds (1 + the largest N of "model.layers.N."), 0 when it
 * holds none. */
static long file_layers(const br_st_tensor_t *const *all, size_t nf)
{
    static const char prefix[] = "model.layers.";
    long n = 0;
    for (size_t i = 0; i < nf; i++) {
        const char *name = all[i]->name;
        if (strncmp(name, prefix, sizeof prefix - 1)) continue;
        char *end;
        long l = strtol(name + sizeof prefix - 1, &end, 10);
        if (end != name + sizeof prefix - 1 && *end == '.' && l >= 0 && l < LONG_MAX && l + 1 > n) n = l + 1;
    }
    return n;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const br_st_tensor_t *const *)a)->name, (*(const br_st_tensor_t *const *)b)->name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The file's tensor of that name, by binary search in `sorted` (n, by name), or NULL. */
static const br_st_tensor_t *find_sorted(const br_st_tensor_t *const *sorted, size_t n, const char *name)
{
    br_st_tensor_t key = {.name = name};
    const br_st_tensor_t *pk = &key;
    const br_st_tensor_t *const *hit = bsearch(&pk, sorted, n, sizeof *sorted, cmp_tensor_name);
    return hit ? *hit : NULL;
}

/* (model_internal.h) Checks every dimension of `cfg` against the tensors in the file's header before anything is
 * allocated for the weights: the layer count, the tensor count, then each tensor's name, shape
 * and dtype, then that the file holds nothing else.  On success *found (n_tensors, table order,
 * free() it) holds the file's tensor for each table entry.  Memory: a few pointers per tensor
 * of the file, nothing proportional to a size in the config (issue 20: vocab_size 2^24 or
 * 4096 layers used to allocate gigabytes before the first shape check).  Lookups are sorted,
 * so a hostile header of a million names costs n log n, not n^2. */
br_status br_lm_check_tensors(const br_model_config_t *cfg, const br_st_tensor_t *const *all, size_t nf,
                              const char *path, const br_st_tensor_t ***found)
{
    *found = NULL;
    long have_layers = file_layers(all, nf);
    if (have_layers < cfg->num_hidden_layers)
        return br_error(BR_EFORMAT, "%s holds %ld decoder layers (model.layers.N.*), config.json says "
                        "num_hidden_layers = %d: the config does not belong to these weights",
                        path, have_layers, cfg->num_hidden_layers);
    /* The table needs n entries; past nf + 1 of them (names are distinct) one is surely
     * missing from the file, so only that many are built and checked. */
    size_t n;
    br_model_table(cfg, NULL, 0, &n);
    size_t nt = n <= nf ? n : nf + 1;
    br_tensor_info_t *tab = calloc(nt, sizeof *tab);
    const br_st_tensor_t **byname = calloc(nf ? nf : 1, sizeof *byname), **hits = calloc(nt, sizeof *hits);
    const char **names = calloc(nt, sizeof *names);
    br_status s = BR_OK;
    if (!tab || !byname || !hits || !names) {
        s = br_error(BR_ENOMEM, "%s: out of memory for %zu tensor names", path, nt);
        goto done;
    }
    br_model_table(cfg, tab, nt, &n);
    for (size_t i = 0; i < nf; i++) byname[i] = all[i];
    qsort(byname, nf, sizeof *byname, cmp_tensor_name);
    char want[128], got[128];
    for (size_t i = 0; i < nt && !s; i++) {
        const br_tensor_info_t *t = &tab[i];
        const br_st_tensor_t *ft = hits[i] = find_sorted(byname, nf, t->name);
        names[i] = t->name;
        shape_str(want, sizeof want, t->ndim, t->shape);
        if (!ft)
            s = br_error(BR_EFORMAT, "%s: missing tensor '%s' (shape %s: %s)", path, t->name, want,
                         shape_fields(t->name));
        else if (ft->ndim != t->ndim || ft->shape[0] != t->shape[0] || (t->ndim == 2 && ft->shape[1] != t->shape[1]))
            s = br_error(BR_EFORMAT, "%s: tensor '%s' has shape %s, the config needs %s (%s)", path, t->name,
                         shape_str(got, sizeof got, ft->ndim, ft->shape), want, shape_fields(t->name));
        else if (ft->dtype != BR_DT_F32 && ft->dtype != BR_DT_F16 && ft->dtype != BR_DT_BF16 && ft->dtype != BR_DT_F64)
            s = br_error(BR_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (want F32, F16 or BF16)", path, t->name,
                         br_dtype_name(ft->dtype));
    }
    if (!s && nt < n) /* unreachable: one of the nf + 1 names is missing from the file */
        s = br_error(BR_EFORMAT, "%s holds %zu tensors, the config needs %zu", path, nf, n);
    /* every tensor in the file must be used (a tied lm_head copy is allowed) */
    if (!s) qsort(names, nt, sizeof *names, cmp_str);
    for (size_t i = 0; i < nf && !s; i++) {
        const char *name = all[i]->name;
        if (ignorable(name) || (cfg->tie_word_embeddings && !strcmp(name, "lm_head.weight"))) continue;
        if (!bsearch(&name, names, nt, sizeof *names, cmp_str))
            s = br_error(BR_EFORMAT, "%s: unexpected tensor '%s' (not part of this config)", path, name);
    }
done:
    free(tab);
    free(byname);
    free(names);
    if (s) free(hits);
    else *found = hits;
    return s;
}

/* Reads the checked tensors found[i] (table order) into m's parameters. */
static br_status read_weights(br_model_t *m, const br_st_tensor_t *const *found, const char *path)
{
    br_status s = BR_OK;
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        s = br_st_read_f32(found[i], m->params + t->offset, t->numel);
        /* a NaN or Inf weight would not even surface as NaN logits everywhere (masked
         * softmax and max reductions can swallow it): refuse it here, naming the tensor */
        for (size_t j = 0; !s && j < t->numel; j++)
            if (!isfinite(m->params[t->offset + j]))
                s = br_error(BR_EFORMAT, "%s: tensor '%s' contains NaN or Inf (element %zu)", path, t->name, j);
    }
    return s;
}

br_status br_model_load_weights(br_model_t *m, const char *path)
{
    br_safetensors_t *st;
    const br_st_tensor_t **found = NULL, **all = NULL;
    BR_TRY(br_st_open(&st, path));
    size_t nf = br_st_count(st);
    br_status s = (all = malloc((nf ? nf : 1) * sizeof *all)) ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < nf && !s; i++) all[i] = br_st_tensor(st, i);
    if (!s) s = br_lm_check_tensors(&m->cfg, all, nf, path, &found);
    if (!s) s = read_weights(m, found, path);
    free(found);
    free(all);
    br_st_close(st);
    return s;
}

br_status br_model_load(br_model_t **out, const char *dir, bool with_grads)
{
    *out = NULL;
    br_lm_folder_t f;
    const br_st_tensor_t **found = NULL;
    br_model_t *m = NULL;
    BR_TRY(br_lm_folder_open(&f, dir));
    /* every size is checked against the files before the first weight is allocated */
    br_status s = br_lm_check_tensors(&f.cfg, f.tensors, f.n_tensors, f.label, &found);
    if (!s) s = br_model_create(&m, &f.cfg, with_grads);
    if (!s) s = read_weights(m, found, f.label);
    free(found);
    br_lm_folder_close(&f);
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
    if (!m->params)
        return br_error(BR_EUNSUPPORTED, "cannot save a model opened for inference with its %s weights in "
                        "place (load it with br_model_load to save it)", br_wtype_name(m->wt));
    BR_TRY(br_mkdir_p(dir));
    br_buf_t path = BR_BUF_INIT;
    br_st_writer_t *w;
    BR_TRY(br_st_writer_create(&w));
    br_status s = br_st_writer_set_metadata(w, "format", "pt");
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        const float *p = m->params + t->offset;
        if (dtype == BR_DT_F32) s = br_st_writer_add(w, t->name, BR_DT_F32, t->ndim, t->shape, p);
        else s = br_st_writer_add_f32(w, t->name, (br_dtype)dtype, t->ndim, t->shape, p);
    }
    if (!s) s = br_buf_path(&path, dir, "model.safetensors");
    if (!s) s = br_st_writer_save(w, br_buf_str(&path));
    br_st_writer_free(w);
    if (!s) s = br_buf_path(&path, dir, "config.json");
    if (!s) s = br_config_save(&m->cfg, br_buf_str(&path));
    br_buf_free(&path);
    return s;
}

br_status br_model_save_optimizer(const br_model_t *m, const char *dir, const char *extra)
{
    if (!m->adam_m) return br_error(BR_EINVAL, "no optimizer state to save (no AdamW step yet)");
    BR_TRY(br_mkdir_p(dir));
    char name[BR_TENSOR_NAME_MAX + 16], step[32]; /* "exp_avg_sq." + a checked tensor name */
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
    br_buf_t path = BR_BUF_INIT;
    if (!s) s = br_buf_path(&path, dir, "optimizer.safetensors");
    if (!s) s = br_st_writer_save(w, br_buf_str(&path));
    br_buf_free(&path);
    br_st_writer_free(w);
    return s;
}

br_status br_model_load_optimizer(br_model_t *m, const char *dir, char **extra)
{
    if (extra) *extra = NULL;
    if (!m->params)
        return br_error(BR_EUNSUPPORTED, "cannot resume training on a model opened for inference with its %s "
                        "weights in place (load it with br_model_load)", br_wtype_name(m->wt));
    char name[BR_TENSOR_NAME_MAX + 16];
    br_buf_t pathb = BR_BUF_INIT;
    BR_TRY(br_buf_path(&pathb, dir, "optimizer.safetensors"));
    const char *path = br_buf_str(&pathb);
    if (!m->adam_m) {
        m->adam_m = br_alloc(m->n_params * sizeof(float));
        m->adam_v = br_alloc(m->n_params * sizeof(float));
    }
    br_safetensors_t *st = NULL;
    br_status s = !m->adam_m || !m->adam_v ? br_error(BR_ENOMEM, "cannot allocate AdamW state") : BR_OK;
    if (!s) s = br_st_open(&st, path);
    if (s) { /* as it is: the message names the file */
        br_buf_free(&pathb);
        return s;
    }
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
    br_buf_free(&pathb);
    if (s) return br_error_wrap(s, "loading optimizer state");
    return BR_OK;
}
