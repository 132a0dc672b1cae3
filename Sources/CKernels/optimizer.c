// Optimizer kernels: the squared norm for global-norm clipping, and the Adam update.
//
// Legend: n = elements of one parameter tensor (flat), [r0, r1) = the flat range this call reads
// or writes, p = the parameter, g = its gradient (before clipping), m / v = Adam's first and second
// moments, all [n] float32.
//
// Determinism: mq_sumsq accumulates in 16 fixed lanes (element i of the range goes to lane
// (i - r0) % 16), each lane a plain sequential sum in double, and folds the lanes in a fixed tree.
// The per-lane sums do not depend on the vector width, so every target_clones variant (and the
// reference) gives the same bits; the Swift driver splits a tensor into fixed blocks, so the result
// does not depend on the thread count either. Float squares are exact in double (24 + 24 < 53
// mantissa bits). The Adam update is elementwise, with FP contraction off.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

#define MQ_SUMSQ_LANES 16

// Folds the 16 lanes in a fixed halving tree: lane k += lane k + 8, then k += k + 4, k + 2, k + 1.
MQ_INLINE double mq_fold16(double *acc) {
  for (int w = MQ_SUMSQ_LANES / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) acc[k] += acc[k + w];
  return acc[0];
}

MQ_HOT double mq_sumsq(const float *g, int64_t r0, int64_t r1) {
  double acc[MQ_SUMSQ_LANES] = {0};
  const float *x = g + r0;
  const int64_t n = r1 > r0 ? r1 - r0 : 0;
  int64_t i = 0;
  for (; i + MQ_SUMSQ_LANES <= n; i += MQ_SUMSQ_LANES) {
#pragma omp simd
    for (int k = 0; k < MQ_SUMSQ_LANES; k++) {
      const double d = (double)x[i + k];
      acc[k] += d * d;
    }
  }
  for (int k = 0; i + k < n; k++) {
    const double d = (double)x[i + k];
    acc[k] += d * d;
  }
  return mq_fold16(acc);
}

double mq_sumsq_ref(const float *g, int64_t r0, int64_t r1) {
  double acc[MQ_SUMSQ_LANES] = {0};
  for (int64_t i = r0; i < r1; i++) {
    const double d = (double)g[i];
    acc[(i - r0) % MQ_SUMSQ_LANES] += d * d;
  }
  return mq_fold16(acc);
}

// One element of PyTorch's single-tensor Adam (torch/optim/adam.py, CPU, float32), in its order:
//   grad *= clip_coef                                   (clip_grad_norm_, in place on the grad)
//   exp_avg = beta1 * exp_avg + (1 - beta1) * grad
//   exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * grad * grad      (addcmul: value * t1 * t2)
//   denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + eps
//   param = param + (-step_size) * exp_avg / denom                   (addcdiv: value * t1 / t2)
// step_size = lr / bias_correction1 and the (1 - beta) weights are computed in double by the
// caller, as Python does, and rounded once to float, as the tensor ops do with their scalars.
MQ_INLINE void mq_adam_one(float *p, const float *g, float *m, float *v, int64_t i,
                           float grad_scale, float step_size, float beta1, float one_minus_beta1,
                           float beta2, float one_minus_beta2, float eps, float bc2_sqrt) {
  const float gi = g[i] * grad_scale;
  const float mi = beta1 * m[i] + one_minus_beta1 * gi;
  const float vi = v[i] * beta2 + one_minus_beta2 * gi * gi;
  const float denom = sqrtf(vi) / bc2_sqrt + eps;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] + (-step_size) * mi / denom;
}

MQ_HOT void mq_adam_update(float *p, const float *g, float *m, float *v, float grad_scale,
                           float step_size, float beta1, float one_minus_beta1, float beta2,
                           float one_minus_beta2, float eps, float bc2_sqrt, int64_t r0,
                           int64_t r1) {
#pragma omp simd
  for (int64_t i = r0; i < r1; i++)
    mq_adam_one(p, g, m, v, i, grad_scale, step_size, beta1, one_minus_beta1, beta2,
                one_minus_beta2, eps, bc2_sqrt);
}

void mq_adam_update_ref(float *p, const float *g, float *m, float *v, float grad_scale,
                        float step_size, float beta1, float one_minus_beta1, float beta2,
                        float one_minus_beta2, float eps, float bc2_sqrt, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    const float gi = g[i] * grad_scale;
    m[i] = beta1 * m[i] + one_minus_beta1 * gi;
    v[i] = v[i] * beta2 + one_minus_beta2 * gi * gi;
    const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
    p[i] = p[i] + (-step_size) * m[i] / denom;
  }
}
