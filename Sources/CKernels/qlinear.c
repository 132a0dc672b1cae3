// Reduced-precision linears (bf16, int8): packing, activation conversion, the AVX-512 and
// portable kernels and the oracle. The formats and error bounds are in mq_qlinear.h.
#include "mq_qlinear.h"
#include "mq_elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define MQ_HAVE_X86 1
#endif

#define NP MQ_QPANEL
// Rows per register tile, and rows per block whose converted activations stay in L2 while the
// thread's panels stream past them.
#define MQ_QMR 12
#define MQ_QMB 240

static int64_t mq_round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }
static int64_t mq_kgroup(int precision) { return precision == MQ_PREC_INT8 ? 4 : 2; }
static int64_t mq_kwords(int precision, int64_t k) { return (k + mq_kgroup(precision) - 1) / mq_kgroup(precision); }

// ---------------------------------------------------------------------------------------------
// CPU features.
#if MQ_HAVE_X86
static uint64_t mq_q_xgetbv0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

// Bit 0: AVX512_BF16 usable; bit 1: AVX512_VNNI usable (each with AVX512F/BW and zmm state saved).
static int mq_q_detect(void) {
  unsigned a, b, c, d;
  __cpuid_count(0, 0, a, b, c, d);
  if (a < 7) return 0;
  __cpuid_count(1, 0, a, b, c, d);
  if (!((c >> 27) & 1)) return 0; // OSXSAVE
  if ((mq_q_xgetbv0() & 0xe6) != 0xe6) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  int f = (b >> 16) & 1, bw = (b >> 30) & 1, vnni = (c >> 11) & 1;
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  int bf16 = (a1 >> 5) & 1;
  (void)b1; (void)c1; (void)d1;
  int bits = 0;
  if (f && bw && bf16) bits |= 1;
  if (f && bw && vnni) bits |= 2;
  // MQAN_DISABLE_ISA=avx512_bf16,avx512_vnni: run as on a CPU without them (tests of the fallback).
  const char *off = getenv("MQAN_DISABLE_ISA");
  if (off && strstr(off, "avx512_bf16")) bits &= ~1;
  if (off && strstr(off, "avx512_vnni")) bits &= ~2;
  return bits;
}
#else
static int mq_q_detect(void) { return 0; }
#endif

static int mq_q_features(void) {
  static int cached = -1;
  int f = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (f < 0) {
    f = mq_q_detect();
    __atomic_store_n(&cached, f, __ATOMIC_RELAXED);
  }
  return f;
}

int mq_qpath_supported(int precision, int path) {
  if (precision != MQ_PREC_BF16 && precision != MQ_PREC_INT8) return 0;
  if (path == MQ_QPATH_PORTABLE) return 1;
  if (path != MQ_QPATH_AVX512) return 0;
  return (mq_q_features() & (precision == MQ_PREC_BF16 ? 1 : 2)) != 0;
}

int mq_qpath_best(int precision) {
  return mq_qpath_supported(precision, MQ_QPATH_AVX512) ? MQ_QPATH_AVX512 : MQ_QPATH_PORTABLE;
}

const char *mq_qpath_needs(int precision) {
  return precision == MQ_PREC_INT8 ? "AVX512_VNNI (with AVX512BW)" : "AVX512_BF16 (with AVX512BW)";
}

const char *mq_qpath_name(int precision, int path) {
  if (path == MQ_QPATH_PORTABLE) return "portable";
  return precision == MQ_PREC_INT8 ? "avx512-vnni" : "avx512-bf16";
}

int64_t mq_qlinear_max_k(int precision) { return precision == MQ_PREC_INT8 ? 65536 : INT64_C(1) << 30; }

// ---------------------------------------------------------------------------------------------
// Conversions (the same on every path).
static inline uint16_t mq_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even (inputs are finite)
  return (uint16_t)(u >> 16);
}

static inline float mq_from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

// Symmetric int8 scale of a vector: max |v| / 127 (0 for an all-zero vector).
static float mq_int8_scale(const float *v, int64_t k, int64_t stride) {
  float amax = 0.0f;
  for (int64_t i = 0; i < k; i++) amax = fmaxf(amax, fabsf(v[i * stride]));
  return amax / 127.0f;
}

static inline int32_t mq_int8_q(float x, float scale) {
  if (scale == 0.0f) return 0;
  float q = nearbyintf(x / scale);
  return q > 127.0f ? 127 : q < -127.0f ? -127 : (int32_t)q;
}

size_t mq_qweight_bytes(int precision, int64_t n, int64_t k) {
  int64_t panels = mq_qweight_panels(n), words = mq_kwords(precision, k);
  int64_t tail = precision == MQ_PREC_INT8 ? panels * NP * 8 : 0;
  return (size_t)mq_round64(panels * words * NP * 4 + tail);
}

int64_t mq_qweight_panels(int64_t n) { return (n + NP - 1) / NP; }

void mq_qweight_pack(int precision, int64_t n, int64_t k, const float *w, void *packed, int64_t p0,
                     int64_t p1) {
  int64_t words = mq_kwords(precision, k), panels = mq_qweight_panels(n);
  uint32_t *out = (uint32_t *)packed;
  float *scales = (float *)(out + panels * words * NP);
  int32_t *sums = (int32_t *)(scales + panels * NP);
  for (int64_t p = p0; p < p1; p++) {
    uint32_t *panel = out + p * words * NP;
    for (int64_t jj = 0; jj < NP; jj++) {
      int64_t j = p * NP + jj;
      const float *row = j < n ? w + j * k : NULL;
      if (precision == MQ_PREC_BF16) {
        for (int64_t q = 0; q < words; q++) {
          uint32_t lo = row && 2 * q < k ? mq_to_bf16(row[2 * q]) : 0;
          uint32_t hi = row && 2 * q + 1 < k ? mq_to_bf16(row[2 * q + 1]) : 0;
          panel[q * NP + jj] = lo | (hi << 16);
        }
        continue;
      }
      float s = row ? mq_int8_scale(row, k, 1) : 0.0f;
      int32_t sum = 0;
      for (int64_t q = 0; q < words; q++) {
        uint32_t word = 0;
        for (int b = 0; b < 4; b++) {
          int32_t v = row && 4 * q + b < k ? mq_int8_q(row[4 * q + b], s) : 0;
          sum += v;
          word |= (uint32_t)(uint8_t)(int8_t)v << (8 * b);
        }
        panel[q * NP + jj] = word;
      }
      scales[j] = s;
      sums[j] = sum;
    }
  }
}

void mq_qweight_unpack(int precision, int64_t n, int64_t k, const void *packed, float *w) {
  int64_t words = mq_kwords(precision, k), panels = mq_qweight_panels(n), g = mq_kgroup(precision);
  const uint32_t *in = (const uint32_t *)packed;
  const float *scales = (const float *)(in + panels * words * NP);
  for (int64_t j = 0; j < n; j++) {
    const uint32_t *panel = in + (j / NP) * words * NP;
    for (int64_t e = 0; e < k; e++) {
      uint32_t word = panel[(e / g) * NP + j % NP];
      int shift = (int)(e % g) * (precision == MQ_PREC_INT8 ? 8 : 16);
      w[j * k + e] = precision == MQ_PREC_BF16 ? mq_from_bf16((uint16_t)(word >> shift))
                                                : (float)(int8_t)(word >> shift) * scales[j];
    }
  }
}

// Activations: m rows of `words` words (row-major), then (int8) m row scales.
size_t mq_qact_bytes(int precision, int64_t m, int64_t k) {
  return (size_t)mq_round64(m * mq_kwords(precision, k) * 4 + (precision == MQ_PREC_INT8 ? m * 4 : 0));
}

void mq_qact_convert(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act) {
  int64_t words = mq_kwords(precision, k);
  uint32_t *out = (uint32_t *)act;
  float *scales = (float *)(out + m * words);
  for (int64_t i = 0; i < m; i++) {
    const float *row = x + i * ldx;
    uint32_t *o = out + i * words;
    if (precision == MQ_PREC_BF16) {
      for (int64_t q = 0; q < words; q++) {
        uint32_t lo = mq_to_bf16(row[2 * q]);
        uint32_t hi = 2 * q + 1 < k ? mq_to_bf16(row[2 * q + 1]) : 0;
        o[q] = lo | (hi << 16);
      }
      continue;
    }
    float t = mq_int8_scale(row, k, 1);
    for (int64_t q = 0; q < words; q++) {
      uint32_t word = 0;
      for (int b = 0; b < 4; b++) {
        int32_t v = 4 * q + b < k ? mq_int8_q(row[4 * q + b], t) : 0;
        word |= (uint32_t)(v + 128) << (8 * b);
      }
      o[q] = word;
    }
    scales[i] = t;
  }
}

// ---------------------------------------------------------------------------------------------
// The epilogue of a tile of `rows` x `cols` sums (cols <= 32, tile rows 32 floats apart), written
// to y at column `col`: bias, residual, then the activation.
static void mq_q_store(const float *tile, int rows, int cols, int64_t row0, int64_t col, float *y,
                       int64_t ldc, const mq_gemm_epilogue *ep) {
  for (int r = 0; r < rows; r++) {
    float *out = y + (row0 + r) * ldc + col;
    const float *t = tile + r * NP;
    for (int j = 0; j < cols; j++) {
      float v = t[j];
      if (ep && ep->bias) v = v + ep->bias[col + j];
      if (ep && ep->residual) v = v + ep->residual[(row0 + r) * ep->ldr + col + j];
      if (ep && ep->act == MQ_ACT_RELU) v = v < 0.0f ? 0.0f : v;
      out[j] = v;
    }
    if (ep && ep->act == MQ_ACT_TANH) mq_tanh(out, out, 0, cols);
    if (ep && ep->act == MQ_ACT_SIGMOID) mq_sigmoid(out, out, 0, cols);
  }
}

// int8's sums to floats: t_i s_j (acc - 128 colsum_j).
static void mq_q_dequant(const int32_t *acc, int rows, const float *rscale, const float *cscale,
                         const int32_t *csum, float *tile) {
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < NP; j++)
      tile[r * NP + j] = (float)(acc[r * NP + j] - 128 * csum[j]) * (rscale[r] * cscale[j]);
}

// ---------------------------------------------------------------------------------------------
// Portable tiles: `rows` rows of act against one panel, all `words` words.
static void mq_q_tile_portable(int precision, int rows, int64_t words, const uint32_t *a, const uint32_t *panel,
                               float *ftile, int32_t *itile) {
  for (int r = 0; r < rows; r++) {
    const uint32_t *ar = a + r * words;
    for (int j = 0; j < NP; j++) {
      if (precision == MQ_PREC_BF16) {
        float acc = 0.0f;
        for (int64_t q = 0; q < words; q++) {
          uint32_t x = ar[q], w = panel[q * NP + j];
          acc = acc + mq_from_bf16((uint16_t)(x >> 16)) * mq_from_bf16((uint16_t)(w >> 16));
          acc = acc + mq_from_bf16((uint16_t)x) * mq_from_bf16((uint16_t)w);
        }
        ftile[r * NP + j] = acc;
      } else {
        int32_t acc = 0;
        for (int64_t q = 0; q < words; q++) {
          uint32_t x = ar[q], w = panel[q * NP + j];
          for (int b = 0; b < 4; b++) acc += (int32_t)(uint8_t)(x >> (8 * b)) * (int32_t)(int8_t)(w >> (8 * b));
        }
        itile[r * NP + j] = acc;
      }
    }
  }
}

#if MQ_HAVE_X86
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

static MQ_TBF16 void mq_q_tile_bf16_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel,
                                        float *tile) {
  MQ_Q_DISPATCH(mq_q_tile_bf16, rows, words, a, panel, tile)
}

static MQ_TVNNI void mq_q_tile_vnni_any(int rows, int64_t words, const uint32_t *a, const uint32_t *panel,
                                        int32_t *tile) {
  MQ_Q_DISPATCH(mq_q_tile_vnni, rows, words, a, panel, tile)
}
#endif

#if MQ_HAVE_X86
// mq_q_dequant + mq_q_store in zmm registers, with the same operations in the same order (so the
// same bits): a tile's epilogue costs about as much as its sums at k = 200 when done one float
// at a time.
static __attribute__((target("avx512f"))) void mq_q_store_512(int precision, const float *ftile, const int32_t *itile,
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
#endif

void mq_qlinear(int precision, int path, int64_t m, int64_t n, int64_t k, const void *act,
                const void *packed, float *y, int64_t ldc, const mq_gemm_epilogue *ep, int64_t c0,
                int64_t c1) {
  if (c0 >= c1 || m <= 0) return;
  int64_t words = mq_kwords(precision, k), panels = mq_qweight_panels(n);
  const uint32_t *a = (const uint32_t *)act, *w = (const uint32_t *)packed;
  const float *rscale = (const float *)(a + m * words);
  const float *cscale = (const float *)(w + panels * words * NP);
  const int32_t *csum = (const int32_t *)(cscale + panels * NP);
  float ftile[MQ_QMR * NP] __attribute__((aligned(64)));
  int32_t itile[MQ_QMR * NP] __attribute__((aligned(64)));
  int simd = path == MQ_QPATH_AVX512 && mq_qpath_supported(precision, path);
  (void)simd; // (no SIMD path off x86)
  for (int64_t rb = 0; rb < m; rb += MQ_QMB) {
    int64_t rend = rb + MQ_QMB < m ? rb + MQ_QMB : m;
    for (int64_t p = c0 / NP; p * NP < c1; p++) {
      const uint32_t *panel = w + p * words * NP;
      int64_t col = p * NP;
      int cols = (int)((c1 - col) < NP ? (c1 - col) : NP);
      for (int64_t r = rb; r < rend; r += MQ_QMR) {
        int rows = (int)((rend - r) < MQ_QMR ? (rend - r) : MQ_QMR);
        const uint32_t *ar = a + r * words;
#if MQ_HAVE_X86
        if (simd) {
          if (precision == MQ_PREC_BF16) mq_q_tile_bf16_any(rows, words, ar, panel, ftile);
          else mq_q_tile_vnni_any(rows, words, ar, panel, itile);
          mq_q_store_512(precision, ftile, itile, rows, cols, r, col, y, ldc, ep, rscale + r, cscale, csum);
          continue;
        }
#endif
        mq_q_tile_portable(precision, rows, words, ar, panel, ftile, itile);
        if (precision == MQ_PREC_INT8) mq_q_dequant(itile, rows, rscale + r, cscale + col, csum + col, ftile);
        mq_q_store(ftile, rows, cols, r, col, y, ldc, ep);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
void mq_qlinear_ref(int precision, int64_t m, int64_t n, int64_t k, const float *x, int64_t ldx,
                    const float *w, float *y, int64_t ldc, const mq_gemm_epilogue *ep) {
  for (int64_t i = 0; i < m; i++) {
    const float *xr = x + i * ldx;
    float t = precision == MQ_PREC_INT8 ? mq_int8_scale(xr, k, 1) : 0.0f;
    for (int64_t j = 0; j < n; j++) {
      const float *wr = w + j * k;
      float s = precision == MQ_PREC_INT8 ? mq_int8_scale(wr, k, 1) : 0.0f;
      double acc = 0.0;
      for (int64_t e = 0; e < k; e++) {
        double xv, wv;
        if (precision == MQ_PREC_BF16) {
          xv = mq_from_bf16(mq_to_bf16(xr[e]));
          wv = mq_from_bf16(mq_to_bf16(wr[e]));
        } else {
          xv = (double)mq_int8_q(xr[e], t) * t;
          wv = (double)mq_int8_q(wr[e], s) * s;
        }
        acc += xv * wv;
      }
      float v = (float)acc;
      if (ep) {
        if (ep->bias) v = v + ep->bias[j];
        if (ep->residual) v = v + ep->residual[i * ep->ldr + j];
        if (ep->act == MQ_ACT_RELU) v = v < 0.0f ? 0.0f : v;
        if (ep->act == MQ_ACT_TANH) v = tanhf(v);
        if (ep->act == MQ_ACT_SIGMOID) v = 1.0f / (1.0f + expf(-v));
      }
      y[i * ldc + j] = v;
    }
  }
}
