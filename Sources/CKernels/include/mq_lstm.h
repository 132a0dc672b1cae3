// Declarations of lstm.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_LSTM_H
#define MQAN_LSTM_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// LSTM gate update (PyTorch order i, f, g, o) for rows [r0, r1) of B:
//   gates [B, 4H] (pre-activations, both biases included), c_in [B, H] -> h_out, c_out [B, H]
//   c' = sig(f) * c + sig(i) * tanh(g);  h' = sig(o) * tanh(c')
void mq_lstm_cell(float *h_out, float *c_out, const float *gates, const float *c_in, int64_t H,
                  int64_t r0, int64_t r1);
void mq_lstm_cell_ref(float *h_out, float *c_out, const float *gates, const float *c_in, int64_t H,
                      int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
