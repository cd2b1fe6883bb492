/* The portable kernel table: plain C for the compiler's baseline target (the Makefile builds
 * *_portable.o without -march) and the portable GEMM, no BLAS.  Runs on every CPU. */
#define KC_TABLE br_kernels_portable
#define KC_NAME "portable"
#define KC_GEMM_NAME "portable"
#define GEMM br_sgemm_portable
#include "kernels/table.inc"
