// Backward of multi-head scaled dot-product attention (mq_attention).
//
// Legend: B = batch, Tq = query length, Tk = key length, D = model width, heads = torch.chunk
// count, w = ceil(D / heads), hw = this chunk's width, C = mq_attention_chunks(D, heads).
// g, q, dq [B, Tq, D]; k, v, dk, dv [B, Tk, D]; keypad [B, Tk] (nonzero = padded key, may be
// NULL); scratch [2, Tq, Tk] per call (P, then dP / dS). Rows are (batch, chunk) pairs:
// r = b * C + c, and [r0, r1) is a row range; a row writes only its own column window of
// dq, dk, dv, so calls on different rows never write the same memory.
//
// In the forward pass this was, per chunk: S = q_c k_cᵀ; masked S = fill; P = softmax(S * scale);
// out_c = P v_c. So, with P recomputed:
//   dv_c = Pᵀ g_c;  dP = g_c v_cᵀ;  dS = P ⊙ (dP - rowsum(dP ⊙ P));
//   dq_c = scale dS k_c;  dk_c = scale dSᵀ q_c.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"


static void mq_zero_window(float *x, int64_t rows, int64_t D, int64_t hw) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < hw; j++) x[i * D + j] = 0.0f;
}

// dS = P ⊙ (dP - rowsum(dP ⊙ P)) in place over dP, rows of n; the row sums in double.
static void mq_softmax_jvp_rows(float *dp, const float *p, int64_t rows, int64_t n) {
  for (int64_t i = 0; i < rows; i++) {
    float *d = dp + i * n;
    const float *pr = p + i * n;
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
      for (int k = 0; k < 8; k++) acc[k] += (double)d[j + k] * (double)pr[j + k];
    for (int k = 0; j + k < n; k++) acc[k] += (double)d[j + k] * (double)pr[j + k];
    const float dot =
        (float)(((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])));
#pragma omp simd
    for (int64_t jj = 0; jj < n; jj++) d[jj] = pr[jj] * (d[jj] - dot);
  }
}

void mq_attention_backward(float *dq, float *dk, float *dv, const float *g, const float *q,
                           const float *k, const float *v, const float *keypad, int64_t Tq,
                           int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                           int causal, float *scratch, int64_t r0, int64_t r1) {
  mq_attention_backward_dropout(dq, dk, dv, g, q, k, v, keypad, Tq, Tk, D, heads, scale, fill, causal, 0.0f, 0,
                                0, scratch, r0, r1);
}

// With dropout (mask M, the forward's draw): out_c = (P ⊙ M) v_c, so dv_c = (P ⊙ M)ᵀ g_c and
// dP = (g_c v_cᵀ) ⊙ M before the softmax's Jacobian.
void mq_attention_backward_dropout(float *dq, float *dk, float *dv, const float *g, const float *q,
                                   const float *k, const float *v, const float *keypad, int64_t Tq,
                                   int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                                   int causal, float p, uint64_t seed, uint64_t salt, float *scratch,
                                   int64_t r0, int64_t r1) {
  const int64_t C = mq_attention_chunks(D, heads);
  if (C == 0) return;
  float *P = scratch, *dP = scratch + Tq * Tk;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / C, c = r % C;
    int64_t c0, hw;
    mq_chunk_window(D, heads, c, &c0, &hw);
    const float *gb = g + b * Tq * D + c0, *qb = q + b * Tq * D + c0;
    const float *kb = k + b * Tk * D + c0, *vb = v + b * Tk * D + c0;
    float *dqb = dq + b * Tq * D + c0, *dkb = dk + b * Tk * D + c0, *dvb = dv + b * Tk * D + c0;
    if (Tq <= 0 || Tk <= 0) { // the forward output is empty or zero: no gradient flows
      mq_zero_window(dqb, Tq, D, hw);
      mq_zero_window(dkb, Tk, D, hw);
      mq_zero_window(dvb, Tk, D, hw);
      continue;
    }
    // P = softmax(q_c k_cᵀ * scale) with the forward's masks.
    mq_sgemm(0, 1, Tq, Tk, hw, 1.0f, qb, D, kb, D, 0.0f, P, Tk);
    mq_masked_softmax(P, P, keypad ? keypad + b * Tk : NULL, Tq, Tk, scale, fill, 0.0f, causal, 0,
                      0, Tq);
    // dv_c = (P ⊙ M)ᵀ g_c: [Tk, Tq] x [Tq, hw] (the dropped weights go through dP's space).
    const float *Pd = P;
    if (p > 0.0f) {
      for (int64_t n = 0; n < Tq * Tk; n++) dP[n] = P[n];
      mq_dropout_apply(dP, Tq * Tk, p, seed, salt, r * Tq * Tk);
      Pd = dP;
    }
    mq_sgemm(1, 0, Tk, hw, Tq, 1.0f, Pd, Tk, gb, D, 0.0f, dvb, D);
    // dP = g_c v_cᵀ: [Tq, hw] x [hw, Tk] (times the mask); then dS over it.
    mq_sgemm(0, 1, Tq, Tk, hw, 1.0f, gb, D, vb, D, 0.0f, dP, Tk);
    if (p > 0.0f) mq_dropout_apply(dP, Tq * Tk, p, seed, salt, r * Tq * Tk);
    mq_softmax_jvp_rows(dP, P, Tq, Tk);
    // dq_c = scale dS k_c: [Tq, Tk] x [Tk, hw]; dk_c = scale dSᵀ q_c: [Tk, Tq] x [Tq, hw].
    mq_sgemm(0, 0, Tq, hw, Tk, scale, dP, Tk, kb, D, 0.0f, dqb, D);
    mq_sgemm(1, 0, Tk, hw, Tq, scale, dP, Tk, qb, D, 0.0f, dkb, D);
  }
}

void mq_attention_backward_ref(float *dq, float *dk, float *dv, const float *g, const float *q,
                               const float *k, const float *v, const float *keypad, int64_t Tq,
                               int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                               int causal, float *scratch, int64_t r0, int64_t r1) {
  mq_attention_backward_dropout_ref(dq, dk, dv, g, q, k, v, keypad, Tq, Tk, D, heads, scale, fill, causal, 0.0f,
                                    0, 0, scratch, r0, r1);
}

void mq_attention_backward_dropout_ref(float *dq, float *dk, float *dv, const float *g, const float *q,
                                       const float *k, const float *v, const float *keypad, int64_t Tq,
                                       int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                                       int causal, float p, uint64_t seed, uint64_t salt, float *scratch,
                                       int64_t r0, int64_t r1) {
  const int64_t C = mq_attention_chunks(D, heads);
  if (C == 0) return;
  float *P = scratch, *dS = scratch + Tq * Tk;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / C, c = r % C, c0, hw;
    mq_chunk_window(D, heads, c, &c0, &hw);
#define Q(i, e) q[(b * Tq + (i)) * D + c0 + (e)]
#define G(i, e) g[(b * Tq + (i)) * D + c0 + (e)]
#define K(j, e) k[(b * Tk + (j)) * D + c0 + (e)]
#define V(j, e) v[(b * Tk + (j)) * D + c0 + (e)]
    for (int64_t i = 0; i < Tq; i++) {
      for (int64_t j = 0; j < Tk; j++) {
        float s = 0.0f;
        for (int64_t e = 0; e < hw; e++) s += Q(i, e) * K(j, e);
        if (causal && j > i) s = fill;
        if (keypad != NULL && keypad[b * Tk + j] != 0.0f) s = fill;
        P[i * Tk + j] = s;
      }
    }
    if (Tk > 0) mq_masked_softmax_ref(P, P, NULL, Tq, Tk, scale, fill, 0.0f, 0, 0, 0, Tq);
#define KEEP(i, j) (p > 0.0f ? (mq_dropout_uniform(seed, salt, r * Tq * Tk + (i) * Tk + (j)) < p ? 0.0f : 1.0f / (1.0f - p)) : 1.0f)
    for (int64_t i = 0; i < Tq; i++) {
      double dot = 0.0;
      for (int64_t j = 0; j < Tk; j++) {
        float dp = 0.0f;
        for (int64_t e = 0; e < hw; e++) dp += G(i, e) * V(j, e);
        dp *= KEEP(i, j);
        dS[i * Tk + j] = dp;
        dot += (double)dp * (double)P[i * Tk + j];
      }
      for (int64_t j = 0; j < Tk; j++) dS[i * Tk + j] = P[i * Tk + j] * (dS[i * Tk + j] - (float)dot);
    }
    for (int64_t j = 0; j < Tk; j++) {
      for (int64_t e = 0; e < hw; e++) {
        float sv = 0.0f, sk = 0.0f;
        for (int64_t i = 0; i < Tq; i++) {
          sv += P[i * Tk + j] * KEEP(i, j) * G(i, e);
          sk += dS[i * Tk + j] * Q(i, e);
        }
        dv[(b * Tk + j) * D + c0 + e] = sv;
        dk[(b * Tk + j) * D + c0 + e] = scale * sk;
      }
    }
    for (int64_t i = 0; i < Tq; i++) {
      for (int64_t e = 0; e < hw; e++) {
        float s = 0.0f;
        for (int64_t j = 0; j < Tk; j++) s += dS[i * Tk + j] * K(j, e);
        dq[(b * Tq + i) * D + c0 + e] = scale * s;
      }
    }
#undef KEEP
#undef Q
#undef G
#undef K
#undef V
  }
}
