// Backward of the masked softmax and of decaNLP's LayerNorm.
//
// Legend: g = upstream gradient, y = the forward output, dx = the gradient of the forward input.
//   softmax:    g, y, dx [rows, n]; [r0, r1) are rows. dx may be g or y.
//   layer norm: g, x, dx [rows, d], gamma [d]; stats [rows, 2] = (mean, std + eps) of each row as
//               the forward computed them, written by mq_layernorm_backward for rows [r0, r1) and
//               read by mq_layernorm_backward_params, which sums dgamma, dbeta [d] over all rows
//               for its columns [c0, c1) (row order, double: the split does not change the bits).
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

// Sum of a[j] * b[j] (b_shift subtracted from b first) in double with 8 fixed partial sums.
MQ_INLINE double mq_dot8_f64(const float *a, const float *b, float b_shift, int64_t n) {
  double acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += (double)a[j + k] * (double)(b[j + k] - b_shift);
  for (int k = 0; j + k < n; k++) acc[k] += (double)a[j + k] * (double)(b[j + k] - b_shift);
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// in the forward pass this was: y = softmax(scale * s) + eps (masked s = fill); so with
// p = y - eps: dx = scale * p * (g - sum_j g_j p_j). Masked entries have p = 0 and get 0.
MQ_HOT void mq_softmax_backward(float *dx, const float *g, const float *y, int64_t n, float scale,
                                float eps, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float *gr = g + r * n, *yr = y + r * n;
    float *o = dx + r * n;
    const float dot = (float)mq_dot8_f64(gr, yr, eps, n);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) o[j] = scale * ((yr[j] - eps) * (gr[j] - dot));
  }
}

void mq_softmax_backward_ref(float *dx, const float *g, const float *y, int64_t n, float scale,
                             float eps, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    double dot = 0.0;
    for (int64_t j = 0; j < n; j++) dot += (double)g[r * n + j] * (double)(y[r * n + j] - eps);
    for (int64_t j = 0; j < n; j++) {
      float p = y[r * n + j] - eps;
      dx[r * n + j] = scale * (p * (g[r * n + j] - (float)dot));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// in the forward pass this was: y = gamma * (x - mean) / (std + eps) + beta, std unbiased; so
// with xc = x - mean, r = 1 / (std + eps), dxhat = g * gamma, S = sum_j dxhat_j xc_j:
//   dx_j = r (dxhat_j - mean(dxhat)) - r² S xc_j / ((d - 1) std)     (second term 0 if std = 0)
// dx may be g (in place). stats may be NULL (then only dx is written).
MQ_HOT void mq_layernorm_backward(float *dx, float *stats, const float *g, const float *x,
                                  const float *gamma, int64_t d, float eps, int64_t r0,
                                  int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * d, *gr = g + r * d;
    float *o = dx + r * d;
    const double mean_d = mq_sum8_f64(xr, d) / (double)d;
    const float mean = (float)mean_d;
    const float std = (float)sqrt(mq_sqdev8_f64(xr, mean_d, d) / (double)(d - 1));
    const float denom = std + eps;
    if (stats) {
      stats[2 * r] = mean;
      stats[2 * r + 1] = denom;
    }
    double acc_g[8] = {0}, acc_s[8] = {0};
    for (int64_t j = 0; j < d; j++) {
      const float dxhat = gr[j] * gamma[j];
      acc_g[j & 7] += (double)dxhat;
      acc_s[j & 7] += (double)dxhat * (double)(xr[j] - mean);
    }
    const double sg = ((acc_g[0] + acc_g[4]) + (acc_g[2] + acc_g[6])) +
                      ((acc_g[1] + acc_g[5]) + (acc_g[3] + acc_g[7]));
    const double ss = ((acc_s[0] + acc_s[4]) + (acc_s[2] + acc_s[6])) +
                      ((acc_s[1] + acc_s[5]) + (acc_s[3] + acc_s[7]));
    const double rr = 1.0 / (double)denom;
    const float rf = (float)rr;
    const float mg = (float)(sg / (double)d);
    const float coef = std > 0.0f ? (float)(rr * rr * ss / ((double)(d - 1) * (double)std)) : 0.0f;
#pragma omp simd
    for (int64_t j = 0; j < d; j++) {
      const float dxhat = gr[j] * gamma[j];
      o[j] = rf * (dxhat - mg) - coef * (xr[j] - mean);
    }
  }
}

void mq_layernorm_backward_ref(float *dx, float *stats, const float *g, const float *x,
                               const float *gamma, int64_t d, float eps, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    float mean, std;
    mq_layernorm_row_ref(x + r * d, d, &mean, &std);
    if (stats) {
      stats[2 * r] = mean;
      stats[2 * r + 1] = std + eps;
    }
    double rr = 1.0 / ((double)std + (double)eps), sg = 0.0, ss = 0.0;
    for (int64_t j = 0; j < d; j++) {
      double dxhat = (double)g[r * d + j] * gamma[j];
      sg += dxhat;
      ss += dxhat * (double)(x[r * d + j] - mean);
    }
    for (int64_t j = 0; j < d; j++) {
      double dxhat = (double)g[r * d + j] * gamma[j];
      double xc = (double)(x[r * d + j] - mean);
      double second = std > 0.0f ? rr * rr * ss * xc / ((double)(d - 1) * (double)std) : 0.0;
      dx[r * d + j] = (float)(rr * (dxhat - sg / (double)d) - second);
    }
  }
}

// dgamma[j] = sum_r g[r, j] (x[r, j] - mean_r) / (std_r + eps); dbeta[j] = sum_r g[r, j], for
// columns [c0, c1), rows in order, in double. stats from mq_layernorm_backward over all rows.
MQ_HOT void mq_layernorm_backward_params(float *dgamma, float *dbeta, const float *g,
                                         const float *x, const float *stats, int64_t rows,
                                         int64_t d, int64_t c0, int64_t c1) {
  enum { BLOCK = 128 };
  double ag[BLOCK], ab[BLOCK];
  for (int64_t j0 = c0; j0 < c1; j0 += BLOCK) {
    const int64_t w = c1 - j0 < BLOCK ? c1 - j0 : BLOCK;
    for (int64_t k = 0; k < w; k++) ag[k] = ab[k] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
      const float *gr = g + r * d + j0, *xr = x + r * d + j0;
      const float mean = stats[2 * r], denom = stats[2 * r + 1];
#pragma omp simd
      for (int64_t k = 0; k < w; k++) {
        ag[k] += (double)gr[k] * (double)((xr[k] - mean) / denom);
        ab[k] += (double)gr[k];
      }
    }
    for (int64_t k = 0; k < w; k++) {
      dgamma[j0 + k] = (float)ag[k];
      dbeta[j0 + k] = (float)ab[k];
    }
  }
}

void mq_layernorm_backward_params_ref(float *dgamma, float *dbeta, const float *g, const float *x,
                                      const float *stats, int64_t rows, int64_t d, int64_t c0,
                                      int64_t c1) {
  for (int64_t j = c0; j < c1; j++) {
    double sg = 0.0, sb = 0.0;
    for (int64_t r = 0; r < rows; r++) {
      float xhat = (x[r * d + j] - stats[2 * r]) / stats[2 * r + 1];
      sg += (double)g[r * d + j] * (double)xhat;
      sb += (double)g[r * d + j];
    }
    dgamma[j] = (float)sg;
    dbeta[j] = (float)sb;
  }
}
