/* MARCO (Zhang, Lu, Garg, Foerster; AAMAS 2022): model-based MARL for Dec-POMDPs with a
 * centralized, policy-independent world model and an exploration policy.
 *
 *   1. collect `init_steps` real steps with the uniform random policy
 *   2. loop until the real-step budget is spent:
 *        fit the model ensemble to every real transition (rl/marco_model.h)
 *        train the task policy (VDN or QMIX, rl/vdn.h) for `policy_updates` gradient steps
 *          on episodes rolled out in the model from real initial states
 *        explore: train the centralized exploration policy (agents see the global state) in
 *          the model on reward + beta * ensemble disagreement, then collect `collect_steps`
 *          real steps with it;  --no-explore: collect them with the task policy instead
 *        evaluate the task policy greedily in the real environment (not counted as budget)
 * The log has one line per evaluation: real steps so far, greedy return, model fit stats. */
#ifndef BR_RL_MARCO_H
#define BR_RL_MARCO_H
#include "rl/marco_model.h"
#include "rl/vdn_run.h"

typedef struct {
    br_vd_run_config_t base;  /* task, budget, seed, output, learner settings */
    bool explore;             /* false: --no-explore ablation */
    float beta;               /* disagreement bonus (3.0) */
    long init_steps;          /* random real steps before the first fit (<= 0: auto) */
    long collect_steps;       /* real steps per iteration (<= 0: auto) */
    int policy_updates;       /* task-policy gradient steps in the model per iteration */
    int explore_updates;      /* exploration-policy gradient steps per iteration */
    int model_envs;           /* model episodes rolled out per gradient step (8) */
    float real_eps;           /* epsilon while collecting real data (0.1) */
    long eps_anneal_updates;  /* task-policy gradient steps to anneal model epsilon 1 -> 0.05 */
    br_marco_model_config_t model;
} br_marco_config_t;

br_marco_config_t br_marco_defaults(void);
br_status br_marco_check(const br_marco_config_t *c);
br_status br_marco_run(const br_marco_config_t *c);
#endif
