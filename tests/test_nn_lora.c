/* nn/lora: PEFT files (fixture written by tests/ref/gen_lora_peft.py as PEFT lays them out),
 * validation errors, batched SGMV/BGMV == per-row reference == merged weights, and a
 * finite-difference check of the LoRA backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lora_fixture.h"
#include "kernels/gemm.h"
#include "lm/peft.h"
#include "nn/lora.h"
#include "nn/nn.h"


static void test_peft_fixture(void)
{
    br_lora_shapes_t s = fixture_shapes();
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_lora_load(&a, "tests/ref/lora_peft", &s));
    if (!a) return;
    CHECK_STR(a->name, "lora_peft");
    CHECK_STR(a->base_model, "braid-test-base");
    CHECK_INT(a->rank, 4);
    CHECK_INT(a->targets, (1u << BR_PROJ_Q) | (1u << BR_PROJ_V) | (1u << BR_PROJ_DOWN));
    CHECK_INT(br_lora_module(a, 0, BR_PROJ_Q)->rank, 4);
    CHECK_INT(br_lora_module(a, 1, BR_PROJ_DOWN)->rank, 2); /* rank_pattern */
    CHECK_INT(br_lora_module(a, 0, BR_PROJ_K)->rank, 0);
    CHECK_NEAR(br_lora_module(a, 0, BR_PROJ_V)->scale, 8.0 / 4, 1e-6);
    CHECK_NEAR(br_lora_module(a, 1, BR_PROJ_V)->scale, 3.0 / 4, 1e-6); /* alpha_pattern */
    CHECK_NEAR(br_lora_module(a, 1, BR_PROJ_DOWN)->scale, 8.0 / 2, 1e-6);

    br_safetensors_t *ex = NULL;
    CHECK_OK(br_st_open(&ex, "tests/ref/lora_peft_expected.safetensors"));
    if (!ex) {
        br_lora_free(a);
        return;
    }
    float x[3 * 24], y[3 * 24], want[3 * 24];
    CHECK_OK(br_st_read_f32(br_st_find(ex, "x"), x, 3 * 24));
    br_lora_batch_t *b = NULL;
    CHECK_OK(br_lora_batch_create(&b));
    const br_lora_adapter_t *rows[3] = {a, a, a};
    CHECK_OK(br_lora_batch_set(b, rows, 3));
    br_lora_hook_t h = br_lora_batch_hook(b);
    for (int l = 0; l < 2; l++) {
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            size_t C = s.in[p], OC = s.out[p];
            float xin[3 * 24];
            for (int i = 0; i < 3; i++) memcpy(xin + i * C, x + i * 24, C * sizeof(float));
            memset(y, 0, sizeof y);
            h.apply(&h, y, xin, 3, C, OC, l, (br_proj)p);
            char name[64];
            snprintf(name, sizeof name, "delta.%d.%s", l, br_lora_proj_name((br_proj)p));
            const br_st_tensor_t *t = br_st_find(ex, name);
            if (!t) {
                double mx = 0;
                for (size_t i = 0; i < 3 * OC; i++) mx = fmax(mx, fabs(y[i]));
                CHECK_MSG(mx == 0, "%s: not adapted but output changed (%g)", name, mx);
                continue;
            }
            CHECK_OK(br_st_read_f32(t, want, 3 * OC));
            double err = 0;
            for (size_t i = 0; i < 3 * OC; i++) err = fmax(err, fabs(y[i] - want[i]) / (1 + fabs(want[i])));
            CHECK_MSG(err < 1e-5, "%s: max rel err %g vs numpy", name, err);
        }
    }
    br_st_close(ex);

    /* save -> load round trip keeps ranks, per-module scales and weights */
    char dir[] = "/tmp/braid_lora_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/copy", dir);
    CHECK_OK(br_lora_save(a, sub));
    br_lora_adapter_t *c = NULL;
    CHECK_OK(br_lora_load(&c, sub, &s));
    if (c) {
        CHECK_STR(c->name, "copy");
        CHECK_INT(c->n_params, a->n_params);
        int same = c->n_params == a->n_params && !memcmp(c->params, a->params, a->n_params * sizeof(float));
        CHECK(same);
        for (int l = 0; l < 2; l++)
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                CHECK_INT(br_lora_module(c, l, (br_proj)p)->rank, br_lora_module(a, l, (br_proj)p)->rank);
                CHECK_NEAR(br_lora_module(c, l, (br_proj)p)->scale, br_lora_module(a, l, (br_proj)p)->scale, 1e-6);
            }
    }
    br_lora_free(c);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    br_lora_batch_free(b);
    br_lora_free(a);
}

/* Writes a broken copy of the fixture and checks the load fails with `want` and a message
 * containing `needle`. */
static void write_text(const char *path, const char *text) { br_write_file_atomic(path, text, strlen(text)); }

static void expect_fail(const char *dir, const br_lora_shapes_t *s, br_status want, const char *needle)
{
    br_lora_adapter_t *a = NULL;
    br_status st = br_lora_load(&a, dir, s);
    CHECK_MSG(st == want, "load %s: got %s (%s), want %s", dir, br_status_name(st), br_errmsg(),
              br_status_name(want));
    CHECK_MSG(strstr(br_errmsg(), needle) != NULL, "message '%s' lacks '%s'", br_errmsg(), needle);
    CHECK(a == NULL);
    br_lora_free(a);
}

static void test_validation(void)
{
    br_lora_shapes_t s = fixture_shapes();
    char dir[] = "/tmp/braid_lora_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cfgp[300], stp[300], cmd[400];
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", dir);
    snprintf(stp, sizeof stp, "%s/adapter_model.safetensors", dir);

    expect_fail(dir, &s, BR_ENOTFOUND, "adapter_config.json");
    write_text(cfgp, "{\"r\": 4, \"lora_alpha\": ");
    expect_fail(dir, &s, BR_EFORMAT, "adapter_config.json");
    write_text(cfgp, "{\"r\": \"four\", \"lora_alpha\": 8}");
    expect_fail(dir, &s, BR_EFORMAT, "\"r\"");
    write_text(cfgp, "{\"r\": 4, \"lora_alpha\": 8, \"use_dora\": true}");
    expect_fail(dir, &s, BR_EUNSUPPORTED, "DoRA");
    write_text(cfgp, "{\"r\": 4, \"lora_alpha\": 8, \"peft_type\": \"IA3\"}");
    expect_fail(dir, &s, BR_EUNSUPPORTED, "peft_type");
    write_text(cfgp, "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}");
    expect_fail(dir, &s, BR_ENOTFOUND, "adapter_model.safetensors");
    write_text(stp, "garbage");
    br_lora_adapter_t *a = NULL;
    CHECK(br_lora_load(&a, dir, &s) != BR_OK);

    /* a valid file against the wrong base: wrong hidden size, too few layers */
    snprintf(cmd, sizeof cmd, "cp tests/ref/lora_peft/adapter_model.safetensors %s", stp);
    CHECK(system(cmd) == 0);
    br_lora_shapes_t wrong = s;
    wrong.in[BR_PROJ_Q] = 32;
    expect_fail(dir, &wrong, BR_EFORMAT, "q_proj");
    wrong = s;
    wrong.n_layers = 1;
    expect_fail(dir, &wrong, BR_EFORMAT, "layer 1");
    CHECK_OK(br_lora_load(&a, dir, &s));
    br_lora_free(a);

    /* scales that would be Inf as a float (issue 20: the server answered NUL text from NaN
     * logits) or absurdly large are refused at load, naming the field */
    static const struct {
        const char *config, *needle;
    } bad_alpha[] = {
        {"{\"r\": 4, \"lora_alpha\": 1e39}", "lora_alpha is 1e+39; it must be in (0, 65536]"},
        {"{\"r\": 4, \"lora_alpha\": 3e38, \"use_rslora\": true}", "lora_alpha is 3e+38"},
        {"{\"r\": 4, \"lora_alpha\": 0}", "lora_alpha is 0;"},
        {"{\"r\": 4, \"lora_alpha\": \"8\"}", "lora_alpha must be a number"},
        {"{\"r\": 4, \"lora_alpha\": 8, \"alpha_pattern\": {\"q_proj\": 1e39}}", "alpha_pattern[\"q_proj\"] is 1e+39"},
        {"{\"r\": 4, \"lora_alpha\": 8, \"alpha_pattern\": {\"v_proj\": -2}}", "alpha_pattern[\"v_proj\"] is -2"},
        {"{\"r\": 4, \"lora_alpha\": 8, \"alpha_pattern\": {\"v_proj\": null}}",
         "alpha_pattern[\"v_proj\"] must be a number"},
    };
    for (size_t i = 0; i < sizeof bad_alpha / sizeof *bad_alpha; i++) {
        write_text(cfgp, bad_alpha[i].config);
        expect_fail(dir, &s, BR_EFORMAT, bad_alpha[i].needle);
    }
    /* the largest allowed alpha loads, with rsLoRA too, and every scale stays finite */
    write_text(cfgp, "{\"r\": 4, \"lora_alpha\": 65536, \"use_rslora\": true, "
                     "\"alpha_pattern\": {\"q_proj\": 65536}}");
    CHECK_OK(br_lora_load(&a, dir, &s));
    bool finite = a != NULL;
    for (int l = 0; finite && l < s.n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            const br_lora_module_t *m = br_lora_module(a, l, (br_proj)p);
            if (m->rank && !(isfinite(m->scale) && m->scale > 0)) finite = false;
        }
    CHECK(finite);
    br_lora_free(a);
    a = NULL;
    br_lora_shapes_t s1 = s;
    CHECK_STATUS(br_lora_create(&a, &s1, 2, INFINITY, 1u << BR_PROJ_Q, true, 1), BR_EINVAL);
    CHECK_STATUS(br_lora_create(&a, &s1, 2, 1e6f, 1u << BR_PROJ_Q, false, 1), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "LoRA alpha 1e+06 must be in (0, 65536]") != NULL);
    CHECK(a == NULL);

    /* lora_A without lora_B; a tensor that is not LoRA */
    br_st_writer_t *w = NULL;
    float buf[4 * 24] = {0};
    int64_t sa[2] = {4, 16}, se[2] = {4, 4};
    CHECK_OK(br_st_writer_create(&w));
    CHECK_OK(br_st_writer_add_f32(w, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", BR_DT_F32, 2, sa, buf));
    CHECK_OK(br_st_writer_save(w, stp));
    br_st_writer_free(w);
    expect_fail(dir, &s, BR_EFORMAT, "no lora_B");
    CHECK_OK(br_st_writer_create(&w));
    CHECK_OK(br_st_writer_add_f32(w, "base_model.model.lm_head.lora_A.weight", BR_DT_F32, 2, se, buf));
    CHECK_OK(br_st_writer_save(w, stp));
    br_st_writer_free(w);
    expect_fail(dir, &s, BR_EUNSUPPORTED, "lm_head");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);

    unsigned mask = 0;
    CHECK_OK(br_lora_parse_targets("q_proj,v_proj", &mask));
    CHECK_INT(mask, (1u << BR_PROJ_Q) | (1u << BR_PROJ_V));
    CHECK_STATUS(br_lora_parse_targets("q_proj,lm_head", &mask), BR_EINVAL);
    CHECK_STATUS(br_lora_parse_targets("", &mask), BR_EINVAL);
}

/* Random adapters of different ranks on one projection; a batch mixing a contiguous segment,
 * scattered rows of one adapter, lone rows and rows with no adapter. */
static void randomize(br_lora_adapter_t *a, br_rng_t *r)
{
    br_rng_fill_normal(r, a->params, a->n_params, 0.3f);
}

static void test_batched(void)
{
    br_lora_shapes_t s = fixture_shapes();
    enum { NA = 4, N = 13 };
    int ranks[NA] = {1, 3, 8, 5};
    br_lora_adapter_t *ad[NA] = {0};
    br_rng_t rng;
    br_rng_seed(&rng, 7);
    for (int i = 0; i < NA; i++) {
        unsigned targets = i == 3 ? (1u << BR_PROJ_DOWN) : (1u << BR_PROJ_Q) | (1u << BR_PROJ_DOWN);
        CHECK_OK(br_lora_create(&ad[i], &s, ranks[i], 2.0f * ranks[i] + 1, targets, i == 2, 100 + i));
        if (!ad[i]) return;
        randomize(ad[i], &rng);
    }
    /* row -> adapter: 0 0 0 0 (segment) 1 - 2 1 3 - 1 2 0 */
    const br_lora_adapter_t *rows[N] = {ad[0], ad[0], ad[0], ad[0], ad[1], NULL, ad[2],
                                        ad[1], ad[3], NULL,  ad[1], ad[2], ad[0]};
    br_lora_batch_t *b = NULL;
    CHECK_OK(br_lora_batch_create(&b));
    CHECK_OK(br_lora_batch_set(b, rows, N));
    CHECK_INT(br_lora_batch_nadapters(b), NA);
    br_lora_hook_t h = br_lora_batch_hook(b);
    for (int p = 0; p < BR_PROJ_COUNT; p++) {
        size_t C = s.in[p], OC = s.out[p];
        float *x = malloc(N * C * sizeof(float)), *W = malloc(OC * C * sizeof(float));
        float *y = malloc(N * OC * sizeof(float)), *yr = malloc(N * OC * sizeof(float));
        float *ym = malloc(OC * sizeof(float)), *Wm = malloc(OC * C * sizeof(float));
        br_rng_fill_normal(&rng, x, N * C, 1.0f);
        br_rng_fill_normal(&rng, W, OC * C, 0.2f);
        for (int layer = 0; layer < 2; layer++) {
            br_sgemm(false, true, N, OC, C, 1.0f, x, C, W, C, 0.0f, y, OC);
            memcpy(yr, y, N * OC * sizeof(float));
            h.apply(&h, y, x, N, C, OC, layer, (br_proj)p);
            br_lora_apply_ref(yr, x, rows, N, C, OC, layer, (br_proj)p);
            double err_ref = 0, err_merge = 0;
            for (size_t i = 0; i < N * OC; i++) err_ref = fmax(err_ref, fabs(y[i] - yr[i]));
            /* each row against its own merged model W + scale B A */
            for (size_t i = 0; i < N; i++) {
                memcpy(Wm, W, OC * C * sizeof(float));
                if (rows[i]) br_lora_merge(Wm, rows[i], layer, (br_proj)p, 1.0f);
                br_sgemm(false, true, 1, OC, C, 1.0f, x + i * C, C, Wm, C, 0.0f, ym, OC);
                for (size_t o = 0; o < OC; o++) err_merge = fmax(err_merge, fabs(y[i * OC + o] - ym[o]));
            }
            CHECK_MSG(err_ref < 1e-4, "proj %s layer %d: batched vs reference max err %g",
                      br_lora_proj_name((br_proj)p), layer, err_ref);
            CHECK_MSG(err_merge < 1e-4, "proj %s layer %d: batched vs merged max err %g",
                      br_lora_proj_name((br_proj)p), layer, err_merge);
        }
        /* merge then unmerge restores W */
        memcpy(Wm, W, OC * C * sizeof(float));
        br_lora_merge(Wm, ad[2], 0, (br_proj)p, 1.0f);
        br_lora_merge(Wm, ad[2], 0, (br_proj)p, -1.0f);
        double d = 0;
        for (size_t i = 0; i < OC * C; i++) d = fmax(d, fabs(Wm[i] - W[i]));
        CHECK_MSG(d < 1e-5, "unmerge error %g", d);
        free(x); free(W); free(y); free(yr); free(ym); free(Wm);
    }
    /* an empty batch and a batch without adapters are no-ops */
    const br_lora_adapter_t *none[2] = {NULL, NULL};
    CHECK_OK(br_lora_batch_set(b, none, 2));
    CHECK_INT(br_lora_batch_nadapters(b), 0);
    float x2[2 * 16] = {1}, y2[2 * 16] = {0};
    h.apply(&h, y2, x2, 2, 16, 16, 0, BR_PROJ_Q);
    CHECK(y2[0] == 0 && y2[31] == 0);
    br_lora_batch_free(b);
    for (int i = 0; i < NA; i++) br_lora_free(ad[i]);
}

/* L = sum(g . y), y = x W^T + lora(x).  Central differences on A, B and x against backward. */
static double loss_of(br_lora_hook_t *h, const float *x, const float *g, size_t N, size_t C, size_t OC)
{
    float *y = calloc(N * OC, sizeof(float));
    h->apply(h, y, x, N, C, OC, 1, BR_PROJ_DOWN);
    double L = 0;
    for (size_t i = 0; i < N * OC; i++) L += (double)g[i] * y[i];
    free(y);
    return L;
}

static void test_backward(void)
{
    br_lora_shapes_t s = fixture_shapes();
    enum { N = 7 };
    br_lora_adapter_t *a = NULL, *c = NULL;
    CHECK_OK(br_lora_create(&a, &s, 3, 6.0f, 1u << BR_PROJ_DOWN, false, 1));
    CHECK_OK(br_lora_create(&c, &s, 2, 4.0f, 1u << BR_PROJ_DOWN, true, 2));
    if (!a || !c) return;
    br_rng_t rng;
    br_rng_seed(&rng, 3);
    randomize(a, &rng);
    randomize(c, &rng);
    CHECK_OK(br_lora_alloc_grads(a));
    CHECK_OK(br_lora_alloc_grads(c));
    const br_lora_adapter_t *rows[N] = {a, c, a, a, NULL, c, a}; /* scattered + lone + contiguous */
    size_t C = s.in[BR_PROJ_DOWN], OC = s.out[BR_PROJ_DOWN];
    float *x = malloc(N * C * sizeof(float)), *g = malloc(N * OC * sizeof(float));
    float *dx = calloc(N * C, sizeof(float));
    br_rng_fill_normal(&rng, x, N * C, 1.0f);
    br_rng_fill_normal(&rng, g, N * OC, 1.0f);
    br_lora_batch_t *b = NULL;
    CHECK_OK(br_lora_batch_create(&b));
    CHECK_OK(br_lora_batch_set(b, rows, N));
    br_lora_hook_t h = br_lora_batch_hook(b);
    h.backward(&h, dx, g, x, N, C, OC, 1, BR_PROJ_DOWN);
    /* layer 0 has the module too but is not touched */
    double untouched = 0;
    const br_lora_module_t *m0 = br_lora_module(a, 0, BR_PROJ_DOWN);
    for (size_t i = 0; i < 3 * C; i++) untouched = fmax(untouched, fabs(m0->dA[i]));
    CHECK(untouched == 0);

    const float eps = 1e-2f;
    double worst = 0;
    br_lora_adapter_t *ads[2] = {a, c};
    for (int k = 0; k < 2; k++) {
        br_lora_module_t *m = &ads[k]->mods[1 * BR_PROJ_COUNT + BR_PROJ_DOWN];
        float *ps[2] = {m->A, m->B}, *gs[2] = {m->dA, m->dB};
        size_t ns[2] = {(size_t)m->rank * C, OC * (size_t)m->rank};
        for (int t = 0; t < 2; t++)
            for (size_t i = 0; i < ns[t]; i += 5) {
                float keep = ps[t][i];
                ps[t][i] = keep + eps;
                double lp = loss_of(&h, x, g, N, C, OC);
                ps[t][i] = keep - eps;
                double lm = loss_of(&h, x, g, N, C, OC);
                ps[t][i] = keep;
                double fd = (lp - lm) / (2 * eps);
                double rel = fabs(fd - gs[t][i]) / fmax(1.0, fabs(fd));
                worst = fmax(worst, rel);
            }
    }
    for (size_t i = 0; i < N * C; i += 3) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss_of(&h, x, g, N, C, OC);
        x[i] = keep - eps;
        double lm = loss_of(&h, x, g, N, C, OC);
        x[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - dx[i]) / fmax(1.0, fabs(fd)));
    }
    CHECK_MSG(worst < 2e-3, "LoRA backward vs finite differences: worst rel err %g", worst);
    /* zero_grads clears */
    br_lora_zero_grads(a);
    CHECK(a->grads[0] == 0 && a->grads[a->n_params - 1] == 0);
    free(x); free(g); free(dx);
    br_lora_batch_free(b);
    br_lora_free(a);
    br_lora_free(c);
}

/* Run-time loads (BR_OPEN_NOFOLLOW) read neither file through a symbolic link; plain loads
 * follow links (a Hugging Face cache folder is made of them), and a no-follow load of the real
 * files works. */
static void test_nofollow(void)
{
    br_lora_shapes_t s = fixture_shapes();
    char dir[] = "/tmp/braid_lora_link_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK_MSG(false, "mkdtemp failed");
        return;
    }
    char cwd[1024], src[1200], lnk[1200], real[1200];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    const char *files[2] = {"adapter_config.json", "adapter_model.safetensors"};
    for (int linked = 0; linked < 2; linked++) {
        /* folder a: both files links into the fixture except file `linked` ... */
        char sub[600];
        snprintf(sub, sizeof sub, "%s/a%d", dir, linked);
        CHECK(mkdir(sub, 0755) == 0);
        for (int f = 0; f < 2; f++) {
            snprintf(src, sizeof src, "%s/tests/ref/lora_peft/%s", cwd, files[f]);
            snprintf(lnk, sizeof lnk, "%s/%s", sub, files[f]);
            if (f == linked) {
                CHECK(symlink(src, lnk) == 0);
            } else {
                char *data;
                size_t n;
                CHECK_OK(br_read_file(src, &data, &n));
                CHECK_OK(br_write_file_atomic(lnk, data, n));
                free(data);
            }
        }
        br_lora_adapter_t *a = NULL;
        CHECK_OK(br_lora_load(&a, sub, &s));
        br_lora_free(a);
        a = NULL;
        br_status st = br_lora_load_flags(&a, sub, &s, BR_OPEN_NOFOLLOW);
        CHECK_MSG(st == BR_EINVAL && !a, "%s through a link: %s (%s)", files[linked], br_status_name(st), br_errmsg());
        CHECK(strstr(br_errmsg(), "symbolic link") != NULL);
        br_lora_free(a);
    }
    /* the real files, no links: loads with the flag, same parameters as the plain load */
    snprintf(real, sizeof real, "%s/copy", dir);
    br_lora_adapter_t *a = NULL, *b = NULL;
    CHECK_OK(br_lora_load(&a, "tests/ref/lora_peft", &s));
    if (a) CHECK_OK(br_lora_save(a, real));
    CHECK_OK(br_lora_load_flags(&b, real, &s, BR_OPEN_NOFOLLOW));
    CHECK(a && b && a->n_params == b->n_params && !memcmp(a->params, b->params, a->n_params * sizeof(float)));
    br_lora_free(a);
    br_lora_free(b);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_peft_fixture();
    test_validation();
    test_batched();
    test_backward();
    test_nofollow();
    return th_exit();
}
