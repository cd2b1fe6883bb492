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
    const char *domain_data = "";
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
    };
    cmd_spec_t spec = {
        "braid upcycle --method M --base DIR --experts DIR,DIR,.. --out DIR [options]",
        "Builds a mixture-of-experts checkpoint from dense experts branched from one seed, exactly "
        "as each paper does: sparse upcycling (seed FFN copied), BTX (experts' FFNs, everything "
        "else averaged, linear router), BAM (attention experts too, soft attention router; "
        "expert-KV or shared-KV; parallel blocks), Nexus (experts' FFNs + the seed's FFN as a "
        "shared expert, router from domain embeddings).  Routers start random.  Every input is "
        "checked (shapes, vocabulary, block type) before anything is computed or written.  "
        "Finetune the result with 'braid train --init DIR'.",
        opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (top_k < 0 || num_experts < 0 || nexus_hidden < 0 || domain_tokens <= 0 || seed < 0) {
        fprintf(stderr, "braid: error: --top-k, --num-experts and --nexus-hidden must be >= 1 (0 or absent: "
                        "the default), --domain-tokens >= 1 and --seed >= 0\n");
        return 2;
    }
    br_upcycle_opts_t o = {.base = base, .out = out, .top_k = top_k, .num_experts = num_experts,
                           .base_as_expert = base_as_expert, .shared_expert = shared_expert, .alpha = alpha, .beta = beta,
                           .seed = (uint64_t)seed, .nexus_hidden = nexus_hidden};
    br_status s = br_upcycle_method_parse(method, &o.method);
    if (s) return fail_status(s, "upcycle");
    if (!strcmp(renorm, "auto")) o.renorm = -1;
    else if (!strcmp(renorm, "yes")) o.renorm = 1;
    else if (!strcmp(renorm, "no")) o.renorm = 0;
    else {
        fprintf(stderr, "braid: error: --renorm must be auto, yes or no\n");
        return 2;
    }
    char *ex_buf = strdup(experts), *dd_buf = strdup(domain_data);
    const char *ex[256], *dd[256];
    int ne = split_list(ex_buf, ex, 256), nd = split_list(dd_buf, dd, 256);
    if (ne < 0 || nd < 0) {
        free(ex_buf), free(dd_buf);
        fprintf(stderr, "braid: error: at most 256 experts\n");
        return 2;
    }
    o.experts = ex;
    o.n_experts = (size_t)ne;
    double t0 = br_now();
    br_model_config_t cfg;
    s = br_upcycle_assemble(&o, dd, (size_t)nd, (size_t)domain_tokens, &cfg);
    free(ex_buf), free(dd_buf);
    if (s) return fail_status(s, "upcycle");
    printf("upcycle --method %s: ", br_upcycle_method_name(o.method));
    print_cfg(&cfg, out, br_now() - t0);
    return 0;
}

int cmd_extend(int argc, char **argv)
{
    const char *moe = NULL, *expert = NULL, *out = NULL, *domain_data = NULL, *base = NULL;
    const char *ft_data = NULL, *ft_mix = NULL;
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
        {"finetune-steps", OPT_INT, &ft_steps, "N", "then finetune the result for N steps (braid train --init OUT --out OUT; default 0: no)", false},
        {"data", OPT_STR, &ft_data, "DIR", "finetune: token shards (braid data prepare)", false},
        {"mix", OPT_STR, &ft_mix, "SPEC", "finetune: domain mix, e.g. bible=0.5,code=0.5", false},
        {"batch", OPT_INT, &ft_batch, "B", "finetune: sequences per step (default 16)", false},
        {"seq", OPT_INT, &ft_seq, "T", "finetune: tokens per sequence (default 128)", false},
        {"lr", OPT_FLOAT, &ft_lr, "LR", "finetune: peak learning rate (default 1e-3)", false},
    };
    cmd_spec_t spec = {
        "braid extend --moe DIR --expert DIR [--domain-data DIR] --out DIR [--finetune-steps N --data DIR --mix SPEC]",
        "Adds a new expert to an existing mixture: its FFN becomes one more expert, non-FFN "
        "weights merge as (1-l)*current + l*new with l = 1/(n+1), and the router grows by one "
        "row (linear: random; Nexus: the new domain's embedding through the existing projector, "
        "nothing learned from scratch).  With --finetune-steps the short finetune on limited "
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
        br_extend_opts_t o = {.moe = moe, .expert = expert, .seed = (uint64_t)seed, .out = out};
        br_model_config_t cfg;
        s = br_extend_assemble(&o, base, domain_data, (size_t)domain_tokens, &cfg);
        if (s) {
            int code = fail_status(s, "extend");
            br_comm_abort(world, code); /* returns only when alone */
            return code;
        }
        printf("extend: ");
        print_cfg(&cfg, out, br_now() - t0);
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
