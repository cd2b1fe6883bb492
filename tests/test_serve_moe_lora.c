/* LoRA on MoE experts (issue 15, "LoRA on experts, per tenant"):
 *  - served == merged: one batch of sequences with expert adapters (Mixtral w1/w3/w2, BAM
 *    attention experts), dense adapters (q/v) and no adapter, prefill then greedy decoding,
 *    through br_lora_batch_set + br_model_forward_batch (what serve/sched.c runs each step),
 *    against each sequence run alone on the MoE with its adapter merged into the expert
 *    weights: same logits, same greedy ids;
 *  - training: the expert-LoRA gradient of a train step with a frozen base (routers included)
 *    against finite differences, and tokens routed to expert e reach adapter module e only;
 *  - PEFT folders: round trip with expert modules (target_modules w1/w2/w3), and adapters whose
 *    targets the base does not have are refused with the module named. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "base/status.h"
#include "harness.h"
#include "lm/model.h"
#include "lm/peft.h"
#include "nn/lora.h"
#include "serve/adapters.h"
#include "serve/sched.h"
#include "serve/tenants.h"
#include "text/tokenizer.h"
#include "shard_fixture.h"
#include "shell_fixture.h"

enum { V = 29, MAXSEQ = 24 };

typedef enum { K_MIXTRAL, K_BAM, K_BAM_SKV } kind_t;
static const char *const kind_names[] = {"mixtral (4 experts, top-2)", "bam expert-KV", "bam shared-KV"};

static br_model_config_t moe_config(kind_t k, int layers, int E, int topk)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = V;
    c.hidden_size = 16;
    c.intermediate_size = 12;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 32;
    c.rms_norm_eps = 1e-5f;
    c.initializer_range = 0.3f;
    c.num_local_experts = E;
    c.num_experts_per_tok = topk;
    c.norm_topk_prob = true;
    c.block = k == K_MIXTRAL ? BR_BLOCK_SEQUENTIAL : BR_BLOCK_PARALLEL;
    if (k != K_MIXTRAL) {
        c.num_attention_experts = 3;
        c.attention_shared_kv = k == K_BAM_SKV;
    }
    return c;
}

/* n random inputs and targets below V from seed. */
static void random_tokens(int32_t *in, int32_t *tg, size_t n, uint64_t seed)
{
    br_rng_t rng;
    br_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        in[i] = (int32_t)br_rng_below(&rng, V);
        tg[i] = (int32_t)br_rng_below(&rng, V);
    }
}

static br_lora_adapter_t *random_adapter(const br_lora_shapes_t *s, int rank, float alpha, unsigned targets,
                                         bool rslora, uint64_t seed)
{
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_lora_create(&a, s, rank, alpha, targets, rslora, seed));
    if (!a) return NULL;
    br_rng_t rng;
    br_rng_seed(&rng, seed + 100);
    br_rng_fill_normal(&rng, a->params, a->n_params, 0.15f); /* B != 0: the adapter matters */
    return a;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

/* Logits of the last position of toks (n) run alone through m, no adapter (fresh pages). */
static br_status last_logits_alone(br_model_t *m, br_kv_pool_t *kv, const int32_t *toks, size_t n, float *out)
{
    int32_t pages[2];
    size_t np = (n + 15) / 16;
    for (size_t i = 0; i < np; i++) BR_TRY(br_kv_pool_alloc_page(kv, &pages[i]));
    br_seq_t q = {toks, n, 0, pages, np, BR_LOGITS_LAST};
    br_status st = br_model_forward_batch(m, kv, &q, 1, NULL, out);
    for (size_t i = 0; i < np; i++) br_kv_pool_free_page(kv, pages[i]);
    return st;
}

enum { NS = 5, STEPS = 4 };

/* One batch: NS sequences with adapters `which` (NULL: none), prefill then STEPS greedy decode
 * steps, every step all sequences together.  gen[s] receives prompt + generated ids, logits[s]
 * the logits of each decode input's prediction (STEPS+1 rows: after prefill and each step). */
static void run_batched(br_model_t *m, br_kv_pool_t *kv, const br_lora_adapter_t *const *which,
                        const size_t *lens, int32_t gen[NS][MAXSEQ], float logits[NS][STEPS + 1][V])
{
    int32_t pages[NS][2];
    br_seq_t seqs[NS];
    const br_lora_adapter_t *rows[NS * MAXSEQ];
    size_t N = 0;
    for (int s = 0; s < NS; s++) {
        CHECK_OK(br_kv_pool_alloc_page(kv, &pages[s][0]));
        CHECK_OK(br_kv_pool_alloc_page(kv, &pages[s][1]));
        seqs[s] = (br_seq_t){gen[s], lens[s], 0, pages[s], 2, BR_LOGITS_LAST};
        for (size_t i = 0; i < lens[s]; i++) rows[N++] = which[s];
    }
    br_lora_batch_t *b = NULL;
    CHECK_OK(br_lora_batch_create(&b));
    if (!b) return;
    br_lora_hook_t h = br_lora_batch_hook(b);
    float out[NS * V];
    CHECK_OK(br_lora_batch_set(b, rows, N));
    CHECK_OK(br_model_forward_batch(m, kv, seqs, NS, &h, out));
    for (int step = 0; step <= STEPS; step++) {
        for (int s = 0; s < NS; s++) {
            memcpy(logits[s][step], out + s * V, sizeof logits[s][step]);
            gen[s][lens[s] + (size_t)step] = argmax(out + s * V, V);
        }
        if (step == STEPS) break;
        /* decode: one row per sequence, each with its own adapter (lone rows in each expert) */
        for (int s = 0; s < NS; s++) {
            size_t p = lens[s] + (size_t)step;
            seqs[s] = (br_seq_t){&gen[s][p], 1, p, pages[s], 2, BR_LOGITS_LAST};
            rows[s] = which[s];
        }
        CHECK_OK(br_lora_batch_set(b, rows, NS));
        CHECK_OK(br_model_forward_batch(m, kv, seqs, NS, &h, out));
    }
    br_lora_batch_free(b);
    for (int s = 0; s < NS; s++) {
        br_kv_pool_free_page(kv, pages[s][0]);
        br_kv_pool_free_page(kv, pages[s][1]);
    }
}

/* Served (batched, heterogeneous) == merged, for the adapters ad[0..2] given targets. */
static void served_equals_merged(kind_t kind, const unsigned targets[3])
{
    br_model_config_t cfg = moe_config(kind, 2, 4, 2);
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &cfg, false));
    if (!m) return;
    br_model_init_random(m, 21);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    br_lora_adapter_t *ad[3] = {0};
    for (int i = 0; i < 3; i++) ad[i] = random_adapter(&shapes, 2 + i, 4.0f + (float)i, targets[i], i == 2, 7 + (uint64_t)i);
    br_kv_pool_t *kv = NULL;
    CHECK_OK(br_kv_pool_create(&kv, &m->cfg, 16, 1 << 22));
    if (!ad[0] || !ad[1] || !ad[2] || !kv) goto out;
    /* expert adapter, none, dense/other adapter, mixed, the first adapter again (its rows are
     * then two runs in each expert's bucket) */
    const br_lora_adapter_t *which[NS] = {ad[0], NULL, ad[1], ad[2], ad[0]};
    size_t lens[NS] = {6, 5, 7, 4, 3};
    int32_t gen[NS][MAXSEQ];
    br_rng_t rng;
    br_rng_seed(&rng, 3);
    for (int s = 0; s < NS; s++)
        for (size_t i = 0; i < lens[s]; i++) gen[s][i] = (int32_t)br_rng_below(&rng, V);
    static float got[NS][STEPS + 1][V];
    run_batched(m, kv, which, lens, gen, got);

    double worst = 0, moved = 0;
    int id_mismatch = 0;
    for (int s = 0; s < NS; s++) {
        if (which[s]) br_lora_merge_into_model(m, which[s], 1.0f);
        float want[V], base[V];
        for (int step = 0; step <= STEPS; step++) {
            size_t n = lens[s] + (size_t)step;
            CHECK_OK(last_logits_alone(m, kv, gen[s], n, want));
            double mag = 1;
            for (int v = 0; v < V; v++) mag = fmax(mag, fabs(want[v]));
            for (int v = 0; v < V; v++) worst = fmax(worst, fabs(got[s][step][v] - want[v]) / mag);
            if (argmax(want, V) != gen[s][n]) id_mismatch++;
        }
        if (which[s]) {
            br_lora_merge_into_model(m, which[s], -1.0f);
            CHECK_OK(last_logits_alone(m, kv, gen[s], lens[s], base));
            for (int v = 0; v < V; v++) moved = fmax(moved, fabs(got[s][0][v] - base[v]));
        }
    }
    CHECK_MSG(worst < 2e-4, "%s: batched expert LoRA vs merged MoE: max relative logit error %g", kind_names[kind],
              worst);
    CHECK_MSG(id_mismatch == 0, "%s: %d greedy ids differ from the merged MoE's", kind_names[kind], id_mismatch);
    CHECK_MSG(moved > 1e-2, "%s: the adapters made no difference (%g)", kind_names[kind], moved);
out:
    br_kv_pool_free(kv);
    for (int i = 0; i < 3; i++) br_lora_free(ad[i]);
    br_model_free(m);
}

static void test_served(void)
{
    const unsigned q_v = (1u << BR_PROJ_Q) | (1u << BR_PROJ_V);
    const unsigned mixtral[3] = {BR_LORA_W1 | BR_LORA_W3 | BR_LORA_W2, q_v, BR_LORA_W1 | BR_LORA_W2 | q_v};
    served_equals_merged(K_MIXTRAL, mixtral);
    /* BAM: q/k/v/o name the attention experts (and the shared K/V in shared-KV) */
    const unsigned bam[3] = {BR_LORA_ALL, BR_LORA_W3, q_v | (1u << BR_PROJ_O) | BR_LORA_W1};
    served_equals_merged(K_BAM, bam);
    served_equals_merged(K_BAM_SKV, bam);
}

/* Worst relative error of the adapter gradients (already in a->grads) against central
 * differences of the loss, every `stride`-th parameter. */
static double fd_worst(br_model_t *m, br_lora_adapter_t *a, const br_lora_hook_t *h, const int32_t *in,
                       const int32_t *tg, size_t B, size_t T, size_t stride, size_t *checked)
{
    double worst = 0;
    float losses[64];
    const double eps = 1e-2;
    for (size_t i = 0; i < a->n_params; i += stride) {
        float keep = a->params[i], lp = 0, lm = 0;
        a->params[i] = keep + (float)eps;
        CHECK_OK(br_model_forward_loss(m, in, tg, B, T, h, losses, &lp));
        a->params[i] = keep - (float)eps;
        CHECK_OK(br_model_forward_loss(m, in, tg, B, T, h, losses, &lm));
        a->params[i] = keep;
        double fd = ((double)lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - a->grads[i]) / fmax(0.05, fabs(fd)));
        (*checked)++;
    }
    return worst;
}

/* BAM (attention experts + FFN experts, every expert chosen so that routing cannot flip):
 * the gradient of an adapter on every linear vs finite differences. */
static void test_bam_train_gradient(kind_t kind)
{
    br_model_config_t cfg = moe_config(kind, 2, 2, 2);
    cfg.router_aux_loss_coef = 0;
    cfg.router_z_loss_coef = 0;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &cfg, false));
    if (!m) return;
    br_model_init_random(m, 6);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    br_lora_adapter_t *a = random_adapter(&shapes, 2, 3, BR_LORA_ALL, false, 12);
    br_lora_batch_t *lb = NULL;
    if (!a) goto out;
    CHECK_OK(br_lora_alloc_grads(a));
    enum { B = 2, T = 5 };
    int32_t in[B * T], tg[B * T];
    random_tokens(in, tg, B * T, 10);
    CHECK_OK(br_lora_batch_create(&lb));
    if (!lb) goto out;
    const br_lora_adapter_t *rows[B * T];
    for (int i = 0; i < B * T; i++) rows[i] = a;
    CHECK_OK(br_lora_batch_set(lb, rows, B * T));
    br_lora_hook_t h = br_lora_batch_hook(lb);
    br_train_opts_t to = {.lora = &h, .train_base = false, .loss_scale = 1};
    float loss = 0;
    CHECK_OK(br_model_train_step(m, in, tg, B, T, &to, &loss));
    size_t checked = 0;
    double worst = fd_worst(m, a, &h, in, tg, B, T, 7, &checked);
    CHECK_MSG(worst < 3e-2, "%s: attention-expert LoRA gradient vs finite differences (%zu params): worst rel err %g",
              kind_names[kind], checked, worst);
    /* every module got a gradient (the attention experts' O, Q, K, V included) */
    double gq = 0, go = 0;
    for (int e = 0; e < 3; e++) {
        const br_lora_module_t *q = br_lora_xmodule(a, 0, e, BR_PROJ_Q), *o = br_lora_xmodule(a, 0, e, BR_PROJ_O);
        for (size_t i = 0; q->rank && i < (size_t)q->rank * shapes.in[BR_PROJ_Q]; i++) gq = fmax(gq, fabs(q->dA[i]));
        for (size_t i = 0; o->rank && i < (size_t)o->rank * shapes.in[BR_PROJ_O]; i++) go = fmax(go, fabs(o->dA[i]));
    }
    CHECK_MSG(gq > 1e-6 && go > 1e-6, "%s: attention experts' q/o modules got no gradient (%g, %g)", kind_names[kind],
              gq, go);
out:
    br_lora_batch_free(lb);
    br_lora_free(a);
    br_model_free(m);
}

/* Expert LoRA gradient (frozen base and routers) vs finite differences; one layer, so that an
 * adapter never changes a router's input and top-k routing cannot flip under the differences.
 * The router sends every token to expert 0 or 1 (rows v, -v, 0, 0, top-1): experts 2 and 3
 * get no token, and their adapter modules must get no gradient. */
static void test_train_gradient(void)
{
    br_model_config_t cfg = moe_config(K_MIXTRAL, 1, 4, 1);
    cfg.router_aux_loss_coef = 0; /* the loss is then the cross-entropy the step reports */
    cfg.router_z_loss_coef = 0;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &cfg, false));
    if (!m) return;
    br_model_init_random(m, 4);
    float *router = m->w.layers[0].ffn_router;
    size_t C = (size_t)cfg.hidden_size;
    for (size_t c = 0; c < C; c++) {
        router[C + c] = -router[c];
        router[2 * C + c] = router[3 * C + c] = 0;
    }
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    CHECK_INT(shapes.n_experts, 4);
    br_lora_adapter_t *a = random_adapter(&shapes, 3, 6, BR_LORA_W1 | BR_LORA_W3 | BR_LORA_W2, false, 9);
    if (!a) goto out;
    CHECK(a->targets == 0 && a->xtargets == ((1u << BR_PROJ_GATE) | (1u << BR_PROJ_UP) | (1u << BR_PROJ_DOWN)));
    CHECK_OK(br_lora_alloc_grads(a));
    enum { B = 2, T = 7 };
    int32_t in[B * T], tg[B * T];
    random_tokens(in, tg, B * T, 8);
    br_lora_batch_t *lb = NULL;
    CHECK_OK(br_lora_batch_create(&lb));
    if (!lb) goto out;
    const br_lora_adapter_t *rows[B * T];
    for (int i = 0; i < B * T; i++) rows[i] = a;
    CHECK_OK(br_lora_batch_set(lb, rows, B * T));
    br_lora_hook_t h = br_lora_batch_hook(lb);
    br_train_opts_t to = {.lora = &h, .train_base = false, .loss_scale = 1};
    uint64_t counts[4] = {0};
    m->route_counts = counts;
    float loss = 0;
    CHECK_OK(br_model_train_step(m, in, tg, B, T, &to, &loss));
    m->route_counts = NULL;
    CHECK(isfinite(loss) && loss > 0);
    CHECK_MSG(counts[0] > 0 && counts[1] > 0 && counts[2] == 0 && counts[3] == 0,
              "routing: tokens per expert %llu %llu %llu %llu (want only experts 0 and 1)",
              (unsigned long long)counts[0], (unsigned long long)counts[1], (unsigned long long)counts[2],
              (unsigned long long)counts[3]);
    CHECK(m->grads == NULL); /* the base (routers included) has no gradient at all */
    for (int e = 0; e < 4; e++) {
        double g = 0;
        for (int p = BR_PROJ_GATE; p <= BR_PROJ_DOWN; p++) {
            const br_lora_module_t *x = br_lora_xmodule(a, 0, e, (br_proj)p);
            size_t nA = (size_t)x->rank * shapes.in[p], nB = (size_t)x->rank * shapes.out[p];
            for (size_t i = 0; i < nA; i++) g = fmax(g, fabs(x->dA[i]));
            for (size_t i = 0; i < nB; i++) g = fmax(g, fabs(x->dB[i]));
        }
        if (e < 2) CHECK_MSG(g > 1e-5, "expert %d got tokens but its adapter module no gradient", e);
        else CHECK_MSG(g == 0, "expert %d got no token but its adapter module a gradient (%g)", e, g);
    }
    size_t checked = 0;
    double worst = fd_worst(m, a, &h, in, tg, B, T, 5, &checked);
    CHECK_MSG(worst < 3e-2, "expert LoRA gradient vs finite differences (%zu params): worst rel err %g", checked, worst);
out:
    br_lora_batch_free(lb);
    br_lora_free(a);
    br_model_free(m);
}

static bool make_tmp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/braid-elora-XXXXXX");
    return mkdtemp(dir) != NULL;
}

static void rm_adapter(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    remove(p);
    remove(dir);
}

/* Does the last error message contain every one of the words? */
static bool msg_has(const char *a, const char *b)
{
    const char *e = br_errmsg();
    return strstr(e, a) && (!b || strstr(e, b));
}

static void test_peft_folder(void)
{
    char root[64];
    if (!make_tmp(root, sizeof root)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    char dir[128], dense_dir[128];
    snprintf(dir, sizeof dir, "%s/tenant-a", root);
    snprintf(dense_dir, sizeof dense_dir, "%s/dense", root);
    br_model_config_t mc = moe_config(K_MIXTRAL, 2, 4, 2), dc = moe_config(K_MIXTRAL, 2, 0, 0);
    br_model_config_t two = moe_config(K_MIXTRAL, 2, 2, 1);
    br_lora_shapes_t ms = br_lora_shapes_from_config(&mc), ds = br_lora_shapes_from_config(&dc);
    br_lora_shapes_t ts = br_lora_shapes_from_config(&two);
    CHECK(ds.n_experts == 0 && ds.absent == 0 && ms.n_experts == 4);

    /* targets the base lacks are refused by name, at creation too */
    br_lora_adapter_t *bad = NULL;
    CHECK(br_lora_create(&bad, &ms, 2, 4, 1u << BR_PROJ_GATE, false, 1) == BR_EINVAL);
    CHECK_MSG(msg_has("gate_proj", "w1"), "message: %s", br_errmsg());
    CHECK(br_lora_create(&bad, &ds, 2, 4, BR_LORA_W2, false, 1) == BR_EINVAL);
    CHECK_MSG(msg_has("w2", "experts"), "message: %s", br_errmsg());
    unsigned mask = 0;
    CHECK_OK(br_lora_parse_targets("q_proj,w1,w2,w3", &mask));
    CHECK(mask == ((1u << BR_PROJ_Q) | BR_LORA_W1 | BR_LORA_W2 | BR_LORA_W3));
    CHECK(br_lora_parse_targets("q_proj,w4", &mask) == BR_EINVAL);

    /* round trip: expert modules (one expert with its own rank and alpha) + a dense q_proj */
    br_lora_adapter_t *a = NULL, *b = NULL;
    a = random_adapter(&ms, 3, 6, BR_LORA_W1 | BR_LORA_W3 | BR_LORA_W2 | (1u << BR_PROJ_Q), false, 5);
    if (!a) goto out;
    CHECK_OK(br_lora_save(a, dir));
    CHECK_OK(br_lora_load(&b, dir, &ms));
    if (!b) goto out;
    CHECK(b->n_params == a->n_params && b->targets == a->targets && b->xtargets == a->xtargets);
    CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    CHECK(fabsf(br_lora_xmodule(b, 1, 3, BR_PROJ_DOWN)->scale - 2.0f) < 1e-6f);
    CHECK(br_lora_xmodule(b, 1, 3, BR_PROJ_DOWN)->rank == 3);
    char cfgp[192];
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", dir);
    json_t *j = json_load_file(cfgp, 0, NULL);
    CHECK(j != NULL);
    if (j) {
        json_t *t = json_object_get(j, "target_modules");
        char seen[64] = "";
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e) {
            strncat(seen, json_string_value(e), sizeof seen - strlen(seen) - 2);
            strcat(seen, ",");
        }
        CHECK_MSG(!strcmp(seen, "q_proj,w1,w3,w2,"), "target_modules %s", seen);
        json_decref(j);
    }
    /* the tensor names are Mixtral's module paths */
    br_safetensors_t *st = NULL;
    char stp[192];
    snprintf(stp, sizeof stp, "%s/adapter_model.safetensors", dir);
    CHECK_OK(br_st_open(&st, stp));
    if (st) {
        bool found = false;
        for (size_t i = 0; i < br_st_count(st); i++)
            found |= !strcmp(br_st_tensor(st, i)->name,
                             "base_model.model.model.layers.1.block_sparse_moe.experts.3.w2.lora_B.weight");
        CHECK_MSG(found, "expert tensor name not found in %s", stp);
        br_st_close(st);
    }

    /* an expert adapter on a dense base: target_modules names w1 */
    br_lora_adapter_t *c = NULL;
    CHECK(br_lora_load(&c, dir, &ds) != BR_OK);
    CHECK_MSG(msg_has("'w1'", "no block_sparse_moe experts"), "message: %s", br_errmsg());
    /* on a base with fewer experts: the tensor of expert 3 is named */
    CHECK(br_lora_load(&c, dir, &ts) != BR_OK);
    CHECK_MSG(msg_has("block_sparse_moe.experts.", "2 FFN experts"), "message: %s", br_errmsg());
    /* a dense FFN adapter on the Mixtral: gate_proj is named */
    br_lora_adapter_t *d = random_adapter(&ds, 2, 4, 1u << BR_PROJ_GATE, false, 3);
    if (d) CHECK_OK(br_lora_save(d, dense_dir));
    CHECK(br_lora_load(&c, dense_dir, &ms) != BR_OK);
    CHECK_MSG(msg_has("'gate_proj'", "w1, w3, w2"), "message: %s", br_errmsg());
    CHECK(c == NULL);
    br_lora_free(d);
out:
    br_lora_free(a);
    br_lora_free(b);
    rm_adapter(dir);
    rm_adapter(dense_dir);
    remove(root);
}

/* End to end: `braid lora-train --targets w1,w3,w2,q_proj` on a Mixtral folder writes a PEFT
 * adapter with expert modules that loads on that base; gate_proj is refused by name. */
static void test_cli_lora_train(void)
{
    const char *braid = getenv("BRAID");
    if (!braid) {
        SKIP("BRAID not set (run through make test)");
        return;
    }
    char root[64];
    if (!make_tmp(root, sizeof root)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    if (!write_license_domain(root, "gpl", "GPL-3")) {
        SKIP("no /usr/share/common-licenses/GPL-3");
        sh("rm -rf '%s'", root);
        return;
    }
    br_model_config_t c = moe_config(K_MIXTRAL, 2, 4, 2);
    c.vocab_size = 256;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    char base[128], out[128];
    snprintf(base, sizeof base, "%s/base", root);
    snprintf(out, sizeof out, "%s/adapter", root);
    if (m) {
        br_model_init_random(m, 2);
        CHECK_OK(br_model_save(m, base, BR_DT_F32));
        br_model_free(m);
    }
    int rc = sh("BRAID_QUIET=1 %s lora-train --base %s --data %s/tok --mix gpl=1 --targets w1,w3,w2,q_proj --rank 2 "
                "--steps 3 --batch 2 --seq 16 --val-batches 1 --out %s >/dev/null 2>&1",
                braid, base, root, out);
    CHECK_MSG(rc == 0, "lora-train on a Mixtral base exited %d", rc);
    br_lora_shapes_t s = br_lora_shapes_from_config(&c);
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_lora_load(&a, out, &s));
    if (a) {
        CHECK(a->xtargets == ((1u << BR_PROJ_GATE) | (1u << BR_PROJ_UP) | (1u << BR_PROJ_DOWN)));
        CHECK(a->targets == (1u << BR_PROJ_Q));
        CHECK(br_lora_xmodule(a, 1, 3, BR_PROJ_UP)->rank == 2);
        br_lora_free(a);
    }
    rc = sh("%s lora-train --base %s --data %s/tok --mix gpl=1 --targets gate_proj --steps 1 --out %s/bad 2>%s/err.txt "
            ">/dev/null && exit 9; grep -q \"gate_proj\" %s/err.txt",
            braid, base, root, root, root, root);
    CHECK_MSG(rc == 0, "lora-train --targets gate_proj on a Mixtral: not refused by name (%d)", rc);
    sh("rm -rf '%s'", root);
}

/* Through the server's scheduler (serve/sched.c): the same greedy requests (an expert
 * adapter, a q/v adapter, a mixed one, none; PEFT folders loaded by the registry) run
 * concurrently with batched LoRA (BR_SCHED_BATCHED) and with each adapter merged into the
 * MoE's expert weights in turn (BR_SCHED_MERGE): the same tokens. */
enum { NREQ = 8, NEW_TOKENS = 6 };

static br_status sched_run(br_model_t *m, const br_tokenizer_t *tok, br_tenants_t *ten, const char *adir, int policy,
                           const char *const *names, const int32_t prompts[NREQ][12], int32_t out[NREQ][NEW_TOKENS])
{
    br_adapters_opts_t ao = {.dir = adir, .shapes = br_lora_shapes_from_config(&m->cfg)};
    br_adapters_t *ads = NULL;
    BR_TRY(br_adapters_create(&ads, &ao));
    br_sched_opts_t so = {.model = m, .tok = tok, .adapters = ads, .tenants = ten, .max_batch_tokens = 64,
                          .kv_budget_bytes = 8u << 20, .page_tokens = 16, .max_running = 16, .seed = 1,
                          .policy = policy};
    br_sched_t *s = NULL;
    br_status st = br_sched_create(&s, &so);
    br_req_t *reqs[NREQ] = {0};
    for (int i = 0; i < NREQ && st == BR_OK; i++) {
        int32_t *p = malloc(12 * sizeof *p);
        if (!p) st = br_error(BR_ENOMEM, "out of memory");
        if (st == BR_OK) memcpy(p, prompts[i], 12 * sizeof *p);
        br_gen_params_t gp = {.max_tokens = NEW_TOKENS, .temperature = 0, .top_p = 1, .ignore_eos = true};
        if (st == BR_OK) st = br_req_create(&reqs[i], p, 8 + (size_t)(i % 4), &gp);
        if (st != BR_OK) break;
        reqs[i]->tenant = br_tenants_get(ten, 0);
        if (names[i]) snprintf(reqs[i]->adapter, sizeof reqs[i]->adapter, "%s", names[i]);
        st = br_sched_submit(s, reqs[i]);
    }
    for (int i = 0; i < NREQ; i++) {
        if (!reqs[i]) continue;
        while (!br_req_wait(reqs[i], SIZE_MAX, 1.0)) {}
        if (reqs[i]->finish == BR_FINISH_ERROR && st == BR_OK)
            st = br_error(BR_EINVAL, "request %d failed: %s", i, reqs[i]->errmsg);
        if (reqs[i]->n_out != NEW_TOKENS && st == BR_OK)
            st = br_error(BR_EINVAL, "request %d: %zu tokens", i, reqs[i]->n_out);
        for (size_t t = 0; t < NEW_TOKENS && t < reqs[i]->n_out; t++) out[i][t] = reqs[i]->out[t];
        br_req_unref(reqs[i]);
    }
    br_sched_free(s);
    br_adapters_free(ads);
    return st;
}

static void test_sched_batched_equals_merge(void)
{
    br_tokenizer_t *tok = NULL;
    CHECK_OK(br_tokenizer_load(&tok, "tests/ref/serve_tokenizer.json"));
    if (!tok) return;
    br_model_config_t c = moe_config(K_MIXTRAL, 2, 4, 2);
    c.vocab_size = (int)br_tokenizer_vocab_size(tok);
    c.initializer_range = 0.5f; /* sharp logits: greedy ids far from ties */
    br_model_t *m = NULL;
    br_tenants_t *ten = NULL;
    char root[64];
    CHECK(make_tmp(root, sizeof root));
    CHECK_OK(br_model_create(&m, &c, false));
    CHECK_OK(br_tenants_open(&ten));
    if (!m || !ten) goto out;
    br_model_init_random(m, 31);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    const unsigned q_v = (1u << BR_PROJ_Q) | (1u << BR_PROJ_V);
    const unsigned tg[3] = {BR_LORA_W1 | BR_LORA_W3 | BR_LORA_W2, q_v, BR_LORA_W2 | q_v};
    static const char *const ad_names[3] = {"experts", "qv", "mixed"};
    for (int i = 0; i < 3; i++) {
        br_lora_adapter_t *a = random_adapter(&shapes, 4, 8, tg[i], false, 40 + (uint64_t)i);
        if (!a) goto out;
        br_rng_t r;
        br_rng_seed(&r, 50 + (uint64_t)i);
        br_rng_fill_normal(&r, a->params, a->n_params, 0.4f); /* an adapter that changes the ids */
        char dir[128];
        snprintf(dir, sizeof dir, "%s/%s", root, ad_names[i]);
        CHECK_OK(br_lora_save(a, dir));
        br_lora_free(a);
    }
    const char *names[NREQ] = {"experts", NULL, "qv", "mixed", "experts", NULL, "mixed", "qv"};
    int32_t prompts[NREQ][12];
    br_rng_t rng;
    br_rng_seed(&rng, 77);
    for (int i = 0; i < NREQ; i++)
        for (int t = 0; t < 12; t++) prompts[i][t] = (int32_t)br_rng_below(&rng, (uint64_t)c.vocab_size);
    memcpy(prompts[1], prompts[0], sizeof prompts[0]); /* base vs the expert adapter on one prompt */
    int32_t batched[NREQ][NEW_TOKENS], merged[NREQ][NEW_TOKENS];
    CHECK_OK(sched_run(m, tok, ten, root, BR_SCHED_BATCHED, names, prompts, batched));
    CHECK_OK(sched_run(m, tok, ten, root, BR_SCHED_MERGE, names, prompts, merged));
    int differ = 0;
    for (int i = 0; i < NREQ; i++)
        for (int t = 0; t < NEW_TOKENS; t++) differ += batched[i][t] != merged[i][t];
    CHECK_MSG(differ == 0, "scheduler: %d of %d greedy tokens differ between batched expert LoRA and merged experts",
              differ, NREQ * NEW_TOKENS);
    CHECK_MSG(memcmp(batched[0], batched[1], sizeof batched[0]) != 0,
              "the expert adapter did not change the greedy tokens (test would be vacuous)");
out:
    for (int i = 0; i < 3; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/%s", root, ad_names[i]);
        rm_adapter(dir);
    }
    remove(root);
    br_tenants_free(ten);
    br_model_free(m);
    br_tokenizer_free(tok);
}

int main(void)
{
    test_peft_folder();
    test_cli_lora_train();
    test_served();
    test_sched_batched_equals_merge();
    test_train_gradient();
    test_bam_train_gradient(K_BAM);
    test_bam_train_gradient(K_BAM_SKV);
    return th_exit();
}
