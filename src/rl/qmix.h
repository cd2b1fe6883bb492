/* Value-decomposition mixers: Q_tot from the agents' chosen Q values and the global state.
 *   VDN  (Sunehag et al. 2018):  Q_tot = sum_i Q_i  (no parameters)
 *   QMIX (Rashid et al. 2018), pymarl's single-layer hypernetworks, embed E:
 *     W1 = |s Hw1^T + hb1|  (n, E)       b1 = s Hb1^T + bb1  (E)
 *     Wf = |s Hwf^T + hbf|  (E)          V  = relu(s Hv1^T + bv1) Hv2^T + bv2
 *     Q_tot = elu(q W1 + b1) . Wf + V
 *   The absolute values keep every mixing weight >= 0, so dQ_tot/dQ_i >= 0 (monotonic).
 * Backward ADDS into dparams and dq.  Gradient checks: tests/test_rl_marco_learn.c. */
#ifndef BR_RL_QMIX_H
#define BR_RL_QMIX_H
#include <stddef.h>
#include "base/rng.h"

typedef enum { BR_MIXER_VDN, BR_MIXER_QMIX } br_mixer_kind;

typedef struct {
    br_mixer_kind kind;
    int n, sd, E;     /* agents, state dim, embed (QMIX) */
    size_t n_params;  /* 0 for VDN */
    size_t saved_per_row;
} br_mixer_t;

void br_mixer_init(br_mixer_t *m, br_mixer_kind kind, int n_agents, int state_dim, int embed);
void br_mixer_init_params(const br_mixer_t *m, float *params, br_rng_t *rng);
/* qtot (N) from q (N,n) and s (N,sd); saved (N, saved_per_row) for backward (may be NULL
 * when no backward follows).  scratch: N * (n*E + 3E + 1) floats. */
void br_mixer_forward(const br_mixer_t *m, const float *params, float *qtot, float *saved,
                      const float *q, const float *s, float *scratch, size_t N);
/* dparams +=, dq (N,n) +=, from dqtot (N).  scratch: N * (n*E + 3E + 1) floats. */
void br_mixer_backward(const br_mixer_t *m, const float *params, float *dparams, float *dq,
                       const float *dqtot, const float *saved, const float *q, const float *s,
                       float *scratch, size_t N);
/* The QMIX mixing weights W1 (N,n,E) and Wf (N,E) for states s (for tests and inspection). */
void br_mixer_weights(const br_mixer_t *m, const float *params, float *w1, float *wf,
                      const float *s, size_t N);
#endif
