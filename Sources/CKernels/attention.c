// Multi-head scaled dot-product attention (decaNLP's MultiHead, without the projections).
//
// Legend: B = batch, Tq = query length, Tk = key length, D = model width, heads = torch.chunk
// count, w = ceil(D / heads) = chunk width, hw = this chunk's width (the last may be narrower),
// C = mq_attention_chunks(D, heads) (may be < heads). q, out [B, Tq, D]; k, v [B, Tk, D];
// keypad [B, Tk] (nonzero = padded key, may be NULL); scratch [Tq, Tk] per call.
// Rows are (batch, chunk) pairs: r = b * C + c, and [r0, r1) is a row range.
//
// Per chunk: S = q_c k_cᵀ [Tq, Tk]; S[i, j] = fill where causal and j > i or keypad[b, j] != 0;
// P = softmax(S * scale); out_c = P v_c. The chunk is a column window of the row-major [T, D]
// tensors, so the GEMMs read it in place with leading dimension D.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"


int64_t mq_attention_chunks(int64_t D, int64_t heads) {
  if (D <= 0) return 0;
  if (heads < 1) heads = 1;
  int64_t w = (D + heads - 1) / heads;
  return (D + w - 1) / w;
}

// One chunk of attention for a few queries (Tq small): S = q kᵀ by dot products, the masked
// softmax, out = P v accumulated over keys; q, k, v, out strided by D, chunk width hw.
MQ_HOT static void mq_attention_few(float *out, const float *q, const float *k, const float *v, const float *mask,
                                    int64_t Tq, int64_t Tk, int64_t D, int64_t hw, float scale, float fill, int causal,
                                    float *scratch) {
  for (int64_t i = 0; i < Tq; i++) {
    const float *qi = q + i * D;
    for (int64_t j = 0; j < Tk; j++) {
      const float *kj = k + j * D;
      float acc[8] = {0};
      int64_t e = 0;
      for (; e + 8 <= hw; e += 8)
        for (int l = 0; l < 8; l++) acc[l] += qi[e + l] * kj[e + l];
      for (int l = 0; e + l < hw; l++) acc[l] += qi[e + l] * kj[e + l];
      scratch[i * Tk + j] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    }
  }
  mq_masked_softmax(scratch, scratch, mask, Tq, Tk, scale, fill, 0.0f, causal, 0, 0, Tq);
  for (int64_t i = 0; i < Tq; i++) {
    float *oi = out + i * D;
    for (int64_t e = 0; e < hw; e++) oi[e] = 0.0f;
    for (int64_t j = 0; j < Tk; j++) {
      const float pj = scratch[i * Tk + j];
      if (pj == 0.0f) continue;  // masked keys (and underflow): their values are never read
      const float *vj = v + j * D;
#pragma omp simd
      for (int64_t e = 0; e < hw; e++) oi[e] += pj * vj[e];
    }
  }
}

void mq_attention(float *out, const float *q, const float *k, const float *v, const float *keypad,
                  int64_t Tq, int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                  int causal, float *scratch, int64_t r0, int64_t r1) {
  mq_attention_dropout(out, q, k, v, keypad, Tq, Tk, D, heads, scale, fill, causal, 0.0f, 0, 0, scratch, r0, r1);
}

void mq_attention_dropout(float *out, const float *q, const float *k, const float *v, const float *keypad,
                          int64_t Tq, int64_t Tk, int64_t D, int64_t heads, float scale, float fill,
                          int causal, float p, uint64_t seed, uint64_t salt, float *scratch, int64_t r0,
                          int64_t r1) {
  const int64_t C = mq_attention_chunks(D, heads);
  if (C == 0 || Tq <= 0) return;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / C, c = r % C;
    int64_t c0, hw;
    mq_chunk_window(D, heads, c, &c0, &hw);
    float *ob = out + b * Tq * D + c0;
    if (Tk <= 0) { // softmax over nothing: torch gives an empty P and a zero output
      for (int64_t i = 0; i < Tq; i++)
        for (int64_t j = 0; j < hw; j++) ob[i * D + j] = 0.0f;
      continue;
    }
    const float *qb = q + b * Tq * D + c0;
    const float *kb = k + b * Tk * D + c0;
    const float *vb = v + b * Tk * D + c0;
    if (Tq <= 4 && p == 0.0f) {
      // A few queries (decoding: one new position, or K beams against the context): direct dot
      // products; a BLAS call per chunk would cost more than its arithmetic.
      mq_attention_few(ob, qb, kb, vb, keypad ? keypad + b * Tk : NULL, Tq, Tk, D, hw, scale, fill, causal, scratch);
      continue;
    }
    // S = q_c k_cᵀ: [Tq, hw] x [hw, Tk], both operands strided by D.
    mq_sgemm(0, 1, Tq, Tk, hw, 1.0f, qb, D, kb, D, 0.0f, scratch, Tk);
    // The softmax's batch index is r / Tq = 0 for these Tq rows, so the mask row is keypad[b].
    mq_masked_softmax(scratch, scratch, keypad ? keypad + b * Tk : NULL, Tq, Tk, scale, fill,
                      0.0f, causal, 0, 0, Tq);
    // decaNLP's dropout on the attention weights; mask element (r, i, j) is r * Tq * Tk + i * Tk + j.
    if (p > 0.0f) mq_dropout_apply(scratch, Tq * Tk, p, seed, salt, r * Tq * Tk);
    // out_c = P v_c: [Tq, Tk] x [Tk, hw], written into the column window of out.
    mq_sgemm(0, 0, Tq, hw, Tk, 1.0f, scratch, Tk, vb, D, 0.0f, ob, D);
  }
}

void mq_attention_ref(float *out, const float *q, const float *k, const float *v,
                      const float *keypad, int64_t Tq, int64_t Tk, int64_t D, int64_t heads,
                      float scale, float fill, int causal, float *scratch, int64_t r0, int64_t r1) {
  mq_attention_dropout_ref(out, q, k, v, keypad, Tq, Tk, D, heads, scale, fill, causal, 0.0f, 0, 0, scratch,
                           r0, r1);
}

void mq_attention_dropout_ref(float *out, const float *q, const float *k, const float *v,
                              const float *keypad, int64_t Tq, int64_t Tk, int64_t D, int64_t heads,
                              float scale, float fill, int causal, float p, uint64_t seed, uint64_t salt,
                              float *scratch, int64_t r0, int64_t r1) {
  const int64_t C = mq_attention_chunks(D, heads);
  if (C == 0) return;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / C, c = r % C, c0, hw;
    mq_chunk_window(D, heads, c, &c0, &hw);
    for (int64_t i = 0; i < Tq; i++) {
      for (int64_t j = 0; j < Tk; j++) {
        float s = 0.0f;
        for (int64_t e = 0; e < hw; e++)
          s += q[(b * Tq + i) * D + c0 + e] * k[(b * Tk + j) * D + c0 + e];
        if (causal && j > i) s = fill;
        if (keypad != NULL && keypad[b * Tk + j] != 0.0f) s = fill;
        scratch[i * Tk + j] = s;
      }
    }
    mq_masked_softmax_ref(scratch, scratch, NULL, Tq, Tk, scale, fill, 0.0f, 0, 0, 0, Tq);
    if (p > 0.0f)
      for (int64_t n = 0; n < Tq * Tk; n++)
        scratch[n] = mq_dropout_uniform(seed, salt, r * Tq * Tk + n) < p ? 0.0f : scratch[n] / (1.0f - p);
    for (int64_t i = 0; i < Tq; i++) {
      for (int64_t e = 0; e < hw; e++) {
        float s = 0.0f;
        for (int64_t j = 0; j < Tk; j++) s += scratch[i * Tk + j] * v[(b * Tk + j) * D + c0 + e];
        out[(b * Tq + i) * D + c0 + e] = s;
      }
    }
  }
}
