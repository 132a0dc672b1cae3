// Declarations of softmax.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_SOFTMAX_H
#define MQAN_SOFTMAX_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Masked softmax over the last axis of x viewed as [rows, n]; rows = batch * q (q rows per batch
// item). Row r belongs to batch item r / q and query position i = r % q.
//   s_j = x[r, j]
//   if causal and j > i + causal_offset: s_j = fill
//   if mask != NULL and mask[(r / q) * n + j] != 0: s_j = fill
//   out[r, j] = softmax_j(s_j * scale) + eps
// (decaNLP fills before scaling; fill = -1e10 in the transformer and coattention, -INFINITY in the
// LSTM decoder attention, where eps = 1e-10 is added to every weight.)
void mq_masked_softmax(float *out, const float *x, const float *mask, int64_t q, int64_t n,
                       float scale, float fill, float eps, int causal, int64_t causal_offset,
                       int64_t r0, int64_t r1);
void mq_masked_softmax_ref(float *out, const float *x, const float *mask, int64_t q, int64_t n,
                           float scale, float fill, float eps, int causal, int64_t causal_offset,
                           int64_t r0, int64_t r1);

// decaNLP's LayerNorm on [rows, d]: gamma * (x - mean) / (std + eps) + beta, std unbiased (d - 1).
void mq_layernorm(float *out, const float *x, const float *gamma, const float *beta, int64_t d,
                  float eps, int64_t r0, int64_t r1);
void mq_layernorm_ref(float *out, const float *x, const float *gamma, const float *beta, int64_t d,
                      float eps, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
