/* Two-player 2x2 matrix games as data, and exact values of iterated games between two
 * memory-1 policies.
 *
 * Actions are 0 and 1 (0 = cooperate / heads / stag / swerve ...).  payoff[p][a1][a2] is
 * player p's payoff when the row player (the shaper, player 0) plays a1 and the column player
 * (player 1) plays a2.
 *
 * Memory-1 policies (the LOLA / M-FOS parameterisation): 5 logits theta; sigmoid(theta[0]) is
 * the probability of action 0 in the first round, sigmoid(theta[1 + s]) the probability of
 * action 0 after joint outcome s, where s = 2 * own_last + other_last (so each player sees the
 * outcome from its own side: player 1's "CD" is player 0's "DC").  The discounted per-step
 * value is V_p = (1 - gamma) * sum_t gamma^t E[r_p(t)] = (1 - gamma) x0^T (I - gamma M)^-1 r_p,
 * computed by a 4x4 linear solve. */
#ifndef BR_RL_GAMES_H
#define BR_RL_GAMES_H
#include <stddef.h>
#include "base/status.h"

typedef struct {
    const char *name;       /* "matching-pennies", "ipd", ... */
    const char *aliases;    /* comma separated other names */
    double payoff[2][2][2]; /* [player][a1][a2] */
} br_game_t;

/* Looks a game up by name or alias.  BR_ENOTFOUND with the list of known names otherwise. */
br_status br_game_find(const char *name, const br_game_t **out);
/* All games (for --help and tests). */
const br_game_t *br_game_list(size_t *n);
/* "matching-pennies, ipd, ..." (static buffer). */
const char *br_game_names(void);

/* Number of memory-1 logits. */
#define BR_M1_PARAMS 5

/* Exact discounted per-step values v[2] of two memory-1 policies (5 logits each).
 * BR_EINVAL when gamma is not in [0, 1). */
br_status br_iterated_values(double v[2], const br_game_t *g, const double th0[5],
                             const double th1[5], double gamma);

/* Exact gradients of player p's value: d0 (5) = dV_p/dth0, d1 (5) = dV_p/dth1 (either NULL). */
void br_iterated_grad(double *d0, double *d1, const br_game_t *g, int p, const double th0[5],
                      const double th1[5], double gamma);

/* Fast path (plain doubles, two 4x4 solves): values v[2] (may be NULL) and d (5) = dV_p/dth_q,
 * the gradient of player p's value in player q's logits, by the adjoint of the linear solve:
 * dV = (1 - gamma) (w . dx0 + gamma y^T dM w), y = (I - gamma M^T)^-1 x0, w = (I - gamma M)^-1 r. */
void br_iterated_value_grad(double *v, double *d, const br_game_t *g, int p, int q,
                            const double th0[5], const double th1[5], double gamma);

/* Exact mixed second derivative of V_p: h (5,5), h[i*5+j] = d^2 V_p / dth0[i] dth1[j]. */
void br_iterated_mixed_hessian(double *h, const br_game_t *g, int p, const double th0[5],
                               const double th1[5], double gamma);
#endif
