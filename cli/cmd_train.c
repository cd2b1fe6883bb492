/* braid train: AdamW training of the dense model (or an MoE) on a weighted mix of token shards,
 * with warmup + cosine decay, gradient accumulation, clipping, periodic validation and
 * checkpoints, and exact resume.  Flags and progress here; the loop is lm/train.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "base/comm.h"
#include "base/dtype.h"
#include "base/progress.h"
#include "commands.h"
#include "base/threads.h"
#include "lm/train.h"

typedef struct {
    const char *config, *init, *data, *mix, *out, *save_dtype, *text, *tokenizer;
    long steps, stop_at, warmup, seed;
    int batch, seq, accum, eval_interval, eval_batches, ckpt_interval, threads;
    float lr, min_lr, wd, beta1, beta2, clip;
    bool resume;
    bool mpi;          /* --mpi: insist on data parallelism (mpirun -np N, N > 1) */
    float bucket_mb;   /* gradient bucket (MiB of floats), 0: the trainer's default */
    const char *train; /* --train all | router */
} train_args_t;

/* Progress on stderr: the bar, and validation lines when the bar is not drawn in place. */
typedef struct {
    const train_args_t *a;
    br_progress_t bar;
    bool started;
    const char *kill_before; /* BRAID_TEST_KILL_BEFORE: tests kill -9 the run at a save point */
    int rank, ranks;         /* in the training group; only rank 0 draws progress */
    int world_rank;
    long kill_step;          /* BRAID_TEST_KILL_RANK/STEP: tests kill -9 one rank after a step */
    int kill_rank;
    double comm_s;           /* seconds in collectives over this run's steps */
    long nsteps;
} train_ui_t;

static void on_start(void *ctx, const br_trainer_start_t *s)
{
    train_ui_t *u = ctx;
    const train_args_t *a = u->a;
    if (u->rank != 0) return;
    if (u->ranks > 1)
        fprintf(stderr, "braid: data-parallel on %d ranks: %d windows per micro-batch each, %d in all\n", u->ranks,
                a->batch, a->batch * u->ranks);
    if (s->start >= s->steps) fprintf(stderr, "braid: %s is already at step %ld of %ld\n", a->out, s->start, s->steps);
    fprintf(stderr, "braid: training %zu parameters, %ld steps x %d x %d x %d tokens%s\n", s->n_params, s->steps,
            a->accum, a->batch, a->seq, s->start ? " (resumed)" : "");
    br_progress_start(&u->bar, "train", (double)(s->end - s->start > 0 ? s->end - s->start : 0), "step");
    u->started = true;
}

static void on_step(void *ctx, long done, const br_trainer_step_t *st)
{
    train_ui_t *u = ctx;
    u->comm_s += st->comm_s;
    u->nsteps++;
    if (u->kill_step > 0 && u->world_rank == u->kill_rank && st->step == u->kill_step) {
        fflush(NULL);
        kill(getpid(), SIGKILL);
    }
    if (u->rank == 0) br_progress_updatef(&u->bar, (double)done, "loss %.4f  %.0f tok/s", st->loss, st->avg_tok_per_s);
}

static void on_eval(void *ctx, long step, double mean, const char *per_domain)
{
    train_ui_t *u = ctx;
    if (u->bar.quiet || !u->bar.tty) fprintf(stderr, "step %ld: val loss %.4f %s\n", step, mean, per_domain);
}

/* Test hook: BRAID_TEST_KILL_BEFORE=FILE kills this process (SIGKILL, like kill -9) just before
 * the first checkpoint writes FILE ("config.json", "optimizer.safetensors", "model.safetensors",
 * or "done": after the checkpoint is complete). */
static void on_save(void *ctx, long step, const char *file)
{
    train_ui_t *u = ctx;
    (void)step;
    if (u->kill_before && !strcmp(u->kill_before, *file ? file : "done")) {
        fflush(NULL);
        kill(getpid(), SIGKILL);
    }
}

/* An error: printed, and with peers the whole job ends (they would wait for this rank). */
static int fail_rank(br_status s, const train_ui_t *u, br_comm_t *comm)
{
    if (u->ranks <= 1) return fail_status(s, NULL);
    fprintf(stderr, "braid: error: rank %d of %d: %s (ending every rank)\n", u->rank, u->ranks, br_errmsg());
    fflush(NULL);
    br_comm_abort(comm, 1);
    return 1;
}

static int run(train_args_t *a, br_comm_t *comm)
{
    br_dtype dtype = BR_DT_F32;
    bool auto_dtype = !strcmp(a->save_dtype, "auto");
    if (!auto_dtype &&
        (br_dtype_parse(a->save_dtype, &dtype) || (dtype != BR_DT_F32 && dtype != BR_DT_BF16 && dtype != BR_DT_F16))) {
        fprintf(stderr, "braid: error: --save-dtype must be auto, F32, BF16 or F16\n");
        return 2;
    }
    if (!a->text == !(a->data && a->mix) || (a->text && (a->data || a->mix))) {
        fprintf(stderr, "braid: error: give the training data as --data DIR --mix SPEC (token shards) or as --text "
                        "FILE|DIR (plain text, tokenised by the model's tokenizer)\n");
        return 2;
    }
    if (!!a->config + !!a->init + a->resume != 1) {
        fprintf(stderr, "braid: error: give exactly one of --config, --init or --resume\n");
        return 2;
    }
    if (a->steps < 1 || a->batch < 1 || a->seq < 1 || a->accum < 1 || a->eval_batches < 1 || a->warmup < 0 ||
        a->eval_interval < 0 || a->ckpt_interval < 0 || !(a->lr > 0)) {
        fprintf(stderr, "braid: error: --steps, --batch, --seq, --accum, --eval-batches and --lr must be "
                        "positive; intervals and --warmup non-negative\n");
        return 2;
    }
    if (a->mpi && !br_comm_have_mpi()) {
        fprintf(stderr, "braid: error: --mpi: this braid was built without MPI; install Open MPI (make deps: "
                        "openmpi-bin, libopenmpi-dev), rebuild (make clean && make) and start it with mpirun -np N\n");
        return 1;
    }
    if (a->mpi && br_comm_size(comm) < 2) {
        fprintf(stderr, "braid: error: --mpi: this is one process; start several with mpirun -np N braid train ...\n");
        return 2;
    }
    if (a->bucket_mb < 0) {
        fprintf(stderr, "braid: error: --bucket-mb must be >= 0\n");
        return 2;
    }
    bool routers_only = !strcmp(a->train, "router");
    if (!routers_only && strcmp(a->train, "all")) {
        fprintf(stderr, "braid: error: --train must be all or router\n");
        return 2;
    }
    if (a->threads > 0) br_set_threads(a->threads);
    const char *kr = getenv("BRAID_TEST_KILL_RANK"), *ks = getenv("BRAID_TEST_KILL_STEP");
    train_ui_t ui = {.a = a, .kill_before = getenv("BRAID_TEST_KILL_BEFORE"), .rank = br_comm_rank(comm),
                     .ranks = br_comm_size(comm), .kill_rank = kr ? atoi(kr) : -1, .kill_step = ks ? atol(ks) : 0};
    br_comm_t *world = NULL;
    if (!br_comm_world(&world)) ui.world_rank = br_comm_rank(world);
    if (ui.rank != 0) ui.kill_before = NULL;
    br_trainer_opts_t o = {
        .config = a->config, .init = a->init, .resume = a->resume, .data = a->data, .mix = a->mix, .out = a->out,
        .steps = a->steps, .stop_at = a->stop_at, .warmup = a->warmup, .seed = (uint64_t)a->seed,
        .batch = (size_t)a->batch, .seq = (size_t)a->seq, .accum = a->accum, .lr = a->lr,
        .min_lr = a->min_lr < 0 ? a->lr / 10 : a->min_lr, .weight_decay = a->wd, .beta1 = a->beta1,
        .beta2 = a->beta2, .eps = 1e-8f, .clip = a->clip, .eval_interval = a->eval_interval,
        .eval_batches = a->eval_batches, .ckpt_interval = a->ckpt_interval, .save_dtype = auto_dtype ? -1 : (int)dtype,
        .text = a->text, .tokenizer = a->tokenizer,
        .hooks = {&ui, on_start, on_step, on_eval, on_save}, .comm = comm,
        .bucket = (size_t)((double)a->bucket_mb * (1 << 20) / sizeof(float)), .routers_only = routers_only};
    long final_step = 0;
    br_status s = br_trainer_run(&o, &final_step);
    if (ui.started) br_progress_finish(&ui.bar);
    if (s) return fail_rank(s, &ui, comm);
    if (ui.rank != 0) return 0;
    if (ui.ranks > 1 && ui.nsteps)
        fprintf(stderr, "braid: %d ranks: %.1f ms per step in communication (rank 0)\n", ui.ranks,
                1e3 * ui.comm_s / (double)ui.nsteps);
    fprintf(stderr, "braid: saved %s (step %ld)\n", a->out, final_step);
    print_plot_hint(a->out);
    return 0;
}

int cmd_train_in(int argc, char **argv, br_comm_t *comm)
{
    train_args_t a = {NULL, NULL, NULL, NULL, NULL, "auto", NULL, NULL, 1000, 0, 100, 1, 16, 256, 1, 200, 10, 500, 0,
                      1e-3f, -1.0f, 0.1f, 0.9f, 0.95f, 1.0f, false, false, 0, "all"};
    const opt_t opts[] = {
        {"config", OPT_STR, &a.config, "FILE", "config.json of a new model (random init from --seed)", false},
        {"init", OPT_STR, &a.init, "DIR", "start from the weights of an existing checkpoint or Hugging Face model folder (trained in F32; new optimizer)", false},
        {"resume", OPT_BOOL, &a.resume, NULL, "continue the run in --out exactly where its last checkpoint left it", false},
        {"data", OPT_STR, &a.data, "DIR", "token shards: DIR/<domain>/{train,val}.bin (braid data prepare)", false},
        {"mix", OPT_STR, &a.mix, "SPEC", "domain weights, e.g. general=1,code=1", false},
        {"text", OPT_STR, &a.text, "PATH", "plain UTF-8 text (a file or a folder of *.txt) instead of --data/--mix: tokenised by the model's tokenizer into OUT/data, the last tenth validates", false},
        {"tokenizer", OPT_STR, &a.tokenizer, "PATH", "tokenizer for --text (tokenizer.json or a folder with it; default: the --init folder's)", false},
        {"out", OPT_STR, &a.out, "DIR", "run directory: checkpoint, optimizer state, train_log.jsonl", true},
        {"steps", OPT_LONG, &a.steps, "N", "optimizer steps (default 1000)", false},
        {"batch", OPT_INT, &a.batch, "B", "sequences per micro-batch (default 16)", false},
        {"seq", OPT_INT, &a.seq, "T", "tokens per sequence (default 256)", false},
        {"accum", OPT_INT, &a.accum, "K", "micro-batches per step (gradient accumulation, default 1)", false},
        {"lr", OPT_FLOAT, &a.lr, "LR", "peak learning rate (default 1e-3)", false},
        {"min-lr", OPT_FLOAT, &a.min_lr, "LR", "final learning rate of the cosine decay (default lr/10)", false},
        {"warmup", OPT_LONG, &a.warmup, "N", "linear warmup steps (default 100)", false},
        {"weight-decay", OPT_FLOAT, &a.wd, "W", "AdamW decoupled weight decay on matrices (default 0.1)", false},
        {"beta1", OPT_FLOAT, &a.beta1, "B1", "AdamW beta1 (default 0.9)", false},
        {"beta2", OPT_FLOAT, &a.beta2, "B2", "AdamW beta2 (default 0.95)", false},
        {"clip", OPT_FLOAT, &a.clip, "C", "global gradient-norm clip, 0 = off (default 1.0)", false},
        {"seed", OPT_LONG, &a.seed, "S", "seed of the init and the data order (default 1)", false},
        {"eval-interval", OPT_INT, &a.eval_interval, "N", "validate every N steps, 0 = only at the end (default 200)", false},
        {"eval-batches", OPT_INT, &a.eval_batches, "N", "validation batches per domain (default 10)", false},
        {"ckpt-interval", OPT_INT, &a.ckpt_interval, "N", "checkpoint every N steps, 0 = only at the end (default 500)", false},
        {"stop-at", OPT_LONG, &a.stop_at, "N", "stop (with a checkpoint) after step N, as if interrupted; the schedule still targets --steps", false},
        {"save-dtype", OPT_STR, &a.save_dtype, "DT", "dtype of model.safetensors: auto (default: the --init folder's, so a BF16 Hub folder stays BF16; else F32), F32, BF16 or F16; resume state is always F32", false},
        {"threads", OPT_INT, &a.threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"mpi", OPT_BOOL, &a.mpi, NULL, "require data parallelism: fail unless started as several ranks by mpirun -np N (without this flag mpirun also works)", false},
        {"bucket-mb", OPT_FLOAT, &a.bucket_mb, "MB", "data-parallel gradient bucket in MiB (default 16)", false},
        {"train", OPT_STR, &a.train, "WHAT", "all (default) or router: only an MoE's routers (and Nexus projectors) learn, every other weight stays frozen; no optimizer.safetensors, no --resume", false},
    };
    cmd_spec_t spec = {"braid train (--config CFG.json | --init DIR | --resume) (--data DIR --mix SPEC | --text PATH) --out DIR [options]",
                       "Trains the dense Llama-style model with AdamW (warmup + cosine decay, clipping, "
                       "accumulation) on random windows of a weighted domain mix. Writes OUT/config.json + "
                       "OUT/model.safetensors (Hugging Face names), OUT/optimizer.safetensors (weights, AdamW "
                       "state, data position: --resume reproduces the uninterrupted run exactly) and "
                       "OUT/train_log.jsonl (one line per step, plus validation lines). From a Hugging Face model folder "
                       "(--init) OUT is a model folder again: its tokenizer files are copied. Under mpirun -np N "
                       "the ranks train data-parallel: --batch per rank, rank 0 writes OUT "
                       "(docs/distributed.md).",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    return run(&a, comm);
}

int cmd_train(int argc, char **argv)
{
    br_comm_t *world;
    br_status s = br_comm_world(&world);
    if (s) return fail_status(s, NULL);
    return cmd_train_in(argc, argv, world);
}
