/* GRU cell and ReLU MLP: finite-difference gradient checks (loss = sum(c * output), BPTT over
 * three GRU steps) and the GRU against PyTorch's nn.GRUCell (tests/ref/gru_ref.py). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/rng.h"
#include "harness.h"
#include "nn/gru.h"
#include "nn/mlp.h"

enum { N = 3, C = 4, H = 5, T = 3 };

typedef struct {
    float w_ih[3 * H * C], w_hh[3 * H * H], b_ih[3 * H], b_hh[3 * H];
    float x[T][N * C], h0[N * H];
} gru_in_t;

/* forward over T steps; returns sum(c * h_T) in double; saves h[t], gates[t] */
static double gru_loss(const gru_in_t *p, const float *c, float h[T + 1][N * H],
                       float gates[T][N * 4 * H])
{
    float scratch[N * 6 * H];
    memcpy(h[0], p->h0, sizeof p->h0);
    for (int t = 0; t < T; t++)
        br_gru_forward(h[t + 1], gates[t], p->x[t], h[t], p->w_ih, p->w_hh, p->b_ih, p->b_hh,
                       scratch, N, C, H);
    double L = 0;
    for (int i = 0; i < N * H; i++) L += (double)c[i] * h[T][i];
    return L;
}

static void test_gru_fd(void)
{
    br_rng_t r;
    br_rng_seed(&r, 3);
    gru_in_t p, g;
    br_rng_fill_uniform(&r, (float *)&p, sizeof p / sizeof(float), -0.8f, 0.8f);
    float c[N * H];
    br_rng_fill_uniform(&r, c, N * H, -1, 1);
    float h[T + 1][N * H], gates[T][N * 4 * H], scratch[N * 6 * H];
    gru_loss(&p, c, h, gates);
    memset(&g, 0, sizeof g);
    float dh[N * H], dprev[N * H];
    memcpy(dh, c, sizeof dh);
    for (int t = T - 1; t >= 0; t--) {
        memset(dprev, 0, sizeof dprev);
        br_gru_backward(g.x[t], dprev, g.w_ih, g.w_hh, g.b_ih, g.b_hh, dh, gates[t], p.x[t], h[t],
                        p.w_ih, p.w_hh, scratch, N, C, H);
        memcpy(dh, dprev, sizeof dh);
    }
    memcpy(g.h0, dh, sizeof dh);
    /* central differences on every input and parameter */
    float *pp = (float *)&p, *gg = (float *)&g;
    size_t n = sizeof p / sizeof(float);
    int bad = 0;
    double worst = 0;
    const float eps = 1e-2f;
    for (size_t k = 0; k < n; k++) {
        float keep = pp[k];
        pp[k] = keep + eps;
        double lp = gru_loss(&p, c, h, gates);
        pp[k] = keep - eps;
        double lm = gru_loss(&p, c, h, gates);
        pp[k] = keep;
        double fd = (lp - lm) / (2 * eps), err = fabs(fd - gg[k]) / fmax(fabs(fd), 1e-2);
        if (err > worst) worst = err;
        bad += err > 2e-3;
    }
    CHECK_MSG(bad == 0, "GRU: %d of %zu gradients off (worst rel err %.3g)", bad, n, worst);
}

/* reads "name n v..." lines of tests/ref/gru_ref.txt */
static int ref_get(const char *text, const char *name, double *out, int want)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *s = strstr(text, key);
    if (!s) return 0;
    char *end;
    long n = strtol(s + strlen(key), &end, 10);
    if (n != want) return 0;
    for (long i = 0; i < n; i++) out[i] = strtod(end, &end);
    return 1;
}

static void test_gru_torch(void)
{
    FILE *f = fopen("tests/ref/gru_ref.txt", "rb");
    if (!f) {
        CHECK_MSG(0, "tests/ref/gru_ref.txt missing (run tests from the repository root)");
        return;
    }
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    double d[3 * H * H];
    float w_ih[3 * H * C], w_hh[3 * H * H], b_ih[3 * H], b_hh[3 * H], x1[N * C], x2[N * C],
        h0[N * H], c[N * H];
    struct { const char *name; float *dst; int n; } in[] = {
        {"w_ih", w_ih, 3 * H * C}, {"w_hh", w_hh, 3 * H * H}, {"b_ih", b_ih, 3 * H},
        {"b_hh", b_hh, 3 * H},     {"x1", x1, N * C},         {"x2", x2, N * C},
        {"h0", h0, N * H},         {"c", c, N * H}};
    for (size_t k = 0; k < sizeof in / sizeof *in; k++) {
        CHECK(ref_get(text, in[k].name, d, in[k].n));
        for (int i = 0; i < in[k].n; i++) in[k].dst[i] = (float)d[i];
    }
    float h1[N * H], h2[N * H], g1[N * 4 * H], g2[N * 4 * H], scratch[N * 6 * H];
    br_gru_forward(h1, g1, x1, h0, w_ih, w_hh, b_ih, b_hh, scratch, N, C, H);
    br_gru_forward(h2, g2, x2, h1, w_ih, w_hh, b_ih, b_hh, scratch, N, C, H);
    float dw_ih[3 * H * C] = {0}, dw_hh[3 * H * H] = {0}, db_ih[3 * H] = {0}, db_hh[3 * H] = {0};
    float dx1[N * C] = {0}, dx2[N * C] = {0}, dh1[N * H] = {0}, dh0[N * H] = {0};
    br_gru_backward(dx2, dh1, dw_ih, dw_hh, db_ih, db_hh, c, g2, x2, h1, w_ih, w_hh, scratch, N,
                    C, H);
    br_gru_backward(dx1, dh0, dw_ih, dw_hh, db_ih, db_hh, dh1, g1, x1, h0, w_ih, w_hh, scratch, N,
                    C, H);
    struct { const char *name; const float *got; int n; } outs[] = {
        {"h1", h1, N * H},        {"h2", h2, N * H},          {"dw_ih", dw_ih, 3 * H * C},
        {"dw_hh", dw_hh, 3 * H * H}, {"db_ih", db_ih, 3 * H}, {"db_hh", db_hh, 3 * H},
        {"dx1", dx1, N * C},      {"dx2", dx2, N * C},        {"dh0", dh0, N * H}};
    for (size_t k = 0; k < sizeof outs / sizeof *outs; k++) {
        CHECK(ref_get(text, outs[k].name, d, outs[k].n));
        double worst = 0;
        for (int i = 0; i < outs[k].n; i++) worst = fmax(worst, fabs(d[i] - outs[k].got[i]));
        CHECK_MSG(worst < 1e-5, "GRU vs torch: %s max abs diff %.3g", outs[k].name, worst);
    }
}

static void test_mlp_fd(void)
{
    br_mlp_t m;
    int sizes[4] = {5, 7, 6, 3};
    br_mlp_init(&m, 3, sizes);
    CHECK_INT(m.n_params, 7 * 6 + 6 * 8 + 3 * 7);
    br_rng_t r;
    br_rng_seed(&r, 5);
    enum { NR = 4 };
    float *p = calloc(m.n_params, sizeof(float)), *g = calloc(m.n_params, sizeof(float));
    br_mlp_init_params(&m, p, &r);
    float x[NR * 5], dx[NR * 5] = {0}, c[NR * 3], dout[NR * 3];
    br_rng_fill_uniform(&r, x, NR * 5, -1, 1);
    br_rng_fill_uniform(&r, c, NR * 3, -1, 1);
    float *acts = calloc(br_mlp_acts_size(&m, NR), sizeof(float));
    float *scratch = calloc(2 * NR * m.max_width, sizeof(float));
    br_mlp_forward(&m, p, acts, x, NR);
    memcpy(dout, c, sizeof dout);
    br_mlp_backward(&m, p, g, dx, acts, x, dout, scratch, NR);
    int bad = 0;
    double worst = 0;
    const float eps = 1e-3f;
    for (size_t k = 0; k < m.n_params + NR * 5; k++) {
        float *v = k < m.n_params ? &p[k] : &x[k - m.n_params];
        float an = k < m.n_params ? g[k] : dx[k - m.n_params], keep = *v;
        double l[2];
        for (int s = 0; s < 2; s++) {
            *v = keep + (s ? -eps : eps);
            float *y = br_mlp_forward(&m, p, acts, x, NR);
            l[s] = 0;
            for (int i = 0; i < NR * 3; i++) l[s] += (double)c[i] * y[i];
        }
        *v = keep;
        double fd = (l[0] - l[1]) / (2 * eps), err = fabs(fd - an) / fmax(fabs(fd), 1e-2);
        if (err > worst) worst = err;
        bad += err > 5e-3;
    }
    CHECK_MSG(bad == 0, "MLP: %d gradients off (worst rel err %.3g)", bad, worst);
    free(p), free(g), free(acts), free(scratch);
}

int main(void)
{
    test_gru_fd();
    test_gru_torch();
    test_mlp_fd();
    return th_exit();
}
