/* Loading a 16-bit or quantised model makes no F32 copy: `braid generate` on such a model peaks
 * at about the weights' size on disk above what the same command needs for a tiny model
 * (binary, libraries, thread stacks; the KV pool and activations here are < 2 MB).
 *
 * A 20M-parameter model (F32: 81 MB) is written as a braid BF16 folder (run in place from the
 * mapping) and as F16, Q8_0 and Q4_0 GGUF files (viewed in the mapping; only Q and K, whose rows
 * GGUF permutes, are copied, and their mapped pages dropped); the same model with an FFN of 1536
 * (whole 256-value super-blocks) as Q4_K and Q6_K GGUF files, viewed the same way.  Each command's peak resident set
 * comes from wait4's ru_maxrss (VmHWM of the child).  Allowed: the file's bytes x 1.15 + 24 MB
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

/* Peak RSS (KB) of `braid generate --model model ...`, or -1 when it failed. */
static long peak_kb(const char *braid, const char *model)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 1);
        execl(braid, braid, "generate", "--model", model, "--prompt-ids", "1 2 3 4 5 6 7 8", "-n", "4",
              "--temperature", "0", "--ids", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    return ru.ru_maxrss;
}

static long file_kb(const char *path)
{
    struct stat sb;
    return stat(path, &sb) ? -1 : (long)(sb.st_size / 1024);
}

static void check(const char *braid, const char *what, const char *model, const char *weights, long base)
{
    long peak = peak_kb(braid, model), size = file_kb(weights);
    CHECK_MSG(peak > 0 && size > 0, "%s: braid generate failed or %s missing", what, weights);
    if (peak <= 0 || size <= 0) return;
    long over = peak - base, limit = size * 115 / 100 + 24 * 1024;
    printf("%-10s weights %6ld KB on disk, peak RSS %7ld KB = baseline + %6ld KB (allowed %ld)\n", what, size, peak,
           over, limit);
    CHECK_MSG(over <= limit, "%s: peak RSS %ld KB above the baseline for %ld KB of weights (> %ld): a copy of the "
              "weights was made at load", what, over, size, limit);
}

int main(void)
{
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
    br_model_free(m);

    long base = peak_kb(braid, "tests/ref/llama_tiny");
    CHECK_MSG(base > 0, "baseline run on tests/ref/llama_tiny failed");
    printf("baseline (tests/ref/llama_tiny): peak RSS %ld KB\n", base);
    if (base > 0) {
        snprintf(weights, sizeof weights, "%s/model.safetensors", path[N_TYPES]);
        check(braid, "BF16 dir", path[N_TYPES], weights, base);
        for (int i = 0; i < N_TYPES; i++) check(braid, br_wtype_name(types[i]), path[i], path[i], base);
    }
    sh("rm -rf %s", tmp);
    return th_exit();
}
