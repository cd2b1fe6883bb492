/* Training on the architectures of real model folders (lm/model.c): finite differences through
 * Qwen2's q/k/v biases, Qwen3's per-head q/k RMSNorm and the scaled RoPE of llama3/linear; the
 * float64 PyTorch loss and gradients of the Hub-style fixtures (tests/ref/hf_train, written by
 * tests/ref/gen_hf_train_ref.py); and LoRA training through a BF16 base run in place (its
 * matrices stay 16-bit: the input gradients go through br_matmul_dinp) giving the adapter
 * gradients of the same base loaded as F32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lm/model.h"
#include "lm/train.h"
#include "model_fixture.h"
#include "shell_fixture.h"
#include "text/data.h"
#include "text/tokenizer.h"
#include "nn/lora.h"
#include "serve/adapters.h"

static br_model_config_t tiny(br_arch arch)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 37;
    c.hidden_size = 24;
    c.intermediate_size = 30;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 6;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 40;
    c.rms_norm_eps = 1e-5f;
    c.initializer_range = 0.3f;
    c.arch = arch;
    if (arch == BR_ARCH_QWEN2) { /* biases, tied head, linear RoPE scaling */
        c.qkv_bias = true;
        c.tie_word_embeddings = true;
        c.rope_type = BR_ROPE_LINEAR;
        c.rope_factor = 2;
    } else if (arch == BR_ARCH_QWEN3) { /* q/k norms, head_dim * heads != hidden_size */
        c.qk_norm = true;
        c.head_dim = 6;
    } else { /* llama3 RoPE scaling */
        c.rope_type = BR_ROPE_LLAMA3;
        c.rope_factor = 4;
        c.rope_low_freq_factor = 1;
        c.rope_high_freq_factor = 4;
        c.rope_original_max_position_embeddings = 8;
        c.rope_theta = 500;
    }
    return c;
}

/* Central differences of the mean loss against the analytic gradient: every entry of every
 * 1-D tensor of layer 0 (norms, biases, q/k norms) and a sample of all the others. */
static void finite_difference(br_arch arch)
{
    br_model_config_t c = tiny(arch);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, true));
    if (!m) return;
    br_model_init_random(m, 7);
    br_rng_t r;
    br_rng_seed(&r, 3);
    for (size_t i = 0; i < m->n_tensors; i++) /* norms away from 1 so their gradients matter */
        if (m->tensors[i].is_norm)
            for (size_t j = 0; j < m->tensors[i].numel; j++)
                m->params[m->tensors[i].offset + j] += 0.3f * (br_rng_float(&r) - 0.5f);
    enum { B = 2, T = 7 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, c.vocab_size, 11);
    fill_tokens(tg, B * T, c.vocab_size, 12);
    tg[4] = -1;
    float loss, lp, lm, losses[B * T];
    br_model_zero_grad(m);
    CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &loss));
    double worst = 0;
    const char *worst_name = "";
    size_t checked = 0, arch_part = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        bool all = t->ndim == 1 && !strncmp(t->name, "model.layers.0.", 15);
        bool part = strstr(t->name, "_proj.bias") || strstr(t->name, "q_norm") || strstr(t->name, "k_norm");
        size_t n = all ? t->numel : 6;
        for (size_t k = 0; k < n; k++) {
            size_t j = t->offset + (all ? k : br_rng_below(&r, t->numel));
            float keep = m->params[j], h = 1e-2f;
            m->params[j] = keep + h;
            br_model_forward_loss(m, in, tg, B, T, NULL, losses, &lp);
            m->params[j] = keep - h;
            br_model_forward_loss(m, in, tg, B, T, NULL, losses, &lm);
            m->params[j] = keep;
            double fd = ((double)lp - lm) / (2.0 * h), an = m->grads[j];
            double err = fabs(fd - an) / fmax(fabs(fd) + fabs(an), 1e-2);
            if (err > worst) worst = err, worst_name = t->name;
            checked++;
            arch_part += part && fabs(an) > 1e-4;
        }
    }
    CHECK_MSG(worst < 2e-2, "finite differences (%s): worst relative error %.3g in %s", br_arch_name(arch), worst,
              worst_name);
    if (arch != BR_ARCH_LLAMA) /* the biases / q/k norms were checked, with non-zero gradients */
        CHECK_MSG(arch_part >= 20, "%s: only %zu checked entries of its own parts", br_arch_name(arch), arch_part);
    CHECK(checked >= 6 * m->n_tensors);
    br_model_free(m);
}

/* max |a - b| / max |b| over n values */
static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, s = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;
        s = fmax(s, fabs(b[i]));
    }
    return d / s;
}

/* The fixture folder loaded as F32 for full training: loss and gradients against PyTorch. */
static void against_pytorch(const char *arch)
{
    char dir[128], ref[128];
    snprintf(dir, sizeof dir, "tests/ref/hf_%s", arch);
    snprintf(ref, sizeof ref, "tests/ref/hf_train/%s.safetensors", arch);
    br_model_t *m = NULL;
    br_safetensors_t *st = NULL;
    CHECK_OK(br_model_load(&m, dir, true));
    CHECK_OK(br_st_open(&st, ref));
    if (!m || !st) goto done;
    const br_st_tensor_t *ti = br_st_find(st, "inputs"), *tt = br_st_find(st, "targets");
    float lossref;
    CHECK(ti && tt && ti->ndim == 2 && tt->numel == ti->numel);
    CHECK_OK(br_st_load_f32(st, "loss", &lossref, 1, (int64_t[]){1}));
    if (!ti || !tt || ti->ndim != 2 || tt->numel != ti->numel) goto done;
    size_t B = (size_t)ti->shape[0], T = (size_t)ti->shape[1], n = ti->numel;
    int32_t *in = malloc(n * sizeof *in), *tg = malloc(n * sizeof *tg);
    memcpy(in, ti->data, n * sizeof *in);
    memcpy(tg, tt->data, n * sizeof *tg);
    float loss = 0;
    br_model_zero_grad(m);
    CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &loss));
    CHECK_REL(loss, lossref, 1e-5, 1);
    size_t ngrad = 0;
    for (size_t i = 0; i < br_st_count(st); i++) {
        const br_st_tensor_t *g = br_st_tensor(st, i);
        if (strncmp(g->name, "grad.", 5)) continue;
        int k = br_model_find_tensor(m, g->name + 5);
        CHECK_MSG(k >= 0, "%s: no tensor %s", arch, g->name + 5);
        if (k < 0) continue;
        const br_tensor_info_t *t = &m->tensors[k];
        float *want = malloc(t->numel * sizeof *want);
        CHECK_OK(br_st_read_f32(g, want, t->numel));
        double e = rel_err(m->grads + t->offset, want, t->numel);
        CHECK_MSG(e < 2e-4, "%s: gradient of %s: relative error %.3g", arch, t->name, e);
        free(want);
        ngrad++;
    }
    CHECK_MSG(ngrad >= 7, "%s: %zu gradients compared", arch, ngrad);
    free(in);
    free(tg);
done:
    br_st_close(st);
    br_model_free(m);
}

/* One LoRA step's adapter gradients on base m (frozen). */
static void lora_grads(br_model_t *m, br_lora_adapter_t *a, const int32_t *in, const int32_t *tg, size_t B,
                       size_t T, float *loss)
{
    br_lora_batch_t *lb = NULL;
    const br_lora_adapter_t **rows = malloc(B * T * sizeof *rows);
    for (size_t i = 0; i < B * T; i++) rows[i] = a;
    CHECK_OK(br_lora_batch_create(&lb));
    CHECK_OK(br_lora_batch_set(lb, rows, B * T));
    br_lora_hook_t h = br_lora_batch_hook(lb);
    br_train_opts_t o = {.lora = &h, .train_base = false, .loss_scale = 1.0f};
    br_lora_zero_grads(a);
    CHECK_OK(br_model_train_step(m, in, tg, B, T, &o, loss));
    br_lora_batch_free(lb);
    free(rows);
}

/* LoRA on every projection of a BF16 folder run in place == on the same folder loaded as F32
 * (the BF16 weights are exact in F32: only the order of the sums differs). */
static void lora_through_16bit(const char *arch)
{
    char dir[128];
    snprintf(dir, sizeof dir, "tests/ref/hf_%s", arch);
    br_model_t *m16 = NULL, *m32 = NULL, *mq = NULL;
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_model_open(&m16, dir));
    CHECK_OK(br_model_load(&m32, dir, false));
    if (!m16 || !m32) goto done;
    CHECK_MSG(m16->wt == BR_WT_BF16 && !m16->params && !m16->grads, "%s: the base is not run in place", arch);
    unsigned targets;
    CHECK_OK(br_lora_parse_targets("all", &targets));
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m16->cfg);
    CHECK_OK(br_lora_create(&a, &shapes, 4, 8, targets, false, 5));
    if (!a) goto done;
    CHECK_OK(br_lora_alloc_grads(a));
    br_rng_t r;
    br_rng_seed(&r, 9);
    br_rng_fill_normal(&r, a->params, a->n_params, 0.05f); /* B != 0: every gradient is non-zero */
    enum { B = 2, T = 12 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, m16->cfg.vocab_size, 21);
    fill_tokens(tg, B * T, m16->cfg.vocab_size, 22);
    float l16 = 0, l32 = 0;
    float *g16 = malloc(a->n_params * sizeof *g16);
    lora_grads(m16, a, in, tg, B, T, &l16);
    memcpy(g16, a->grads, a->n_params * sizeof *g16);
    lora_grads(m32, a, in, tg, B, T, &l32);
    CHECK_REL(l16, l32, 1e-5, 1);
    double e = rel_err(g16, a->grads, a->n_params);
    CHECK_MSG(e < 1e-4, "%s: LoRA gradients through BF16 vs F32 base: relative error %.3g", arch, e);
    CHECK_MSG(!m16->grads && !m16->params, "%s: training allocated F32 weights or gradients", arch);
    free(g16);
    /* a frozen block-type base with no adapter has nothing to train: refused, not mis-run */
    CHECK_OK(br_model_quantize(&mq, m32, BR_WT_Q8_0));
    br_train_opts_t o = {.lora = NULL, .train_base = false, .loss_scale = 1.0f};
    float l;
    if (mq) CHECK_STATUS(br_model_train_step(mq, in, tg, B, T, &o, &l), BR_EUNSUPPORTED);
    /* and the base weights of a model run in place cannot be trained */
    CHECK_STATUS(br_model_train_step(m16, in, tg, B, T, NULL, &l), BR_EUNSUPPORTED);
done:
    br_lora_free(a);
    br_model_free(mq);
    br_model_free(m16);
    br_model_free(m32);
}

/* --text: a folder of two files (one holding two documents) through the fixture's tokenizer with
 * a tokenizer_config.json that asks for BOS: [BOS] doc EOS per document, in file-name order,
 * cut into train and val shards. */
static void text_shards(void)
{
    char dir[64] = "/tmp/braid_hftrain_text_XXXXXX", path[256], tokdir[96], shards[96];
    if (!mkdtemp(dir)) {
        SKIP("mkdtemp failed");
        return;
    }
    snprintf(tokdir, sizeof tokdir, "%s/tok", dir);
    snprintf(shards, sizeof shards, "%s/shards", dir);
    CHECK_INT(sh("mkdir -p %s/in %s && cp tests/ref/hf_qwen3/tokenizer.json %s/", dir, tokdir, tokdir), 0);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tokdir);
    const char *cfg = "{\"add_bos_token\": true, \"bos_token\": \"<|endoftext|>\", \"eos_token\": \"<|endoftext|>\"}";
    CHECK_OK(br_write_file_atomic(path, cfg, strlen(cfg)));
    static const char *const docs[3] = {"first document, with some words in it", "second one",
                                        "the third document is in b.txt and is a little longer than the others"};
    char text[256];
    snprintf(path, sizeof path, "%s/in/a.txt", dir);
    snprintf(text, sizeof text, "%s\n<|endoftext|>\n%s", docs[0], docs[1]);
    CHECK_OK(br_write_file_atomic(path, text, strlen(text)));
    snprintf(path, sizeof path, "%s/in/b.txt", dir);
    CHECK_OK(br_write_file_atomic(path, docs[2], strlen(docs[2])));
    br_tokenizer_t *tok = NULL;
    CHECK_OK(br_tokenizer_load(&tok, tokdir));
    if (!tok) return;
    int32_t eot = br_tokenizer_token_id(tok, "<|endoftext|>");
    uint32_t want[256];
    size_t nw = 0;
    for (int d = 0; d < 3; d++) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(br_tokenizer_encode(tok, docs[d], strlen(docs[d]), 0, &ids, &n));
        want[nw++] = (uint32_t)eot;
        for (size_t i = 0; i < n && nw < 250; i++) want[nw++] = (uint32_t)ids[i];
        want[nw++] = (uint32_t)eot;
        free(ids);
    }
    snprintf(path, sizeof path, "%s/in", dir);
    br_text_data_t info;
    CHECK_OK(br_trainer_text(path, tokdir, shards, 5, &info));
    CHECK_INT(info.files, 2);
    CHECK_INT(info.bos, eot);
    CHECK_INT(info.train_tokens + info.val_tokens, nw);
    CHECK_INT(info.val_tokens, nw / 10 > 5 ? nw / 10 : 5);
    int32_t got[256];
    br_shard_t *st = NULL;
    snprintf(path, sizeof path, "%s/" BR_TEXT_DOMAIN "/train.bin", shards);
    CHECK_OK(br_shard_open(&st, path));
    if (st) CHECK_OK(br_shard_read(st, 0, info.train_tokens, got));
    br_shard_close(st);
    snprintf(path, sizeof path, "%s/" BR_TEXT_DOMAIN "/val.bin", shards);
    CHECK_OK(br_shard_open(&st, path));
    if (st) CHECK_OK(br_shard_read(st, 0, info.val_tokens, got + info.train_tokens));
    br_shard_close(st);
    bool same = info.train_tokens + info.val_tokens == nw;
    for (size_t i = 0; same && i < nw; i++) same = (uint32_t)got[i] == want[i];
    CHECK_MSG(same, "the shards are not [BOS] doc EOS of each document in order");
    /* too little text for a window in both parts */
    snprintf(path, sizeof path, "%s/in", dir);
    CHECK_STATUS(br_trainer_text(path, tokdir, shards, 200, &info), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "--seq") != NULL);
    br_tokenizer_free(tok);
    if (!th_failed) sh("rm -rf %s", dir);
}

int main(void)
{
    text_shards();
    finite_difference(BR_ARCH_QWEN2);
    finite_difference(BR_ARCH_QWEN3);
    finite_difference(BR_ARCH_LLAMA);
    static const char *const archs[] = {"llama", "mistral", "qwen2", "qwen3"};
    for (int i = 0; i < 4; i++) against_pytorch(archs[i]);
    lora_through_16bit("qwen2");
    lora_through_16bit("qwen3");
    return th_exit();
}
