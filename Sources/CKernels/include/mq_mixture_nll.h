// Declarations of mixture_nll.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_MIXTURE_NLL_H
#define MQAN_MIXTURE_NLL_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Training's output layer fused (mixture_nll.c): softmax of logits [rows, V], the pointer mixture
// and the NLL of targets [rows] (rows = B * T, T per item); the forward adds -log P[target] of
// its rows into *loss (double) and their number into *count, and saves stats [rows, 3] (max, sum
// of exps, P[target]); the backward, from the loss gradient gl and the total count, writes
// dlogits [rows, V], dgamma, dlambda [rows], dac [rows, Lc], daq [rows, Lq]. Bit for bit the
// unfused kernels' results; the _ref twins use libm's expf and plain loops.
void mq_mixture_nll(double *loss, int64_t *count, float *stats, const float *logits, const float *gamma,
                    const float *lambda, const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                    const int32_t *targets, int64_t T, int64_t V, int64_t Lc, int64_t Lq, int32_t ignore, int64_t r0,
                    int64_t r1);
void mq_mixture_nll_ref(double *loss, int64_t *count, float *stats, const float *logits, const float *gamma,
                        const float *lambda, const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                        const int32_t *targets, int64_t T, int64_t V, int64_t Lc, int64_t Lq, int32_t ignore,
                        int64_t r0, int64_t r1);
void mq_mixture_nll_backward(float *dlogits, float *dgamma, float *dlambda, float *dac, float *daq, float gl,
                             int64_t count, const float *logits, const float *gamma, const float *lambda,
                             const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                             const int32_t *targets, const float *stats, int64_t T, int64_t V, int64_t Lc, int64_t Lq,
                             int32_t ignore, int64_t r0, int64_t r1);
void mq_mixture_nll_backward_ref(float *dlogits, float *dgamma, float *dlambda, float *dac, float *daq, float gl,
                                 int64_t count, const float *logits, const float *gamma, const float *lambda,
                                 const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                                 const int32_t *targets, const float *stats, int64_t T, int64_t V, int64_t Lc,
                                 int64_t Lq, int32_t ignore, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
