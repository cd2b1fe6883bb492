/* GRU cell (PyTorch nn.GRUCell convention, gate order r, z, n):
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h
 * w_ih (3H, C), w_hh (3H, H), b_ih, b_hh (3H) (rows r, z, n).  One time step for N rows;
 * unroll over time in the caller (backprop through time = call backward in reverse order).
 * Backward ADDS into every gradient.  Gradient check: tests/test_nn_gru_grad.c; PyTorch
 * reference: tests/ref/gru_ref.py. */
#ifndef BR_NN_GRU_H
#define BR_NN_GRU_H
#include <stddef.h>

/* h_out (N,H); gates (N,4H) saved for backward: r, z, n, (W_hn h + b_hn);
 * scratch (N,6H).  h_prev (N,H). */
void br_gru_forward(float *h_out, float *gates, const float *x, const float *h_prev,
                    const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                    float *scratch, size_t N, size_t C, size_t H);
/* dx (N,C) +=, dh_prev (N,H) += (either may be NULL), dw_ih (3H,C) +=, dw_hh (3H,H) +=,
 * db_ih, db_hh (3H) +=.  dh_out (N,H) is the gradient at h_out; scratch (N,6H). */
void br_gru_backward(float *dx, float *dh_prev, float *dw_ih, float *dw_hh, float *db_ih,
                     float *db_hh, const float *dh_out, const float *gates, const float *x,
                     const float *h_prev, const float *w_ih, const float *w_hh, float *scratch,
                     size_t N, size_t C, size_t H);
#endif
