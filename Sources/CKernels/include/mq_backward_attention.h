// Declarations of backward_attention.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_BACKWARD_ATTENTION_H
#define MQAN_BACKWARD_ATTENTION_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Attention (mq_attention's arguments and rows) -> dq [B, Tq, D], dk, dv [B, Tk, D] from the
// upstream g [B, Tq, D]; each (batch, chunk) row writes only its column window. P is recomputed:
// dv = Pᵀ g; dP = g vᵀ; dS = P ⊙ (dP - rowsum(dP ⊙ P)); dq = scale dS k; dk = scale dSᵀ q.
// scratch: at least 2 * Tq * Tk floats per call (the caller gives each thread its own).
void mq_attention_backward(float *dq, float *dk, float *dv, const float *g, const float *q,
                           const float *k, const float *v, const float *keypad, int64_t Tq,
                           int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                           int causal, float *scratch, int64_t r0, int64_t r1);
void mq_attention_backward_dropout(float *dq, float *dk, float *dv, const float *g, const float *q,
                                   const float *k, const float *v, const float *keypad, int64_t Tq,
                                   int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                                   int causal, float p, uint64_t seed, uint64_t salt, float *scratch,
                                   int64_t r0, int64_t r1);
void mq_attention_backward_dropout_ref(float *dq, float *dk, float *dv, const float *g, const float *q,
                                       const float *k, const float *v, const float *keypad, int64_t Tq,
                                       int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                                       int causal, float p, uint64_t seed, uint64_t salt, float *scratch,
                                       int64_t r0, int64_t r1);
void mq_attention_backward_ref(float *dq, float *dk, float *dv, const float *g, const float *q,
                               const float *k, const float *v, const float *keypad, int64_t Tq,
                               int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                               int causal, float *scratch, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
