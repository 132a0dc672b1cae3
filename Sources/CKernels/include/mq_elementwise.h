// Declarations of elementwise.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_ELEMENTWISE_H
#define MQAN_ELEMENTWISE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Elementwise, on a flat range [r0, r1) of n elements. out may be an input (in place), never a
// partial overlap of one; the same holds for the softmax, layer norm and LSTM c_in/c_out below.
// out[i] = a[i] op b[i % bn]   (bn divides n: b is equal-shaped or a broadcast suffix)
void mq_add(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_add_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_sub(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_sub_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_mul(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);
void mq_mul_ref(float *out, const float *a, const float *b, int64_t bn, int64_t r0, int64_t r1);

// out[i] = alpha * x[i] + beta
void mq_affine(float *out, const float *x, float alpha, float beta, int64_t r0, int64_t r1);
void mq_affine_ref(float *out, const float *x, float alpha, float beta, int64_t r0, int64_t r1);
void mq_tanh(float *out, const float *x, int64_t r0, int64_t r1);
void mq_tanh_ref(float *out, const float *x, int64_t r0, int64_t r1);
void mq_sigmoid(float *out, const float *x, int64_t r0, int64_t r1);
void mq_sigmoid_ref(float *out, const float *x, int64_t r0, int64_t r1);
void mq_relu(float *out, const float *x, int64_t r0, int64_t r1);
void mq_relu_ref(float *out, const float *x, int64_t r0, int64_t r1);

// Row bias: y[r, :] += bias[:] for rows [r0, r1) of an [rows, n] matrix.
void mq_add_bias(float *y, const float *bias, int64_t n, int64_t r0, int64_t r1);
void mq_add_bias_ref(float *y, const float *bias, int64_t n, int64_t r0, int64_t r1);

// Bias and residual: y[r, j] = (y[r, j] + bias[j]) + res[r, j] (bias may be NULL), rows [r0, r1)
// of n columns, rows ld floats apart in y and res.
void mq_add_bias_residual(float *y, const float *bias, const float *res, int64_t n, int64_t ld, int64_t r0,
                          int64_t r1);
void mq_add_bias_residual_ref(float *y, const float *bias, const float *res, int64_t n, int64_t ld, int64_t r0,
                              int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
