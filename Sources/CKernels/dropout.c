// Dropout masks from a counter-based hash, so a mask is a pure function of (seed, salt, index):
// forward and backward regenerate the same mask, any thread split gives the same values, and a
// resumed run draws exactly what an uninterrupted one would.
//
// out [n]: 1/(1-p) where the element is kept, 0 where dropped (keep iff u >= p, u uniform [0,1)).
#include "ckernels.h"
#include "mq_math.h"

void mq_dropout_mask(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1) {
  const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  for (int64_t i = r0; i < r1; i++) out[i] = mq_dropout_uniform(seed, salt, i) >= p ? keep : 0.0f;
}

void mq_dropout_mask_ref(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    float u = mq_dropout_uniform(seed, salt, i);
    out[i] = (u < p) ? 0.0f : 1.0f / (1.0f - p);
  }
}
