// Masked softmax and decaNLP's LayerNorm.
//
// Legend: x, out [rows, n] for the softmax with rows = batch * q (row r: batch item r / q, query
// position i = r % q), mask [batch, n] (nonzero = masked, may be NULL); x, out [rows, d] with
// gamma, beta [d] for the layer norm. [r0, r1) are rows. out may be the same pointer as x.
//
// Float math as PyTorch float32: softmax = exp(s - max) / sum, + eps; the layer norm's mean and
// unbiased variance are accumulated in double (torch's Welford accumulates in double), rounded to
// float, then gamma * (x - mean) / (std + eps) + beta in float, in that order.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

// First masked column of row (i = r % q) under the causal rule j > i + offset, clamped to [0, n].
MQ_INLINE int64_t mq_causal_limit(int causal, int64_t i, int64_t offset, int64_t n) {
  if (!causal) return n;
  int64_t lim = i + offset + 1;
  return lim < 0 ? 0 : lim > n ? n : lim;
}

MQ_HOT void mq_masked_softmax(float *out, const float *x, const float *mask, int64_t q, int64_t n,
                              float scale, float fill, float eps, int causal,
                              int64_t causal_offset, int64_t r0, int64_t r1) {
  const float fill_scaled = fill * scale;
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * n;
    float *o = out + r * n;
    const int64_t lim = mq_causal_limit(causal, r % q, causal_offset, n);
    // Pass 1: masked, scaled scores into o.
    if (mask) {
      const float *mr = mask + (r / q) * n;
#pragma omp simd
      for (int64_t j = 0; j < n; j++) o[j] = (j >= lim || mr[j] != 0.0f ? fill : xr[j]) * scale;
    } else {
#pragma omp simd
      for (int64_t j = 0; j < lim; j++) o[j] = xr[j] * scale;
      for (int64_t j = lim; j < n; j++) o[j] = fill_scaled;
    }
    // Pass 2: exp(s - max), pass 3: the sum, pass 4: normalize.
    const float m = mq_max16(o, n);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) o[j] = mq_expf(o[j] - m);
    const float sum = mq_sum16(o, n);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) o[j] = o[j] / sum + eps;
  }
}

void mq_masked_softmax_ref(float *out, const float *x, const float *mask, int64_t q, int64_t n,
                           float scale, float fill, float eps, int causal, int64_t causal_offset,
                           int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / q, i = r % q;
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
      float s = x[r * n + j];
      if (causal && j > i + causal_offset) s = fill;
      if (mask != NULL && mask[b * n + j] != 0.0f) s = fill;
      s = s * scale;
      out[r * n + j] = s;
      if (s > m) m = s;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
      float e = expf(out[r * n + j] - m);
      out[r * n + j] = e;
      sum += e;
    }
    for (int64_t j = 0; j < n; j++) out[r * n + j] = out[r * n + j] / sum + eps;
  }
}

// ---------------------------------------------------------------------------------------------
MQ_HOT void mq_layernorm(float *out, const float *x, const float *gamma, const float *beta,
                         int64_t d, float eps, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * d;
    float *o = out + r * d;
    const double mean_d = mq_sum8_f64(xr, d) / (double)d;
    const double var = mq_sqdev8_f64(xr, mean_d, d) / (double)(d - 1);
    const float mean = (float)mean_d;
    const float denom = (float)sqrt(var) + eps;
#pragma omp simd
    for (int64_t j = 0; j < d; j++) o[j] = gamma[j] * (xr[j] - mean) / denom + beta[j];
  }
}

void mq_layernorm_ref(float *out, const float *x, const float *gamma, const float *beta, int64_t d,
                      float eps, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    float mean, std;
    mq_layernorm_row_ref(x + r * d, d, &mean, &std);
    for (int64_t j = 0; j < d; j++)
      out[r * d + j] = gamma[j] * (x[r * d + j] - mean) / (std + eps) + beta[j];
  }
}
