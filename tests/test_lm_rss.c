/* Loading a 16-bit or quantised model makes no F32 copy: `braid generate` on such a model peaks
 * at about the weights' size on disk above what the same command needs for a tiny model
 * (binary, libraries, thread stacks; the KV pool and activations here are < 2 MB).
 *
 * A 20M-parameter model (F32: 81 MB) is written as a braid BF16 folder (run in place from the
 * mapping) and as F16, Q8_0 and Q4_0 GGUF files (viewed in the mapping; only Q and K, whose rows
 * GGUF permutes, are copied, and their mapped pages dropped); the same model with an FFN of 1536
 * (whole 256-value super-blocks) as Q4_K and Q6_K GGUF files, viewed the same way, and as
 * llama.cpp's Q4_K_M (its own quantizer: Q4_K and Q6_K matrices in one file, each viewed in
 * its type), and as an F32 GGUF (viewed too); a Mixtral of that width with 4 experts as a Q4_K
 * GGUF (the expert stacks viewed).  Each command's peak resident set
 * comes from GNU time's %M (braid's own ru_maxrss; see peak_kb).  Allowed: the file's bytes x 1.15 + 24 MB
 * above the baseline; an F32 copy adds >= 81 MB, a second copy of the file its size, so either
 * fails (the loader before this test made both: 100+ MB over for every GGUF type).
 * Skipped under AddressSanitizer (its shadow memory scales the resident set). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lm/gguf.h"
#include "lm/model.h"
#include "shell_fixture.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Peak RSS (KB) of `braid generate --model model ...`, or -1 when it failed.  A child's
 * ru_maxrss starts at the resident size of the process it was forked from (exec keeps the
 * larger of the old and new images' peaks), here this test with its models; GNU time, a small
 * process that forks braid itself, reports braid's own peak, so it is used where installed
 * (tmp: a folder for its report). */
static long peak_kb(const char *braid, const char *model, const char *tmp)
{
    bool gnu_time = access("/usr/bin/time", X_OK) == 0;
    char report[300];
    snprintf(report, sizeof report, "%s/maxrss.txt", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 1);
        if (gnu_time)
            execl("/usr/bin/time", "time", "-f", "%M", "-o", report, braid, "generate", "--model", model,
                  "--prompt-ids", "1 2 3 4 5 6 7 8", "-n", "4", "--temperature", "0", "--ids", (char *)NULL);
        else
            execl(braid, braid, "generate", "--model", model, "--prompt-ids", "1 2 3 4 5 6 7 8", "-n", "4",
                  "--temperature", "0", "--ids", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    if (!gnu_time) return ru.ru_maxrss;
    FILE *f = fopen(report, "r");
    long kb = -1;
    if (!f || fscanf(f, "%ld", &kb) != 1) kb = -1;
    if (f) fclose(f);
    return kb;
}

static long file_kb(const char *path)
{
    struct stat sb;
    return stat(path, &sb) ? -1 : (long)(sb.st_size / 1024);
}

static void check(const char *braid, const char *what, const char *model, const char *weights, long base,
                  const char *tmp)
{
    long peak = peak_kb(braid, model, tmp), size = file_kb(weights);
    CHECK_MSG(peak > 0 && size > 0, "%s: braid generate failed or %s missing", what, weights);
    if (peak <= 0 || size <= 0) return;
    long over = peak - base, limit = size * 115 / 100 + 24 * 1024;
    printf("%-10s weights %6ld KB on disk, peak RSS %7ld KB = baseline + %6ld KB (allowed %ld)\n", what, size, peak,
           over, limit);
    CHECK_MSG(over <= limit, "%s: peak RSS %ld KB above the baseline for %ld KB of weights (> %ld): a copy of the "
              "weights was made at load", what, over, size, limit);
}

/* A Mixtral (4 experts, 2 per token) of the same widths as Q4_K GGUF: the routed experts stay
 * Q4_K stacks in the mapping (the F32 copy would add 151 MB). */
static void write_moe(const char *path)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 8192, c.hidden_size = 512, c.intermediate_size = 1536, c.num_hidden_layers = 4;
    c.num_attention_heads = 8, c.num_key_value_heads = 4, c.max_position_embeddings = 256;
    c.num_local_experts = 4, c.num_experts_per_tok = 2, c.norm_topk_prob = true;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 5);
    CHECK_OK(br_model_save_gguf(m, path, BR_WT_Q4_K));
    br_model_free(m);
}

/* out = llama.cpp's Q4_K_M of the F32 GGUF in (tests/ref/llama_quantize next to this binary,
 * node-llama-cpp's libllama), or false after a visible skip. */
static bool llama_q4_k_m(const char *self, const char *in, const char *out)
{
    const char *lib = ".npm-local/llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/"
                      "libllama.v0.4.0.so";
    const char *slash = strrchr(self, '/');
    char tool[600];
    snprintf(tool, sizeof tool, "%.*s/ref/llama_quantize", slash ? (int)(slash - self) : 1, slash ? self : ".");
    if (access(lib, R_OK) || access(tool, X_OK)) {
        SKIP("llama.cpp's libllama or %s missing: the Q4_K_M (mixed-type) load was not measured", tool);
        return false;
    }
    int rc = sh("'%s' '%s' '%s' '%s' 15 >/dev/null 2>&1", tool, lib, in, out);
    CHECK_MSG(rc == 0, "llama_quantize Q4_K_M failed (%d)", rc);
    return rc == 0;
}

int main(int argc, char **argv)
{
    (void)argc;
#ifdef UNDER_ASAN
    SKIP("AddressSanitizer build: resident sizes are not comparable");
    return th_exit();
#endif
    const char *braid = getenv("BRAID");
    if (!braid) {
        SKIP("BRAID not set (run through make test): the load-memory checks did not run");
        return th_exit();
    }
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 8192, c.hidden_size = 512, c.intermediate_size = 1408, c.num_hidden_layers = 4;
    c.num_attention_heads = 8, c.num_key_value_heads = 4, c.max_position_embeddings = 256;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return th_exit();
    br_model_init_random(m, 3);
    char tmp[] = "/tmp/braid_rss_XXXXXX", path[6][256] = {{0}}, weights[300];
    CHECK(mkdtemp(tmp) != NULL);
    static const br_wtype types[] = {BR_WT_F16, BR_WT_Q8_0, BR_WT_Q4_0, BR_WT_Q4_K, BR_WT_Q6_K};
    enum { N_TYPES = sizeof types / sizeof *types, N_FLAT = 3 }; /* types[N_FLAT..]: k-quants */
    for (int i = 0; i < N_TYPES; i++) {
        if (i == N_FLAT) { /* k-quants need rows of whole 256-value super-blocks: FFN 1536 */
            snprintf(path[N_TYPES], sizeof path[N_TYPES], "%s/bf16", tmp);
            CHECK_OK(br_model_save(m, path[N_TYPES], BR_DT_BF16));
            br_model_free(m);
            m = NULL;
            c.intermediate_size = 1536;
            CHECK_OK(br_model_create(&m, &c, false));
            if (!m) break;
            br_model_init_random(m, 4);
        }
        snprintf(path[i], sizeof path[i], "%s/m_%s.gguf", tmp, br_wtype_name(types[i]));
        CHECK_OK(br_model_save_gguf(m, path[i], types[i]));
    }
    /* mixed types in place: llama.cpp's Q4_K_M of the FFN-1536 model (Q4_K with Q6_K for the
     * output and some attn_v/ffn_down), and a Mixtral of Q4_K experts */
    char f32[300], mixed[300], moe[300];
    snprintf(f32, sizeof f32, "%s/m_F32.gguf", tmp);
    snprintf(mixed, sizeof mixed, "%s/m_Q4_K_M.gguf", tmp);
    snprintf(moe, sizeof moe, "%s/moe_Q4_K.gguf", tmp);
    bool m_f32 = m && br_model_save_gguf(m, f32, BR_WT_F32) == BR_OK;
    CHECK(m_f32);
    bool have_mixed = m_f32 && llama_q4_k_m(argv[0], f32, mixed);
    write_moe(moe);
    br_model_free(m);

    long base = peak_kb(braid, "tests/ref/llama_tiny", tmp);
    CHECK_MSG(base > 0, "baseline run on tests/ref/llama_tiny failed");
    printf("baseline (tests/ref/llama_tiny): peak RSS %ld KB\n", base);
    if (base > 0) {
        snprintf(weights, sizeof weights, "%s/model.safetensors", path[N_TYPES]);
        check(braid, "BF16 dir", path[N_TYPES], weights, base, tmp);
        for (int i = 0; i < N_TYPES; i++) check(braid, br_wtype_name(types[i]), path[i], path[i], base, tmp);
        if (m_f32) check(braid, "F32", f32, f32, base, tmp);
        if (have_mixed) check(braid, "Q4_K_M", mixed, mixed, base, tmp);
        check(braid, "MoE Q4_K", moe, moe, base, tmp);
    }
    sh("rm -rf %s", tmp);
    return th_exit();
}
