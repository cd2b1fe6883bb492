#include "rl/learners.h"

#include <string.h>

void br_qlearner_init(br_qlearner_t *l, double q0, double epsilon, double alpha)
{
    l->q[0] = l->q[1] = q0;
    l->epsilon = epsilon;
    l->alpha = alpha;
}

br_status br_learner_parse(const char *name, br_learner_kind *out)
{
    if (name && !strcmp(name, "naive")) *out = BR_LEARNER_NAIVE;
    else if (name && !strcmp(name, "lola")) *out = BR_LEARNER_LOLA;
    else return br_error(BR_EINVAL, "unknown learner '%s' (known: naive, lola)", name ? name : "");
    return BR_OK;
}

void br_m1_learner_step(br_learner_kind kind, double *th_p, const double *th_other, int p,
                        const br_game_t *g, double gamma, double lr, double lr_other)
{
    /* br_iterated_* take (th0, th1) in player order. */
    const double *t0 = p == 0 ? th_p : th_other, *t1 = p == 0 ? th_other : th_p;
    double gs[5], go[5], dother[5];
    br_iterated_value_grad(NULL, gs, g, p, p, t0, t1, gamma);
    if (kind == BR_LEARNER_LOLA) {
        br_iterated_value_grad(NULL, dother, g, p, 1 - p, t0, t1, gamma);
        /* dV_me/dth_other (= dother) times the mixed Hessian of the other's value. */
        double h[25];
        br_iterated_mixed_hessian(h, g, 1 - p, t0, t1, gamma);
        memcpy(go, dother, sizeof go);
        for (int i = 0; i < 5; i++) {
            double acc = 0;
            for (int j = 0; j < 5; j++)
                acc += p == 0 ? h[i * 5 + j] * go[j] : h[j * 5 + i] * go[j];
            gs[i] += lr_other * acc;
        }
    }
    for (int i = 0; i < 5; i++) th_p[i] += lr * gs[i];
}
