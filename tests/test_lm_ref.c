/* The dense model against PyTorch (tests/ref/gen_llama_ref.py): logits, loss, every parameter
 * gradient and four AdamW steps, for a sequential GQA model with an untied head and a parallel
 * tied one; plus loading the same weights stored as BF16. */
#include <stdlib.h>

#include "base/dtype.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lm/model.h"

/* max |a-b| <= rtol * max|ref| + atol over the tensor; prints the worst element. */
static void compare(const char *what, const float *got, const float *ref, size_t n, double rtol,
                    double atol)
{
    double maxref = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) maxref = fmax(maxref, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= worst) || isnan(got[i])) {
            worst = isnan(got[i]) ? INFINITY : e;
            wi = i;
        }
    }
    double tol = rtol * maxref + atol;
    CHECK_MSG(worst <= tol, "%s: max error %.3g at [%zu] (got %.8g, torch %.8g; tol %.3g, max|ref| %.3g)",
              what, worst, wi, got[wi], ref[wi], tol, maxref);
}

static float *read_ref(const br_safetensors_t *st, const char *name, size_t *n)
{
    const br_st_tensor_t *t = br_st_find(st, name);
    if (!t) {
        CHECK_MSG(0, "reference tensor %s missing", name);
        return NULL;
    }
    float *p = malloc(t->numel * sizeof(float) + 4);
    if (br_st_read_f32(t, p, t->numel)) {
        free(p);
        return NULL;
    }
    if (n) *n = t->numel;
    return p;
}

static int32_t *read_ids(const br_safetensors_t *st, const char *name, size_t *B, size_t *T)
{
    const br_st_tensor_t *t = br_st_find(st, name);
    if (!t || t->dtype != BR_DT_I32 || t->ndim != 2) {
        CHECK_MSG(0, "reference tensor %s missing or not I32 (B,T)", name);
        return NULL;
    }
    *B = (size_t)t->shape[0];
    *T = (size_t)t->shape[1];
    int32_t *p = malloc(t->numel * sizeof(int32_t));
    memcpy(p, t->data, t->numel * sizeof(int32_t));
    return p;
}

static void run_case(const char *dir)
{
    char path[512];
    br_model_t *m = NULL;
    br_safetensors_t *ref = NULL;
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    CHECK_OK(br_st_open(&ref, path));
    CHECK_OK(br_model_load(&m, dir, true));
    if (!m || !ref) return;
    size_t B, T, T2, B2;
    int32_t *in = read_ids(ref, "inputs", &B, &T), *tg = read_ids(ref, "targets", &B2, &T2);
    size_t V = (size_t)m->cfg.vocab_size, n;
    char what[256];

    /* logits */
    float *logits = malloc(B * T * V * sizeof(float));
    float *rl = read_ref(ref, "logits", &n);
    CHECK_OK(br_model_forward_logits(m, in, B, T, NULL, logits));
    CHECK_INT(n, B * T * V);
    snprintf(what, sizeof what, "%s logits", dir);
    compare(what, logits, rl, B * T * V, 2e-5, 1e-6);

    /* loss and every gradient */
    float loss = 0, *rloss = read_ref(ref, "loss", NULL);
    br_model_zero_grad(m);
    br_train_opts_t o = {NULL, true, 1.0f, false};
    CHECK_OK(br_model_train_step(m, in, tg, B, T, &o, &loss));
    CHECK_NEAR(loss, rloss[0], 2e-5);
    size_t ngrads = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        snprintf(path, sizeof path, "grad.%s", t->name);
        float *g = read_ref(ref, path, &n);
        if (!g) continue;
        CHECK_INT(n, t->numel);
        snprintf(what, sizeof what, "%s gradient of %s", dir, t->name);
        compare(what, m->grads + t->offset, g, t->numel, 3e-5, 1e-8);
        ngrads++;
        free(g);
    }
    CHECK_INT(ngrads, m->n_tensors);

    /* forward_loss agrees with the training loss */
    float *losses = malloc(B * T * sizeof(float)), mean = 0;
    CHECK_OK(br_model_forward_loss(m, in, tg, B, T, NULL, losses, &mean));
    CHECK_NEAR(mean, rloss[0], 2e-5);

    /* AdamW: losses of 4 steps on the same batch */
    float *rsteps = read_ref(ref, "adamw_losses", &n);
    br_adamw_opts_t ao = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    for (size_t s = 0; s < n; s++) {
        br_model_zero_grad(m);
        CHECK_OK(br_model_train_step(m, in, tg, B, T, &o, &loss));
        CHECK_NEAR(loss, rsteps[s], 1e-4);
        CHECK_OK(br_model_adamw(m, &ao, NULL));
    }
    CHECK_INT(m->step, (long)n);

    /* the same weights stored as BF16 load as the rounded values */
    br_model_t *mb = NULL, *mf = NULL;
    CHECK_OK(br_model_load(&mf, dir, false));
    CHECK_OK(br_model_create(&mb, &mf->cfg, false));
    snprintf(path, sizeof path, "%s/model_bf16.safetensors", dir);
    CHECK_OK(br_model_load_weights(mb, path));
    size_t bad = 0;
    for (size_t i = 0; i < mf->n_params; i++)
        bad += mb->params[i] != br_bf16_to_f32(br_f32_to_bf16(mf->params[i]));
    CHECK_MSG(bad == 0, "%s: %zu BF16 parameters differ from the rounded F32 ones", dir, bad);

    br_model_free(mb);
    br_model_free(mf);
    free(rsteps);
    free(losses);
    free(rloss);
    free(rl);
    free(logits);
    free(in);
    free(tg);
    br_model_free(m);
    br_st_close(ref);
}

int main(void)
{
    run_case("tests/ref/llama_tiny");
    run_case("tests/ref/llama_tiny_par");
    return th_exit();
}
