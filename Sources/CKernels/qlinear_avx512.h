// Internal to qlinear.c and qlinear_avx512.c: the AVX-512 tile kernels and epilogue.
#ifndef MQAN_QLINEAR_AVX512_H
#define MQAN_QLINEAR_AVX512_H

#include "mq_qlinear.h"

#if defined(__x86_64__) || defined(__i386__)
#define MQ_HAVE_X86 1
// Rows per register tile.
#define MQ_QMR 12
// `rows` (1..MQ_QMR) rows of converted activations (`words` words apart) against one packed
// panel: fp32 sums (bf16) or int32 sums (int8) into a [rows][32] tile.
void mq_q_tile_bf16_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel, float *tile);
void mq_q_tile_vnni_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel, int32_t *tile);
// The tile's epilogue (int8 dequantization, bias, residual, activation) and masked store.
void mq_qact_convert_512(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act);
void mq_q_store_512(int precision, const float *ftile, const int32_t *itile, int rows, int cols, int64_t row0,
                    int64_t col, float *y, int64_t ldc, const mq_gemm_epilogue *ep, const float *rscale,
                    const float *cscale, const int32_t *csum);
#else
#define MQ_QMR 12
#endif

#endif
