// Backward of the LSTM gate update, the pointer-generator mixture and the NLL loss.
//
// Legend: B = batch, H = LSTM hidden width, T = decoder steps, V = generative vocab,
// X = extended vocab (V + n_oov), Lc / Lq = context / question length.
//   lstm:    dh, dc, c_prev, c_new, dc_prev [B, H]; gates, dgates [B, 4H] (pre-activations, order
//            i | f | g | o); rows are batch items. dc_prev may be dc (in place).
//   mixture: dP [B*T, X], pvocab, dpvocab [B*T, V], gamma, lambda, dgamma, dlambda [B*T],
//            ac, dac [B*T, Lc], cids [B, Lc], aq, daq [B*T, Lq], qids [B, Lq]; rows r of B*T,
//            batch b = r / T.
//   nll:     P, dP [rows, X], targets [rows]; rows are B*T positions.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

// in the forward pass this was: c' = sig(f) c + sig(i) tanh(g); h' = sig(o) tanh(c'); so
//   dc_total = dc + dh sig(o) (1 - tanh²(c'))
//   do = dh tanh(c') sig(o) (1 - sig(o));   di = dc_total tanh(g) sig(i) (1 - sig(i))
//   df = dc_total c sig(f) (1 - sig(f));    dg = dc_total sig(i) (1 - tanh²(g))
//   dc_prev = dc_total sig(f)
MQ_HOT void mq_lstm_cell_backward(float *dgates, float *dc_prev, const float *dh, const float *dc,
                                  const float *gates, const float *c_prev, const float *c_new,
                                  int64_t H, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float *gi = gates + r * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    float *di = dgates + r * 4 * H, *df = di + H, *dg = di + 2 * H, *dout = di + 3 * H;
    const float *dhr = dh + r * H, *dcr = dc + r * H, *cp = c_prev + r * H, *cn = c_new + r * H;
    float *dcp = dc_prev + r * H;
#pragma omp simd
    for (int64_t j = 0; j < H; j++) {
      const float si = mq_sigmoidf(gi[j]), sf = mq_sigmoidf(gf[j]);
      const float tg = mq_tanhf(gg[j]), so = mq_sigmoidf(go[j]), tc = mq_tanhf(cn[j]);
      const float dct = dcr[j] + dhr[j] * so * (1.0f - tc * tc);
      dout[j] = dhr[j] * tc * (so * (1.0f - so));
      di[j] = dct * tg * (si * (1.0f - si));
      df[j] = dct * cp[j] * (sf * (1.0f - sf));
      dg[j] = dct * si * (1.0f - tg * tg);
      dcp[j] = dct * sf;
    }
  }
}

static float mq_bw_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void mq_lstm_cell_backward_ref(float *dgates, float *dc_prev, const float *dh, const float *dc,
                               const float *gates, const float *c_prev, const float *c_new,
                               int64_t H, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j = 0; j < H; j++) {
      float i = mq_bw_sigmoid(gates[r * 4 * H + j]);
      float f = mq_bw_sigmoid(gates[r * 4 * H + H + j]);
      float g = tanhf(gates[r * 4 * H + 2 * H + j]);
      float o = mq_bw_sigmoid(gates[r * 4 * H + 3 * H + j]);
      float tc = tanhf(c_new[r * H + j]);
      float h_grad = dh[r * H + j];
      float c_grad = dc[r * H + j] + h_grad * o * (1.0f - tc * tc);
      dgates[r * 4 * H + 3 * H + j] = h_grad * tc * (o * (1.0f - o));
      dgates[r * 4 * H + j] = c_grad * g * (i * (1.0f - i));
      dgates[r * 4 * H + H + j] = c_grad * c_prev[r * H + j] * (f * (1.0f - f));
      dgates[r * 4 * H + 2 * H + j] = c_grad * i * (1.0f - g * g);
      dc_prev[r * H + j] = c_grad * f;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// in the forward pass this was:
//   out[r, :V] = gamma pvocab;  out[r, V:] = 1e-10;
//   out[r, cids[b, i]] += (lambda (1 - gamma)) ac[r, i];  out[r, qids[b, j]] += ((1 - lambda) (1 - gamma)) aq[r, j]
// so dpvocab = gamma dP[:V]; dac_i = lambda (1 - gamma) dP[cid_i]; daq_j = (1 - lambda)(1 - gamma) dP[qid_j];
//   dgamma = sum_j dP_j pv_j - lambda sum_i dP[cid_i] ac_i - (1 - lambda) sum_j dP[qid_j] aq_j
//   dlambda = (1 - gamma) (sum_i dP[cid_i] ac_i - sum_j dP[qid_j] aq_j)
// (the scatter-adds become gathers; the sums are in double, in index order).
MQ_HOT void mq_pointer_mixture_backward(float *dpvocab, float *dgamma, float *dlambda, float *dac,
                                        float *daq, const float *dP, const float *pvocab,
                                        const float *gamma, const float *lambda, const float *ac,
                                        const int32_t *cids, const float *aq, const int32_t *qids,
                                        int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                                        int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / T;
    const float gm = gamma[r], lm = lambda[r];
    const float *dp = dP + r * X, *pv = pvocab + r * V;
    float *dpv = dpvocab + r * V;
    double acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= V; j += 8)
      for (int k = 0; k < 8; k++) acc[k] += (double)dp[j + k] * (double)pv[j + k];
    for (int k = 0; j + k < V; k++) acc[k] += (double)dp[j + k] * (double)pv[j + k];
    const double sv = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
#pragma omp simd
    for (int64_t jj = 0; jj < V; jj++) dpv[jj] = gm * dp[jj];
    const float cc = lm * (1.0f - gm), cq = (1.0f - lm) * (1.0f - gm);
    double sc = 0.0, sq = 0.0;
    const float *a = ac + r * Lc;
    const int32_t *ids = cids + b * Lc;
    float *da = dac + r * Lc;
    for (int64_t i = 0; i < Lc; i++) {
      const float d = dp[ids[i]];
      sc += (double)d * (double)a[i];
      da[i] = cc * d;
    }
    a = aq + r * Lq;
    ids = qids + b * Lq;
    da = daq + r * Lq;
    for (int64_t i = 0; i < Lq; i++) {
      const float d = dp[ids[i]];
      sq += (double)d * (double)a[i];
      da[i] = cq * d;
    }
    dgamma[r] = (float)(sv - (double)lm * sc - (double)(1.0f - lm) * sq);
    dlambda[r] = (float)((double)(1.0f - gm) * (sc - sq));
  }
}

void mq_pointer_mixture_backward_ref(float *dpvocab, float *dgamma, float *dlambda, float *dac,
                                     float *daq, const float *dP, const float *pvocab,
                                     const float *gamma, const float *lambda, const float *ac,
                                     const int32_t *cids, const float *aq, const int32_t *qids,
                                     int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                                     int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / T;
    double sv = 0.0, sc = 0.0, sq = 0.0;
    for (int64_t j = 0; j < V; j++) {
      dpvocab[r * V + j] = gamma[r] * dP[r * X + j];
      sv += (double)dP[r * X + j] * pvocab[r * V + j];
    }
    for (int64_t i = 0; i < Lc; i++) {
      float d = dP[r * X + cids[b * Lc + i]];
      dac[r * Lc + i] = lambda[r] * (1.0f - gamma[r]) * d;
      sc += (double)d * ac[r * Lc + i];
    }
    for (int64_t i = 0; i < Lq; i++) {
      float d = dP[r * X + qids[b * Lq + i]];
      daq[r * Lq + i] = (1.0f - lambda[r]) * (1.0f - gamma[r]) * d;
      sq += (double)d * aq[r * Lq + i];
    }
    dgamma[r] = (float)(sv - lambda[r] * sc - (1.0f - lambda[r]) * sq);
    dlambda[r] = (float)((1.0f - gamma[r]) * (sc - sq));
  }
}

// ---------------------------------------------------------------------------------------------
// in the forward pass this was: loss = sum over kept rows of -log P[r, t_r] / count; so
// dP[r, t_r] = -g / (count P[r, t_r]) at kept rows, 0 everywhere else (all 0 when count = 0).
// count is the number of kept rows of the whole tensor (not of [r0, r1)).
MQ_HOT void mq_nll_backward(float *dP, const float *P, const int32_t *targets, int64_t X,
                            int32_t ignore, float g, int64_t count, int64_t r0, int64_t r1) {
  if (r1 <= r0) return;
  memset(dP + r0 * X, 0, (size_t)((r1 - r0) * X) * sizeof(float));
  if (count <= 0) return;
  const float coef = (float)(-(double)g / (double)count);
  for (int64_t r = r0; r < r1; r++) {
    const int32_t t = targets[r];
    if (t == ignore) continue;
    dP[r * X + t] = coef / P[r * X + t];
  }
}

void mq_nll_backward_ref(float *dP, const float *P, const int32_t *targets, int64_t X,
                         int32_t ignore, float g, int64_t count, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t j = 0; j < X; j++) dP[r * X + j] = 0.0f;
    if (targets[r] == ignore || count <= 0) continue;
    float coef = (float)(-(double)g / (double)count);
    dP[r * X + targets[r]] = coef / P[r * X + targets[r]];
  }
}
