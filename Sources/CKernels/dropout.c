// Dropout masks from a counter-based hash, so a mask is a pure function of (seed, salt, index):
// forward and backward regenerate the same mask, any thread split gives the same values, and a
// resumed run draws exactly what an uninterrupted one would.
//
// out [n]: 1/(1-p) where the element is kept, 0 where dropped (keep iff u >= p, u uniform [0,1)).
#include "ckernels.h"

static inline uint64_t mq_mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline float mq_uniform(uint64_t seed, uint64_t salt, int64_t i) {
  uint64_t h = mq_mix64(seed ^ mq_mix64(salt * 0xD1B54A32D192ED03ull + (uint64_t)i));
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}

void mq_dropout_mask(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1) {
  const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  for (int64_t i = r0; i < r1; i++) out[i] = mq_uniform(seed, salt, i) >= p ? keep : 0.0f;
}

void mq_dropout_mask_ref(float *out, float p, uint64_t seed, uint64_t salt, int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; i++) {
    float u = mq_uniform(seed, salt, i);
    out[i] = (u < p) ? 0.0f : 1.0f / (1.0f - p);
  }
}
