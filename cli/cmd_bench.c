/* braid bench: benchmarks.  Each area adds its benchmark as one entry in the table. */
#include "args.h"
#include "commands.h"
#include "bench_cmds.h"

static const subcmd_t benches[] = {
    {"gemm", bench_gemm, "GEMM GFLOP/s: square sizes and a training step's shapes, vs peak"},
    {"train", bench_train, "dense LM: training/forward/decode tokens/s, GFLOP/s, peak RSS (presets a, b)"},
    {"moe", bench_moe, "MoE FFN (4 experts top-1) vs dense FFN; BAM vs BTX block cost per token"},
    {"nn", bench_nn, "every nn/ layer forward+backward: us/call, GB/s or GFLOP/s (training shapes)"},
    {"rl-env", bench_rl_env, "Dec-POMDP environments: agent-steps/s on one core (MARCO tasks)"},
    {"tokenizer", bench_tokenizer, "BPE encoding MB/s with GPT-2's vocabulary vs npm tiktoken; parallel scaling"},
    {"rfos", bench_rfos, "R-FOS meta-steps/s (h = 2) vs a plain loop with the same semantics (goal >= 50M/s)"},
    {"parden", bench_parden, "PARDEN scoring pairs/s on the stored history pairs vs NLTK (goal >= 100x)"},
    {"infer", bench_infer, "inference on GGUF vs llama.cpp: prefill/decode tok/s, bytes/token vs copy bandwidth, RSS"},
    {"serve", bench_serve, "S-LoRA workload: batched LoRA vs one-adapter-per-batch vs merge, 1..1000 adapters"},
};

int cmd_bench(int argc, char **argv)
{
    return run_subcommand("bench", benches, sizeof benches / sizeof *benches, argc, argv);
}
