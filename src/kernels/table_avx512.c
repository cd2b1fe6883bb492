/* The AVX-512 kernel table (the Makefile builds *_avx512.o with -mavx512f -mavx512vl
 * -mavx512bw -mavx512dq -mavx2 -mfma); GEMMs through OpenBLAS.  x86-64 only. */
#if defined(__x86_64__)
#define KC_TABLE br_kernels_avx512
#define KC_NAME "avx512"
#define KC_GEMM_NAME "openblas"
#define GEMM br_sgemm_blas
#include "kernels/table.inc"
#else
typedef int br_kernels_avx512_unused; /* ISO C: a translation unit is not empty */
#endif
