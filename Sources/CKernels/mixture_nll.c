// Training's output layer fused: softmax of the logits, the pointer-generator mixture and the
// NLL of the target, forward and backward, without the [rows, V] probabilities or the [rows, X]
// mixture and its gradient.
//
// Legend: logits [rows, V], gamma / lambda [rows], ac [rows, Lc], cids [B, Lc], aq [rows, Lq],
// qids [B, Lq] (row r belongs to item r / T), targets [rows]; stats [rows, 3] = (max, sum of
// exps, P[target]) per row, saved by the forward for the backward.
//
// Each value is, bit for bit, what the unfused kernels give: mq_masked_softmax (no mask, scale 1,
// eps 0), mq_pointer_mixture, mq_nll; and backward mq_nll_backward, mq_pointer_mixture_backward,
// mq_softmax_backward. The exps are summed in mq_sum16's order without being stored; only the
// target's probability is built, from its copies in the mixture's order.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

// mq_sum16 over mq_expf(l[j] - m), in its order, without storing the exps.
MQ_INLINE float mq_expsum16(const float *l, float m, int64_t n) {
  float acc[16] = {0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; k++) acc[k] += mq_expf(l[j + k] - m);
  for (int k = 0; j + k < n; k++) acc[k] += mq_expf(l[j + k] - m);
  for (int w = 8; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) acc[k] += acc[k + w];
  return acc[0];
}

MQ_HOT void mq_mixture_nll(double *loss, int64_t *count, float *stats, const float *logits, const float *gamma,
                           const float *lambda, const float *ac, const int32_t *cids, const float *aq,
                           const int32_t *qids, const int32_t *targets, int64_t T, int64_t V, int64_t Lc, int64_t Lq,
                           int32_t ignore, int64_t r0, int64_t r1) {
  double s = 0.0;
  int64_t c = 0;
  for (int64_t r = r0; r < r1; r++) {
    float *st = stats + r * 3;
    const int32_t t = targets[r];
    if (t == ignore) {
      st[0] = st[1] = st[2] = 0.0f;
      continue;
    }
    const int64_t b = r / T;
    const float *l = logits + r * V;
    const float m = mq_max16(l, V);
    const float sum = mq_expsum16(l, m, V);
    const float g = gamma[r];
    float p = t < V ? g * (mq_expf(l[t] - m) / sum + 0.0f) : 1e-10f;
    const float cc = lambda[r] * (1.0f - g), cq = (1.0f - lambda[r]) * (1.0f - g);
    for (int64_t i = 0; i < Lc; i++)
      if (cids[b * Lc + i] == t) p += cc * ac[r * Lc + i];
    for (int64_t i = 0; i < Lq; i++)
      if (qids[b * Lq + i] == t) p += cq * aq[r * Lq + i];
    st[0] = m;
    st[1] = sum;
    st[2] = p;
    s += -(double)logf(p);
    c++;
  }
  *loss += s;
  *count += c;
}

MQ_HOT void mq_mixture_nll_backward(float *dlogits, float *dgamma, float *dlambda, float *dac, float *daq, float gl,
                                    int64_t count, const float *logits, const float *gamma, const float *lambda,
                                    const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                                    const int32_t *targets, const float *stats, int64_t T, int64_t V, int64_t Lc,
                                    int64_t Lq, int32_t ignore, int64_t r0, int64_t r1) {
  const float coef = count > 0 ? (float)(-(double)gl / (double)count) : 0.0f;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / T;
    const int32_t t = targets[r];
    float *dl = dlogits + r * V, *dc = dac + r * Lc, *dq = daq + r * Lq;
    if (t == ignore || count <= 0) {
      memset(dl, 0, (size_t)V * sizeof(float));
      memset(dc, 0, (size_t)Lc * sizeof(float));
      memset(dq, 0, (size_t)Lq * sizeof(float));
      dgamma[r] = dlambda[r] = 0.0f;
      continue;
    }
    const float *l = logits + r * V, *st = stats + r * 3;
    const float m = st[0], sum = st[1];
    const float dp = coef / st[2];  // nll: d loss / d P[target]
    const float gm = gamma[r], lm = lambda[r];
    const float cc = lm * (1.0f - gm), cq = (1.0f - lm) * (1.0f - gm);
    const float pt = t < V ? mq_expf(l[t] - m) / sum + 0.0f : 0.0f;
    // mixture backward: only column t of dP is nonzero.
    const double sv = t < V ? (double)dp * (double)pt : 0.0;
    double sc = 0.0, sq = 0.0;
    for (int64_t i = 0; i < Lc; i++) {
      const int hit = cids[b * Lc + i] == t;
      if (hit) sc += (double)dp * (double)ac[r * Lc + i];
      dc[i] = hit ? cc * dp : cc * 0.0f;
    }
    for (int64_t i = 0; i < Lq; i++) {
      const int hit = qids[b * Lq + i] == t;
      if (hit) sq += (double)dp * (double)aq[r * Lq + i];
      dq[i] = hit ? cq * dp : cq * 0.0f;
    }
    dgamma[r] = (float)(sv - (double)lm * sc - (double)(1.0f - lm) * sq);
    dlambda[r] = (float)((double)(1.0f - gm) * (sc - sq));
    // softmax backward of d pvocab = gamma * dP (nonzero at t only): p_j (g_j - dot).
    if (t >= V) {
      memset(dl, 0, (size_t)V * sizeof(float));
      continue;
    }
    const float dpt = gm * dp;
    const float dot = (float)((double)dpt * (double)pt);
#pragma omp simd
    for (int64_t j = 0; j < V; j++) dl[j] = 1.0f * ((mq_expf(l[j] - m) / sum + 0.0f) * (0.0f - dot));
    dl[t] = 1.0f * (pt * (dpt - dot));
  }
}

void mq_mixture_nll_ref(double *loss, int64_t *count, float *stats, const float *logits, const float *gamma,
                        const float *lambda, const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                        const int32_t *targets, int64_t T, int64_t V, int64_t Lc, int64_t Lq, int32_t ignore,
                        int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const int32_t t = targets[r];
    stats[r * 3] = stats[r * 3 + 1] = stats[r * 3 + 2] = 0.0f;
    if (t == ignore) continue;
    const int64_t b = r / T;
    float m = -INFINITY, sum = 0.0f;
    for (int64_t j = 0; j < V; j++) m = logits[r * V + j] > m ? logits[r * V + j] : m;
    for (int64_t j = 0; j < V; j++) sum += expf(logits[r * V + j] - m);
    float p = t < V ? gamma[r] * (expf(logits[r * V + t] - m) / sum) : 1e-10f;
    for (int64_t i = 0; i < Lc; i++)
      if (cids[b * Lc + i] == t) p += lambda[r] * (1.0f - gamma[r]) * ac[r * Lc + i];
    for (int64_t i = 0; i < Lq; i++)
      if (qids[b * Lq + i] == t) p += (1.0f - lambda[r]) * (1.0f - gamma[r]) * aq[r * Lq + i];
    stats[r * 3] = m;
    stats[r * 3 + 1] = sum;
    stats[r * 3 + 2] = p;
    *loss += -(double)logf(p);
    *count += 1;
  }
}

void mq_mixture_nll_backward_ref(float *dlogits, float *dgamma, float *dlambda, float *dac, float *daq, float gl,
                                 int64_t count, const float *logits, const float *gamma, const float *lambda,
                                 const float *ac, const int32_t *cids, const float *aq, const int32_t *qids,
                                 const int32_t *targets, const float *stats, int64_t T, int64_t V, int64_t Lc,
                                 int64_t Lq, int32_t ignore, int64_t r0, int64_t r1) {
  // dlogits may be logits itself (planned in place): each logit is read before its gradient is
  // written.
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / T;
    const int32_t t = targets[r];
    for (int64_t i = 0; i < Lc; i++) dac[r * Lc + i] = 0.0f;
    for (int64_t i = 0; i < Lq; i++) daq[r * Lq + i] = 0.0f;
    dgamma[r] = dlambda[r] = 0.0f;
    const int live = t != ignore && count > 0;
    const float g = gamma[r], lm = lambda[r], m = stats[r * 3], sum = stats[r * 3 + 1];
    const float dp = live ? (float)(-(double)gl / (double)count) / stats[r * 3 + 2] : 0.0f;
    const float pt = live && t < V ? expf(logits[r * V + t] - m) / sum : 0.0f;
    if (live) {
      double sc = 0.0, sq = 0.0;
      for (int64_t i = 0; i < Lc; i++)
        if (cids[b * Lc + i] == t) {
          sc += (double)ac[r * Lc + i];
          dac[r * Lc + i] = lm * (1.0f - g) * dp;
        }
      for (int64_t i = 0; i < Lq; i++)
        if (qids[b * Lq + i] == t) {
          sq += (double)aq[r * Lq + i];
          daq[r * Lq + i] = (1.0f - lm) * (1.0f - g) * dp;
        }
      dgamma[r] = (float)((double)dp * ((double)pt - (double)lm * sc - (double)(1.0f - lm) * sq));
      dlambda[r] = (float)((double)dp * (double)(1.0f - g) * (sc - sq));
    }
    for (int64_t j = 0; j < V; j++) {
      if (!live || t >= V) {
        dlogits[r * V + j] = 0.0f;
        continue;
      }
      const float pj = expf(logits[r * V + j] - m) / sum;
      dlogits[r * V + j] = g * dp * pj * ((j == t ? 1.0f : 0.0f) - pt);
    }
  }
}
