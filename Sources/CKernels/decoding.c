// Incremental decoding: key/value cache update with beam reordering, and row-wise top-k.
//
// Legend: R rows (B * K hypotheses), S cache slots, D width, t the step written: row r's is
// steps[r * step_stride] (stride 0: one step for every row; 1: each row its own, as a server's
// rows that joined at different steps).
#include "ckernels.h"
#include "mq_math.h"

// Rows [r0, r1) of out [R, S, D]: slots [0, t) from cache row reorder[r], slot t = row[r],
// slots (t, S) zero. out may be cache itself when reorder[r] == r for every row (nothing to copy).
void mq_cache_update(float *out, const float *cache, const int32_t *reorder, const float *row, int64_t S,
                     int64_t D, const int32_t *steps, int64_t step_stride, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const int64_t t = steps[r * step_stride];
    float *o = out + r * S * D;
    const float *src = cache + (int64_t)reorder[r] * S * D;
    if (o != src && t > 0) memcpy(o, src, (size_t)(t * D) * sizeof(float));
    memcpy(o + t * D, row + r * D, (size_t)D * sizeof(float));
    if (t + 1 < S) memset(o + (t + 1) * D, 0, (size_t)((S - t - 1) * D) * sizeof(float));
  }
}

void mq_cache_update_ref(float *out, const float *cache, const int32_t *reorder, const float *row, int64_t S,
                         int64_t D, const int32_t *steps, int64_t step_stride, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t j = 0, t = steps[r * step_stride]; j < S; j++)
      for (int64_t e = 0; e < D; e++) {
        float v = 0;
        if (j < t) v = cache[((int64_t)reorder[r] * S + j) * D + e];
        else if (j == t) v = row[r * D + e];
        out[(r * S + j) * D + e] = v;
      }
}

// Rows [r0, r1) of x [rows, n]: the k best of each into values / indices [rows, k] (mq_topk's
// order), logf of each value when take_log; slots past n hold -inf and index 0.
static void mq_topk_rows_with(void (*topk)(const float *, int64_t, int64_t, float *, int32_t *), const float *x,
                              int64_t n, int64_t k, int take_log, float *values, int32_t *indices, int64_t r0,
                              int64_t r1) {
  const int64_t m = k < n ? k : n;
  for (int64_t r = r0; r < r1; r++) {
    float *v = values + r * k;
    int32_t *ix = indices + r * k;
    topk(x + r * n, n, m, v, ix);
    if (take_log)
      for (int64_t j = 0; j < m; j++) v[j] = logf(v[j]);
    for (int64_t j = m; j < k; j++) {
      v[j] = -INFINITY;
      ix[j] = 0;
    }
  }
}

void mq_topk_rows(const float *x, int64_t n, int64_t k, int take_log, float *values, int32_t *indices, int64_t r0,
                  int64_t r1) {
  mq_topk_rows_with(mq_topk, x, n, k, take_log, values, indices, r0, r1);
}

void mq_topk_rows_ref(const float *x, int64_t n, int64_t k, int take_log, float *values, int32_t *indices,
                      int64_t r0, int64_t r1) {
  mq_topk_rows_with(mq_topk_ref, x, n, k, take_log, values, indices, r0, r1);
}

void mq_scatter_columns(float *out, const float *x, const int32_t *ids, int64_t S, int64_t V, float fill,
                        int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    float *o = out + r * V;
    const float *xr = x + r * S;
#pragma omp simd
    for (int64_t j = 0; j < V; j++) o[j] = fill;
    for (int64_t s = 0; s < S; s++) o[ids[s]] = xr[s];
  }
}

void mq_scatter_columns_ref(float *out, const float *x, const int32_t *ids, int64_t S, int64_t V, float fill,
                            int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j = 0; j < V; j++) {
      float v = fill;
      for (int64_t s = 0; s < S; s++)
        if (ids[s] == j) v = x[r * S + s];
      out[r * V + j] = v;
    }
  }
}
