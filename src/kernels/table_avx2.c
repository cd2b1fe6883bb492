/* The AVX2+FMA kernel table (the Makefile builds *_avx2.o with -mavx2 -mfma -mno-avx512f);
 * GEMMs through OpenBLAS.  x86-64 only. */
#if defined(__x86_64__)
#define KC_TABLE br_kernels_avx2
#define KC_NAME "avx2"
#define KC_GEMM_NAME "openblas"
#define GEMM br_sgemm_blas
#include "kernels/table.inc"
#else
typedef int br_kernels_avx2_unused; /* ISO C: a translation unit is not empty */
#endif
