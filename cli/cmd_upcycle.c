/* braid upcycle / braid extend: assemble a mixture of experts from dense branches of one seed
 * (moe/upcycle.h), and add an expert to it later.  Flags here; the work is br_upcycle_assemble
 * and br_extend_assemble. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "base/comm.h"
#include "base/fileio.h"
#include "base/timer.h"
#include "commands.h"
#include "lm/model.h"
#include "moe/upcycle.h"

/* Splits a comma list in place into at most cap items; returns the count (-1: too many). */
static int split_list(char *s, const char **items, int cap)
{
    int n = 0;
    for (char *p = s; p && *p;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (*p) {
            if (n == cap) return -1;
            items[n++] = p;
        }
        p = c ? c + 1 : NULL;
    }
    return n;
}

/* --domain-text NAME=FILE,...: the samples (in place; names are labels), or -1 when more than
 * cap or an item has an empty file. */
static int split_samples(char *s, const char **items, int cap)
{
    int n = split_list(s, items, cap);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        if (eq) items[i] = eq + 1;
        if (!*items[i]) return -1;
    }
    return n;
}

/* --router-init: "auto" (random, or nexus for a Nexus mixture) or a kind; 2 after a usage error. */
static int router_init_flag(const char *name, bool nexus, br_router_init_kind *k)
{
    if (!strcmp(name, "auto")) {
        *k = nexus ? BR_ROUTER_INIT_NEXUS : BR_ROUTER_INIT_RANDOM;
        return 0;
    }
    if (br_router_init_parse(name, k) || (nexus && *k == BR_ROUTER_INIT_RANDOM)) {
        fprintf(stderr, "braid: error: --router-init must be random or hidden (linear routers) or nexus (a Nexus mixture)\n");
        return 2;
    }
    return 0;
}

/* How the output was stored, and how far apart the merged inputs were (names[i] is merge input
 * i): a warning on stderr for any input past BR_UPCYCLE_FAR, which finetunes of one base do
 * not reach. */
static void print_report(const br_moe_out_report_t *r, const char *const *names)
{
    char size[32];
    double b = (double)r->bytes;
    snprintf(size, sizeof size, b >= 1e9 ? "%.2f GB" : "%.1f MB", b >= 1e9 ? b / 1e9 : b / 1e6);
    printf("stored as %s, %zu tensors, %s in %zu shard%s\n", br_dtype_name(r->dtype), r->n_tensors, size, r->n_shards,
           r->n_shards == 1 ? "" : "s");
    if (!r->n_measured) return;
    printf("relative distance of each input's shared (non-expert) weights to their mean:\n");
    for (size_t i = 0; i < r->n_measured; i++) printf("  %-40s %.4f\n", names[i], r->distance[i]);
    for (size_t i = 0; i < r->n_measured; i++)
        if (r->distance[i] > BR_UPCYCLE_FAR)
            fprintf(stderr, "braid: warning: %s is %.2f away from the inputs' mean (finetunes of one base stay below "
                            "%.2f): the experts do not seem to share a base, and averaging their attention and "
                            "embeddings may give a poor model\n", names[i], r->distance[i], BR_UPCYCLE_FAR);
}

static void print_cfg(const br_model_config_t *c, const char *out, double secs)
{
    printf("wrote %s: %d FFN experts (top-%d%s%s)", out, c->num_local_experts,
           c->num_experts_per_tok ? c->num_experts_per_tok : 1, c->norm_topk_prob ? ", renormalised" : "",
           c->router_nexus ? ", Nexus router" : ", linear router");
    if (c->shared_expert_intermediate_size) printf(", shared expert");
    if (c->num_attention_experts > 1)
        printf(", %d attention experts (%s)", c->num_attention_experts, c->attention_shared_kv ? "shared KV" : "expert KV");
    printf(", %zu parameters, %.1fs\n", br_config_num_params(c), secs);
}

int cmd_upcycle(int argc, char **argv)
{
    const char *method = NULL, *base = NULL, *experts = "", *out = NULL, *renorm = "auto";
    const char *domain_data = "", *router_init = "auto", *domain_text = "", *tokenizer = NULL;
    const char *dtype = NULL, *shard_size = "5GB";
    int top_k = 0, num_experts = 0, nexus_hidden = 0;
    long seed = 1, domain_tokens = 16384;
    float alpha = 0.01f, beta = 0.001f;
    bool base_as_expert = false, shared_expert = false;
    const opt_t opts[] = {
        {"method", OPT_STR, &method, "M", "sparse | btx | bam | bam-shared-kv | nexus", true},
        {"base", OPT_STR, &base, "DIR", "the seed checkpoint the experts branched from", true},
        {"experts", OPT_STR, &experts, "DIR,DIR,..", "dense expert checkpoints (not needed for sparse)", false},
        {"out", OPT_STR, &out, "DIR", "output checkpoint directory", true},
        {"top-k", OPT_INT, &top_k, "K", "experts per token (default: btx, sparse 2; bam, nexus 1)", false},
        {"renorm", OPT_STR, &renorm, "auto|yes|no", "renormalise the chosen router probabilities (auto: when top-k > 1)", false},
        {"base-as-expert", OPT_BOOL, &base_as_expert, NULL, "the seed is one more expert (expert 0)", false},
        {"shared-expert", OPT_BOOL, &shared_expert, NULL, "btx, sparse: the seed's FFN also as an always-on shared expert (as in Nexus)", false},
        {"num-experts", OPT_INT, &num_experts, "N", "sparse: FFN copies (default: number of --experts, or 4)", false},
        {"alpha", OPT_FLOAT, &alpha, "A", "load-balancing loss coefficient (default 0.01)", false},
        {"beta", OPT_FLOAT, &beta, "B", "router z-loss coefficient (default 0.001)", false},
        {"seed", OPT_LONG, &seed, "N", "router initialisation seed (default 1)", false},
        {"domain-data", OPT_STR, &domain_data, "DIR,DIR,..", "nexus: each expert's token data (data/tok/<domain>), same order as --experts", false},
        {"domain-tokens", OPT_LONG, &domain_tokens, "N", "nexus: tokens per domain embedding (default 16384)", false},
        {"nexus-hidden", OPT_INT, &nexus_hidden, "H", "nexus: projector hidden width (default: hidden_size)", false},
        {"router-init", OPT_STR, &router_init, "KIND", "random (default), hidden: router rows from each expert's domain text through the seed (no training needed), nexus (the default for --method nexus)", false},
        {"domain-text", OPT_STR, &domain_text, "NAME=FILE,..", "--router-init hidden: one sample per expert in expert order: a text file, a token shard (.bin) or a token folder (data/tok/<domain>)", false},
        {"tokenizer", OPT_STR, &tokenizer, "FILE", "--router-init hidden: tokenizer for text samples (default: BASE/tokenizer.json)", false},
        {"dtype", OPT_STR, &dtype, "f32|bf16|f16", "output dtype (default: the base's)", false},
        {"shard-size", OPT_STR, &shard_size, "SIZE", "largest output shard, e.g. 2GB (default 5GB, as the Hub)", false},
    };
    cmd_spec_t spec = {
        "braid upcycle --method M --base DIR --experts DIR,DIR,.. --out DIR [options]",
        "Builds a mixture-of-experts checkpoint from dense experts branched from one seed, exactly "
        "as each paper does: sparse upcycling (seed FFN copied), BTX (experts' FFNs, everything "
        "else averaged, linear router), BAM (attention experts too, soft attention router; "
        "expert-KV or shared-KV; parallel blocks), Nexus (experts' FFNs + the seed's FFN as a "
        "shared expert, router from domain embeddings).  Routers start random, or with --router-init "
        "hidden from each expert's domain text (mean router input through the seed).  Inputs are model "
        "folders as the Hub holds them (sharded, F32/BF16/F16) or braid checkpoints; they are "
        "streamed tensor by tensor, so memory stays small whatever the model's size.  Every "
        "input is checked (architecture, shapes, tokenizer, block type) before anything is "
        "written; how far the experts are from their mean is printed.  The output keeps the "
        "base's dtype, is sharded with an index like the Hub's, replaces OUT in one rename and "
        "carries the base's tokenizer files.  Finetune the result with 'braid train --init DIR'.",
        opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (top_k < 0 || num_experts < 0 || nexus_hidden < 0 || domain_tokens <= 0 || seed < 0) {
        fprintf(stderr, "braid: error: --top-k, --num-experts and --nexus-hidden must be >= 1 (0 or absent: "
                        "the default), --domain-tokens >= 1 and --seed >= 0\n");
        return 2;
    }
    br_moe_out_report_t report;
    br_upcycle_opts_t o = {.base = base, .out = out, .top_k = top_k, .num_experts = num_experts,
                           .base_as_expert = base_as_expert, .shared_expert = shared_expert, .alpha = alpha,
                           .beta = beta, .seed = (uint64_t)seed, .nexus_hidden = nexus_hidden, .dtype = dtype,
                           .report = &report};
    br_status s = br_upcycle_method_parse(method, &o.method);
    if (!s) s = br_moe_size_parse(shard_size, &o.shard_size);
    if (s) return fail_status(s, "upcycle");
    if (!strcmp(renorm, "auto")) o.renorm = -1;
    else if (!strcmp(renorm, "yes")) o.renorm = 1;
    else if (!strcmp(renorm, "no")) o.renorm = 0;
    else {
        fprintf(stderr, "braid: error: --renorm must be auto, yes or no\n");
        return 2;
    }
    if ((rc = router_init_flag(router_init, o.method == BR_UPCYCLE_NEXUS, &o.router_init_kind))) return rc;
    char *ex_buf = strdup(experts), *dd_buf = strdup(domain_data), *dt_buf = strdup(domain_text);
    const char *ex[256], *dd[256], *dt[256];
    int ne = split_list(ex_buf, ex, 256), nd = split_list(dd_buf, dd, 256), nt = split_samples(dt_buf, dt, 256);
    if (ne < 0 || nd < 0 || nt < 0) {
        free(ex_buf), free(dd_buf), free(dt_buf);
        fprintf(stderr, "braid: error: at most 256 experts (and --domain-text NAME=FILE items with a file)\n");
        return 2;
    }
    o.experts = ex;
    o.n_experts = (size_t)ne;
    o.domain_text = dt;
    o.n_domain_text = (size_t)nt;
    char tok_buf[4096];
    if (!tokenizer && !br_path_join(tok_buf, sizeof tok_buf, base, "tokenizer.json") && br_file_exists(tok_buf))
        tokenizer = tok_buf;
    o.tokenizer = tokenizer;
    double t0 = br_now();
    br_model_config_t cfg;
    s = br_upcycle_assemble(&o, dd, (size_t)nd, (size_t)domain_tokens, &cfg);
    if (!s) {
        printf("upcycle --method %s: ", br_upcycle_method_name(o.method));
        print_cfg(&cfg, out, br_now() - t0);
        const char *names[257];
        size_t n = 0;
        if (o.base_as_expert) names[n++] = base;
        for (int i = 0; i < ne; i++) names[n++] = ex[i];
        print_report(&report, names);
    }
    free(ex_buf), free(dd_buf), free(dt_buf);
    if (s) return fail_status(s, "upcycle");
    return 0;
}

int cmd_extend(int argc, char **argv)
{
    const char *moe = NULL, *expert = NULL, *out = NULL, *domain_data = NULL, *base = NULL;
    const char *ft_data = NULL, *ft_mix = NULL, *router_init = "auto", *domain_text = "", *tokenizer = NULL;
    const char *dtype = NULL, *shard_size = "5GB";
    long seed = 1, domain_tokens = 16384;
    int ft_steps = 0, ft_batch = 16, ft_seq = 128;
    float ft_lr = 1e-3f;
    const opt_t opts[] = {
        {"moe", OPT_STR, &moe, "DIR", "the mixture of experts to extend (btx, sparse or nexus)", true},
        {"expert", OPT_STR, &expert, "DIR", "the new dense expert (a branch of the same seed)", true},
        {"domain-data", OPT_STR, &domain_data, "DIR", "the new domain's token data (Nexus: its domain embedding)", false},
        {"base", OPT_STR, &base, "DIR", "Nexus: the seed that computes domain embeddings (default: the one in MOE/upcycle.json)", false},
        {"domain-tokens", OPT_LONG, &domain_tokens, "N", "tokens for the domain embedding (default 16384)", false},
        {"seed", OPT_LONG, &seed, "N", "seed of the new router row (linear router)", false},
        {"out", OPT_STR, &out, "DIR", "output checkpoint directory", true},
        {"dtype", OPT_STR, &dtype, "f32|bf16|f16", "output dtype (default: the MoE's)", false},
        {"shard-size", OPT_STR, &shard_size, "SIZE", "largest output shard, e.g. 2GB (default 5GB)", false},
        {"finetune-steps", OPT_INT, &ft_steps, "N", "then finetune the result for N steps (braid train --init OUT --out OUT; default 0: no)", false},
        {"data", OPT_STR, &ft_data, "DIR", "finetune: token shards (braid data prepare)", false},
        {"mix", OPT_STR, &ft_mix, "SPEC", "finetune: domain mix, e.g. bible=0.5,code=0.5", false},
        {"batch", OPT_INT, &ft_batch, "B", "finetune: sequences per step (default 16)", false},
        {"seq", OPT_INT, &ft_seq, "T", "finetune: tokens per sequence (default 128)", false},
        {"lr", OPT_FLOAT, &ft_lr, "LR", "finetune: peak learning rate (default 1e-3)", false},
        {"router-init", OPT_STR, &router_init, "KIND", "random (default: one new random row), hidden: every router row from the domain texts through the seed (replaces the router), nexus (a Nexus MoE)", false},
        {"domain-text", OPT_STR, &domain_text, "NAME=FILE,..", "--router-init hidden: one sample per expert of the result: the current experts' in order, then the new one's", false},
        {"tokenizer", OPT_STR, &tokenizer, "FILE", "--router-init hidden: tokenizer for text samples", false},
    };
    cmd_spec_t spec = {
        "braid extend --moe DIR --expert DIR [--domain-data DIR] --out DIR [--finetune-steps N --data DIR --mix SPEC]",
        "Adds a new expert to an existing mixture: its FFN becomes one more expert, non-FFN "
        "weights merge as (1-l)*current + l*new with l = 1/(n+1), and the router grows by one "
        "row (linear: random; Nexus: the new domain's embedding through the existing projector, "
        "nothing learned from scratch).  Streamed like braid upcycle: any model size, the MoE's dtype "
        "(or --dtype), shards with an index, the tokenizers checked and copied, OUT replaced in one "
        "rename.  With --finetune-steps the short finetune on limited "
        "new-domain data follows in the same command (otherwise run 'braid train --init OUT').",
        opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (ft_steps < 0 || (ft_steps > 0 && (!ft_data || !ft_mix))) {
        fprintf(stderr, "braid: error: extend: --finetune-steps needs --data and --mix\n");
        return 2;
    }
    /* under mpirun rank 0 assembles, and every rank takes part in the finetune (docs/distributed.md) */
    br_comm_t *world = NULL;
    br_status s = br_comm_world(&world);
    if (s) return fail_status(s, "extend");
    if (br_comm_rank(world) == 0) {
        double t0 = br_now();
        br_moe_out_report_t report;
        br_extend_opts_t o = {.moe = moe, .expert = expert, .seed = (uint64_t)seed, .out = out, .tokenizer = tokenizer,
                              .dtype = dtype, .report = &report};
        br_model_config_t mc;
        char path[4096];
        bool is_nexus = !br_path_join(path, sizeof path, moe, "config.json") && !br_config_load(&mc, path) && mc.router_nexus;
        if ((rc = router_init_flag(router_init, is_nexus, &o.router_init_kind))) return rc;
        char *dt_buf = strdup(domain_text);
        const char *dt[257];
        int nt = split_samples(dt_buf, dt, 257);
        if (nt < 0) {
            free(dt_buf);
            fprintf(stderr, "braid: error: --domain-text: at most 257 NAME=FILE items, each with a file\n");
            return 2;
        }
        o.domain_text = dt;
        o.n_domain_text = (size_t)nt;
        br_model_config_t cfg;
        s = br_moe_size_parse(shard_size, &o.shard_size);
        if (!s) s = br_extend_assemble(&o, base, domain_data, (size_t)domain_tokens, &cfg);
        free(dt_buf);
        if (s) {
            int code = fail_status(s, "extend");
            br_comm_abort(world, code); /* returns only when alone */
            return code;
        }
        printf("extend: ");
        print_cfg(&cfg, out, br_now() - t0);
        const char *names[2] = {moe, expert};
        print_report(&report, names);
    }
    if ((s = br_comm_barrier(world))) return fail_status(s, "extend");
    if (ft_steps == 0) return 0;
    /* the short finetune: braid train's own code, in this process */
    char steps[32], batch[32], seq[32], lr[32], warm[32];
    snprintf(steps, sizeof steps, "%d", ft_steps);
    snprintf(batch, sizeof batch, "%d", ft_batch);
    snprintf(seq, sizeof seq, "%d", ft_seq);
    snprintf(lr, sizeof lr, "%g", ft_lr);
    snprintf(warm, sizeof warm, "%d", ft_steps / 10);
    char *targv[] = {"braid", "train", "--init", (char *)out, "--out", (char *)out, "--data", (char *)ft_data,
                     "--mix", (char *)ft_mix, "--steps", steps, "--batch", batch, "--seq", seq, "--lr", lr,
                     "--warmup", warm, "--eval-interval", "0", "--ckpt-interval", "0", NULL};
    fflush(stdout);
    return cmd_train_in((int)(sizeof targv / sizeof *targv) - 2, targv + 1, world); /* argv[0] "train" */
}
