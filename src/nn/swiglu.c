/* swiglu: float build of nn/swiglu.inc (the double build is in tests/test_nn_grad.c). */
#define NN_FLOAT
#include "nn/nn.h"
#include "nn/real.h"
#include "nn/swiglu.inc"
