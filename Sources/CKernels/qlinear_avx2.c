// The AVX2 kernels of the reduced-precision linears (mq_qlinear.h), for CPUs without AVX512_BF16 /
// AVX512_VNNI: register tiles, the tile epilogue and the activation conversion in ymm registers.
// Compiled with per-function target attributes; called only after a cpuid check.
//
// mq_q2_linear runs blocks of rows with their activations expanded once per block; a tile is
// MQ_Q2MR rows x 16 columns (half a panel) in 2 x MQ_Q2MR accumulators, so the accumulators, the
// half panel's weights and one row's activation fit in 16 ymm registers.
//   bf16: a word's odd element is its high half, the even one its low half shifted up: both are
//     fp32 as they are, and a fused multiply-add of two bf16 is exact before its one rounding,
//     like the portable loop's multiply then add.
//   int8: vpmaddubsw multiplies unsigned by signed bytes and adds pairs into int16, which
//     overflows for p + 128 (up to 255 x 127 x 2). With |p| (unsigned, <= 127) against q carrying
//     p's sign (vpsignb) a pair is at most 2 x 127 x 127 = 32,258: exact. vpmaddwd by ones then
//     adds the pairs into int32 sums of p q.
#include "qlinear_simd.h"
#include "mq_elementwise.h"

#if MQ_HAVE_X86
#include <immintrin.h>

#define NP MQ_QPANEL
#define MQ_Q2MR 4
#define MQ_TAVX2 __attribute__((target("avx2,fma")))

// Each row's activation words expanded once per block of rows into two ymm registers' worth
// (64 bytes a word), which the tiles load instead of broadcasting and converting again for
// every panel: int8 p (the stored byte less 128) and |p|; bf16 the odd and the even element as
// fp32.
static inline __attribute__((always_inline)) MQ_TAVX2 void mq_q2_expand(int precision, int64_t n, const uint32_t *a,
                                                                          __m256i *xp) {
  const __m256i flip = _mm256_set1_epi8((char)0x80), high = _mm256_set1_epi32((int)0xffff0000u);
  for (int64_t e = 0; e < n; e++) {
    __m256i x = _mm256_set1_epi32((int)a[e]);
    if (precision == MQ_PREC_INT8) {
      __m256i p = _mm256_xor_si256(x, flip); // p + 128 -> p
      _mm256_store_si256(xp + 2 * e, p);
      _mm256_store_si256(xp + 2 * e + 1, _mm256_abs_epi8(p));
    } else {
      _mm256_store_si256(xp + 2 * e, _mm256_and_si256(x, high));
      _mm256_store_si256(xp + 2 * e + 1, _mm256_slli_epi32(x, 16));
    }
  }
}

// MR rows (expanded, `words` words each) against half a panel (16 columns).
static inline __attribute__((always_inline)) MQ_TAVX2 void mq_q2_tile_int8(const int MR, int64_t words,
                                                                             const __m256i *xp, const uint32_t *half,
                                                                             int32_t *tile) {
  __m256i c[MQ_Q2MR][2];
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t q = 0; q < words; q++) {
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(half + q * NP));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(half + q * NP + 8));
    for (int r = 0; r < MR; r++) {
      const __m256i p = _mm256_load_si256(xp + 2 * (r * words + q)), ap = _mm256_load_si256(xp + 2 * (r * words + q) + 1);
      c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(ap, _mm256_sign_epi8(b0, p)), ones));
      c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(ap, _mm256_sign_epi8(b1, p)), ones));
    }
  }
  for (int r = 0; r < MR; r++) {
    _mm256_storeu_si256((__m256i *)(tile + r * NP), c[r][0]);
    _mm256_storeu_si256((__m256i *)(tile + r * NP + 8), c[r][1]);
  }
}

static inline __attribute__((always_inline)) MQ_TAVX2 void mq_q2_tile_bf16(const int MR, int64_t words,
                                                                             const __m256i *xp, const uint32_t *half,
                                                                             float *tile) {
  __m256 c[MQ_Q2MR][2];
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
  const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
  for (int64_t q = 0; q < words; q++) {
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(half + q * NP));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(half + q * NP + 8));
    __m256 odd0 = _mm256_castsi256_ps(_mm256_and_si256(b0, high)), even0 = _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16));
    __m256 odd1 = _mm256_castsi256_ps(_mm256_and_si256(b1, high)), even1 = _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16));
    for (int r = 0; r < MR; r++) {
      const __m256 xo = _mm256_castsi256_ps(_mm256_load_si256(xp + 2 * (r * words + q)));
      const __m256 xe = _mm256_castsi256_ps(_mm256_load_si256(xp + 2 * (r * words + q) + 1));
      c[r][0] = _mm256_fmadd_ps(xe, even0, _mm256_fmadd_ps(xo, odd0, c[r][0]));
      c[r][1] = _mm256_fmadd_ps(xe, even1, _mm256_fmadd_ps(xo, odd1, c[r][1]));
    }
  }
  for (int r = 0; r < MR; r++) {
    _mm256_storeu_ps(tile + r * NP, c[r][0]);
    _mm256_storeu_ps(tile + r * NP + 8, c[r][1]);
  }
}

// The tile for `rows` (1..MQ_Q2MR) rows with the row count a constant.
#define MQ_Q2_ROWS(TILE, rows, words, xr, half, t)                                                         \
  switch (rows) {                                                                                          \
  case 1: TILE(1, words, xr, half, t); break;                                                              \
  case 2: TILE(2, words, xr, half, t); break;                                                              \
  case 3: TILE(3, words, xr, half, t); break;                                                              \
  default: TILE(4, words, xr, half, t); break;                                                             \
  }

MQ_TAVX2 int mq_q2_linear(int precision, int64_t m, int64_t words, const uint32_t *a, const uint32_t *packed,
                          const float *rscale, const float *cscale, float *y, int64_t ldc, const mq_gemm_epilogue *ep,
                          int64_t c0, int64_t c1) {
  // Rows per block: their expanded activations (64 bytes per row and word) in half of this CPU's
  // L2, a multiple of the tile's rows, at most MQ_QMB.
  const int64_t half_l2 = mq_gemm_cache_sizes().l2 / 2;
  int64_t mb = words > 0 ? half_l2 / (64 * words) / MQ_Q2MR * MQ_Q2MR : MQ_QMB;
  mb = mb < MQ_Q2MR ? MQ_Q2MR : mb > MQ_QMB ? MQ_QMB : mb;
  if (mb > m) mb = m;
  __m256i *xp = (__m256i *)mq_thread_scratch(MQ_SCRATCH_QLINEAR, (size_t)(mb * words * 16));
  if (!xp) return 0;
  int32_t itile[MQ_Q2MR * NP] __attribute__((aligned(64)));
  float ftile[MQ_Q2MR * NP] __attribute__((aligned(64)));
  for (int64_t rb = 0; rb < m; rb += mb) {
    const int64_t rend = rb + mb < m ? rb + mb : m;
    mq_q2_expand(precision, (rend - rb) * words, a + rb * words, xp);
    for (int64_t p = c0 / NP; p * NP < c1; p++) {
      const uint32_t *panel = packed + p * words * NP;
      const int64_t col = p * NP;
      const int cols = (int)((c1 - col) < NP ? (c1 - col) : NP);
      for (int64_t r = rb; r < rend; r += MQ_Q2MR) {
        const int rows = (int)((rend - r) < MQ_Q2MR ? (rend - r) : MQ_Q2MR);
        const __m256i *xr = xp + 2 * (r - rb) * words;
        for (int h = 0; h < NP; h += 16) {
          if (precision == MQ_PREC_INT8) MQ_Q2_ROWS(mq_q2_tile_int8, rows, words, xr, panel + h, itile + h)
          else MQ_Q2_ROWS(mq_q2_tile_bf16, rows, words, xr, panel + h, ftile + h)
        }
        mq_q_store_avx2(precision, ftile, itile, rows, cols, r, col, y, ldc, ep, rscale + r, cscale);
      }
    }
  }
  return 1;
}

// mq_q_dequant + mq_q_store of the portable path in ymm registers, in the same order: int8 sums
// (p q, already less 128 times the column sum) to float times (row scale x column scale), bias,
// residual, relu; tanh and sigmoid afterwards on the stored row. Columns past `cols` are neither
// read (bias, residual) nor written.
MQ_TAVX2 void mq_q_store_avx2(int precision, const float *ftile, const int32_t *itile, int rows, int cols,
                              int64_t row0, int64_t col, float *y, int64_t ldc, const mq_gemm_epilogue *ep,
                              const float *rscale, const float *cscale) {
  const float *bias = ep ? ep->bias : NULL, *res = ep ? ep->residual : NULL;
  int act = ep ? ep->act : MQ_ACT_NONE;
  const int full = cols == NP;
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i mask[4];
  __m256 b[4], cs[4];
  for (int g = 0; g < 4; g++) {
    mask[g] = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8 * g), iota);
    b[g] = bias ? (full ? _mm256_loadu_ps(bias + col + 8 * g) : _mm256_maskload_ps(bias + col + 8 * g, mask[g]))
                : _mm256_setzero_ps();
    // Columns past n are padding in the packed weight: scale 0.
    cs[g] = precision == MQ_PREC_INT8 ? _mm256_loadu_ps(cscale + col + 8 * g) : _mm256_setzero_ps();
  }
  for (int r = 0; r < rows; r++) {
    float *out = y + (row0 + r) * ldc + col;
    const float *rr = res ? res + (row0 + r) * ep->ldr + col : NULL;
    const __m256 rs = _mm256_set1_ps(precision == MQ_PREC_INT8 ? rscale[r] : 0.0f);
    for (int g = 0; g < 4 && 8 * g < cols; g++) {
      __m256 v = precision == MQ_PREC_INT8
                     ? _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(itile + r * NP + 8 * g))),
                                     _mm256_mul_ps(rs, cs[g]))
                     : _mm256_loadu_ps(ftile + r * NP + 8 * g);
      if (bias) v = _mm256_add_ps(v, b[g]);
      if (rr) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(rr + 8 * g) : _mm256_maskload_ps(rr + 8 * g, mask[g]));
      if (act == MQ_ACT_RELU) v = _mm256_max_ps(v, _mm256_setzero_ps());
      if (full) _mm256_storeu_ps(out + 8 * g, v);
      else _mm256_maskstore_ps(out + 8 * g, mask[g], v);
    }
    if (act == MQ_ACT_TANH) mq_tanh(out, out, 0, cols);
    if (act == MQ_ACT_SIGMOID) mq_sigmoid(out, out, 0, cols);
  }
}

// mq_qact_convert_portable's bytes with AVX2: IEEE division, round to nearest even, the same
// clamp (int8); the same integer rounding (bf16). Whole blocks of 32 (int8) or 16 (bf16) values
// in ymm registers, the rest with the portable loop's own scalar steps.
MQ_TAVX2 void mq_qact_convert_avx2(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act) {
  const int64_t words = precision == MQ_PREC_INT8 ? (k + 3) / 4 : (k + 1) / 2;
  uint32_t *out = (uint32_t *)act;
  float *scales = (float *)(out + m * words);
  const __m256i one = _mm256_set1_epi32(1), round = _mm256_set1_epi32(0x7fff);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < m; i++) {
    const float *row = x + i * ldx;
    if (precision == MQ_PREC_BF16) {
      uint16_t *o = (uint16_t *)(out + i * words);
      int64_t e = 0;
      for (; e + 16 <= k; e += 16) {
        __m256i u0 = _mm256_castps_si256(_mm256_loadu_ps(row + e));
        __m256i u1 = _mm256_castps_si256(_mm256_loadu_ps(row + e + 8));
        u0 = _mm256_srli_epi32(_mm256_add_epi32(u0, _mm256_add_epi32(round, _mm256_and_si256(_mm256_srli_epi32(u0, 16), one))), 16);
        u1 = _mm256_srli_epi32(_mm256_add_epi32(u1, _mm256_add_epi32(round, _mm256_and_si256(_mm256_srli_epi32(u1, 16), one))), 16);
        // packus works per 128-bit lane: [u0 lo, u1 lo, u0 hi, u1 hi] -> [u0, u1].
        __m256i h = _mm256_permute4x64_epi64(_mm256_packus_epi32(u0, u1), 0xD8);
        _mm256_storeu_si256((__m256i *)(o + e), h);
      }
      for (; e < k; e++) o[e] = mq_q_to_bf16(row[e]);
      if (k & 1) o[k] = 0;
      continue;
    }
    uint8_t *o = (uint8_t *)(out + i * words);
    __m256 amax8 = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int64_t e = 0;
    for (; e + 8 <= k; e += 8) amax8 = _mm256_max_ps(amax8, _mm256_and_ps(_mm256_loadu_ps(row + e), absmask));
    float lanes[8];
    _mm256_storeu_ps(lanes, amax8);
    float amax = 0.0f;
    for (int l = 0; l < 8; l++) amax = fmaxf(amax, lanes[l]);
    for (; e < k; e++) amax = fmaxf(amax, fabsf(row[e]));
    const float t = amax / 127.0f;
    scales[i] = t;
    const int64_t bytes = 4 * words;
    if (t == 0.0f) {
      memset(o, 128, (size_t)bytes);
      continue;
    }
    const __m256 vt = _mm256_set1_ps(t), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i bias = _mm256_set1_epi32(128);
    e = 0;
    for (; e + 32 <= k; e += 32) {
      __m256i v[4];
      for (int g = 0; g < 4; g++) {
        __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(row + e + 8 * g), vt),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
        v[g] = _mm256_add_epi32(_mm256_cvtps_epi32(q), bias); // 1..255
      }
      // packs/packus work per 128-bit lane; `order` puts the 8 groups of 4 bytes back in order.
      __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
      _mm256_storeu_si256((__m256i *)(o + e), _mm256_permutevar8x32_epi32(b, order));
    }
    for (; e < bytes; e++) o[e] = (uint8_t)(e < k ? mq_q_int8(row[e], t) + 128 : 128);
  }
}
#endif
