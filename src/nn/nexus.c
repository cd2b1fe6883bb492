/* Nexus router projector: expert embeddings e_i = W2 SwiGLU(W1 d_i) from fixed domain
 * embeddings d_i (Gritsch et al. 2024).  The rows e_i become the MoE FFN's router matrix, so
 * the routing itself is the linear top-k path of moe_ffn.c; gradients reach W1 and W2 through
 * the router gradient dR. */
#include <string.h>

#include "kernels/gemm.h"
#include "nn/moe.h"
#include "nn/nn.h"

void br_nexus_forward(float *R, float *z, float *h, const float *dom, const float *W1,
                      const float *W2, const br_nexus_cfg_t *c)
{
    size_t E = c->E, D = c->D, H = c->H, C = c->C;
    /* z[:, :H] = dom W1[:H]^T (gate half), z[:, H:] = dom W1[H:]^T (up half) */
    br_sgemm(false, true, E, H, D, 1, dom, D, W1, D, 0, z, 2 * H);
    br_sgemm(false, true, E, H, D, 1, dom, D, W1 + H * D, D, 0, z + H, 2 * H);
    for (size_t i = 0; i < E; i++) br_swiglu_forward(h + i * H, z + i * 2 * H, z + i * 2 * H + H, H);
    br_sgemm(false, true, E, C, H, 1, h, H, W2, H, 0, R, C);
}

void br_nexus_backward(float *dW1, float *dW2, const float *dR, const float *dom,
                       const float *W1, const float *W2, const float *z, const float *h,
                       float *dz, float *dh, const br_nexus_cfg_t *c)
{
    (void)W1;
    size_t E = c->E, D = c->D, H = c->H, C = c->C;
    br_sgemm(false, false, E, H, C, 1, dR, C, W2, H, 0, dh, H);
    if (dW2) br_sgemm(true, false, C, H, E, 1, dR, C, h, H, 1, dW2, H);
    memset(dz, 0, E * 2 * H * sizeof(float));
    for (size_t i = 0; i < E; i++)
        br_swiglu_backward(dz + i * 2 * H, dz + i * 2 * H + H, dh + i * H, z + i * 2 * H,
                           z + i * 2 * H + H, H);
    /* dW1 (2H,D) += dz^T dom: the two halves of dz line up with the two halves of W1 */
    if (dW1) br_sgemm(true, false, 2 * H, D, E, 1, dz, 2 * H, dom, D, 1, dW1, D);
}
