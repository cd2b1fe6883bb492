/* Inner learners: the co-players an opponent-shaping agent tries to steer.
 *
 * - Stateless epsilon-greedy Q-learner (the R-FOS reference opponent): Q (2) starts at q0; it
 *   plays argmax Q (ties: action 0) with probability 1 - epsilon, else a uniform action; after
 *   reward r for action a: Q[a] <- alpha r + (1 - alpha) Q[a]  (reference: alpha 0.75).
 * - Naive gradient learner on memory-1 policies: th <- th + lr * dV_self/dth (exact gradient).
 * - LOLA (Foerster et al. 2018, the Taylor form): th_me <- th_me + lr * (dV_me/dth_me
 *   + lr_other * (dV_me/dth_other)^T d^2 V_other / dth_me dth_other), with every term exact. */
#ifndef BR_RL_LEARNERS_H
#define BR_RL_LEARNERS_H
#include <stdint.h>
#include "rl/games.h"

typedef struct {
    double q[2];
    double epsilon, alpha;
} br_qlearner_t;

void br_qlearner_init(br_qlearner_t *l, double q0, double epsilon, double alpha);
/* The action for uniforms u_explore, u_action in [0,1). */
static inline int br_qlearner_act(const br_qlearner_t *l, double u_explore, double u_action)
{
    int greedy = l->q[1] > l->q[0];
    return u_explore < l->epsilon ? (u_action < 0.5 ? 0 : 1) : greedy;
}
static inline void br_qlearner_update(br_qlearner_t *l, int a, double r)
{
    l->q[a] = l->alpha * r + (1 - l->alpha) * l->q[a];
}

/* Which memory-1 learner. */
typedef enum { BR_LEARNER_NAIVE, BR_LEARNER_LOLA } br_learner_kind;
/* "naive" | "lola" -> kind; BR_EINVAL naming the choices otherwise. */
br_status br_learner_parse(const char *name, br_learner_kind *out);

/* One update of player `p`'s memory-1 logits th[p] (5) against the other's, in place.
 * lr: its step size; lr_other: the step size it assumes for the other player (LOLA only). */
void br_m1_learner_step(br_learner_kind kind, double *th_p, const double *th_other, int p,
                        const br_game_t *g, double gamma, double lr, double lr_other);
#endif
