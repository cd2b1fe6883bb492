/* braid quantize --model DIR --type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k --out FILE.gguf|DIR: a
 * dense Llama or Mixtral-style MoE model (braid's or a Hub folder) as a llama.cpp GGUF file
 * (the folder's tokenizer in its metadata), or as a 16-bit safetensors folder
 * that braid runs in place (docs/lm.md, "GGUF and quantize"). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "args.h"
#include "base/dtype.h"
#include "commands.h"
#include "lm/gguf.h"
#include "lm/model.h"

static bool parse_type(const char *s, br_wtype *wt)
{
    static const char *const names[] = {"f32", "bf16", "f16", "q8_0", "q4_0", "q4_k", "q6_k"};
    static const br_wtype types[] = {BR_WT_F32, BR_WT_BF16, BR_WT_F16, BR_WT_Q8_0, BR_WT_Q4_0,
                                     BR_WT_Q4_K, BR_WT_Q6_K};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcasecmp(s, names[i])) return *wt = types[i], true;
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

int cmd_quantize(int argc, char **argv)
{
    const char *model_dir = NULL, *type = NULL, *out = NULL;
    const opt_t opts[] = {
        {"model", OPT_STR, &model_dir, "DIR", "model folder (config.json + safetensors, braid's or the Hub's)", true},
        {"type", OPT_STR, &type, "TYPE", "f32, f16, bf16, q8_0, q4_0, q4_k or q6_k (GGUF's block layouts)", true},
        {"out", OPT_STR, &out, "FILE.gguf|DIR", "a GGUF file (llama architecture, for llama.cpp and braid), "
                                                "or a folder (f16/bf16 safetensors)", true},
    };
    cmd_spec_t spec = {"braid quantize --model DIR --type f16|bf16|q8_0|q4_0|q4_k|q6_k --out FILE.gguf|DIR",
                       "Stores a Llama-style model's matrices (Mixtral experts too) as TYPE (norms and routers stay F32).  FILE.gguf: "
                       "GGUF v3 with llama.cpp's tensor names and hyperparameters, which llama.cpp and "
                       "braid (--model FILE.gguf) run.  DIR: config.json + model.safetensors in F16/BF16, "
                       "run in place by braid; Q8_0/Q4_0/Q4_K/Q6_K need a .gguf file.  Quantising rounds "
                       "as llama.cpp's reference quantisers do (the same bytes); Q4_K/Q6_K need rows of "
                       "whole 256-value super-blocks (hidden and intermediate sizes multiples of 256).",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_wtype wt;
    if (!parse_type(type, &wt)) {
        fprintf(stderr, "braid: error: --type %s: choose f32, f16, bf16, q8_0, q4_0, q4_k or q6_k\n", type);
        return 2;
    }
    bool gguf = ends_with(out, ".gguf");
    if (!gguf && wt != BR_WT_F16 && wt != BR_WT_BF16 && wt != BR_WT_F32) {
        fprintf(stderr, "braid: error: --out %s: %s is written as GGUF only (safetensors has no block "
                "types); give --out FILE.gguf\n", out, br_wtype_name(wt));
        return 2;
    }
    br_model_t *m = NULL;
    br_status s = br_model_load(&m, model_dir, false);
    if (s) return fail_status(s, model_dir);
    br_gguf_vocab_t *vocab = NULL;
    if (gguf) { /* the folder's tokenizer goes into the file, so llama.cpp loads it as it is */
        br_status vs = br_gguf_vocab_load(&vocab, model_dir);
        if (vs == BR_ENOTFOUND)
            fprintf(stderr, "braid: warning: %s has no tokenizer.json: the GGUF carries no tokenizer (braid runs it "
                    "with --prompt-ids; llama.cpp needs one)\n", model_dir);
        else if (vs)
            fprintf(stderr, "braid: warning: the GGUF carries no tokenizer: %s\n", br_errmsg());
    }
    if (gguf) s = br_model_save_gguf_vocab(m, out, wt, vocab);
    else s = br_model_save(m, out, wt == BR_WT_F16 ? BR_DT_F16 : wt == BR_WT_BF16 ? BR_DT_BF16 : BR_DT_F32);
    br_model_free(m);
    br_gguf_vocab_free(vocab);
    if (s) return fail_status(s, out);
    printf("wrote %s (%s matrices%s)\n", out, br_wtype_name(wt), vocab ? ", tokenizer" : "");
    return 0;
}
