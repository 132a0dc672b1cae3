// Declarations of topk.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_TOPK_H
#define MQAN_TOPK_H

#include <stdint.h>
#include <stddef.h>

#include "mq_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

// Top-k: the k largest of x [n] into values [k] / indices [k], best first (topk.c). Ties rank by
// lower index; NaN ranks below every number. k is clamped to [0, n]. mq_topk keeps a size-k heap
// (no full sort); mq_topk_ref sorts everything. Indices must fit in int32.
void mq_topk(const float *x, int64_t n, int64_t k, float *values, int32_t *indices);
void mq_topk_ref(const float *x, int64_t n, int64_t k, float *values, int32_t *indices);

// Decoding's output layer fused (topk.c): softmax of logits [rows, V] (no mask, scale 1), the
// pointer mixture (as mq_pointer_mixture, T rows per item) and the k best of the X extended ids
// per row, best first (log of the values when take_log), without the [rows, X] mixture. Equal
// to the three kernels run one after the other. scratch: mq_mixture_topk_scratch(V, Lc, Lq)
// floats per thread (any contents); the _ref twin needs V + X.
int64_t mq_mixture_topk_scratch(int64_t V, int64_t Lc, int64_t Lq);
void mq_mixture_topk(float *values, int32_t *indices, const float *logits, const float *gamma, const float *lambda,
                     const float *ac, const int32_t *cids, const float *aq, const int32_t *qids, int64_t T, int64_t V,
                     int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch, int64_t r0,
                     int64_t r1);
// One row r of either kernel (ids NULL: mq_mixture_topk; else mq_mixture_topk_shortlist over the N
// columns of ids) by a team of nth threads, this one at ith, between the team's barriers: the max
// and the exps split by columns, the sum on thread 0 in the one-thread order, then the selection
// on thread 0. The same bits as the one-thread kernels. Every thread of the team calls it with
// the same arguments but ith and scratch (thread 0's as those kernels need; the others' unused);
// shared: N + 64 floats, the same for the whole team (nth <= 63). For rows fewer than threads
// (batch-1 decoding), where one thread would otherwise do the whole step.
void mq_mixture_topk_team(int ith, int nth, mq_barrier *barrier, float *shared, float *values, int32_t *indices,
                          const float *logits, const int32_t *ids, int64_t N, const float *gamma, const float *lambda,
                          const float *ac, const int32_t *cids, const float *aq, const int32_t *qids, int64_t T,
                          int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch,
                          int64_t r);
void mq_mixture_topk_ref(float *values, int32_t *indices, const float *logits, const float *gamma,
                         const float *lambda, const float *ac, const int32_t *cids, const float *aq,
                         const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t k,
                         int take_log, float *scratch, int64_t r0, int64_t r1);

// The same over a vocabulary shortlist: logits [rows, N], column s the word ids[s] (distinct,
// ascending, < V). The softmax is over the N words; a copied word outside them counts its copy
// mass only; words neither shortlisted nor copied are not candidates. With ids = 0 ..< V it is
// mq_mixture_topk, bit for bit. scratch: mq_mixture_topk_shortlist_scratch(V, N, Lc, Lq) floats
// per thread; the _ref twin needs 2 V + X + N (and k at most the candidates, for equal indices).
int64_t mq_mixture_topk_shortlist_scratch(int64_t V, int64_t N, int64_t Lc, int64_t Lq);
void mq_mixture_topk_shortlist(float *values, int32_t *indices, const float *logits, const int32_t *ids, int64_t N,
                               const float *gamma, const float *lambda, const float *ac, const int32_t *cids,
                               const float *aq, const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc,
                               int64_t Lq, int64_t k, int take_log, float *scratch, int64_t r0, int64_t r1);
void mq_mixture_topk_shortlist_ref(float *values, int32_t *indices, const float *logits, const int32_t *ids,
                                   int64_t N, const float *gamma, const float *lambda, const float *ac,
                                   const int32_t *cids, const float *aq, const int32_t *qids, int64_t T, int64_t V,
                                   int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch,
                                   int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
