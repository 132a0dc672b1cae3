// Declarations of backward_norm.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_BACKWARD_NORM_H
#define MQAN_BACKWARD_NORM_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Masked softmax (mq_masked_softmax with scale, eps) over rows [r0, r1) of [rows, n]:
// p = y - eps, dx = scale * p * (g - sum_j g_j p_j). dx may be g or y.
void mq_softmax_backward(float *dx, const float *g, const float *y, int64_t n, float scale,
                         float eps, int64_t r0, int64_t r1);
void mq_softmax_backward_ref(float *dx, const float *g, const float *y, int64_t n, float scale,
                             float eps, int64_t r0, int64_t r1);

// decaNLP's LayerNorm, in two phases. Rows [r0, r1) of [rows, d]: dx, and (unless stats is NULL)
// stats [rows, 2] = (mean, std + eps) of each row as the forward computed them. Then, after every
// row's stats exist, columns [c0, c1) of dgamma = sum_r g (x - mean) / (std + eps) and
// dbeta = sum_r g (rows in order, in double). dx may be g.
void mq_layernorm_backward(float *dx, float *stats, const float *g, const float *x,
                           const float *gamma, int64_t d, float eps, int64_t r0, int64_t r1);
void mq_layernorm_backward_ref(float *dx, float *stats, const float *g, const float *x,
                               const float *gamma, int64_t d, float eps, int64_t r0, int64_t r1);
void mq_layernorm_backward_params(float *dgamma, float *dbeta, const float *g, const float *x,
                                  const float *stats, int64_t rows, int64_t d, int64_t c0,
                                  int64_t c1);
void mq_layernorm_backward_params_ref(float *dgamma, float *dbeta, const float *g, const float *x,
                                      const float *stats, int64_t rows, int64_t d, int64_t c0,
                                      int64_t c1);

#ifdef __cplusplus
}
#endif
#endif
