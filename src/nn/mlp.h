/* Dense layers with bias and small ReLU MLPs (the building blocks of the RL agents, mixers and
 * world models).  llm.c-style: outputs first, sizes last; backward ADDS into gradients.
 * Gradient checks: tests/test_nn_gru_grad.c. */
#ifndef BR_NN_MLP_H
#define BR_NN_MLP_H
#include <stddef.h>
#include "base/rng.h"

/* out (N,OC) = inp (N,C) @ w^T + b;  w (OC,C), b (OC) or NULL.  Overwrites out. */
void br_dense_forward(float *out, const float *inp, const float *w, const float *b, size_t N,
                      size_t C, size_t OC);
/* dinp (N,C) += dout @ w;  dw (OC,C) += dout^T @ inp;  db (OC) += column sums of dout.
 * Any of dinp, dw, db may be NULL. */
void br_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, size_t N, size_t C, size_t OC);
/* PyTorch nn.Linear default init: w, b ~ U(-1/sqrt(C), 1/sqrt(C)). */
void br_dense_init(float *w, float *b, size_t C, size_t OC, br_rng_t *rng);

/* x (n) = max(x, 0) in place. */
void br_relu_inplace(float *x, size_t n);
/* d (n) *= (y > 0), y the ReLU output (in place on the gradient). */
void br_relu_backward_inplace(float *d, const float *y, size_t n);

/* A ReLU MLP: sizes[0] inputs, sizes[L] outputs, ReLU after every layer but the last.
 * Parameters in one flat buffer, per layer: w (sizes[l+1], sizes[l]) then b (sizes[l+1]). */
#define BR_MLP_MAX_LAYERS 6
typedef struct {
    int n_layers;
    int sizes[BR_MLP_MAX_LAYERS + 1];
    size_t n_params;
    size_t max_width; /* widest layer (for scratch) */
} br_mlp_t;

/* n_layers in [1, BR_MLP_MAX_LAYERS], every size >= 1 (BR_ASSERTed: programmer input). */
void br_mlp_init(br_mlp_t *m, int n_layers, const int *sizes);
void br_mlp_init_params(const br_mlp_t *m, float *params, br_rng_t *rng);
/* Floats of saved activations for N rows (every layer's output, the last included). */
size_t br_mlp_acts_size(const br_mlp_t *m, size_t N);
/* acts (br_mlp_acts_size) receives every layer's output; returns the output (N, sizes[L])
 * inside acts. */
float *br_mlp_forward(const br_mlp_t *m, const float *params, float *acts, const float *inp,
                      size_t N);
/* grads (n_params) +=;  dinp (N, sizes[0]) += when not NULL.  dout (N, sizes[L]) is used as
 * scratch and destroyed; scratch holds 2 * N * max_width floats. */
void br_mlp_backward(const br_mlp_t *m, const float *params, float *grads, float *dinp,
                     const float *acts, const float *inp, float *dout, float *scratch, size_t N);
#endif
