// Backward kernels of the elementwise activations, the broadcast reduction (sum_to), the length
// mask and the embedding table's scatter-add.
//
// Legend: g = upstream gradient, y = the forward output, dx = the gradient of the forward input.
//   activations: g, y, dx [n], flat; [r0, r1) is the flat range this call writes. dx may be g or y.
//   sum_rows:    g [rows, width] -> out [width]; [c0, c1) are columns of out.
//   length_mask: lengths [B] -> out [B, T]; [r0, r1) are batch rows.
//   embedding:   g [n, E], ids [n] -> out [vocab, E]; [r0, r1) are rows of out (table rows).
// Every column sum is taken over rows in order, so a result does not depend on how the columns
// (or table rows) are split over threads.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

// in the forward pass this was: y = tanh(x); so dx = g (1 - y²).
MQ_HOT void mq_tanh_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) dx[i] = g[i] * (1.0f - y[i] * y[i]);
}
void mq_tanh_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    float d = 1.0f - y[i] * y[i];
    dx[i] = g[i] * d;
  }
}

// in the forward pass this was: y = 1 / (1 + exp(-x)); so dx = g y (1 - y).
MQ_HOT void mq_sigmoid_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) dx[i] = g[i] * (y[i] * (1.0f - y[i]));
}
void mq_sigmoid_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    float d = y[i] * (1.0f - y[i]);
    dx[i] = g[i] * d;
  }
}

// in the forward pass this was: y = max(x, 0); so dx = g where y > 0, else 0 (torch's
// threshold_backward on the output: y <= 0 gives 0, so a NaN y passes g through).
MQ_HOT void mq_relu_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) dx[i] = y[i] <= 0.0f ? 0.0f : g[i];
}
void mq_relu_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    if (y[i] <= 0.0f) dx[i] = 0.0f;
    else dx[i] = g[i];
  }
}

// ---------------------------------------------------------------------------------------------
// in the forward pass this was a broadcast: y[r, j] = x[j]; so out[j] = sum_r g[r, j], summed in
// row order in double, rounded once. Columns go in blocks so the inner loop is contiguous.
MQ_HOT void mq_sum_rows(float *out, const float *g, int64_t rows, int64_t width, int64_t c0,
                        int64_t c1) {
  enum { BLOCK = 256 };
  double acc[BLOCK];
  for (int64_t j0 = c0; j0 < c1; j0 += BLOCK) {
    const int64_t w = c1 - j0 < BLOCK ? c1 - j0 : BLOCK;
    for (int64_t k = 0; k < w; k++) acc[k] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
      const float *gr = g + r * width + j0;
#pragma omp simd
      for (int64_t k = 0; k < w; k++) acc[k] += (double)gr[k];
    }
    for (int64_t k = 0; k < w; k++) out[j0 + k] = (float)acc[k];
  }
}

void mq_sum_rows_ref(float *out, const float *g, int64_t rows, int64_t width, int64_t c0,
                     int64_t c1) {
  for (int64_t j = c0; j < c1; j++) {
    double s = 0.0;
    for (int64_t r = 0; r < rows; r++) s += g[r * width + j];
    out[j] = (float)s;
  }
}

// ---------------------------------------------------------------------------------------------
// out[b, t] = 1 where t < lengths[b], else 0.
void mq_length_mask(float *out, const int32_t *lengths, int64_t T, int64_t r0, int64_t r1) {
  for (int64_t b = r0; b < r1; b++) {
    const int64_t len = lengths[b];
    float *o = out + b * T;
#pragma omp simd
    for (int64_t t = 0; t < T; t++) o[t] = t < len ? 1.0f : 0.0f;
  }
}

void mq_length_mask_ref(float *out, const int32_t *lengths, int64_t T, int64_t r0, int64_t r1) {
  for (int64_t b = r0; b < r1; b++)
    for (int64_t t = 0; t < T; t++) out[b * T + t] = t < (int64_t)lengths[b] ? 1.0f : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// in the forward pass this was: y[i, :] = table[ids[i], :]; so out[ids[i], :] += g[i, :] for every
// i in order (repeated ids add up), into table rows [r0, r1) that start at zero. Each call reads
// all n ids and adds only those in its own rows, so no two calls write the same row.
MQ_HOT void mq_embedding_backward(float *out, const float *g, const int32_t *ids, int64_t n,
                                  int64_t E, int64_t r0, int64_t r1) {
  if (r1 <= r0) return;
  memset(out + r0 * E, 0, (size_t)((r1 - r0) * E) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    const int64_t id = ids[i];
    if (id < r0 || id >= r1) continue;
    float *o = out + id * E;
    const float *gi = g + i * E;
#pragma omp simd
    for (int64_t e = 0; e < E; e++) o[e] += gi[e];
  }
}

void mq_embedding_backward_ref(float *out, const float *g, const int32_t *ids, int64_t n,
                               int64_t E, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t e = 0; e < E; e++) out[r * E + e] = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < r0 || ids[i] >= r1) continue;
    for (int64_t e = 0; e < E; e++) out[(int64_t)ids[i] * E + e] += g[i * E + e];
  }
}
