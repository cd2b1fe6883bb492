/* braid lora-train: trains a LoRA adapter on a frozen base model and writes a PEFT folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/buf.h"
#include "base/comm.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "commands.h"
#include "lm/model.h"
#include "lm/peft.h"
#include "lm/train.h"
#include "nn/lora.h"
#include "serve/adapters.h"

/* The progress bar (loss as an exponential moving average), the training time, and the log
 * (OUT/train_log.jsonl, the trainer's format: braid plot OUT draws it). */
typedef struct {
    br_progress_t bar;
    bool started;
    bool quiet;              /* not rank 0: no progress bar */
    double ema, secs;
    FILE *log;               /* rank 0 only */
} lora_ui_t;

static void on_start(void *ctx, const br_trainer_start_t *s)
{
    lora_ui_t *u = ctx;
    if (u->quiet) return;
    br_progress_start(&u->bar, "lora-train", (double)s->steps, "step");
    u->started = true;
}

static void on_step(void *ctx, long done, const br_trainer_step_t *st)
{
    lora_ui_t *u = ctx;
    u->ema = done > 1 ? 0.9 * u->ema + 0.1 * st->loss : st->loss;
    u->secs = st->elapsed;
    if (u->log) br_trainer_log_step(u->log, st);
    if (!u->started) return;
    br_progress_updatef(&u->bar, (double)done, "loss %.3f |g| %.2f lr %.1e", u->ema, (double)st->grad_norm,
                        (double)st->lr);
}

/* On an MoE base the routers stay frozen (no base gradient at all) and a token routed to
 * expert e trains adapter module e only (br_moe_ffn_backward_lora); BAM's attention experts
 * train through br_moa_backward_lora.  Says which expert modules the adapter has. */
static void moe_report(const br_lora_adapter_t *a)
{
    if (!a->xtargets) return;
    fprintf(stderr, "lora-train: MoE base, routers frozen; expert modules on");
    for (int p = 0; p < BR_PROJ_COUNT; p++) {
        if (!(a->xtargets & (1u << p))) continue;
        const char *x = br_lora_expert_name((br_proj)p);
        fprintf(stderr, " %s (%d experts)", x ? x : br_lora_proj_name((br_proj)p), br_lora_site_experts(&a->shapes, (br_proj)p));
    }
    fputc('\n', stderr);
}

int cmd_lora_train(int argc, char **argv)
{
    const char *base = NULL, *data = NULL, *mix_spec = NULL, *out = NULL, *targets_s = "q_proj,v_proj";
    const char *text = NULL, *tokenizer = NULL;
    int rank = 8, batch = 8, seq = 0, steps = 200, warmup = 10, val_batches = 8;
    float alpha = 16, lr = 1e-3f, wd = 0, clip = 1;
    long seed = 1;
    bool rslora = false;
    const opt_t opts[] = {
        {"base", OPT_STR, &base, "DIR", "frozen base model: a braid checkpoint, a Hugging Face model folder (BF16/F16 weights stay 16-bit, in place) or a quantised .gguf file: Q8_0, Q4_0, Q4_K, Q6_K or a mix such as Q4_K_M (QLoRA)", true},
        {"data", OPT_STR, &data, "DIR", "token shards folder (DIR/<domain>/{train,val}.bin from braid data prepare)", false},
        {"mix", OPT_STR, &mix_spec, "SPEC", "domains and weights, e.g. code=1 or code=0.9,general=0.1", false},
        {"text", OPT_STR, &text, "PATH", "plain UTF-8 text (a file or a folder of *.txt) instead of --data/--mix, tokenised by the base's tokenizer; the last tenth validates", false},
        {"tokenizer", OPT_STR, &tokenizer, "PATH", "tokenizer for --text (default: the --base folder's tokenizer.json)", false},
        {"out", OPT_STR, &out, "DIR", "adapter folder to write (PEFT: adapter_config.json + adapter_model.safetensors)", true},
        {"rank", OPT_INT, &rank, "R", "LoRA rank (default 8)", false},
        {"alpha", OPT_FLOAT, &alpha, "A", "LoRA alpha; scale = alpha / rank (default 16)", false},
        {"targets", OPT_STR, &targets_s, "LIST", "projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; on an MoE base w1,w3,w2 (every routed expert's gate, up, down); or all (default q_proj,v_proj)", false},
        {"rslora", OPT_BOOL, &rslora, NULL, "rank-stabilised scale alpha / sqrt(rank)", false},
        {"steps", OPT_INT, &steps, "N", "optimizer steps (default 200)", false},
        {"batch", OPT_INT, &batch, "B", "sequences per step (default 8)", false},
        {"seq", OPT_INT, &seq, "T", "tokens per sequence (default min(128, context))", false},
        {"lr", OPT_FLOAT, &lr, "LR", "peak learning rate, cosine decay to lr/10 (default 1e-3)", false},
        {"warmup", OPT_INT, &warmup, "N", "warmup steps (default 10)", false},
        {"weight-decay", OPT_FLOAT, &wd, "W", "AdamW weight decay (default 0)", false},
        {"clip", OPT_FLOAT, &clip, "C", "gradient-norm clip (default 1; 0: none)", false},
        {"val-batches", OPT_INT, &val_batches, "N", "validation batches before/after (default 8; 0: skip)", false},
        {"seed", OPT_LONG, &seed, "N", "seed for the adapter init and the data order (default 1)", false},
    };
    cmd_spec_t spec = {"braid lora-train --base DIR (--data DIR --mix SPEC | --text PATH) --out DIR [options]",
                       "Trains a LoRA adapter on the base model, whose weights stay frozen, and writes it in Hugging "
                       "Face PEFT layout so that `braid serve --adapters` (or PEFT) can load it. Prints the validation "
                       "loss of the base model and of base + adapter on the same batches.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (rank < 1 || batch < 1 || steps < 1 || warmup < 0 || seq < 0 || val_batches < 0 || !(alpha > 0) || !(lr > 0)) {
        fprintf(stderr, "braid: error: --rank, --batch, --steps, --alpha and --lr must be positive\n");
        return 2;
    }
    if (!text == !(data && mix_spec) || (text && (data || mix_spec))) {
        fprintf(stderr, "braid: error: give the training data as --data DIR --mix SPEC (token shards) or as --text "
                        "FILE|DIR (plain text, tokenised by the base model's tokenizer)\n");
        return 2;
    }
    unsigned targets = 0;
    br_status st = br_lora_parse_targets(targets_s, &targets);
    if (st != BR_OK) {
        fprintf(stderr, "braid: error: --targets: %s\n", br_errmsg());
        return 2;
    }
    /* under mpirun the ranks train the adapter data-parallel (docs/distributed.md); rank 0 writes */
    br_comm_t *world = NULL;
    if ((st = br_comm_world(&world)) != BR_OK) return fail_status(st, "lora-train");
    bool writer = br_comm_rank(world) == 0;
    br_model_t *m = NULL;
    br_lora_adapter_t *a = NULL;
    st = br_model_open(&m, base); /* a 16-bit or quantised base stays in its type: only the adapter is F32 */
    if (st != BR_OK) return fail_status(st, "lora-train");
    size_t T = seq ? (size_t)seq : (m->cfg.max_position_embeddings < 128 ? (size_t)m->cfg.max_position_embeddings : 128);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    st = br_lora_create(&a, &shapes, rank, alpha, targets, rslora, (uint64_t)seed);
    if (st == BR_OK && writer) moe_report(a);
    if (st == BR_OK) st = br_lora_alloc_grads(a);
    if (st != BR_OK) goto done;
    snprintf(a->base_model, sizeof a->base_model, "%s", base);
    if (writer)
        fprintf(stderr, "lora-train: rank %d, alpha %g, targets %s: %zu adapter parameters (F32) on a %zu-parameter %s base\n",
                rank, (double)alpha, targets_s, a->n_params, br_config_num_params(&m->cfg), br_wtype_name(m->wt));
    lora_ui_t ui = {.quiet = !writer};
    br_atomic_file_t log;
    br_buf_t log_path = BR_BUF_INIT;
    if (writer) {
        st = br_mkdir_p(out);
        if (st == BR_OK) st = br_buf_path(&log_path, out, "train_log.jsonl");
        if (st == BR_OK) st = br_atomic_open(&log, br_buf_str(&log_path));
        br_buf_free(&log_path);
        if (st != BR_OK) goto done;
        ui.log = log.f;
    }
    br_trainer_opts_t o;
    br_trainer_defaults(&o);
    o.data = data, o.mix = mix_spec, o.text = text, o.tokenizer = tokenizer ? tokenizer : base, o.out = out;
    o.steps = steps, o.warmup = warmup, o.seed = (uint64_t)seed;
    o.batch = (size_t)batch, o.seq = T, o.lr = lr, o.min_lr = lr / 10, o.weight_decay = wd;
    o.beta1 = 0.9f, o.beta2 = 0.999f, o.clip = clip;
    o.hooks = (br_trainer_hooks_t){.ctx = &ui, .on_start = on_start, .on_step = on_step};
    o.comm = world;
    double val[3] = {0, 0, 0};
    st = br_trainer_lora(m, a, &o, val_batches, val);
    if (ui.started) br_progress_finish(&ui.bar);
    if (!writer) goto done; /* the other ranks hold the same adapter: rank 0 writes it */
    if (st == BR_OK && val_batches) /* validation over the mix before and after training */
        fprintf(log.f, "{\"step\": 0, \"val_loss\": %.6f, \"val\": {}}\n{\"step\": %d, \"val_loss\": %.6f, \"val\": {}}\n",
                val[1], steps, val[2]);
    if (st != BR_OK) br_atomic_abort(&log);
    else st = br_atomic_commit(&log);
    if (st != BR_OK) goto done;
    if (val_batches)
        printf("validation loss on %s: base %.4f, base + adapter %.4f (before training %.4f)\n", text ? text : mix_spec, val[0],
               val[2], val[1]);
    st = br_lora_save(a, out);
    if (st == BR_OK)
        printf("wrote %s (PEFT LoRA, %zu parameters) after %d steps in %.1f s (%.0f tokens/s)\n", out, a->n_params, steps,
               ui.secs, (double)steps * (double)((size_t)batch * T) / ui.secs);
    if (st == BR_OK) print_plot_hint(out);
done:
    br_lora_free(a);
    br_model_free(m);
    if (st == BR_OK) return 0;
    int code = fail_status(st, "lora-train");
    if (world && br_comm_size(world) > 1) br_comm_abort(world, code); /* the other ranks would wait forever */
    return code;
}
