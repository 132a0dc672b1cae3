// Pointer-generator mixture, NLL, embedding gather, pad mask, positional encoding, block copy
// and transpose.
//
// Legend: B = batch, T = decoder steps, V = generative vocab, X = extended vocab (V + n_oov),
// Lc / Lq = context / question length, E = embedding width, D = model width.
//   mixture: pvocab [B*T, V], gamma, lambda [B*T], ac [B*T, Lc], cids [B, Lc], aq [B*T, Lq],
//            qids [B, Lq] -> out [B*T, X]; rows r in [r0, r1) of B*T, batch b = r / T.
//   nll:     P [rows, X], targets [rows] -> *sum (double, accumulated), *count.
//   embedding: table [vocab, E], ids [rows] -> out [rows, E].
//   positional encoding: out [T, D], rows = positions p.
//   pad mask: ids [n] -> out [n] (flat range).
//   copy_blocks: rows o of a strided view, `width` floats each.
//   transpose: x [batch, m, n] -> out [batch, n, m], rows = batch items.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

// decaNLP's EPSILON, the value of the OOV slots before the pointer adds into them.
#define MQ_MIXTURE_EPS 1e-10f

// Coefficients are formed as torch does: (lambda * (1 - gamma)) * a and
// ((1 - lambda) * (1 - gamma)) * a, then scatter-added in index order (repeats add up).
MQ_HOT void mq_pointer_mixture(float *out, const float *pvocab, const float *gamma,
                               const float *lambda, const float *ac, const int32_t *cids,
                               const float *aq, const int32_t *qids, int64_t T, int64_t V,
                               int64_t X, int64_t Lc, int64_t Lq, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / T;
    const float g = gamma[r];
    float *o = out + r * X;
    const float *pv = pvocab + r * V;
#pragma omp simd
    for (int64_t j = 0; j < V; j++) o[j] = g * pv[j];
    for (int64_t j = V; j < X; j++) o[j] = MQ_MIXTURE_EPS;
    const float cc = lambda[r] * (1.0f - g);
    const float cq = (1.0f - lambda[r]) * (1.0f - g);
    const float *a = ac + r * Lc;
    const int32_t *ids = cids + b * Lc;
    for (int64_t i = 0; i < Lc; i++) o[ids[i]] += cc * a[i];
    a = aq + r * Lq;
    ids = qids + b * Lq;
    for (int64_t i = 0; i < Lq; i++) o[ids[i]] += cq * a[i];
  }
}

void mq_pointer_mixture_ref(float *out, const float *pvocab, const float *gamma,
                            const float *lambda, const float *ac, const int32_t *cids,
                            const float *aq, const int32_t *qids, int64_t T, int64_t V, int64_t X,
                            int64_t Lc, int64_t Lq, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / T;
    for (int64_t j = 0; j < X; j++) out[r * X + j] = j < V ? gamma[r] * pvocab[r * V + j] : 1e-10f;
    for (int64_t i = 0; i < Lc; i++)
      out[r * X + cids[b * Lc + i]] += lambda[r] * (1.0f - gamma[r]) * ac[r * Lc + i];
    for (int64_t i = 0; i < Lq; i++)
      out[r * X + qids[b * Lq + i]] += (1.0f - lambda[r]) * (1.0f - gamma[r]) * aq[r * Lq + i];
  }
}

// ---------------------------------------------------------------------------------------------
// -log P[r, t] with the log in float (torch's probs.log()), accumulated in double.
void mq_nll(double *sum, int64_t *count, const float *P, const int32_t *targets, int64_t X,
            int32_t ignore, int64_t r0, int64_t r1) {
  double s = 0.0;
  int64_t c = 0;
  for (int64_t r = r0; r < r1; r++) {
    const int32_t t = targets[r];
    if (t == ignore) continue;
    s += -(double)logf(P[r * X + t]);
    c++;
  }
  *sum += s;
  *count += c;
}

void mq_nll_ref(double *sum, int64_t *count, const float *P, const int32_t *targets, int64_t X,
                int32_t ignore, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    if (targets[r] == ignore) continue;
    *sum += -(double)logf(P[r * X + targets[r]]);
    *count += 1;
  }
}

// ---------------------------------------------------------------------------------------------
void mq_embedding(float *out, const float *table, const int32_t *ids, int64_t E, int64_t r0,
                  int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    memcpy(out + r * E, table + (int64_t)ids[r] * E, (size_t)E * sizeof(float));
}

void mq_embedding_ref(float *out, const float *table, const int32_t *ids, int64_t E, int64_t r0,
                      int64_t r1) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t e = 0; e < E; e++) out[r * E + e] = table[(int64_t)ids[r] * E + e];
}

// ---------------------------------------------------------------------------------------------
// decaNLP: positions / 10000 ** (channel / D). Python computes the power in double; torch
// divides the float32 positions by that scalar in float32, so the divisor is rounded to float.
static float mq_pe_divisor(int64_t c, int64_t D) {
  int64_t even = c - (c & 1);
  return (float)pow(10000.0, (double)even / (double)D);
}

void mq_positional_encoding(float *out, int64_t D, int64_t r0, int64_t r1) {
  enum { BLOCK = 256 };
  float div[BLOCK];
  for (int64_t c0 = 0; c0 < D; c0 += BLOCK) { // divisors once per channel block, not per element
    const int64_t c1 = c0 + BLOCK < D ? c0 + BLOCK : D;
    for (int64_t c = c0; c < c1; c++) div[c - c0] = mq_pe_divisor(c, D);
    for (int64_t p = r0; p < r1; p++) {
      const float pf = (float)p;
      float *o = out + p * D;
      for (int64_t c = c0; c < c1; c++) {
        const float a = pf / div[c - c0];
        o[c] = (c & 1) ? cosf(a) : sinf(a);
      }
    }
  }
}

void mq_positional_encoding_ref(float *out, int64_t D, int64_t r0, int64_t r1) {
  for (int64_t p = r0; p < r1; p++) {
    for (int64_t c = 0; c < D; c++) {
      if (c % 2 == 0) out[p * D + c] = sinf((float)p / (float)pow(10000.0, (double)c / D));
      else out[p * D + c] = cosf((float)p / (float)pow(10000.0, (double)(c - 1) / D));
    }
  }
}

// ---------------------------------------------------------------------------------------------
void mq_pad_mask(float *out, const int32_t *ids, int32_t pad, int64_t r0, int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++) out[i] = ids[i] == pad ? 1.0f : 0.0f;
}

void mq_pad_mask_ref(float *out, const int32_t *ids, int32_t pad, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    if (ids[i] == pad) out[i] = 1.0f;
    else out[i] = 0.0f;
  }
}

// ---------------------------------------------------------------------------------------------
void mq_copy_blocks(float *dst, int64_t dst_stride, int64_t dst_off, const float *src,
                    int64_t src_stride, int64_t src_off, int64_t width, int64_t r0, int64_t r1) {
  if (width <= 0 || r1 <= r0) return;
  if (dst_stride == width && src_stride == width) { // both views contiguous: one copy
    memmove(dst + r0 * width + dst_off, src + r0 * width + src_off,
            (size_t)((r1 - r0) * width) * sizeof(float));
    return;
  }
  for (int64_t o = r0; o < r1; o++)
    memmove(dst + o * dst_stride + dst_off, src + o * src_stride + src_off,
            (size_t)width * sizeof(float));
}

void mq_copy_blocks_ref(float *dst, int64_t dst_stride, int64_t dst_off, const float *src,
                        int64_t src_stride, int64_t src_off, int64_t width, int64_t r0, int64_t r1) {
  for (int64_t o = r0; o < r1; o++)
    for (int64_t j = 0; j < width; j++)
      dst[o * dst_stride + dst_off + j] = src[o * src_stride + src_off + j];
}

// Cache-blocked: 32 x 32 tiles, reading rows of x and writing rows of out within a tile.
void mq_transpose(float *out, const float *x, int64_t m, int64_t n, int64_t r0, int64_t r1) {
  enum { TILE = 32 };
  for (int64_t b = r0; b < r1; b++) {
    const float *xb = x + b * m * n;
    float *ob = out + b * m * n;
    for (int64_t i0 = 0; i0 < m; i0 += TILE) {
      const int64_t i1 = i0 + TILE < m ? i0 + TILE : m;
      for (int64_t j0 = 0; j0 < n; j0 += TILE) {
        const int64_t j1 = j0 + TILE < n ? j0 + TILE : n;
        for (int64_t j = j0; j < j1; j++)
          for (int64_t i = i0; i < i1; i++) ob[j * m + i] = xb[i * n + j];
      }
    }
  }
}

void mq_transpose_ref(float *out, const float *x, int64_t m, int64_t n, int64_t r0, int64_t r1) {
  for (int64_t b = r0; b < r1; b++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) out[b * m * n + j * m + i] = x[b * m * n + i * n + j];
}
