// LSTM cell gate update.
//
// Legend: B = batch (the rows; [r0, r1) is a row range), H = hidden width, gates [B, 4H] holds the
// pre-activations in PyTorch order i | f | g | o (both biases already added), c_in, h_out,
// c_out [B, H]. c_out may be the same pointer as c_in (in-place state update).
//
//   c' = sig(f) * c + sig(i) * tanh(g);  h' = sig(o) * tanh(c')
// evaluated like torch's CPU LSTMCell: cy = (forgetgate * cx).add_(ingate * cellgate),
// hy = outgate * cy.tanh() (two products rounded, then the sum; no FMA).
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

MQ_HOT void mq_lstm_cell(float *h_out, float *c_out, const float *gates, const float *c_in,
                         int64_t H, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float *gi = gates + r * 4 * H;
    const float *gf = gi + H;
    const float *gg = gi + 2 * H;
    const float *go = gi + 3 * H;
    const float *c = c_in + r * H;
    float *cn = c_out + r * H;
    float *hn = h_out + r * H;
#pragma omp simd
    for (int64_t j = 0; j < H; j++) {
      float fc = mq_sigmoidf(gf[j]) * c[j];
      float ig = mq_sigmoidf(gi[j]) * mq_tanhf(gg[j]);
      float cy = fc + ig;
      cn[j] = cy;
      hn[j] = mq_sigmoidf(go[j]) * mq_tanhf(cy);
    }
  }
}

static float mq_sigmoid_scalar(float x) { return 1.0f / (1.0f + expf(-x)); }

void mq_lstm_cell_ref(float *h_out, float *c_out, const float *gates, const float *c_in, int64_t H,
                      int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j = 0; j < H; j++) {
      float i = mq_sigmoid_scalar(gates[r * 4 * H + 0 * H + j]);
      float f = mq_sigmoid_scalar(gates[r * 4 * H + 1 * H + j]);
      float g = tanhf(gates[r * 4 * H + 2 * H + j]);
      float o = mq_sigmoid_scalar(gates[r * 4 * H + 3 * H + j]);
      float cy = f * c_in[r * H + j] + i * g;
      c_out[r * H + j] = cy;
      h_out[r * H + j] = o * tanhf(cy);
    }
  }
}
