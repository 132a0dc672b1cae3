// The AVX-512 kernels of the reduced-precision linears (mq_qlinear.h): register tiles with
// AVX512_BF16 (vdpbf16ps) and AVX512_VNNI (vpdpbusd), and the tile epilogue in zmm registers.
// Compiled with per-function target attributes; called only after a cpuid check.
#include "qlinear_simd.h"
#include "mq_elementwise.h"

#if MQ_HAVE_X86
#include <immintrin.h>

#define NP MQ_QPANEL
#define MQ_TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define MQ_TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// MR rows x 32 columns in 2*MR zmm accumulators; MR is a constant at each call, so the loops unroll.
#define MQ_Q_TILE(NAME, TARGET, ACC, ZERO, STEP, STORE)                                                     \
  static inline __attribute__((always_inline)) TARGET void NAME(const int MR, int64_t words, const uint32_t *a, \
                                                               const uint32_t *panel, void *tile) {          \
    ACC c[MQ_QMR][2];                                                                                       \
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = ZERO;                                                  \
    for (int64_t q = 0; q < words; q++) {                                                                   \
      __m512i b0 = _mm512_loadu_si512(panel + q * NP), b1 = _mm512_loadu_si512(panel + q * NP + 16);        \
      for (int r = 0; r < MR; r++) {                                                                        \
        __m512i x = _mm512_set1_epi32((int)a[r * words + q]);                                               \
        c[r][0] = STEP(c[r][0], x, b0);                                                                     \
        c[r][1] = STEP(c[r][1], x, b1);                                                                     \
      }                                                                                                     \
    }                                                                                                       \
    for (int r = 0; r < MR; r++) {                                                                          \
      STORE((char *)tile + r * NP * 4, c[r][0]);                                                            \
      STORE((char *)tile + r * NP * 4 + 64, c[r][1]);                                                       \
    }                                                                                                       \
  }

static inline __attribute__((always_inline)) MQ_TVNNI void mq_q_store_i(void *p, __m512i v) {
  _mm512_storeu_si512(p, v);
}

#define MQ_BF16_STEP(c, x, b) _mm512_dpbf16_ps(c, (__m512bh)(x), (__m512bh)(b))
#define MQ_VNNI_STEP(c, x, b) _mm512_dpbusd_epi32(c, x, b)
MQ_Q_TILE(mq_q_tile_bf16, MQ_TBF16, __m512, _mm512_setzero_ps(), MQ_BF16_STEP, _mm512_storeu_ps)
MQ_Q_TILE(mq_q_tile_vnni, MQ_TVNNI, __m512i, _mm512_setzero_si512(), MQ_VNNI_STEP, mq_q_store_i)

// The tile for `rows` (1..MQ_QMR) with the largest unrolled kernel that fits.
#define MQ_Q_DISPATCH(FN, rows, words, a, panel, tile)                                                      \
  switch (rows) {                                                                                           \
  case 12: FN(12, words, a, panel, tile); break;                                                           \
  case 11: FN(11, words, a, panel, tile); break;                                                           \
  case 10: FN(10, words, a, panel, tile); break;                                                           \
  case 9: FN(9, words, a, panel, tile); break;                                                             \
  case 8: FN(8, words, a, panel, tile); break;                                                             \
  case 7: FN(7, words, a, panel, tile); break;                                                             \
  case 6: FN(6, words, a, panel, tile); break;                                                             \
  case 5: FN(5, words, a, panel, tile); break;                                                             \
  case 4: FN(4, words, a, panel, tile); break;                                                             \
  case 3: FN(3, words, a, panel, tile); break;                                                             \
  case 2: FN(2, words, a, panel, tile); break;                                                             \
  default: FN(1, words, a, panel, tile); break;                                                            \
  }

MQ_TBF16 void mq_q_tile_bf16_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel,
                                        float *tile) {
  MQ_Q_DISPATCH(mq_q_tile_bf16, rows, words, a, panel, tile)
}

MQ_TVNNI void mq_q_tile_vnni_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel,
                                        int32_t *tile) {
  MQ_Q_DISPATCH(mq_q_tile_vnni, rows, words, a, panel, tile)
}
#endif

#if MQ_HAVE_X86
// mq_q_dequant + mq_q_store in zmm registers, with the same operations in the same order (so the
// same bits): a tile's epilogue costs about as much as its sums at k = 200 when done one float
// at a time.
__attribute__((target("avx512f"))) void mq_q_store_512(int precision, const float *ftile, const int32_t *itile,
                                                             int rows, int cols, int64_t row0, int64_t col,
                                                             float *y, int64_t ldc, const mq_gemm_epilogue *ep,
                                                             const float *rscale, const float *cscale,
                                                             const int32_t *csum) {
  __mmask16 m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
  __mmask16 m1 = cols <= 16 ? (__mmask16)0 : cols >= 32 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - 16)) - 1);
  const float *bias = ep ? ep->bias : NULL, *res = ep ? ep->residual : NULL;
  int act = ep ? ep->act : MQ_ACT_NONE;
  __m512 b0 = _mm512_setzero_ps(), b1 = b0, cs0 = b0, cs1 = b0;
  __m512i sum0 = _mm512_setzero_si512(), sum1 = sum0;
  if (bias) {
    b0 = _mm512_maskz_loadu_ps(m0, bias + col);
    b1 = _mm512_maskz_loadu_ps(m1, bias + col + 16);
  }
  if (precision == MQ_PREC_INT8) {
    // Columns past n are padding in the packed weight: scale 0, sum 0.
    cs0 = _mm512_loadu_ps(cscale + col);
    cs1 = _mm512_loadu_ps(cscale + col + 16);
    sum0 = _mm512_mullo_epi32(_mm512_loadu_si512(csum + col), _mm512_set1_epi32(128));
    sum1 = _mm512_mullo_epi32(_mm512_loadu_si512(csum + col + 16), _mm512_set1_epi32(128));
  }
  for (int r = 0; r < rows; r++) {
    __m512 v0, v1;
    if (precision == MQ_PREC_INT8) {
      __m512 rs = _mm512_set1_ps(rscale[r]);
      v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(itile + r * NP), sum0)),
                         _mm512_mul_ps(rs, cs0));
      v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(itile + r * NP + 16), sum1)),
                         _mm512_mul_ps(rs, cs1));
    } else {
      v0 = _mm512_loadu_ps(ftile + r * NP);
      v1 = _mm512_loadu_ps(ftile + r * NP + 16);
    }
    if (bias) {
      v0 = _mm512_add_ps(v0, b0);
      v1 = _mm512_add_ps(v1, b1);
    }
    if (res) {
      const float *rr = res + (row0 + r) * ep->ldr + col;
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, rr));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, rr + 16));
    }
    if (act == MQ_ACT_RELU) {
      v0 = _mm512_max_ps(v0, _mm512_setzero_ps());
      v1 = _mm512_max_ps(v1, _mm512_setzero_ps());
    }
    float *out = y + (row0 + r) * ldc + col;
    _mm512_mask_storeu_ps(out, m0, v0);
    _mm512_mask_storeu_ps(out + 16, m1, v1);
    if (act == MQ_ACT_TANH) mq_tanh(out, out, 0, cols);
    if (act == MQ_ACT_SIGMOID) mq_sigmoid(out, out, 0, cols);
  }
}

// mq_qact_convert's rows with AVX-512 (F, BW, VL): the same bits as the portable loop (IEEE
// division, round to nearest even, the same clamp; bf16 by the same integer rounding).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void mq_qact_convert_512(int precision, int64_t m, int64_t k,
                                                                     const float *x, int64_t ldx, void *act) {
  const int64_t words = precision == MQ_PREC_INT8 ? (k + 3) / 4 : (k + 1) / 2;
  uint32_t *out = (uint32_t *)act;
  float *scales = (float *)(out + m * words);
  const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff);
  for (int64_t i = 0; i < m; i++) {
    const float *row = x + i * ldx;
    if (precision == MQ_PREC_BF16) {
      uint16_t *o = (uint16_t *)(out + i * words);
      for (int64_t e = 0; e < k; e += 16) {
        __mmask16 lanes = k - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - e)) - 1);
        __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(lanes, row + e));
        u = _mm512_add_epi32(u, _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        _mm256_mask_storeu_epi16(o + e, lanes, _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
      }
      if (k & 1) o[k] = 0;
      continue;
    }
    uint8_t *o = (uint8_t *)(out + i * words);
    __m512 amax = _mm512_setzero_ps();
    for (int64_t e = 0; e < k; e += 16) {
      __mmask16 lanes = k - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - e)) - 1);
      amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes, row + e)));
    }
    const float t = _mm512_reduce_max_ps(amax) / 127.0f;
    scales[i] = t;
    const int64_t bytes = 4 * words;
    if (t == 0.0f) {
      for (int64_t e = 0; e < bytes; e++) o[e] = 128;
      continue;
    }
    const __m512 vt = _mm512_set1_ps(t), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i bias = _mm512_set1_epi32(128);
    // Lanes past k load 0 and give the padding byte 128, as the portable loop writes.
    for (int64_t e = 0; e < bytes; e += 16) {
      __mmask16 lanes = k - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - e)) - 1);
      __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(lanes, row + e), vt),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
      __m128i b = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(q), bias));
      __mmask16 store = bytes - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (bytes - e)) - 1);
      _mm_mask_storeu_epi8(o + e, store, b);
    }
  }
}
#endif
