// Declarations of optimizer.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_OPTIMIZER_H
#define MQAN_OPTIMIZER_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Optimizer
// Sum of squares of g[r0, r1) in double, in 16 fixed lanes folded in a fixed order: the same bits
// for every ISA variant and the reference (the global gradient norm for clipping).
double mq_sumsq(const float *g, int64_t r0, int64_t r1);
double mq_sumsq_ref(const float *g, int64_t r0, int64_t r1);

// Adam (PyTorch's order, float32) on [r0, r1), the clip coefficient applied to g on the fly:
//   g' = g * grad_scale;  m = beta1 * m + one_minus_beta1 * g';  v = v * beta2 + one_minus_beta2 * g' * g'
//   p = p + (-step_size) * m / (sqrt(v) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t), computed by the caller.
void mq_adam_update(float *p, const float *g, float *m, float *v, float grad_scale,
                    float step_size, float beta1, float one_minus_beta1, float beta2,
                    float one_minus_beta2, float eps, float bc2_sqrt, int64_t r0, int64_t r1);
void mq_adam_update_ref(float *p, const float *g, float *m, float *v, float grad_scale,
                        float step_size, float beta1, float one_minus_beta1, float beta2,
                        float one_minus_beta2, float eps, float bc2_sqrt, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
