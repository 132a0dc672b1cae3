// Declarations of dropout.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_DROPOUT_H
#define MQAN_DROPOUT_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Dropout: out[i] = 1/(1-p) if hash(seed, salt, i) >= p else 0, for [r0, r1) (dropout.c).
void mq_dropout_mask(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1);
void mq_dropout_mask_ref(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
