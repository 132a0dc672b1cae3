// Declarations of mixture.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_MIXTURE_H
#define MQAN_MIXTURE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Embedding gather: out[r, :] = table[ids[r], :] for rows [r0, r1); table is [vocab, E].
void mq_embedding(float *out, const float *table, const int32_t *ids, int64_t E, int64_t r0,
                  int64_t r1);
void mq_embedding_ref(float *out, const float *table, const int32_t *ids, int64_t E, int64_t r0,
                      int64_t r1);

// Positional encoding [T, D] (decaNLP): even c: sin(p / 10000^(c/D)); odd c: cos(p / 10000^((c-1)/D)),
// the power computed in double, the division and sin/cos in float, as torch does. Rows = positions.
void mq_positional_encoding(float *out, int64_t D, int64_t r0, int64_t r1);
void mq_positional_encoding_ref(float *out, int64_t D, int64_t r0, int64_t r1);

// out[i] = (ids[i] == pad) ? 1 : 0 for [r0, r1).
void mq_pad_mask(float *out, const int32_t *ids, int32_t pad, int64_t r0, int64_t r1);
void mq_pad_mask_ref(float *out, const int32_t *ids, int32_t pad, int64_t r0, int64_t r1);

// Strided block copy: for o in [r0, r1): copy `width` floats from src + o*src_stride + src_off to
// dst + o*dst_stride + dst_off. Concat, slice and time-step gather/scatter are all this.
void mq_copy_blocks(float *dst, int64_t dst_stride, int64_t dst_off, const float *src,
                    int64_t src_stride, int64_t src_off, int64_t width, int64_t r0, int64_t r1);
void mq_copy_blocks_ref(float *dst, int64_t dst_stride, int64_t dst_off, const float *src,
                        int64_t src_stride, int64_t src_off, int64_t width, int64_t r0, int64_t r1);

// Transpose of the last two axes: x [batch, m, n] -> out [batch, n, m]; rows = batch items.
void mq_transpose(float *out, const float *x, int64_t m, int64_t n, int64_t r0, int64_t r1);
void mq_transpose_ref(float *out, const float *x, int64_t m, int64_t n, int64_t r0, int64_t r1);

// Pointer-generator mixture for rows [r0, r1) of B*T (row r: batch b = r / T):
//   out[r, :V]  = gamma[r] * pvocab[r, :];  out[r, V:X] = 1e-10 (EPSILON-filled OOV slots)
//   out[r, cids[b, i]] += lambda[r] * (1 - gamma[r]) * ac[r, i]       for i < Lc (repeats add up)
//   out[r, qids[b, j]] += (1 - lambda[r]) * (1 - gamma[r]) * aq[r, j] for j < Lq
void mq_pointer_mixture(float *out, const float *pvocab, const float *gamma, const float *lambda,
                        const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                        int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t r0,
                        int64_t r1);
void mq_pointer_mixture_ref(float *out, const float *pvocab, const float *gamma,
                            const float *lambda, const float *ac, const int32_t *cids,
                            const float *aq, const int32_t *qids, int64_t T, int64_t V, int64_t X,
                            int64_t Lc, int64_t Lq, int64_t r0, int64_t r1);

// Negative log-likelihood over rows [r0, r1) of P [rows, X] with targets [rows]: adds
// -log(P[r, t_r]) for every row whose target != ignore into *sum (double) and counts it.
// The log is taken in float (torch's probs.log()), the sum in double.
void mq_nll(double *sum, int64_t *count, const float *P, const int32_t *targets, int64_t X,
            int32_t ignore, int64_t r0, int64_t r1);
void mq_nll_ref(double *sum, int64_t *count, const float *P, const int32_t *targets, int64_t X,
                int32_t ignore, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
