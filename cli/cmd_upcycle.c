/* braid upcycle / braid extend: assemble a mixture of experts from dense branches of one seed
 * (moe/upcycle.h), and add an expert to it later. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "base/fileio.h"
#include "base/timer.h"
#include "commands.h"
#include "lm/config_moe.h"
#include "lm/model.h"
#include "moe/domain.h"
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

/* Domain embeddings of `n` domains with the seed at `base` (Nexus). */
static int domain_embeddings(const char *base, const char *const *dirs, int n, long tokens,
                             float **out, int *dim)
{
    br_model_t *m;
    br_status s = br_model_load(&m, base, false);
    if (s) return fail_status(s, "loading the seed");
    size_t C = (size_t)m->cfg.hidden_size;
    float *d = malloc((size_t)n * C * sizeof(float));
    if (!d) {
        br_model_free(m);
        return fail_status(br_error(BR_ENOMEM, "out of memory"), "domain embeddings");
    }
    for (int i = 0; i < n && !s; i++) {
        char path[4200];
        br_domain_shard_path(path, sizeof path, dirs[i]);
        fprintf(stderr, "domain embedding %d/%d: mean seed hidden state over %ld tokens of %s\n",
                i + 1, n, tokens, path);
        s = br_domain_embedding(m, path, (size_t)tokens, 128, d + (size_t)i * C);
    }
    br_model_free(m);
    if (s) {
        free(d);
        return fail_status(s, "domain embeddings");
    }
    *out = d;
    *dim = (int)C;
    return 0;
}

/* DIR/upcycle.json: how the mixture was built (extend reads the seed from it). */
static br_status write_provenance(const char *out, const char *method, const char *base,
                                  bool base_as_expert, const char *const *ex, int ne,
                                  const char *const *dd, int nd)
{
    json_t *o = json_object(), *a = json_array(), *d = json_array();
    char abs[PATH_MAX];
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "base", json_string(realpath(base, abs) ? abs : base));
    for (int i = 0; i < ne; i++) json_array_append_new(a, json_string(realpath(ex[i], abs) ? abs : ex[i]));
    for (int i = 0; i < nd; i++) json_array_append_new(d, json_string(realpath(dd[i], abs) ? abs : dd[i]));
    json_object_set_new(o, "base_as_expert", json_boolean(base_as_expert));
    json_object_set_new(o, "experts", a);
    json_object_set_new(o, "domain_data", d);
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text) return br_error(BR_ENOMEM, "out of memory");
    char path[4200];
    snprintf(path, sizeof path, "%s/upcycle.json", out);
    br_status s = br_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

/* The seed recorded in DIR/upcycle.json (malloc'd), or NULL. */
static char *provenance_base(const char *moe)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/upcycle.json", moe);
    json_t *o = json_load_file(path, 0, NULL);
    json_t *b = o ? json_object_get(o, "base") : NULL;
    char *r = json_is_string(b) ? strdup(json_string_value(b)) : NULL;
    json_decref(o);
    return r;
}

int cmd_upcycle(int argc, char **argv)
{
    const char *method = NULL, *base = NULL, *experts = "", *out = NULL, *renorm = "auto";
    const char *domain_data = "";
    int top_k = 0, num_experts = 0, nexus_hidden = 0;
    long seed = 1, domain_tokens = 16384;
    float alpha = 0.01f, beta = 0.001f;
    bool base_as_expert = false;
    const opt_t opts[] = {
        {"method", OPT_STR, &method, "M", "sparse | btx | bam | bam-shared-kv | nexus", true},
        {"base", OPT_STR, &base, "DIR", "the seed checkpoint the experts branched from", true},
        {"experts", OPT_STR, &experts, "DIR,DIR,..", "dense expert checkpoints (not needed for sparse)", false},
        {"out", OPT_STR, &out, "DIR", "output checkpoint directory", true},
        {"top-k", OPT_INT, &top_k, "K", "experts per token (default: btx, sparse 2; bam, nexus 1)", false},
        {"renorm", OPT_STR, &renorm, "auto|yes|no", "renormalise the chosen router probabilities (auto: when top-k > 1)", false},
        {"base-as-expert", OPT_BOOL, &base_as_expert, NULL, "the seed is one more expert (expert 0)", false},
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
                           .base_as_expert = base_as_expert, .alpha = alpha, .beta = beta,
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
    float *emb = NULL;
    /* everything is validated before any work */
    o.check_only = true;
    s = br_upcycle(&o, NULL);
    if (!s && o.method == BR_UPCYCLE_NEXUS && nd != ne)
        s = br_error(BR_EINVAL, "upcycle --method nexus: --domain-data needs one directory per expert (%d experts, %d given)", ne, nd);
    if (!s && o.method == BR_UPCYCLE_NEXUS) {
        for (int i = 0; i < nd && !s; i++) {
            char path[4200];
            br_domain_shard_path(path, sizeof path, dd[i]);
            if (!br_file_exists(path)) s = br_error(BR_ENOTFOUND, "domain data %s: no %s (run 'braid data prepare')", dd[i], path);
        }
    }
    if (s) {
        free(ex_buf), free(dd_buf);
        return fail_status(s, "upcycle");
    }
    o.check_only = false;
    if (o.method == BR_UPCYCLE_NEXUS) {
        rc = domain_embeddings(base, dd, nd, domain_tokens, &emb, &o.domain_dim);
        if (rc) {
            free(ex_buf), free(dd_buf);
            return rc;
        }
        o.domain_emb = emb;
    }
    br_model_config_t cfg;
    s = br_upcycle(&o, &cfg);
    if (!s) s = write_provenance(out, method, base, base_as_expert, ex, ne, dd, nd);
    free(emb), free(ex_buf), free(dd_buf);
    if (s) return fail_status(s, "upcycle");
    printf("upcycle --method %s: ", br_upcycle_method_name(o.method));
    print_cfg(&cfg, out, br_now() - t0);
    return 0;
}

/* OUT/upcycle.json = MOE/upcycle.json with the new expert (and its domain data) appended. */
static br_status extend_provenance(const char *moe, const char *out, const char *expert,
                                   const char *domain_data)
{
    char path[4200], abs[PATH_MAX];
    snprintf(path, sizeof path, "%s/upcycle.json", moe);
    json_t *o = json_load_file(path, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_pack("{s:s, s:[], s:[]}", "method", "unknown", "experts", "domain_data");
    }
    json_t *ex = json_object_get(o, "experts"), *dd = json_object_get(o, "domain_data");
    if (!json_is_array(ex)) json_object_set_new(o, "experts", ex = json_array());
    if (!json_is_array(dd)) json_object_set_new(o, "domain_data", dd = json_array());
    json_array_append_new(ex, json_string(realpath(expert, abs) ? abs : expert));
    if (domain_data && json_array_size(dd) + 1 == json_array_size(ex))
        json_array_append_new(dd, json_string(realpath(domain_data, abs) ? abs : domain_data));
    json_object_set_new(o, "extended_from", json_string(realpath(moe, abs) ? abs : moe));
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text) return br_error(BR_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/upcycle.json", out);
    br_status s = br_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
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
    double t0 = br_now();
    br_model_config_t mc;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", moe);
    br_status s = br_config_load(&mc, path);
    if (s) return fail_status(s, "extend");
    float *emb = NULL;
    if (mc.router_nexus) {
        if (!domain_data) return fail_status(br_error(BR_EINVAL, "extend: a Nexus MoE needs --domain-data for the new domain"), "extend");
        const char *dd[1] = {domain_data};
        int dim;
        char *seed_dir = base ? strdup(base) : provenance_base(moe);
        if (!seed_dir)
            return fail_status(br_error(BR_EINVAL, "extend: %s/upcycle.json does not name the seed; pass --base DIR", moe), "extend");
        rc = domain_embeddings(seed_dir, dd, 1, domain_tokens, &emb, &dim);
        free(seed_dir);
        if (rc) return rc;
        if (dim != mc.nexus_domain_dim) {
            free(emb);
            return fail_status(br_error(BR_EINVAL, "extend: the domain embedding has %d values, the MoE's router takes %d", dim, mc.nexus_domain_dim), "extend");
        }
    }
    br_extend_opts_t o = {.moe = moe, .expert = expert, .domain_emb = emb, .seed = (uint64_t)seed, .out = out};
    br_model_config_t cfg;
    s = br_extend(&o, &cfg);
    free(emb);
    if (!s) s = extend_provenance(moe, out, expert, domain_data);
    if (s) return fail_status(s, "extend");
    printf("extend: ");
    print_cfg(&cfg, out, br_now() - t0);
    if (ft_steps == 0) return 0;
    /* the short finetune: braid train in this process's place */
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
    fflush(stderr);
    execv("/proc/self/exe", targv);
    return fail_status(br_error(BR_EIO, "extend: cannot start 'braid train': %s", strerror(errno)), "extend");
}
