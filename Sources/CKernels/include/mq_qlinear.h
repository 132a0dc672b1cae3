// Reduced-precision linears for inference: y[m, n] = x[m, k] wᵀ (w stored [n, k], a linear's
// weight) with the weight held in bf16 or int8, the activations converted per row on the fly, and
// the sum in fp32 (bf16) or int32 (int8), then the GEMM's epilogue (bias, residual, activation).
//
// bf16: each value rounded to nearest-even bfloat16 (8 significant bits). Products of two bf16
//   are exact in fp32; a pair of them is added to an fp32 accumulator per step (AVX512_BF16's
//   vdpbf16ps: the odd element's product first, then the even one's). Error per output, against
//   the fp32 product: |dy| <= (2^-8 + 2^-8 + 2^-16) * sum_k |x_k w_k| + the fp32 sum's rounding.
// int8: the weight symmetric per output column j, q = rne(w / s_j), s_j = max_k |w_jk| / 127; the
//   activation symmetric per row i, p = rne(x / t_i), t_i = max_k |x_ik| / 127, stored as the
//   unsigned byte p + 128 (AVX512_VNNI's vpdpbusd multiplies unsigned by signed bytes). Then
//   y = t_i s_j (sum_k (p + 128) q - 128 sum_k q). The integer sum is exact (k <= 65,536). Error:
//   |dy| <= (s_j / 2) sum_k |x_k| + (t_i / 2) sum_k |w_jk| + k t_i s_j / 4, plus fp32 rounding.
//
// Weights are packed once (when a plan is bound) into panels of 32 output columns:
//   bf16: ceil(k/2) x 32 words, word [q][j] = (bf16 w[j][2q] low, bf16 w[j][2q+1] high);
//   int8: ceil(k/4) x 32 words, word [q][j] = the 4 signed bytes w[j][4q..4q+3]; after all
//         panels, the column scales (float) and the column sums of q (int32), 32 per panel.
// Padding (columns past n, depth past k) is zero.
//
// Paths, chosen at run time from cpuid (per-function target attributes), all on the same packed data:
//   MQ_QPATH_AVX512: bf16 with AVX512_BF16, int8 with AVX512_VNNI (both with AVX512BW);
//   MQ_QPATH_AVX2: AVX2 and FMA. bf16: both halves of a word widened to fp32 and fused
//     multiply-adds (odd element first); int8: vpmaddubsw on |p| and q with p's sign (pairs of
//     products stay within int16: 2 x 127 x 127), vpmaddwd, int32 sums of p q;
//   MQ_QPATH_PORTABLE: plain C.
// int8's sums are exact integers on every path, so every path gives the same bits. bf16's products
// are exact in fp32 and summed in the same order on every path, so the same bits too, except
// where a product or a sum falls below fp32's normal range (vdpbf16ps flushes denormals).
#ifndef MQAN_QLINEAR_H
#define MQAN_QLINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "mq_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { MQ_PREC_FP32 = 0, MQ_PREC_BF16 = 1, MQ_PREC_INT8 = 2 };
enum { MQ_QPATH_PORTABLE = 0, MQ_QPATH_AVX512 = 1, MQ_QPATH_AVX2 = 2 };

// Columns per packed panel.
#define MQ_QPANEL 32

// 1 when this CPU and OS run `path` for `precision`.
int mq_qpath_supported(int precision, int path);
// The fastest path this CPU runs for `precision` (MQ_QPATH_PORTABLE when nothing else).
int mq_qpath_best(int precision);
// What `path` needs from the CPU: "AVX512_BF16 (with AVX512BW)", "AVX512_VNNI (with AVX512BW)",
// "AVX2 and FMA" ("nothing" for the portable path).
const char *mq_qpath_needs(int precision, int path);
// "avx512-bf16", "avx512-vnni", "avx2", "portable".
const char *mq_qpath_name(int precision, int path);
// The largest depth k a precision takes (int8: 65,536, where the int32 sum stays exact).
int64_t mq_qlinear_max_k(int precision);

// Bytes of a packed weight [n, k] (64-byte multiples).
size_t mq_qweight_bytes(int precision, int64_t n, int64_t k);
int64_t mq_qweight_panels(int64_t n);
// Packs panels [p0, p1) of w [n, k] (row-major, rows k floats apart) into `packed`
// (mq_qweight_bytes, 64-byte aligned), so threads can share the work.
void mq_qweight_pack(int precision, int64_t n, int64_t k, const float *w, void *packed, int64_t p0,
                     int64_t p1);
// The weight the packed data stands for, w'[n, k] = its bf16 values or q * s (tests, round trips).
void mq_qweight_unpack(int precision, int64_t n, int64_t k, const void *packed, float *w);

// The packed weight's stored values, as a file keeps them (mqan quantize): bf16 bit patterns
// (uint16_t values[n * k]), or int8 q (int8_t values[n * k]) and the column scales (scales[n]);
// q * s, in float, is what mq_qweight_unpack gives and packs again into the same panels.
void mq_qweight_export(int precision, int64_t n, int64_t k, const void *packed, void *values,
                       float *scales);

// Bytes of the converted activations of m rows of depth k (64-byte multiples).
size_t mq_qact_bytes(int precision, int64_t m, int64_t k);
// Converts x [m, k] (rows ldx floats apart) for mq_qlinear into `act` (mq_qact_bytes), the same
// bytes on every path: with AVX-512 (F, BW, VL) where the CPU has it (MQAN_DISABLE_ISA=avx512bw:
// not), else with AVX2, else mq_qact_convert_portable, the plain C loop.
void mq_qact_convert(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act);
// The same on a given path (MQ_QPATH_AVX512: the AVX-512 F/BW/VL conversion); one the CPU lacks
// runs the portable loop.
void mq_qact_convert_path(int path, int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act);
void mq_qact_convert_portable(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act);

// Columns [c0, c1) of y [m, n] (rows ldc floats apart), all m rows: y = x wᵀ from the converted
// activations and the packed weight, then the epilogue (NULL: none; its residual rows are n floats
// apart). c0 is a multiple of MQ_QPANEL unless c0 == c1.
void mq_qlinear(int precision, int path, int64_t m, int64_t n, int64_t k, const void *act,
                const void *packed, float *y, int64_t ldc, const mq_gemm_epilogue *ep, int64_t c0,
                int64_t c1);

// The oracle: the same quantized operands (each value rounded as above, back in float), one
// double-precision dot product per output, then the epilogue in mq_gemm_ref's order.
void mq_qlinear_ref(int precision, int64_t m, int64_t n, int64_t k, const float *x, int64_t ldx,
                    const float *w, float *y, int64_t ldc, const mq_gemm_epilogue *ep);

#ifdef __cplusplus
}
#endif
#endif
