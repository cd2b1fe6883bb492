/* Upcycling real model folders, streamed (moe/stream.c, moe/upcycle.c):
 *  - the Mixtral reference: BTX and sparse upcycling of three BF16 Llama folders of one base
 *    (one sharded) give Mixtral folders (config, tensor names, shards + index, tokenizer) whose
 *    logits and greedy ids in braid's Mixtral reader equal a PyTorch float64 Mixtral forward
 *    (tests/ref/gen_mixtral_ref.py, which also checks braid's tensors bit for bit);
 *  - memory: BTX of 4 BF16 experts peaks (VmHWM over what the process held before) at under
 *    1.5x one expert's size on disk: a scaled-down docs/moe.md measurement;
 *  - refusals before anything is written: another architecture, shape or tokenizer (the field,
 *    tensor or token named); experts that do not share a base are measured and warned about;
 *  - output: the inputs' dtype or --dtype, shards, replacing an earlier output, extend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/safetensors.h"
#define TH_WANT_RUN
#include "harness.h"
#include "lm/config_moe.h"
#include "lm/model.h"
#include "moe/upcycle.h"

#define UP "tests/ref/upcycle_tiny"
static char root[] = "/tmp/braid_moe_stream_XXXXXX";
static const char *braid;

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", root, name);
}

static const float *tensor_of(const br_model_t *m, const char *name)
{
    int i = br_model_find_tensor(m, name);
    return i >= 0 ? m->params + m->tensors[i].offset : NULL;
}

static char *slurp(const char *dir, const char *name)
{
    char p[4300], *text = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return br_read_file(p, &text, &n) ? NULL : text;
}

/* Logits of every position and greedy ids (full recompute per token), as the reference does. */
static void check_against_ref(const char *dir, const char *method, br_safetensors_t *ref)
{
    br_model_t *m = NULL;
    CHECK_OK(br_model_load(&m, dir, false));
    if (!m) return;
    CHECK_INT(m->cfg.arch, BR_ARCH_MIXTRAL);
    char key[64];
    snprintf(key, sizeof key, "%s_logits", method);
    const br_st_tensor_t *ti = br_st_find(ref, "inputs"), *tl = br_st_find(ref, key);
    snprintf(key, sizeof key, "%s_greedy", method);
    const br_st_tensor_t *tg = br_st_find(ref, key);
    CHECK(ti && tl && tg);
    if (!ti || !tl || !tg) {
        br_model_free(m);
        return;
    }
    size_t B = (size_t)ti->shape[0], T = (size_t)ti->shape[1], V = (size_t)m->cfg.vocab_size, G = (size_t)tg->shape[1];
    float *fin = malloc(B * T * sizeof(float)), *want = malloc(B * T * V * sizeof(float)), *fg = malloc(B * G * sizeof(float));
    float *got = malloc(B * (T + G) * V * sizeof(float));
    int32_t *in = malloc(B * (T + G) * sizeof(int32_t));
    CHECK_OK(br_st_read_f32(ti, fin, B * T));
    CHECK_OK(br_st_read_f32(tl, want, B * T * V));
    CHECK_OK(br_st_read_f32(tg, fg, B * G));
    for (size_t i = 0; i < B * T; i++) in[i] = (int32_t)fin[i];
    CHECK_OK(br_model_forward_logits(m, in, B, T, NULL, got));
    double worst = 0, scale = 0;
    for (size_t i = 0; i < B * T * V; i++) worst = fmax(worst, fabs(got[i] - want[i])), scale = fmax(scale, fabs(want[i]));
    CHECK_MSG(worst < 1e-4 * fmax(1, scale), "%s: Mixtral reference logits differ by %.3g (scale %.3g)", method, worst, scale);
    for (size_t b = 0; b < B; b++) { /* greedy continuation of each row */
        int32_t *row = in + b * (T + G);
        for (size_t t = 0; t < T; t++) row[t] = (int32_t)fin[b * T + t];
        bool same = true;
        for (size_t g = 0; g < G; g++) {
            size_t n = T + g;
            CHECK_OK(br_model_forward_logits(m, row, 1, n, NULL, got));
            const float *last = got + (n - 1) * V;
            size_t best = 0;
            for (size_t v = 1; v < V; v++)
                if (last[v] > last[best]) best = v;
            row[n] = (int32_t)best;
            same = same && (int32_t)fg[b * G + g] == row[n];
        }
        CHECK_MSG(same, "%s: greedy ids of row %zu differ from the reference's", method, b);
    }
    free(fin), free(want), free(fg), free(got), free(in);
    br_model_free(m);
}

static void mixtral_reference(void)
{
    br_safetensors_t *ref = NULL;
    CHECK_OK(br_st_open(&ref, UP "/ref.safetensors"));
    if (!ref) return;
    const char *ex[2] = {UP "/ft1", UP "/ft2"};
    const char *methods[2] = {"btx", "sparse"};
    for (int i = 0; i < 2; i++) {
        char out[4200];
        snprintf(out, sizeof out, "%s/ref-%s", root, methods[i]);
        br_moe_out_report_t rep;
        br_upcycle_opts_t o = {.base = UP "/base", .experts = ex, .n_experts = 2, .renorm = -1, .alpha = 0.01f,
                               .beta = 0.001f, .seed = 5, .out = out, .shard_size = 40000, .report = &rep,
                               .num_experts = i ? 3 : 0};
        CHECK_OK(br_upcycle_method_parse(methods[i], &o.method));
        CHECK_OK(br_upcycle(&o, NULL));
        CHECK_MSG(rep.n_shards > 1 && rep.dtype == BR_DT_BF16, "%s: %zu shards of %s", methods[i], rep.n_shards,
                  br_dtype_name(rep.dtype));
        char *cfg = slurp(out, "config.json"), *idx = slurp(out, "model.safetensors.index.json");
        char *tok = slurp(out, "tokenizer.json"), *tok0 = slurp(UP "/base", "tokenizer.json");
        CHECK(cfg && strstr(cfg, "\"model_type\": \"mixtral\"") && strstr(cfg, "\"torch_dtype\": \"bfloat16\"") &&
              strstr(cfg, "\"num_local_experts\"") && strstr(cfg, "\"num_experts_per_tok\": 2"));
        CHECK(idx && strstr(idx, "\"total_size\"") && strstr(idx, "model.layers.1.block_sparse_moe.experts.1.w2.weight") &&
              strstr(idx, "model-00001-of-"));
        CHECK_MSG(tok && tok0 && !strcmp(tok, tok0), "%s: tokenizer.json not copied", methods[i]);
        if (i == 0) /* the finetunes are close: well under the warning threshold */
            CHECK_MSG(rep.n_measured == 2 && rep.distance[0] > 0 && rep.distance[0] < 0.2 && rep.distance[1] < 0.2,
                      "btx: distances %g %g", rep.distance[0], rep.distance[1]);
        free(cfg), free(idx), free(tok), free(tok0);
        check_against_ref(out, methods[i], ref);
    }
    br_st_close(ref);
}

/* A folder like UP/ft2 with one file's text changed (first `from` replaced by `to`). */
static void variant(const char *name, const char *file, const char *from, const char *to)
{
    char dir[4200], p[4300];
    path_of(dir, sizeof dir, name);
    CHECK_OK(br_mkdir_p(dir));
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        char *data = NULL, src[256];
        size_t n = 0;
        snprintf(src, sizeof src, UP "/ft2/%s", files[i]);
        CHECK_OK(br_read_file(src, &data, &n));
        if (!data) continue;
        char *hit = strcmp(files[i], file) ? NULL : strstr(data, from);
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (hit) {
            size_t a = (size_t)(hit - data), fl = strlen(from), tl = strlen(to);
            char *d2 = malloc(n - fl + tl + 1);
            memcpy(d2, data, a), memcpy(d2 + a, to, tl), memcpy(d2 + a + tl, hit + fl, n - a - fl);
            CHECK_OK(br_write_file_atomic(p, d2, n - fl + tl));
            free(d2);
        } else {
            CHECK_MSG(strcmp(files[i], file) != 0, "variant %s: '%s' not in %s", name, from, file);
            CHECK_OK(br_write_file_atomic(p, data, n));
        }
        free(data);
    }
}

static bool leftovers(void)
{
    char cmd[4300], out[256];
    snprintf(cmd, sizeof cmd, "ls -d %s/*.tmp-* 2>/dev/null | wc -l", root);
    th_run(out, sizeof out, "%s", cmd);
    return atoi(out) != 0;
}

static void refusals(void)
{
    char out[4200], dir[4200];
    path_of(out, sizeof out, "never");
    variant("tok", "tokenizer.json", "\"a\":", "\"zz\":");
    variant("arch", "config.json", "\"model_type\": \"llama\"", "\"model_type\": \"mistral\", \"sliding_window\": 32");
    variant("ffn", "config.json", "\"intermediate_size\": 48", "\"intermediate_size\": 40");
    const struct {
        const char *name, *want;
    } bad[] = {{"tok", "token 'a'"}, {"arch", "model_type is mistral"}, {"ffn", "intermediate_size"}};
    for (int i = 0; i < 3; i++) {
        path_of(dir, sizeof dir, bad[i].name);
        const char *ex[2] = {UP "/ft1", dir};
        br_upcycle_opts_t o = {.method = BR_UPCYCLE_BTX, .base = UP "/base", .experts = ex, .n_experts = 2,
                               .renorm = -1, .out = out};
        br_status s = br_upcycle(&o, NULL);
        CHECK_MSG(s != BR_OK && strstr(br_errmsg(), bad[i].want), "%s: want '%s', got %d: %s", bad[i].name, bad[i].want,
                  (int)s, br_errmsg());
    }
    CHECK(!br_dir_exists(out) && !leftovers());
    { /* a Mistral base: the Mixtral output keeps its sliding window */
        char mis[4200], moe[4200];
        path_of(mis, sizeof mis, "arch");
        path_of(moe, sizeof moe, "mistral-sparse");
        br_upcycle_opts_t o = {.method = BR_UPCYCLE_SPARSE, .base = mis, .num_experts = 2, .renorm = -1, .out = moe};
        CHECK_OK(br_upcycle(&o, NULL));
        char *cfg = slurp(moe, "config.json");
        CHECK_MSG(cfg && strstr(cfg, "\"model_type\": \"mixtral\"") && strstr(cfg, "\"sliding_window\": 32"),
                  "mistral base: %s", cfg ? cfg : "no config.json");
        free(cfg);
    }
    /* an expert of another base (same shapes, independent weights): written, but far from the mean */
    br_model_t *m = NULL;
    br_model_config_t c;
    CHECK_OK(br_config_load(&c, UP "/base/config.json"));
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 99);
    path_of(dir, sizeof dir, "other-base");
    CHECK_OK(br_mkdir_p(dir));
    CHECK_OK(br_model_save(m, dir, BR_DT_BF16));
    br_model_free(m);
    const char *ex[2] = {UP "/ft1", dir};
    br_moe_out_report_t rep;
    path_of(out, sizeof out, "far");
    br_upcycle_opts_t o = {.method = BR_UPCYCLE_BTX, .base = UP "/base", .experts = ex, .n_experts = 2, .renorm = -1,
                           .out = out, .report = &rep};
    CHECK_OK(br_upcycle(&o, NULL));
    CHECK_MSG(rep.distance[0] > BR_UPCYCLE_FAR && rep.distance[1] > BR_UPCYCLE_FAR, "far: distances %g %g",
              rep.distance[0], rep.distance[1]);
    if (braid) {
        char text[8192];
        int rc = th_run(text, sizeof text, "%s upcycle --method btx --base %s --experts %s,%s --out %s/far-cli 2>&1", braid,
                        UP "/base", UP "/ft1", dir, root);
        CHECK_MSG(rc == 0 && strstr(text, "warning:") && strstr(text, "do not seem to share a base") &&
                  strstr(text, "relative distance"), "far experts: exit %d: %s", rc, text);
    }
}

/* Output dtype, shards, replacing an earlier output, a folder in the way, extend. */
static void output_format(void)
{
    char out[4200], p[4300];
    const char *ex[2] = {UP "/ft1", UP "/ft2"};
    path_of(out, sizeof out, "fmt");
    br_moe_out_report_t rep;
    br_upcycle_opts_t o = {.method = BR_UPCYCLE_BTX, .base = UP "/base", .experts = ex, .n_experts = 2, .renorm = -1,
                           .out = out, .dtype = "f32", .report = &rep};
    CHECK_OK(br_upcycle(&o, NULL)); /* one file */
    CHECK(rep.n_shards == 1 && rep.dtype == BR_DT_F32);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    br_safetensors_t *st = NULL;
    CHECK_OK(br_st_open(&st, p));
    if (st) CHECK(br_st_find(st, "model.embed_tokens.weight")->dtype == BR_DT_F32);
    br_st_close(st);
    o.dtype = NULL, o.shard_size = 30000; /* again into the same folder: replaced, now sharded BF16 */
    CHECK_OK(br_upcycle(&o, NULL));
    CHECK(rep.n_shards > 2 && rep.dtype == BR_DT_BF16);
    CHECK_MSG(!br_file_exists(p), "the earlier output's model.safetensors is still there");
    br_model_t *m = NULL;
    CHECK_OK(br_model_load(&m, out, false));
    br_model_free(m);
    snprintf(p, sizeof p, "%s/sub", out); /* a folder in the way is never deleted */
    CHECK_OK(br_mkdir_p(p));
    CHECK_STATUS(br_upcycle(&o, NULL), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "holds the folder sub") != NULL && br_dir_exists(p) && !leftovers());
    /* extend the (sharded, BF16) BTX mixture of the reference with a third expert */
    char btx[4200], plus[4200];
    path_of(btx, sizeof btx, "ref-btx");
    path_of(plus, sizeof plus, "ref-btx-plus");
    br_extend_opts_t xo = {.moe = btx, .expert = UP "/ft2", .seed = 3, .out = plus, .shard_size = 40000, .report = &rep};
    br_model_config_t mc;
    CHECK_OK(br_extend(&xo, &mc));
    CHECK_INT(mc.num_local_experts, 3);
    CHECK(rep.dtype == BR_DT_BF16 && rep.n_shards > 1 && rep.n_measured == 2);
    br_model_t *P = NULL, *F = NULL, *M = NULL;
    CHECK_OK(br_model_load(&P, plus, false));
    CHECK_OK(br_model_load(&F, UP "/ft2", false));
    CHECK_OK(br_model_load(&M, btx, false));
    if (P && F && M) {
        const float *a = tensor_of(P, "model.layers.1.block_sparse_moe.experts.2.w3.weight");
        const float *b = tensor_of(F, "model.layers.1.mlp.up_proj.weight");
        CHECK(a && b && !memcmp(a, b, 48 * 32 * sizeof(float)));
        const float *r0 = tensor_of(M, "model.layers.0.block_sparse_moe.gate.weight");
        const float *r1 = tensor_of(P, "model.layers.0.block_sparse_moe.gate.weight");
        bool kept = r0 && r1;
        for (int i = 0; kept && i < 2 * 32; i++) kept = fabsf(r0[i] - r1[i]) <= 1e-2f * fabsf(r0[i]);
        CHECK_MSG(kept, "extend: the existing router rows changed");
    }
    br_model_free(P), br_model_free(F), br_model_free(M);
    if (braid) {
        char text[8192];
        int rc = th_run(text, sizeof text, "%s inspect %s 2>&1", braid, plus);
        CHECK_MSG(rc == 0 && strstr(text, "mixture") && strstr(text, "3 FFN experts") && strstr(text, "top-2") &&
                  strstr(text, "Mixtral"), "inspect: exit %d: %s", rc, text);
    }
}

/* /proc/self/status field key ("VmHWM:") in KiB, or -1. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key));
    if (f) fclose(f);
    return v;
}

/* BTX of 4 BF16 experts of ~22 MB each (the seed as expert 0): the peak resident memory of
 * this process while br_upcycle runs (VmHWM, reset before with /proc/self/clear_refs) exceeds
 * what it held before by less than 1.5x one expert's size on disk. */
static void memory(void)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 8192, c.hidden_size = 256, c.intermediate_size = 2048, c.num_hidden_layers = 4;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 64;
    char dirs[4][4200];
    const char *names[4] = {"big0", "big1", "big2", "big3"};
    size_t bytes = 0;
    for (int i = 0; i < 4; i++) {
        br_model_t *m = NULL;
        CHECK_OK(br_model_create(&m, &c, false));
        if (!m) return;
        br_model_init_random(m, 1); /* one base ... */
        for (size_t j = 0; j < m->n_params; j += 97) m->params[j] += 0.001f * (float)i; /* ... finetuned */
        path_of(dirs[i], sizeof dirs[i], names[i]);
        CHECK_OK(br_mkdir_p(dirs[i]));
        CHECK_OK(br_model_save(m, dirs[i], BR_DT_BF16));
        bytes = m->n_params * 2;
        br_model_free(m);
    }
    char out[4200];
    path_of(out, sizeof out, "big-moe");
    const char *ex[3] = {dirs[1], dirs[2], dirs[3]};
    br_upcycle_opts_t o = {.method = BR_UPCYCLE_BTX, .base = dirs[0], .base_as_expert = true, .experts = ex,
                           .n_experts = 3, .renorm = -1, .out = out, .shard_size = 20000000};
    FILE *f = fopen("/proc/self/clear_refs", "w");
    bool reset = f && fputs("5", f) >= 0;
    if (f) reset = !fclose(f) && reset;
    if (!reset) {
        SKIP("cannot reset the peak RSS (/proc/self/clear_refs): memory check not run");
        return;
    }
    long before = status_kib("VmRSS:");
    CHECK_OK(br_upcycle(&o, NULL));
    long peak = status_kib("VmHWM:");
    double extra = (double)(peak - before) * 1024, limit = 1.5 * (double)bytes;
    CHECK_MSG(before > 0 && peak > 0 && extra <= limit,
              "upcycle of 4 experts of %.1f MB peaked %.1f MB over what the process held (limit %.1f MB)", bytes / 1e6,
              extra / 1e6, limit / 1e6);
    printf("# 4 BF16 experts of %.1f MB: br_upcycle's peak RSS %.1f MB over the %.1f MB held before (goal <= %.1f MB)\n",
           bytes / 1e6, extra / 1e6, before / 1024.0, limit / 1e6);
    br_model_t *m = NULL;
    CHECK_OK(br_model_load(&m, out, false));
    if (m) CHECK_INT(m->cfg.num_local_experts, 4);
    br_model_free(m);
}

int main(void)
{
    braid = getenv("BRAID");
    if (braid && !*braid) braid = NULL;
    if (!mkdtemp(root)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    mixtral_reference();
    refusals();
    output_format();
    memory();
    char cmd[4300], sink[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    th_run(sink, sizeof sink, "%s", cmd);
    return th_exit();
}
