/* braid bench train: tokens/s of a full training step (forward, backward, AdamW) and of the
 * forward alone (prefill), achieved GFLOP/s against the measured GEMM rate, decode tokens/s
 * at batch 1 and 16 over the paged KV cache, and peak RSS.  bench/lm_train.sh runs the same
 * configs in PyTorch in the same run and prints the ratios.  Under mpirun -np N (or --mpi)
 * the training step is data-parallel (--batch per rank) and the report is the step's tokens/s
 * over all ranks and its time in communication (bench/dist_train.sh, docs/distributed.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "args.h"
#include "base/alloc.h"
#include "base/comm.h"
#include "base/rng.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "base/threads.h"
#include "kernels/gemm.h"
#include "lm/eval.h"
#include "lm/model.h"
#include "lm/train.h"

static void preset_config(br_model_config_t *c, char p, size_t *B, size_t *T)
{
    br_config_defaults(c);
    c->vocab_size = 8192;
    c->max_position_embeddings = 1024;
    c->rms_norm_eps = 1e-5f;
    *T = 256;
    if (p == 'a') {
        c->hidden_size = 256, c->num_hidden_layers = 4, c->num_attention_heads = 4;
        c->num_key_value_heads = 4, c->intermediate_size = 1024;
        *B = 16;
    } else {
        c->hidden_size = 512, c->num_hidden_layers = 8, c->num_attention_heads = 8;
        c->num_key_value_heads = 8, c->intermediate_size = 1408;
        *B = 8;
    }
}

/* Matmul FLOPs per token of the forward: 2 x (weights used in projections and the head)
 * + attention (QK^T and AV over on average T/2 keys, causal). */
static double fwd_flops_per_token(const br_model_config_t *c, size_t T)
{
    double C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, L = c->num_hidden_layers;
    double hd = c->head_dim, Dq = c->num_attention_heads * hd, Dkv = c->num_key_value_heads * hd;
    double proj = L * (2 * C * Dq + 2 * C * Dkv + 3 * C * F) + V * C;
    double attn = L * 2.0 * 2.0 * Dq * ((double)T + 1) / 2;
    return 2 * proj + attn;
}

/* GEMM rate on this model's biggest shape (x W^T of the FFN with B*T rows). */
static double gemm_rate(size_t M, size_t N, size_t K)
{
    float *A = br_alloc(M * K * 4), *Bm = br_alloc(N * K * 4), *Cm = br_alloc(M * N * 4);
    if (!A || !Bm || !Cm) return 0;
    br_rng_t r;
    br_rng_seed(&r, 1);
    br_rng_fill_uniform(&r, A, M * K, -1, 1);
    br_rng_fill_uniform(&r, Bm, N * K, -1, 1);
    br_sgemm(false, true, M, N, K, 1, A, K, Bm, K, 0, Cm, N);
    double best = 1e30;
    for (int i = 0; i < 5; i++) {
        double t = br_now();
        br_sgemm(false, true, M, N, K, 1, A, K, Bm, K, 0, Cm, N);
        t = br_now() - t;
        if (t < best) best = t;
    }
    br_free(A);
    br_free(Bm);
    br_free(Cm);
    return 2.0 * M * N * K / best / 1e9;
}

/* The data-parallel report: median step time and time in collectives over `steps` steps, the
 * slowest rank's (every rank waits for it in the collectives). */
static int report_dp(br_comm_t *comm, const br_model_config_t *c, size_t B, size_t T, int steps, const double *tt,
                     const double *tc, const double *tw, bool json);

/* The ranks (one process without mpirun); with --mpi (require) at least two, else an exit code. */
static int open_world(bool require, br_comm_t **comm)
{
    br_status s = br_comm_world(comm);
    if (s) return fail_status(s, "bench train");
    if (!require || br_comm_size(*comm) > 1) return 0;
    fprintf(stderr, "braid: error: bench train --mpi: %s\n",
            br_comm_have_mpi() ? "start several ranks: mpirun -np N braid bench train --mpi"
                               : "this braid was built without MPI (make deps, then rebuild)");
    return 2;
}

/* Seconds of each of `steps` training steps on the windows (B, T+1) after one warm-up step
 * (buffers grow), and of their time in collectives and waiting (data-parallel over comm). */
static br_status time_train_steps(br_model_t *m, br_comm_t *comm, const int32_t *win, size_t B, size_t T, int steps,
                                  double *tt, double *tc, double *tw)
{
    br_trainer_opts_t o;
    br_trainer_defaults(&o);
    o.batch = B, o.seq = T, o.steps = 1000000, o.warmup = 0, o.lr = 1e-4f, o.comm = comm;
    br_trainer_t *tr = NULL;
    br_status s = br_trainer_create(&tr, m, NULL, &o);
    for (int i = -1; i < steps && !s; i++) {
        double t0 = br_now();
        br_trainer_step_t st;
        s = br_trainer_step(tr, win, &st);
        if (i >= 0) tt[i] = br_now() - t0, tc[i] = st.comm_s, tw[i] = st.wait_s;
    }
    br_trainer_free(tr);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Decode tokens/s with `nb` sequences: prefill `ctx` tokens each, then `steps` decode steps
 * (one token per sequence per call, all sequences batched). */
static br_status decode_rate(br_model_t *m, size_t nb, size_t ctx, int steps, double *tok_s)
{
    const size_t P = 64;
    size_t per_seq = (ctx + (size_t)steps + P - 1) / P;
    br_kv_pool_t *kv;
    size_t page_bytes = 2 * (size_t)m->cfg.num_hidden_layers * (size_t)m->cfg.num_key_value_heads * P *
                        (size_t)m->cfg.head_dim * sizeof(float);
    BR_TRY(br_kv_pool_create(&kv, &m->cfg, P, nb * per_seq * page_bytes));
    int32_t *pages = malloc(nb * per_seq * sizeof *pages), *toks = malloc(nb * ctx * sizeof *toks);
    float *logits = malloc(nb * (size_t)m->cfg.vocab_size * sizeof *logits);
    br_seq_t *seqs = malloc(nb * sizeof *seqs);
    int32_t *next = malloc(nb * sizeof *next);
    br_status s = pages && toks && logits && seqs && next ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    br_rng_t r;
    br_rng_seed(&r, 3);
    for (size_t i = 0; i < nb * per_seq && !s; i++) s = br_kv_pool_alloc_page(kv, &pages[i]);
    for (size_t i = 0; i < nb * ctx; i++) toks[i] = (int32_t)br_rng_below(&r, (uint64_t)m->cfg.vocab_size);
    for (size_t b = 0; b < nb && !s; b++) {
        seqs[b] = (br_seq_t){toks + b * ctx, ctx, 0, pages + b * per_seq, per_seq, BR_LOGITS_LAST};
        s = br_model_forward_batch(m, kv, &seqs[b], 1, NULL, logits);
    }
    double t0 = br_now();
    for (int st = 0; st < steps && !s; st++) {
        for (size_t b = 0; b < nb; b++) {
            next[b] = (int32_t)((st * 131 + b * 7) % (size_t)m->cfg.vocab_size);
            seqs[b] = (br_seq_t){&next[b], 1, ctx + (size_t)st, pages + b * per_seq, per_seq, BR_LOGITS_LAST};
        }
        s = br_model_forward_batch(m, kv, seqs, nb, NULL, logits);
    }
    *tok_s = (double)nb * steps / (br_now() - t0);
    br_kv_pool_free(kv);
    free(pages);
    free(toks);
    free(logits);
    free(seqs);
    free(next);
    return s;
}

int bench_train(int argc, char **argv)
{
    const char *preset = "a", *cfg_path = NULL;
    int steps = 5, threads = 0, batch = 0, seq = 0;
    bool json = false, no_decode = false, mpi = false;
    const opt_t opts[] = {
        {"preset", OPT_STR, &preset, "a|b", "a: V 8192, d 256, 4 layers, 4 heads, FFN 1024, T 256, B 16; b: d 512, 8 layers, 8 heads, FFN 1408, B 8 (default a)", false},
        {"config", OPT_STR, &cfg_path, "FILE", "a config.json instead of a preset (with --batch, --seq)", false},
        {"batch", OPT_INT, &batch, "B", "override the batch size", false},
        {"seq", OPT_INT, &seq, "T", "override the sequence length", false},
        {"steps", OPT_INT, &steps, "N", "timed steps (default 5; the median is reported)", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"no-decode", OPT_BOOL, &no_decode, NULL, "skip the decode measurements", false},
        {"json", OPT_BOOL, &json, NULL, "print one JSON object", false},
        {"mpi", OPT_BOOL, &mpi, NULL, "require mpirun -np N (N > 1): data-parallel step only, --batch per rank", false},
    };
    cmd_spec_t spec = {"braid bench train [options]",
                       "Tokens/s of a full training step (forward, backward, AdamW) and of the forward "
                       "alone on a preset or given config, GFLOP/s achieved vs the GEMM rate measured "
                       "on the model's FFN shape, decode tokens/s at batch 1 and 16, and peak RSS.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (threads > 0) br_set_threads(threads);
    br_comm_t *comm;
    rc = open_world(mpi, &comm);
    if (rc) return rc;
    br_model_config_t c;
    size_t B, T;
    if (cfg_path) {
        br_status s = br_config_load(&c, cfg_path);
        if (s) return fail_status(s, NULL);
        B = 8;
        T = 256;
    } else if (!strcmp(preset, "a") || !strcmp(preset, "b")) {
        preset_config(&c, preset[0], &B, &T);
    } else {
        fprintf(stderr, "braid: error: --preset must be a or b\n");
        return 2;
    }
    if (batch > 0) B = (size_t)batch;
    if (seq > 0) T = (size_t)seq;
    if (steps < 1) steps = 1;
    if (T > (size_t)c.max_position_embeddings) c.max_position_embeddings = (int)T;
    br_model_t *m;
    br_status s = br_model_create(&m, &c, true);
    if (s) return fail_status(s, NULL);
    br_model_init_random(m, 1);
    /* windows (B, T+1) of random ids: a training step reads inputs [:, :T], targets [:, 1:] */
    int32_t *win = malloc(B * (T + 1) * sizeof *win), *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    float *losses = malloc(B * T * sizeof *losses);
    double *tt = calloc((size_t)steps, sizeof *tt), *tf = calloc((size_t)steps, sizeof *tf);
    double *tc = calloc((size_t)steps, sizeof *tc), *tw = calloc((size_t)steps, sizeof *tw);
    if (!win || !in || !tg || !losses || !tt || !tf || !tc || !tw) s = br_error(BR_ENOMEM, "out of memory");
    br_rng_t r;
    br_rng_seed(&r, 2 + (uint64_t)br_comm_rank(comm));
    for (size_t i = 0; !s && i < B * (T + 1); i++) win[i] = (int32_t)br_rng_below(&r, (uint64_t)c.vocab_size);
    if (!s) br_eval_split_windows(in, tg, win, B, T);
    if (!s) s = time_train_steps(m, comm, win, B, T, steps, tt, tc, tw);
    float loss = 0;
    if (!s && br_comm_size(comm) > 1) {
        int drc = report_dp(comm, &c, B, T, steps, tt, tc, tw, json);
        free(tt), free(tf), free(tc), free(tw), free(win), free(in), free(tg), free(losses);
        br_model_free(m);
        return drc;
    }
    for (int i = -1; i < steps && !s; i++) {
        double t0 = br_now();
        s = br_model_forward_loss(m, in, tg, B, T, NULL, losses, &loss);
        if (i >= 0) tf[i] = br_now() - t0;
    }
    double dec1 = 0, dec16 = 0;
    if (!s && !no_decode) s = decode_rate(m, 1, 128, 32, &dec1);
    if (!s && !no_decode) s = decode_rate(m, 16, 128, 16, &dec16);
    if (s) {
        free(tt), free(tf), free(tc), free(tw), free(win), free(in), free(tg), free(losses);
        br_model_free(m);
        if (br_comm_size(comm) > 1) br_comm_abort(comm, 1);
        return fail_status(s, "bench train");
    }
    double t_step = median(tt, steps), t_fwd = median(tf, steps), ntok = (double)(B * T);
    double ff = fwd_flops_per_token(&c, T);
    double gflops = 3 * ff * ntok / t_step / 1e9, fgflops = ff * ntok / t_fwd / 1e9;
    double peak = gemm_rate(B * T, (size_t)c.intermediate_size, (size_t)c.hidden_size);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = (double)ru.ru_maxrss / 1024.0;
    const char *name = cfg_path ? cfg_path : preset;
    if (json) {
        printf("{\"preset\": \"%s\", \"params\": %zu, \"batch\": %zu, \"seq\": %zu, \"threads\": %d, "
               "\"step_s\": %.4f, \"tokens_per_s\": %.1f, \"forward_tokens_per_s\": %.1f, \"gflops\": %.2f, "
               "\"forward_gflops\": %.2f, \"gemm_gflops\": %.2f, \"fraction_of_gemm\": %.3f, "
               "\"decode_tokens_per_s_b1\": %.1f, \"decode_tokens_per_s_b16\": %.1f, \"peak_rss_mb\": %.1f}\n",
               name, br_config_num_params(&c), B, T, br_get_threads(), t_step, ntok / t_step,
               ntok / t_fwd, gflops, fgflops, peak, gflops / peak, dec1, dec16, rss);
    } else {
        printf("braid bench train, preset %s: %zu parameters, batch %zu x %zu tokens, %d threads\n",
               name, br_config_num_params(&c), B, T, br_get_threads());
        printf("  train step     %8.1f tok/s  (%.3f s/step, %.1f GFLOP/s = %.0f%% of GEMM %.1f GFLOP/s)\n",
               ntok / t_step, t_step, gflops, 100 * gflops / peak, peak);
        printf("  forward        %8.1f tok/s  (%.1f GFLOP/s)\n", ntok / t_fwd, fgflops);
        if (!no_decode) printf("  decode         %8.1f tok/s batch 1, %.1f tok/s batch 16 (context 128)\n", dec1, dec16);
        printf("  peak RSS       %8.1f MB\n", rss);
    }
    free(tt);
    free(tf);
    free(tc);
    free(tw);
    free(win);
    free(in);
    free(tg);
    free(losses);
    br_model_free(m);
    return 0;
}

static int report_dp(br_comm_t *comm, const br_model_config_t *c, size_t B, size_t T, int steps, const double *tt,
                     const double *tc, const double *tw, bool json)
{
    double *v = malloc(3 * (size_t)steps * sizeof *v);
    if (!v) return fail_status(br_error(BR_ENOMEM, "out of memory"), "bench train");
    memcpy(v, tt, (size_t)steps * sizeof *v);
    memcpy(v + steps, tc, (size_t)steps * sizeof *v);
    memcpy(v + 2 * steps, tw, (size_t)steps * sizeof *v);
    double t_step = median(v, steps), t_comm = median(v + steps, steps), t_wait = median(v + 2 * steps, steps);
    free(v);
    /* the slowest rank's step and the most time any rank spent in communication */
    int N = br_comm_size(comm);
    double *all = calloc(3 * (size_t)N, sizeof *all);
    if (!all) return fail_status(br_error(BR_ENOMEM, "out of memory"), "bench train");
    int me = br_comm_rank(comm);
    all[3 * me] = t_step, all[3 * me + 1] = t_comm, all[3 * me + 2] = t_wait;
    br_status s = br_comm_allreduce_sum_f64(comm, all, 3 * (size_t)N);
    double slow = 0, comm_max = 0, wait_max = 0;
    for (int r = 0; r < N; r++) {
        slow = fmax(slow, all[3 * r]);
        comm_max = fmax(comm_max, all[3 * r + 1]);
        wait_max = fmax(wait_max, all[3 * r + 2]);
    }
    free(all);
    if (s) return fail_status(s, "bench train");
    double ntok = (double)(B * T) * N;
    if (br_comm_rank(comm) != 0) return 0;
    size_t np = br_config_num_params(c);
    if (json)
        printf("{\"params\": %zu, \"ranks\": %d, \"threads\": %d, \"batch_per_rank\": %zu, \"seq\": %zu, "
               "\"step_s\": %.4f, \"tokens_per_s\": %.1f, \"comm_s\": %.4f, \"comm_fraction\": %.3f, "
               "\"wait_s\": %.4f, \"grad_mb\": %.2f}\n",
               np, N, br_get_threads(), B, T, slow, ntok / slow, comm_max, comm_max / slow, wait_max,
               np * 4.0 / 1048576);
    else
        printf("braid bench train, data-parallel: %zu parameters, %d ranks x %d threads, %zu x %zu tokens per rank\n"
               "  train step     %8.1f tok/s over all ranks  (%.3f s/step, slowest rank)\n"
               "  communication  %8.1f ms/step (%.1f%% of the step: reduce-scatter + all-gather of %.1f MB "
               "of F32 gradients/weights, loss and norm all-reduces)\n"
               "  waiting        %8.1f ms/step for the slowest rank before the reduce-scatter (load imbalance)\n",
               np, N, br_get_threads(), B, T, ntok / slow, slow, 1e3 * comm_max, 100 * comm_max / slow,
               np * 4.0 / 1048576, 1e3 * wait_max);
    return 0;
}
