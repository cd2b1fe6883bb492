/* nn/ layers against per-layer PyTorch references (tests/ref/nn_ref.json, written by
 * tests/ref/gen_nn_ref.py from Hugging Face Llama's formulas and torch autograd): RMSNorm,
 * RoPE (rotate_half, per-row positions), causal GQA attention (repeat_kv), SwiGLU and
 * cross-entropy with an ignored row.  Forward outputs and every gradient, float build. */
#include <jansson.h>
#include <stdlib.h>

#include "harness.h"
#include "nn/nn.h"

static json_t *ref;

/* The array `name` as floats (caller frees); *n its length. */
static float *arr(const char *name, size_t *n)
{
    json_t *a = json_object_get(ref, name);
    size_t len = json_array_size(a);
    if (n) *n = len;
    float *x = calloc(len ? len : 1, sizeof *x);
    for (size_t i = 0; i < len; i++) x[i] = (float)json_number_value(json_array_get(a, i));
    return x;
}

/* max |got - want| / max(max |want|, 1e-6) <= tol, reporting the worst element. */
static void cmp(const char *what, const float *got, const char *want_name, size_t n, double tol)
{
    size_t nw;
    float *want = arr(want_name, &nw);
    CHECK_MSG(nw == n, "%s: reference '%s' has %zu values, expected %zu", what, want_name, nw, n);
    double maxw = 1e-6, maxd = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n && i < nw; i++) {
        maxw = fmax(maxw, fabs(want[i]));
        double d = fabs((double)got[i] - want[i]);
        if (d > maxd) maxd = d, wi = i;
    }
    CHECK_MSG(maxd / maxw <= tol, "%s vs PyTorch: rel err %.3g > %.1g (worst element %zu: %.8g vs "
              "%.8g)", what, maxd / maxw, tol, wi, nw ? got[wi] : 0.0, nw ? want[wi] : 0.0);
    free(want);
}

#define TOL 2e-6

static void test_rmsnorm(void)
{
    size_t N = 3, C = 8;
    float *x = arr("rms_x", NULL), *w = arr("rms_w", NULL), *g = arr("rms_g", NULL);
    float *y = calloc(N * C, 4), *rs = calloc(N, 4), *dx = calloc(N * C, 4), *dw = calloc(C, 4);
    br_rmsnorm_forward(y, rs, x, w, 1e-5f, N, C);
    br_rmsnorm_backward(dx, dw, g, x, w, rs, N, C);
    cmp("rmsnorm out", y, "rms_y", N * C, TOL);
    cmp("rmsnorm dinp", dx, "rms_dx", N * C, TOL);
    cmp("rmsnorm dw", dw, "rms_dw", C, TOL);
    free(x), free(w), free(g), free(y), free(rs), free(dx), free(dw);
}

static void test_rope(void)
{
    size_t N = 4, H = 2, hd = 8, maxpos = 16, n;
    json_t *jp = json_object_get(ref, "rope_pos");
    int32_t pos[4];
    for (size_t i = 0; i < N; i++) pos[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    float *cs = malloc(maxpos * hd / 2 * 4), *sn = malloc(maxpos * hd / 2 * 4);
    br_rope_tables(cs, sn, maxpos, hd, 10000.0f);
    float *x = arr("rope_x", &n), *g = arr("rope_g", NULL);
    br_rope_forward(x, pos, cs, sn, N, H, hd);
    br_rope_backward(g, pos, cs, sn, N, H, hd);
    /* float32 angles as in transformers: ~pos * 2^-24 relative error in cos/sin */
    cmp("rope out", x, "rope_y", n, 1e-5);
    cmp("rope dx", g, "rope_dx", n, 1e-5);
    free(cs), free(sn), free(x), free(g);
}

static void test_attention(void)
{
    size_t B = 2, T = 6, NH = 4, NKV = 2, hd = 4, nq = B * T * NH * hd, nk = B * T * NKV * hd;
    float *q = arr("att_q", NULL), *k = arr("att_k", NULL), *v = arr("att_v", NULL);
    float *g = arr("att_g", NULL), *o = calloc(nq, 4), *att = calloc(B * NH * T * T, 4);
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    br_attention_forward(o, att, q, k, v, B, T, NH, NKV, hd);
    br_attention_backward(dq, dk, dv, g, att, q, k, v, B, T, NH, NKV, hd);
    cmp("attention out", o, "att_out", nq, TOL);
    cmp("attention probabilities", att, "att_p", B * NH * T * T, TOL);
    cmp("attention dq", dq, "att_dq", nq, TOL);
    cmp("attention dk", dk, "att_dk", nk, TOL);
    cmp("attention dv", dv, "att_dv", nk, TOL);
    free(q), free(k), free(v), free(g), free(o), free(att), free(dq), free(dk), free(dv);
}

static void test_swiglu(void)
{
    size_t n;
    float *gate = arr("swi_gate", &n), *up = arr("swi_up", NULL), *g = arr("swi_g", NULL);
    float *y = calloc(n, 4), *dg = calloc(n, 4), *du = calloc(n, 4);
    br_swiglu_forward(y, gate, up, n);
    br_swiglu_backward(dg, du, g, gate, up, n);
    cmp("swiglu out", y, "swi_y", n, TOL);
    cmp("swiglu dgate", dg, "swi_dgate", n, TOL);
    cmp("swiglu dup", du, "swi_dup", n, TOL);
    free(gate), free(up), free(g), free(y), free(dg), free(du);
}

static void test_xent(void)
{
    size_t N = 4, V = 9;
    json_t *jt = json_object_get(ref, "xe_targets");
    int32_t tg[4];
    size_t count = 0;
    for (size_t i = 0; i < N; i++) {
        tg[i] = (int32_t)json_integer_value(json_array_get(jt, i));
        count += tg[i] >= 0;
    }
    float *lg = arr("xe_logits", NULL), *ls = calloc(N, 4), *d = calloc(N * V, 4);
    float mean = br_xent_fused(ls, d, lg, tg, 1.0f / (float)count, N, V);
    CHECK_REL(mean, json_number_value(json_object_get(ref, "xe_loss")), 1e-6, 1e-6);
    cmp("xent fused dlogits", d, "xe_dlogits", N * V, TOL);
    free(lg), free(ls), free(d);
}

int main(void)
{
    json_error_t err;
    ref = json_load_file("tests/ref/nn_ref.json", 0, &err);
    if (!ref) {
        CHECK_MSG(false, "tests/ref/nn_ref.json: %s (line %d); regenerate with "
                  "/usr/bin/python3 tests/ref/gen_nn_ref.py", err.text, err.line);
        return th_exit();
    }
    test_rmsnorm();
    test_rope();
    test_attention();
    test_swiglu();
    test_xent();
    json_decref(ref);
    return th_exit();
}
