// Elementwise kernels and the row bias.
//
// Legend: n = elements of the output (flat), [r0, r1) = the flat range this call writes,
// bn = elements of b (divides n: b equal-shaped, or a broadcast suffix repeated n / bn times),
// y [rows, n] with bias [n] for mq_add_bias (there [r0, r1) are rows).
//
// out may be the same pointer as an input (in-place), never a partial overlap.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

enum { MQ_OP_ADD, MQ_OP_SUB, MQ_OP_MUL };

MQ_INLINE float mq_apply(int op, float x, float y) {
  return op == MQ_OP_ADD ? x + y : op == MQ_OP_SUB ? x - y : x * y;
}

// out[i] = a[i] op b[i % bn]: walks [r0, r1) in segments that line up with one copy of b, so the
// inner loop is a plain contiguous vector loop.
MQ_INLINE void mq_binary(int op, float *out, const float *a, const float *b, int64_t bn,
                         int64_t r0, int64_t r1) {
  if (bn == 1) {
    const float s = b[0];
#pragma omp simd
    for (int64_t i = r0; i < r1; i++) out[i] = mq_apply(op, a[i], s);
    return;
  }
  int64_t i = r0, j = r0 % bn;
  while (i < r1) {
    int64_t len = r1 - i < bn - j ? r1 - i : bn - j;
    const float *bj = b + j;
    float *o = out + i;
    const float *ai = a + i;
#pragma omp simd
    for (int64_t k = 0; k < len; k++) o[k] = mq_apply(op, ai[k], bj[k]);
    i += len;
    j = 0;
  }
}

MQ_HOT void mq_add(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1) {
  mq_binary(MQ_OP_ADD, out, a, b, bn, r0, r1);
}
MQ_HOT void mq_sub(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1) {
  mq_binary(MQ_OP_SUB, out, a, b, bn, r0, r1);
}
MQ_HOT void mq_mul(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1) {
  mq_binary(MQ_OP_MUL, out, a, b, bn, r0, r1);
}

void mq_add_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) out[i] = a[i] + b[i % bn];
}
void mq_sub_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) out[i] = a[i] - b[i % bn];
}
void mq_mul_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) out[i] = a[i] * b[i % bn];
}

// ---------------------------------------------------------------------------------------------
// Unary: x[i] -> out[i]. alpha * x + beta rounds twice (no FMA), like torch's x * a + b.
MQ_HOT void mq_affine(float *out, const float *x, float alpha, float beta, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) out[i] = alpha * x[i] + beta;
}
void mq_affine_ref(float *out, const float *x, float alpha, float beta, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) out[i] = alpha * x[i] + beta;
}

MQ_HOT void mq_tanh(float *out, const float *x, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) out[i] = mq_tanhf(x[i]);
}
void mq_tanh_ref(float *out, const float *x, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) out[i] = tanhf(x[i]);
}

MQ_HOT void mq_sigmoid(float *out, const float *x, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) out[i] = mq_sigmoidf(x[i]);
}
void mq_sigmoid_ref(float *out, const float *x, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) out[i] = 1.0f / (1.0f + expf(-x[i]));
}

// relu keeps NaN (torch's clamp_min propagates it).
MQ_HOT void mq_relu(float *out, const float *x, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
void mq_relu_ref(float *out, const float *x, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    float v = x[i];
    if (v < 0.0f) v = 0.0f;
    out[i] = v;
  }
}

// ---------------------------------------------------------------------------------------------
// y[r, :] += bias for rows [r0, r1) of y [rows, n].
MQ_HOT void mq_add_bias(float *y, const float *bias, int64_t n, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    float *yr = y + r * n;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) yr[j] += bias[j];
  }
}
void mq_add_bias_ref(float *y, const float *bias, int64_t n, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t j = 0; j < n; j++) y[r * n + j] = y[r * n + j] + bias[j];
}

// y[r, j] = (y[r, j] + bias[j]) + res[r, j] (bias may be NULL) for rows [r0, r1) of n columns,
// rows ld floats apart in both y and res: a linear's bias and residual epilogue, the same sums as
// mq_add_bias then mq_add.
MQ_HOT void mq_add_bias_residual(float *y, const float *bias, const float *res, int64_t n, int64_t ld, int64_t r0,
                                 int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    float *yr = y + r * ld;
    const float *rr = res + r * ld;
    if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) yr[j] = (yr[j] + bias[j]) + rr[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) yr[j] = yr[j] + rr[j];
    }
  }
}
void mq_add_bias_residual_ref(float *y, const float *bias, const float *res, int64_t n, int64_t ld, int64_t r0,
                              int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t j = 0; j < n; j++) {
      float v = y[r * ld + j];
      if (bias) v = v + bias[j];
      y[r * ld + j] = v + res[r * ld + j];
    }
}
