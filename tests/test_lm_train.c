/* Loss falls clearly on real English: byte-level ids of the license texts every Debian system
 * ships (/usr/share/common-licenses), a tiny GQA model, a short AdamW run with warmup and
 * cosine decay.  Held-out text (the last 10% of each file) must get a much lower loss than the
 * untrained model's ln(256) = 5.55 and lower than a unigram byte model's entropy. */
#include <dirent.h>
#include <stdlib.h>

#include "base/fileio.h"
#include "base/rng.h"
#include "harness.h"
#include "base/threads.h"
#include "lm/model.h"

static unsigned char *load_corpus(size_t *n_train, size_t *n_val, unsigned char **val)
{
    const char *dir = "/usr/share/common-licenses";
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t cap = 1 << 20, nt = 0, nv = 0;
    unsigned char *tr = malloc(cap), *va = malloc(cap);
    const char *names[] = {"GPL-3", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "Artistic", "GFDL-1.3"};
    closedir(d);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[512], *text;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (br_read_file(path, &text, &len)) continue;
        size_t cut = len - len / 10;
        if (nt + cut < cap && nv + len - cut < cap) {
            memcpy(tr + nt, text, cut);
            nt += cut;
            memcpy(va + nv, text + cut, len - cut);
            nv += len - cut;
        }
        free(text);
    }
    *n_train = nt;
    *n_val = nv;
    *val = va;
    return tr;
}

int main(void)
{
    size_t nt, nv;
    unsigned char *val = NULL, *train = load_corpus(&nt, &nv, &val);
    if (!train || nt < 100000 || nv < 10000) {
        SKIP("/usr/share/common-licenses not available");
        free(train);
        free(val);
        return th_exit();
    }
    /* one thread: this test shares 2 cores with the rest of `make test` */
    br_set_threads(1);
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 256;
    c.hidden_size = 64;
    c.intermediate_size = 176;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 64;
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, true));
    br_model_init_random(m, 42);
    enum { B = 16, T = 64, STEPS = 150, VB = 16 };
    int32_t *in = malloc(B * T * sizeof(int32_t)), *tg = malloc(B * T * sizeof(int32_t));
    float *losses = malloc(VB * T * sizeof(float));
    br_rng_t r;
    br_rng_seed(&r, 1);

    /* unigram entropy of the training bytes (nats): a model that learned nothing about
     * context cannot go below it */
    double cnt[256] = {0}, H = 0;
    for (size_t i = 0; i < nt; i++) cnt[train[i]]++;
    for (int i = 0; i < 256; i++)
        if (cnt[i]) H -= cnt[i] / nt * log(cnt[i] / nt);

    /* fixed validation windows */
    int32_t *vin = malloc(VB * T * sizeof(int32_t)), *vtg = malloc(VB * T * sizeof(int32_t));
    for (size_t b = 0; b < VB; b++) {
        size_t s = b * ((nv - T - 1) / VB);
        for (size_t t = 0; t < T; t++) {
            vin[b * T + t] = val[s + t];
            vtg[b * T + t] = val[s + t + 1];
        }
    }
    float v0, v1, loss = 0, first = 0;
    CHECK_OK(br_model_forward_loss(m, vin, vtg, VB, T, NULL, losses, &v0));
    br_adamw_opts_t o = {0, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    for (long step = 0; step < STEPS; step++) {
        for (size_t b = 0; b < B; b++) {
            size_t s = br_rng_below(&r, nt - T - 1);
            for (size_t t = 0; t < T; t++) {
                in[b * T + t] = train[s + t];
                tg[b * T + t] = train[s + t + 1];
            }
        }
        br_model_zero_grad(m);
        CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &loss));
        if (step == 0) first = loss;
        o.lr = br_lr_cosine(step, 10, STEPS, 1e-2f, 1e-3f);
        CHECK_OK(br_model_adamw(m, &o, NULL));
    }
    CHECK_OK(br_model_forward_loss(m, vin, vtg, VB, T, NULL, losses, &v1));
    printf("byte-level LM on %zu bytes of license text: train loss %.3f -> %.3f, held-out %.3f -> %.3f "
           "(unigram entropy %.3f nats)\n", nt, first, loss, v0, v1, H);
    CHECK_NEAR(v0, log(256.0), 0.3);
    CHECK_MSG(v1 < H - 0.3, "held-out loss %.3f is not clearly below the unigram entropy %.3f", v1, H);
    CHECK_MSG(v1 < v0 - 2.5, "held-out loss fell only from %.3f to %.3f", v0, v1);
    free(in);
    free(tg);
    free(vin);
    free(vtg);
    free(losses);
    free(train);
    free(val);
    br_model_free(m);
    return th_exit();
}
