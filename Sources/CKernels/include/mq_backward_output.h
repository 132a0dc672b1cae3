// Declarations of backward_output.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_BACKWARD_OUTPUT_H
#define MQAN_BACKWARD_OUTPUT_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// LSTM gate update for rows [r0, r1) of B: dh, dc [B, H] (gradients of h', c'), gates [B, 4H],
// c_prev, c_new [B, H] -> dgates [B, 4H] (pre-activation gradients, order i, f, g, o) and
// dc_prev [B, H]. dc_prev may be dc.
void mq_lstm_cell_backward(float *dgates, float *dc_prev, const float *dh, const float *dc,
                           const float *gates, const float *c_prev, const float *c_new, int64_t H,
                           int64_t r0, int64_t r1);
void mq_lstm_cell_backward_ref(float *dgates, float *dc_prev, const float *dh, const float *dc,
                               const float *gates, const float *c_prev, const float *c_new,
                               int64_t H, int64_t r0, int64_t r1);

// Pointer-generator mixture for rows [r0, r1) of B*T (shapes as mq_pointer_mixture; dP [B*T, X]):
//   dpvocab = gamma dP[:V]; dac_i = lambda (1 - gamma) dP[cid_i]; daq_j = (1 - lambda)(1 - gamma) dP[qid_j]
//   dgamma = sum dP[:V] pv - lambda sum dP[cid_i] ac_i - (1 - lambda) sum dP[qid_j] aq_j
//   dlambda = (1 - gamma) (sum dP[cid_i] ac_i - sum dP[qid_j] aq_j)
void mq_pointer_mixture_backward(float *dpvocab, float *dgamma, float *dlambda, float *dac,
                                 float *daq, const float *dP, const float *pvocab,
                                 const float *gamma, const float *lambda, const float *ac,
                                 const int32_t *cids, const float *aq, const int32_t *qids,
                                 int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                                 int64_t r0, int64_t r1);
void mq_pointer_mixture_backward_ref(float *dpvocab, float *dgamma, float *dlambda, float *dac,
                                     float *daq, const float *dP, const float *pvocab,
                                     const float *gamma, const float *lambda, const float *ac,
                                     const int32_t *cids, const float *aq, const int32_t *qids,
                                     int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                                     int64_t r0, int64_t r1);

// NLL for rows [r0, r1) of P, dP [rows, X]: zeroes the rows, then dP[r, t_r] = c / P[r, t_r] with
// c = -g / count (in double, rounded once) for every row whose target != ignore. count is the
// number of kept rows in the whole tensor; count <= 0 leaves all zeros.
void mq_nll_backward(float *dP, const float *P, const int32_t *targets, int64_t X, int32_t ignore,
                     float g, int64_t count, int64_t r0, int64_t r1);
void mq_nll_backward_ref(float *dP, const float *P, const int32_t *targets, int64_t X,
                         int32_t ignore, float g, int64_t count, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
