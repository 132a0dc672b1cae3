// Declarations of decoding.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_DECODING_H
#define MQAN_DECODING_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Incremental decoding (decoding.c).
// Cache update, rows [r0, r1) of out [R, S, D]: slots [0, t) = cache[reorder[r]], slot t = row[r]
// ([R, D]), slots past t = 0, with row r's t = steps[r * step_stride] (stride 0: one t for all).
// out may alias cache when reorder is the identity (no copy then).
void mq_cache_update(float *out, const float *cache, const int32_t *reorder, const float *row, int64_t S,
                     int64_t D, const int32_t *steps, int64_t step_stride, int64_t r0, int64_t r1);
void mq_cache_update_ref(float *out, const float *cache, const int32_t *reorder, const float *row, int64_t S,
                         int64_t D, const int32_t *steps, int64_t step_stride, int64_t r0, int64_t r1);

// Row-wise top-k of x [rows, n] into values / indices [rows, k] for rows [r0, r1) (mq_topk's
// order); logf of the values when take_log; slots past n are -inf with index 0.
void mq_topk_rows(const float *x, int64_t n, int64_t k, int take_log, float *values, int32_t *indices, int64_t r0,
                  int64_t r1);
void mq_topk_rows_ref(const float *x, int64_t n, int64_t k, int take_log, float *values, int32_t *indices,
                      int64_t r0, int64_t r1);

// Column scatter, rows [r0, r1) of out [rows, V]: out[r, ids[s]] = x[r, s] for s < S (ids distinct,
// in [0, V)), every other column `fill`.
void mq_scatter_columns(float *out, const float *x, const int32_t *ids, int64_t S, int64_t V, float fill,
                        int64_t r0, int64_t r1);
void mq_scatter_columns_ref(float *out, const float *x, const int32_t *ids, int64_t S, int64_t V, float fill,
                            int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
