// Reduced-precision linears (bf16, int8): CPU features, packing, activation conversion, the
// portable kernels, the driver and the oracle (the SIMD tiles are in qlinear_avx512.c and
// qlinear_avx2.c). The formats and error bounds are in mq_qlinear.h.
#include "mq_qlinear.h"
#include "mq_elementwise.h"
#include "qlinear_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if MQ_HAVE_X86
#include <cpuid.h>
#endif

#define NP MQ_QPANEL

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

// Bit 0: AVX512_BF16 usable; bit 1: AVX512_VNNI usable (each with AVX512F/BW and zmm state saved);
// bit 2: AVX512F/BW/VL usable (the activation conversion); bit 3: AVX2 and FMA usable (ymm state
// saved, as the GEMM's AVX2 path checks).
static int mq_q_detect(void) {
  const char *off = getenv("MQAN_DISABLE_ISA");
  int avx2 = mq_gemm_path_supported(MQ_GEMM_AVX2) && !(off && strstr(off, "avx2")) ? 8 : 0;
  unsigned a, b, c, d;
  __cpuid_count(0, 0, a, b, c, d);
  if (a < 7) return avx2;
  __cpuid_count(1, 0, a, b, c, d);
  if (!((c >> 27) & 1)) return avx2; // OSXSAVE
  if ((mq_q_xgetbv0() & 0xe6) != 0xe6) return avx2;
  __cpuid_count(7, 0, a, b, c, d);
  int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  int bf16 = (a1 >> 5) & 1;
  (void)b1; (void)c1; (void)d1;
  int bits = avx2;
  if (f && bw && bf16) bits |= 1;
  if (f && bw && vnni) bits |= 2;
  if (f && bw && vl) bits |= 4;
  // MQAN_DISABLE_ISA=avx512_bf16,avx512_vnni,avx2: run as on a CPU without them (tests of the
  // fallbacks).
  if (off && strstr(off, "avx512_bf16")) bits &= ~1;
  if (off && strstr(off, "avx512_vnni")) bits &= ~2;
  if (off && strstr(off, "avx512bw")) bits &= ~4;
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
  switch (path) {
  case MQ_QPATH_PORTABLE: return 1;
  case MQ_QPATH_AVX512: return (mq_q_features() & (precision == MQ_PREC_BF16 ? 1 : 2)) != 0;
  case MQ_QPATH_AVX2: return (mq_q_features() & 8) != 0;
  default: return 0;
  }
}

int mq_qpath_best(int precision) {
  if (mq_qpath_supported(precision, MQ_QPATH_AVX512)) return MQ_QPATH_AVX512;
  return mq_qpath_supported(precision, MQ_QPATH_AVX2) ? MQ_QPATH_AVX2 : MQ_QPATH_PORTABLE;
}

const char *mq_qpath_needs(int precision, int path) {
  switch (path) {
  case MQ_QPATH_AVX512: return precision == MQ_PREC_INT8 ? "AVX512_VNNI (with AVX512BW)" : "AVX512_BF16 (with AVX512BW)";
  case MQ_QPATH_AVX2: return "AVX2 and FMA";
  default: return "nothing";
  }
}

const char *mq_qpath_name(int precision, int path) {
  switch (path) {
  case MQ_QPATH_AVX512: return precision == MQ_PREC_INT8 ? "avx512-vnni" : "avx512-bf16";
  case MQ_QPATH_AVX2: return "avx2";
  default: return "portable";
  }
}

int64_t mq_qlinear_max_k(int precision) { return precision == MQ_PREC_INT8 ? 65536 : INT64_C(1) << 30; }

// ---------------------------------------------------------------------------------------------
// Conversions (the same on every path).
static inline float mq_from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

// Symmetric int8 scale of a vector: max |v| / 127 (0 for an all-zero vector). A stored int8
// weight (mqan quantize: q and s) packs again into the same panels, pack(unpack(pack(w))) ==
// pack(w): its largest value q s = 127 s gives back s = (127 s) / 127 for every s that is itself
// a float quotient a / 127 (checked for every third float in the normal range; not for an
// arbitrary s, about 1 in 130 of which fails).
static float mq_int8_scale(const float *v, int64_t k, int64_t stride) {
  float amax = 0.0f;
  for (int64_t i = 0; i < k; i++) amax = fmaxf(amax, fabsf(v[i * stride]));
  return amax / 127.0f;
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
          uint32_t lo = row && 2 * q < k ? mq_q_to_bf16(row[2 * q]) : 0;
          uint32_t hi = row && 2 * q + 1 < k ? mq_q_to_bf16(row[2 * q + 1]) : 0;
          panel[q * NP + jj] = lo | (hi << 16);
        }
        continue;
      }
      float s = row ? mq_int8_scale(row, k, 1) : 0.0f;
      int32_t sum = 0;
      for (int64_t q = 0; q < words; q++) {
        uint32_t word = 0;
        for (int b = 0; b < 4; b++) {
          int32_t v = row && 4 * q + b < k ? mq_q_int8(row[4 * q + b], s) : 0;
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

void mq_qweight_export(int precision, int64_t n, int64_t k, const void *packed, void *values,
                       float *scales) {
  int64_t words = mq_kwords(precision, k), panels = mq_qweight_panels(n), g = mq_kgroup(precision);
  const uint32_t *in = (const uint32_t *)packed;
  const float *s = (const float *)(in + panels * words * NP);
  for (int64_t j = 0; j < n; j++) {
    const uint32_t *panel = in + (j / NP) * words * NP;
    for (int64_t e = 0; e < k; e++) {
      uint32_t word = panel[(e / g) * NP + j % NP];
      if (precision == MQ_PREC_BF16) {
        ((uint16_t *)values)[j * k + e] = (uint16_t)(word >> (16 * (e % g)));
      } else {
        ((int8_t *)values)[j * k + e] = (int8_t)(word >> (8 * (e % g)));
      }
    }
    if (precision == MQ_PREC_INT8 && scales) scales[j] = s[j];
  }
}

// Activations: m rows of `words` words (row-major), then (int8) m row scales.
size_t mq_qact_bytes(int precision, int64_t m, int64_t k) {
  return (size_t)mq_round64(m * mq_kwords(precision, k) * 4 + (precision == MQ_PREC_INT8 ? m * 4 : 0));
}

void mq_qact_convert(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act) {
  int f = mq_q_features();
  mq_qact_convert_path(f & 4 ? MQ_QPATH_AVX512 : f & 8 ? MQ_QPATH_AVX2 : MQ_QPATH_PORTABLE, precision, m, k, x,
                       ldx, act);
}

void mq_qact_convert_path(int path, int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act) {
#if MQ_HAVE_X86
  int f = mq_q_features();
  if (path == MQ_QPATH_AVX512 && (f & 4)) return mq_qact_convert_512(precision, m, k, x, ldx, act);
  if (path == MQ_QPATH_AVX2 && (f & 8)) return mq_qact_convert_avx2(precision, m, k, x, ldx, act);
#endif
  (void)path;
  mq_qact_convert_portable(precision, m, k, x, ldx, act);
}

void mq_qact_convert_portable(int precision, int64_t m, int64_t k, const float *x, int64_t ldx, void *act) {
  int64_t words = mq_kwords(precision, k);
  uint32_t *out = (uint32_t *)act;
  float *scales = (float *)(out + m * words);
  for (int64_t i = 0; i < m; i++) {
    const float *row = x + i * ldx;
    uint32_t *o = out + i * words;
    if (precision == MQ_PREC_BF16) {
      for (int64_t q = 0; q < words; q++) {
        uint32_t lo = mq_q_to_bf16(row[2 * q]);
        uint32_t hi = 2 * q + 1 < k ? mq_q_to_bf16(row[2 * q + 1]) : 0;
        o[q] = lo | (hi << 16);
      }
      continue;
    }
    float t = mq_int8_scale(row, k, 1);
    for (int64_t q = 0; q < words; q++) {
      uint32_t word = 0;
      for (int b = 0; b < 4; b++) {
        int32_t v = 4 * q + b < k ? mq_q_int8(row[4 * q + b], t) : 0;
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
  int simd = path != MQ_QPATH_PORTABLE && mq_qpath_supported(precision, path) ? path : MQ_QPATH_PORTABLE;
  (void)simd; // (no SIMD path off x86)
#if MQ_HAVE_X86
  if (simd == MQ_QPATH_AVX2) {
    if (mq_q2_linear(precision, m, words, a, w, rscale, cscale, y, ldc, ep, c0, c1)) return;
    simd = MQ_QPATH_PORTABLE;
  }
#endif
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
        if (simd == MQ_QPATH_AVX512) {
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
          xv = mq_from_bf16(mq_q_to_bf16(xr[e]));
          wv = mq_from_bf16(mq_q_to_bf16(wr[e]));
        } else {
          xv = (double)mq_q_int8(xr[e], t) * t;
          wv = (double)mq_q_int8(wr[e], s) * s;
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
