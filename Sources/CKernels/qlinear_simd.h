// Internal to the reduced-precision linears (qlinear.c, qlinear_avx512.c, qlinear_avx2.c): the
// conversions every path shares and the SIMD tiles, epilogues and activation conversions.
#ifndef MQAN_QLINEAR_SIMD_H
#define MQAN_QLINEAR_SIMD_H

#include "mq_qlinear.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// Rows per register tile of the AVX-512 and portable paths (the AVX2 path blocks rows itself).
#define MQ_QMR 12
// Rows per block whose converted activations stay in L2 while the thread's panels stream past
// them (a multiple of the register tile's MQ_QMR rows); the AVX2 path's blocks are at most this.
#define MQ_QMB 240

// Round to nearest-even bfloat16 (inputs are finite).
static inline uint16_t mq_q_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

// Symmetric int8 of x at `scale`: rne(x / scale) clamped to [-127, 127] (0 at scale 0).
static inline int32_t mq_q_int8(float x, float scale) {
  if (scale == 0.0f) return 0;
  float q = nearbyintf(x / scale);
  return q > 127.0f ? 127 : q < -127.0f ? -127 : (int32_t)q;
}

#if defined(__x86_64__) || defined(__i386__)
#define MQ_HAVE_X86 1
// AVX-512: `rows` (1..MQ_QMR) rows of converted activations (`words` words apart) against one
// packed panel: fp32 sums (bf16) or int32 sums (int8: sum (p + 128) q, as vpdpbusd gives it)
// into a [rows][32] tile. (The AVX2 int8 tiles hold sum p q: the same integer less 128 times the
// column sum.)
void mq_q_tile_bf16_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel, float *tile);
void mq_q_tile_vnni_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel, int32_t *tile);
// mq_qlinear's AVX2 path (rows m, the converted activations `a` with their row scales after
// them, the packed weight and its column scales); 0 when the thread's scratch for the expanded
// activations cannot be had (the caller then runs the portable tiles: the same bits).
int mq_q2_linear(int precision, int64_t m, int64_t words, const uint32_t *a, const uint32_t *packed,
                 const float *rscale, const float *cscale, float *y, int64_t ldc, const mq_gemm_epilogue *ep,
                 int64_t c0, int64_t c1);
// The tile's epilogue (int8 dequantization, bias, residual, activation) and store, with the
// portable loop's operations in its order (so its bits).
void mq_q_store_512(int precision, const float *ftile, const int32_t *itile, int rows, int cols, int64_t row0,
                    int64_t col, float *y, int64_t ldc, const mq_gemm_epilogue *ep, const float *rscale,
                    const float *cscale, const int32_t *csum);
void mq_q_store_avx2(int precision, const float *ftile, const int32_t *itile, int rows, int cols, int64_t row0,
                     int64_t col, float *y, int64_t ldc, const mq_gemm_epilogue *ep, const float *rscale,
                     const float *cscale);
// mq_qact_convert_portable's bytes, with AVX-512 (F, BW, VL) or AVX2.
void mq_qact_convert_512(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act);
void mq_qact_convert_avx2(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act);
#endif

#endif
