// Declarations of attention.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_ATTENTION_H
#define MQAN_ATTENTION_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Multi-head attention as decaNLP's MultiHead (no output projection), for (batch, head) pairs
// [r0, r1) of B * heads. q [B, Tq, D], k/v [B, Tk, D] are already projected; head h owns columns
// [h*w, min((h+1)*w, D)) with w = ceil(D / heads) (torch.chunk). Per head:
//   S = q_h k_hᵀ; causal: S[i, j] = fill for j > i; keypad (may be NULL) [B, Tk]: S[:, j] = fill
//   where keypad[b, j] != 0; P = softmax(S * scale); out_h = P v_h.
// Rows are (batch, chunk) pairs: r = b * mq_attention_chunks(D, heads) + chunk.
// scratch: at least Tq * Tk floats per call (the caller gives each thread its own).
// torch.chunk(heads) along D: chunks are ceil(D / heads) wide, the last takes what remains, so
// there may be fewer than `heads` of them (D = 9, heads = 4 gives 3 chunks of 3).
int64_t mq_attention_chunks(int64_t D, int64_t heads);
void mq_attention(float *out, const float *q, const float *k, const float *v, const float *keypad,
                  int64_t Tq, int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                  int causal, float *scratch, int64_t r0, int64_t r1);

// With decaNLP's dropout on the attention weights (p > 0): after the softmax, weight (r, i, j) is
// kept (times 1/(1-p)) iff the hash of (seed, salt, r * Tq * Tk + i * Tk + j) is >= p.
void mq_attention_dropout(float *out, const float *q, const float *k, const float *v, const float *keypad,
                          int64_t Tq, int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                          int causal, float p, uint64_t seed, uint64_t salt, float *scratch, int64_t r0,
                          int64_t r1);
void mq_attention_dropout_ref(float *out, const float *q, const float *k, const float *v,
                              const float *keypad, int64_t Tq, int64_t Tk, int64_t D, int64_t heads,
                              float scale, float fill, int causal, float p, uint64_t seed, uint64_t salt,
                              float *scratch, int64_t r0, int64_t r1);
void mq_attention_ref(float *out, const float *q, const float *k, const float *v,
                      const float *keypad, int64_t Tq, int64_t Tk, int64_t D, int64_t heads,
                      float scale, float fill, int causal, float *scratch, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
