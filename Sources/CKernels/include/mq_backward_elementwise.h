// Declarations of backward_elementwise.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_BACKWARD_ELEMENTWISE_H
#define MQAN_BACKWARD_ELEMENTWISE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Backward kernels (backward_*.c). g = upstream gradient, y = forward output; each quotes the
// forward line it inverts. They write (=) their outputs; autodiff sums gradients with `add`.
// Activations on a flat range [r0, r1): dx = g (1 - y²) / g y (1 - y) / (y <= 0 ? 0 : g).
// dx may be g or y.
void mq_tanh_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_tanh_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_sigmoid_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_sigmoid_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_relu_backward(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);
void mq_relu_backward_ref(float *dx, const float *g, const float *y, int64_t r0, int64_t r1);

// sum_to: g viewed as [rows, width] -> out[j] = sum_r g[r, j] for columns [c0, c1) (rows in
// order, in double: the column split does not change the bits).
void mq_sum_rows(float *out, const float *g, int64_t rows, int64_t width, int64_t c0, int64_t c1);
void mq_sum_rows_ref(float *out, const float *g, int64_t rows, int64_t width, int64_t c0,
                     int64_t c1);

// out [B, T]: 1 where t < lengths[b], else 0, for batch rows [r0, r1).
void mq_length_mask(float *out, const int32_t *lengths, int64_t T, int64_t r0, int64_t r1);
void mq_length_mask_ref(float *out, const int32_t *lengths, int64_t T, int64_t r0, int64_t r1);

// Gradient of an embedding table: zeroes table rows [r0, r1) of out [vocab, E], then adds g[i, :]
// (g [n, E]) into row ids[i] for every i in order whose id falls in [r0, r1).
void mq_embedding_backward(float *out, const float *g, const int32_t *ids, int64_t n, int64_t E,
                           int64_t r0, int64_t r1);
void mq_embedding_backward_ref(float *out, const float *g, const int32_t *ids, int64_t n,
                               int64_t E, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
