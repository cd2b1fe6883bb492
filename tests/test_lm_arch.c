/* Hub model folders of every architecture braid runs against their float64 PyTorch reference
 * (tests/ref/gen_hf_arch_ref.py: llama + llama3 RoPE scaling, mistral, qwen2 + biases + linear
 * scaling, qwen3 + q/k norms; BF16 weights in two shards + model.safetensors.index.json):
 * logits through the training forward and the paged inference forward, greedy decoding with
 * the KV cache, both with the weights in place (br_model_open: BF16 in the mapping) and
 * converted to F32 (br_model_load), and saved as F16 then run in place; the same at Qwen3-0.6B's
 * true layer shape, generated at test time (test_true_width).  Then what is refused, by name: other model types,
 * activations, RoPE types and fields that change the math; broken shard indexes. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/dtype.h"
#include "base/fileio.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lm/generate.h"
#include "lm/model.h"
#include "shard_fixture.h"

static const char *const ARCHS[] = {"llama", "mistral", "qwen2", "qwen3"};

/* max |got - ref| <= rtol * max|ref|; prints the worst element. */
static void compare(const char *what, const float *got, const float *ref, size_t n, double rtol)
{
    double maxref = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) maxref = fmax(maxref, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= worst)) worst = e, wi = i;
    }
    CHECK_MSG(worst <= rtol * maxref, "%s: max error %.3g at [%zu] (got %.8g, torch %.8g; max|ref| %.3g)",
              what, worst, wi, got[wi], ref[wi], maxref);
}

typedef struct {
    float *logits;   /* (B,T,V) */
    int32_t *inputs; /* (B,T) */
    int32_t *greedy; /* (1, T + new): prompt then greedy ids */
    size_t B, T, n_greedy;
} ref_t;

static bool read_ref(const char *dir, ref_t *r)
{
    char path[512];
    br_safetensors_t *st = NULL, *si = NULL;
    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    CHECK_OK(br_st_open(&st, path));
    snprintf(path, sizeof path, "%s/ref_ids.safetensors", dir);
    CHECK_OK(br_st_open(&si, path));
    const br_st_tensor_t *lg = st ? br_st_find(st, "logits") : NULL;
    const br_st_tensor_t *in = si ? br_st_find(si, "inputs") : NULL, *gr = si ? br_st_find(si, "greedy") : NULL;
    bool ok = lg && in && gr && in->dtype == BR_DT_I32 && gr->dtype == BR_DT_I32 && in->ndim == 2;
    CHECK_MSG(ok, "%s: reference tensors missing", dir);
    if (ok) {
        r->B = (size_t)in->shape[0], r->T = (size_t)in->shape[1], r->n_greedy = gr->numel;
        r->logits = malloc(lg->numel * sizeof(float));
        r->inputs = malloc(in->nbytes);
        r->greedy = malloc(gr->nbytes);
        memcpy(r->inputs, in->data, in->nbytes);
        memcpy(r->greedy, gr->data, gr->nbytes);
        CHECK_OK(br_st_read_f32(lg, r->logits, lg->numel));
    }
    br_st_close(st);
    br_st_close(si);
    return ok;
}

/* Logits of every row through the paged inference forward (prefill of each sequence). */
static void check_paged(br_model_t *m, const ref_t *r, const char *what)
{
    size_t V = (size_t)m->cfg.vocab_size;
    br_kv_pool_t *kv = NULL;
    CHECK_OK(br_kv_pool_create(&kv, &m->cfg, 16, 1 << 22));
    if (!kv) return;
    int32_t pages[2][4];
    br_seq_t seqs[2];
    for (size_t b = 0; b < r->B && b < 2; b++) {
        for (size_t i = 0; i < 4; i++) CHECK_OK(br_kv_pool_alloc_page(kv, &pages[b][i]));
        seqs[b] = (br_seq_t){r->inputs + b * r->T, r->T, 0, pages[b], 4, BR_LOGITS_ALL};
    }
    float *lg = malloc(r->B * r->T * V * sizeof(float));
    CHECK_OK(br_model_forward_batch(m, kv, seqs, r->B < 2 ? r->B : 2, NULL, lg));
    compare(what, lg, r->logits, r->B * r->T * V, 1e-4);
    free(lg);
    br_kv_pool_free(kv);
}

static void check_model(br_model_t *m, const ref_t *r, const char *arch, const char *how)
{
    char what[128];
    size_t V = (size_t)m->cfg.vocab_size, n = r->B * r->T * V;
    float *lg = malloc(n * sizeof(float));
    snprintf(what, sizeof what, "%s (%s): logits", arch, how);
    CHECK_OK(br_model_forward_logits(m, r->inputs, r->B, r->T, NULL, lg));
    compare(what, lg, r->logits, n, 1e-4);
    snprintf(what, sizeof what, "%s (%s): paged logits", arch, how);
    check_paged(m, r, what);
    /* greedy with the KV cache: prefill, then one token at a time */
    br_sampler_t greedy = {0, 0, 1};
    int32_t *out = NULL;
    size_t n_out = 0, want = r->n_greedy - r->T;
    CHECK_OK(br_generate(m, r->greedy, r->T, want, &greedy, 1, -1, NULL, NULL, &out, &n_out));
    CHECK_MSG(n_out == want && !memcmp(out, r->greedy + r->T, want * sizeof *out),
              "%s (%s): greedy ids differ from torch (%zu of %zu tokens)", arch, how, n_out, want);
    free(out);
    free(lg);
}

/* One fixture folder (dir/config.json names the architecture; arch labels the messages). */
static void test_arch(const char *dir, const char *arch, const char *tmp)
{
    ref_t r;
    if (!read_ref(dir, &r)) return;
    br_model_t *m = NULL;
    CHECK_OK(br_model_open(&m, dir));
    if (m) {
        CHECK_MSG(m->wt == BR_WT_BF16 && !m->params && m->map, "%s: BF16 weights are not used in place", arch);
        check_model(m, &r, arch, "BF16 in place");
        int32_t tg[1] = {0};
        CHECK_STATUS(br_model_train_step(m, r.inputs, tg, 1, 1, NULL, &(float){0}), BR_EUNSUPPORTED);
        CHECK_STATUS(br_model_save(m, "/nonexistent", BR_DT_BF16), BR_EUNSUPPORTED);
        br_model_free(m);
    }
    m = NULL;
    CHECK_OK(br_model_load(&m, dir, false));
    if (m) {
        CHECK(m->wt == BR_WT_F32 && m->params);
        check_model(m, &r, arch, "F32 copy");
        /* saved as F16 (config.json keeps the architecture and its fields), run in place */
        char f16dir[300], what[128];
        snprintf(f16dir, sizeof f16dir, "%s/f16-%s", tmp, strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir);
        CHECK_OK(br_model_save(m, f16dir, BR_DT_F16));
        br_model_t *mh = NULL;
        CHECK_OK(br_model_open(&mh, f16dir));
        if (mh) {
            CHECK_MSG(mh->wt == BR_WT_F16 && !mh->params, "%s: F16 weights are not used in place", arch);
            CHECK_MSG(!memcmp(&mh->cfg, &m->cfg, sizeof m->cfg), "%s: config changed in a save/load round trip", arch);
            size_t n = r.B * r.T * (size_t)m->cfg.vocab_size;
            float *lg = malloc(n * sizeof(float));
            snprintf(what, sizeof what, "%s (F16 in place): logits", arch);
            CHECK_OK(br_model_forward_logits(mh, r.inputs, r.B, r.T, NULL, lg));
            compare(what, lg, r.logits, n, 1e-3); /* F16 rounds the smallest BF16 weights */
            free(lg);
            br_model_free(mh);
        }
        br_model_free(m);
    }
    free(r.logits);
    free(r.inputs);
    free(r.greedy);
}

/* config.json text with one field replaced (or added); the qwen3 fixture's weights. */
static int load_with(const char *tmp, const char *arch, const char *key, const char *json_value,
                     char *msg, size_t cap)
{
    char path[512], *text;
    size_t n;
    snprintf(path, sizeof path, "tests/ref/hf_%s/config.json", arch);
    if (br_read_file(path, &text, &n)) return -1;
    /* append the field: of duplicate keys jansson keeps the last, so it overrides */
    char *cfg = malloc(n + 256), *end = strrchr(text, '}');
    if (end) *end = 0;
    snprintf(cfg, n + 256, "%s, \"%s\": %s}", text, key, json_value);
    br_model_config_t c;
    br_status s = br_config_parse(&c, cfg, strlen(cfg));
    snprintf(msg, cap, "%s", s ? br_errmsg() : "");
    (void)tmp;
    free(cfg);
    free(text);
    return (int)s;
}

static void test_refusals(void)
{
    static const struct {
        const char *arch, *key, *value, *needle;
    } cases[] = {
        {"llama", "model_type", "\"gemma\"", "model_type"},
        {"llama", "hidden_act", "\"gelu_pytorch_tanh\"", "hidden_act"},
        {"llama", "rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4.0}", "rope_scaling.rope_type"},
        {"llama", "rope_scaling", "{\"rope_type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling.rope_type"},
        {"llama", "attention_bias", "true", "attention_bias"},
        {"mistral", "mlp_bias", "true", "mlp_bias"},
        {"qwen2", "use_sliding_window", "true", "use_sliding_window"},
        {"qwen3", "attention_bias", "true", "attention_bias"},
        {"qwen3", "layer_types", "[\"full_attention\", \"sliding_attention\"]", "layer_types"},
        {"llama", "final_logit_softcapping", "30.0", "final_logit_softcapping"},
        {"llama", "partial_rotary_factor", "0.5", "partial_rotary_factor"},
    };
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = load_with(NULL, cases[i].arch, cases[i].key, cases[i].value, msg, sizeof msg);
        CHECK_MSG(rc == BR_EUNSUPPORTED && strstr(msg, cases[i].needle), "%s %s=%s: status %d, message '%s' lacks '%s'",
                  cases[i].arch, cases[i].key, cases[i].value, rc, msg, cases[i].needle);
    }
    /* accepted variants */
    CHECK_INT(load_with(NULL, "llama", "rope_scaling", "{\"rope_type\": \"default\"}", msg, sizeof msg), BR_OK);
    CHECK_INT(load_with(NULL, "qwen2", "use_sliding_window", "false", msg, sizeof msg), BR_OK);
    CHECK_INT(load_with(NULL, "llama", "rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0}", msg, sizeof msg),
              BR_EINVAL); /* llama3 without its frequency fields */
    CHECK(strstr(msg, "low_freq_factor") != NULL);
    /* Mistral's window below the context: the context is capped at the window */
    char *text;
    size_t n;
    if (br_read_file("tests/ref/hf_mistral/config.json", &text, &n) == BR_OK) {
        char *cfg = malloc(n + 64), *end = strrchr(text, '}');
        if (end) *end = 0;
        snprintf(cfg, n + 64, "%s, \"sliding_window\": 100}", text);
        br_model_config_t c;
        CHECK_OK(br_config_parse(&c, cfg, strlen(cfg)));
        CHECK_INT(c.max_position_embeddings, 100);
        CHECK_INT(c.sliding_window, 100);
        free(cfg);
        free(text);
    }
}

/* Copies the qwen3 fixture into tmp, then breaks its index in several ways. */
static void test_bad_index(const char *tmp)
{
    char cmd[1024], msg[512];
    snprintf(cmd, sizeof cmd, "cp tests/ref/hf_qwen3/config.json tests/ref/hf_qwen3/model-0000*.safetensors '%s'/", tmp);
    CHECK(system(cmd) == 0);
    static const struct {
        const char *index, *needle;
    } cases[] = {
        {"{\"weight_map\": {\"model.norm.weight\": \"../model-00002-of-00002.safetensors\"}}", "not a file name"},
        {"{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}", "not in shard"},
        {"{\"weight_map\": {\"model.norm.weight\": \"missing.safetensors\"}}", "missing.safetensors"},
        {"{\"metadata\": {}}", "weight_map"},
        /* only shard 2 listed: layer 0 and the embedding are missing */
        {"{\"weight_map\": {\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}", "missing tensor 'model.embed_tokens.weight'"},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK_OK(br_write_file_atomic(path, cases[i].index, strlen(cases[i].index)));
        br_model_t *m = NULL;
        br_status s = br_model_open(&m, tmp);
        snprintf(msg, sizeof msg, "%s", s ? br_errmsg() : "");
        CHECK_MSG(s != BR_OK && strstr(msg, cases[i].needle), "index %zu: status %d, message '%s' lacks '%s'", i,
                  (int)s, msg, cases[i].needle);
        br_model_free(m);
    }
    /* no weights at all */
    snprintf(cmd, sizeof cmd, "rm -f '%s'/model*", tmp);
    CHECK(system(cmd) == 0);
    br_model_t *m = NULL;
    CHECK_STATUS(br_model_open(&m, tmp), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "model.safetensors.index.json") != NULL);
}

/* Runs a shell command, its stdout into *out (malloc'd); returns the exit status. */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t k; (k = fread(buf + n, 1, cap - 1 - n, p)) > 0;) n += k;
    buf[n] = 0;
    int rc = pclose(p);
    *out = buf;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(const char *braid, const char *tmp)
{
    const char *dir = "tests/ref/hf_qwen3";
    ref_t r;
    if (!read_ref(dir, &r)) return;
    char *out = NULL, ids[512] = "";
    size_t n = 0, V = 360;
    for (size_t i = 0; i < r.T; i++) n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%d", i ? " " : "", r.inputs[i]);
    int rc = run(&out, "'%s' inspect %s", braid, dir);
    CHECK_MSG(rc == 0 && strstr(out, "qwen3 (Qwen3ForCausalLM)") && strstr(out, "BF16") && strstr(out, "2 files") &&
                  strstr(out, "braid loads it") && strstr(out, "supported      yes"),
              "inspect: rc %d, output:\n%s", rc, out);
    free(out);
    /* a folder braid cannot run: inspect still describes it, says why, and exits 1 */
    char *cfg;
    size_t cn;
    if (br_read_file("tests/ref/hf_qwen3/config.json", &cfg, &cn) == BR_OK) {
        char sub[300], path[400];
        snprintf(sub, sizeof sub, "%s/gemma", tmp);
        CHECK_OK(br_mkdir_p(sub));
        snprintf(path, sizeof path, "%s/config.json", sub);
        char *gem = strstr(cfg, "\"qwen3\"");
        if (gem) memcpy(gem, "\"gemma\"", 7);
        CHECK_OK(br_write_file_atomic(path, cfg, cn));
        rc = run(&out, "'%s' inspect %s", braid, sub);
        CHECK_MSG(rc == 1 && strstr(out, "architecture   gemma") && strstr(out, "supported      no") &&
                      strstr(out, "model_type 'gemma' is not supported"),
                  "inspect of an unsupported folder: rc %d, output:\n%s", rc, out);
        free(out);
        free(cfg);
    }
    /* greedy ids with the KV cache, as torch's (the prompt row of the reference) */
    rc = run(&out, "'%s' generate --model %s --prompt-ids '%s' -n %zu --temperature 0 --ids", braid, dir, ids,
             r.n_greedy - r.T);
    char want[512] = "";
    n = 0;
    for (size_t i = r.T; i < r.n_greedy; i++) n += (size_t)snprintf(want + n, sizeof want - n, "%s%d", i > r.T ? " " : "", r.greedy[i]);
    CHECK_MSG(rc == 0 && strstr(out, want), "generate --ids: rc %d, got '%s', torch '%s'", rc, out, want);
    free(out);
    /* text in, text out through the folder's tokenizer.json (no --tokenizer) */
    rc = run(&out, "'%s' generate --model %s --prompt 'Hello world' -n 4 --temperature 0", braid, dir);
    CHECK_MSG(rc == 0 && strlen(out) > 1, "generate --prompt with the folder's tokenizer: rc %d, '%s'", rc, out);
    free(out);
    /* score: log p(token[t+1] | ..t) against torch's log-softmax of the same row */
    rc = run(&out, "'%s' score --model %s --tokens '%s'", braid, dir, ids);
    CHECK_INT(rc, 0);
    char *line = out;
    for (size_t t = 0; t + 1 < r.T && line && rc == 0; t++) {
        const float *lg = r.logits + t * V;
        double mx = lg[0], se = 0;
        for (size_t v = 1; v < V; v++) mx = fmax(mx, lg[v]);
        for (size_t v = 0; v < V; v++) se += exp(lg[v] - mx);
        double want_lp = lg[r.inputs[t + 1]] - mx - log(se), got = strtod(line, &line);
        CHECK_NEAR(got, want_lp, 1e-3);
    }
    free(out);
    /* eval over byte-level shards (ids < 256 < vocabulary 360) */
    if (write_license_domain(tmp, "gpl", "GPL-3")) {
        rc = run(&out, "'%s' eval --model %s --data %s/tok --seq 64 --max-tokens 2048 --format json", braid, dir, tmp);
        CHECK_MSG(rc == 0 && strstr(out, "gpl"), "eval: rc %d, '%s'", rc, out);
        free(out);
    } else {
        SKIP("/usr/share/common-licenses/GPL-3 not available: eval on a folder not run");
    }
    free(r.logits);
    free(r.inputs);
    free(r.greedy);
}

/* The true layer shape of Qwen3-0.6B (width 1024, 16 query heads x 128, 8 KV heads,
 * intermediate 3072; 2 layers, vocabulary 360, BF16 in two shards: ~60 MB, so generated here,
 * not committed) against its float64 PyTorch reference: logits and greedy ids with the KV cache.
 * Needs Debian's python3 with torch; a visible skip without. */
static void test_true_width(const char *tmp)
{
    char cmd[1024], dir[300];
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")) {
        SKIP("python3 + torch absent: the real-width (Qwen3-0.6B layer shape) reference was not generated");
        return;
    }
    snprintf(cmd, sizeof cmd, "nice /usr/bin/python3 tests/ref/gen_hf_arch_ref.py --real-width '%s/real' qwen3 >/dev/null", tmp);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    snprintf(dir, sizeof dir, "%s/real/hf_qwen3", tmp);
    test_arch(dir, "qwen3 at Qwen3-0.6B width", tmp);
    br_model_config_t c;
    snprintf(cmd, sizeof cmd, "%s/config.json", dir);
    CHECK_OK(br_config_load(&c, cmd));
    CHECK(c.hidden_size == 1024 && c.num_attention_heads == 16 && c.head_dim == 128 && c.num_key_value_heads == 8 &&
          c.intermediate_size == 3072);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/real'", tmp);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/braid-arch-XXXXXX";
    if (!mkdtemp(tmp)) {
        CHECK(!"mkdtemp");
        return th_exit();
    }
    if (argc > 1) { /* folders given (gen_hf_arch_ref.py --real-width): only those */
        for (int i = 1; i < argc; i++) test_arch(argv[i], argv[i], tmp);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        CHECK(system(cmd) == 0);
        return th_exit();
    }
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/ref/hf_%s", ARCHS[i]);
        test_arch(dir, ARCHS[i], tmp);
    }
    test_true_width(tmp);
    test_refusals();
    test_bad_index(tmp);
    const char *braid = getenv("BRAID");
    if (braid && !access(braid, X_OK)) test_cli(braid, tmp);
    else SKIP("BRAID not set (run through make test): the command-line checks did not run");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return th_exit();
}
