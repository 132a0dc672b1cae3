// Private scalar math for the kernel files (no tensors here).
//
// Legend: x = one float lane. Every helper is branch-free (selects, not jumps) and uses only
// + - * /, compares and bit casts, so a loop that calls it vectorizes at whatever width the
// target_clones variant allows (16 lanes AVX-512, 8 AVX2, 4 SSE2) and gives the same bits at
// every width. The kernel files turn FP contraction off, so no variant fuses a*b+c into an FMA:
// a result does not depend on which CPU ran it.
#ifndef MQAN_CKERNELS_MATH_H
#define MQAN_CKERNELS_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// Hot kernels: one clone per ISA level, picked at load time by an ifunc resolver (ELF only).
// ThreadSanitizer instruments the resolver, which then runs before the TSan runtime exists and
// crashes at load, so TSan builds get the baseline code only.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(MQ_NO_CLONES)
#define MQ_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(MQ_NO_CLONES)
#define MQ_NO_CLONES 1
#endif
#if defined(__x86_64__) && defined(__ELF__) && !defined(MQ_NO_CLONES)
#define MQ_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MQ_HOT
#endif

#define MQ_INLINE static inline __attribute__((always_inline))

MQ_INLINE float mq_bits_f32(int32_t i) {
  float f;
  memcpy(&f, &i, sizeof f);
  return f;
}

MQ_INLINE int32_t mq_f32_bits(float f) {
  int32_t i;
  memcpy(&i, &f, sizeof i);
  return i;
}

// exp(x), Cephes expf: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-7 polynomial, times
// 2^n built from the exponent bits. Max error ~1-2 ulp against glibc expf. exp(x < ln(FLT_MIN))
// is 0 (no denormals), exp(x > ln(FLT_MAX)) is +inf, NaN stays NaN.
MQ_INLINE float mq_expf(float x) {
  const float hi = 88.72283905f;  // ln(FLT_MAX)
  const float lo = -87.33654475f; // ln(FLT_MIN)
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  // round(x / ln2) with the 1.5 * 2^23 trick: the sum's low mantissa bits hold the integer.
  const float magic = 12582912.0f;
  float t = xc * 1.44269504088896341f + magic;
  int32_t n = mq_f32_bits(t) - mq_f32_bits(magic);
  float nf = t - magic;
  float r = xc - nf * 0.693359375f; // ln2 split in two: the first product is exact
  r = r - nf * -2.12194440e-4f;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  // 2^n as two factors so that n = 128 (x near ln(FLT_MAX)) still has valid exponent fields.
  int32_t n1 = n >> 1;
  int32_t n2 = n - n1;
  // (Shifted as unsigned: a NaN input gives a garbage n, and the result is NaN either way.)
  p = p * mq_bits_f32((int32_t)((uint32_t)(n1 + 127) << 23)) *
      mq_bits_f32((int32_t)((uint32_t)(n2 + 127) << 23));
  p = x < lo ? 0.0f : p;
  return x > hi ? INFINITY : p;
}

// tanh(x), Cephes tanhf: odd polynomial for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1).
MQ_INLINE float mq_tanhf(float x) {
  float ax = x < 0.0f ? -x : x;
  float z = x * x;
  float s = -5.70498872745e-3f;
  s = s * z + 2.06390887954e-2f;
  s = s * z - 5.37397155531e-2f;
  s = s * z + 1.33314422036e-1f;
  s = s * z - 3.33332819422e-1f;
  s = s * z * x + x;
  float e = mq_expf(ax + ax);
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0.0f ? -big : big;
  s = z == 0.0f ? x : s; // keeps the sign of -0 (and tiny x exactly)
  return ax < 0.625f ? s : big;
}

// sigmoid(x) = 1 / (1 + exp(-x)), as torch computes it.
MQ_INLINE float mq_sigmoidf(float x) { return 1.0f / (1.0f + mq_expf(-x)); }

// Sum of n floats with 16 fixed partial sums (lane k takes elements j = k mod 16), added up in a
// fixed tree: the same bits for every vector width.
MQ_INLINE float mq_sum16(const float *x, int64_t n) {
  float acc[16] = {0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; k++) acc[k] += x[j + k];
  for (int k = 0; j + k < n; k++) acc[k] += x[j + k];
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) acc[k] += acc[k + w];
  return acc[0];
}

// Max of n floats (NaNs are skipped, as `s > m` is false for them); -inf for n = 0.
MQ_INLINE float mq_max16(const float *x, int64_t n) {
  float acc[16];
  for (int k = 0; k < 16; k++) acc[k] = -INFINITY;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
  for (int k = 0; j + k < n; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
  float m = acc[0];
  for (int k = 1; k < 16; k++) m = acc[k] > m ? acc[k] : m;
  return m;
}

// The reference twins' layer-norm row statistics (softmax.c, backward_norm.c): mean and unbiased
// std of x[0..d), plain double loops.
MQ_INLINE void mq_layernorm_row_ref(const float *x, int64_t d, float *mean, float *std) {
  double sum = 0.0;
  for (int64_t j = 0; j < d; j++) sum += x[j];
  const double mean_d = sum / (double)d;
  double ss = 0.0;
  for (int64_t j = 0; j < d; j++) {
    const double t = x[j] - mean_d;
    ss += t * t;
  }
  *mean = (float)mean_d;
  *std = (float)sqrt(ss / (double)(d - 1));
}

// Layer norm's row statistics, shared by the forward (softmax.c) and backward (backward_norm.c)
// kernels so the backward recomputes the forward's bits.
// Sum of x[0..d) in double with 8 fixed partial sums (same bits at every vector width).
MQ_INLINE double mq_sum8_f64(const float *x, int64_t d) {
  double acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += (double)x[j + k];
  for (int k = 0; j + k < d; k++) acc[k] += (double)x[j + k];
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// Sum of (x - mean)^2 in double, same layout.
MQ_INLINE double mq_sqdev8_f64(const float *x, double mean, int64_t d) {
  double acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int k = 0; k < 8; k++) {
      double t = (double)x[j + k] - mean;
      acc[k] += t * t;
    }
  for (int k = 0; j + k < d; k++) {
    double t = (double)x[j + k] - mean;
    acc[k] += t * t;
  }
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// Dropout's counter-based hash: a uniform [0, 1) that is a pure function of (seed, salt, i), so
// forward and backward (and any thread split) draw the same mask (dropout.c, attention).
MQ_INLINE uint64_t mq_mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

MQ_INLINE float mq_dropout_uniform(uint64_t seed, uint64_t salt, int64_t i) {
  uint64_t h = mq_mix64(seed ^ mq_mix64(salt * 0xD1B54A32D192ED03ull + (uint64_t)i));
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}

/// Inverted dropout on n attention weights whose mask indices start at `base`.
MQ_INLINE void mq_dropout_apply(float *x, int64_t n, float p, uint64_t seed, uint64_t salt, int64_t base) {
  const float keep = 1.0f / (1.0f - p);
  for (int64_t j = 0; j < n; j++) x[j] = mq_dropout_uniform(seed, salt, base + j) >= p ? x[j] * keep : 0.0f;
}

// Column window [c0, c0 + hw) of torch.chunk chunk c of D columns (attention forward and backward).
MQ_INLINE void mq_chunk_window(int64_t D, int64_t heads, int64_t c, int64_t *c0, int64_t *hw) {
  if (heads < 1) heads = 1;
  int64_t w = (D + heads - 1) / heads;
  *c0 = c * w;
  *hw = D - *c0 < w ? D - *c0 : w;
}

#endif
