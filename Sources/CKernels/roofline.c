// Roofline calibration kernels: the FMA peak loop and the streaming read, one implementation per
// GEMM path, each with its own target attribute (never -march=native), plus the pool tasks that
// run them on every thread at once. The Swift side (Runtime's Roofline) times the tasks.
//
// Legend: ACC = independent accumulator chains of the peak loop, VL = lanes of the path's
// vector, UNR = accumulators of the read loop (UNR vector loads per round).
//
// The peak loop is acc = acc * a + b (a = 0.75, b = 0.25: every chain converges to 1, so nothing
// overflows or goes denormal, which would slow the loop down) with the path's FMA instruction
// (portable: a mul and an add, as the portable GEMM does; contraction is off in this file).
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"
#include "mq_math.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_RF_X86 1
#endif

#define MQ_RF_A 0.75f
#define MQ_RF_B 0.25f

// ---------------------------------------------------------------------------------------------
// Portable: 4-lane vector extension (SSE2 on any x86-64), mul + add.
typedef float mq_rf_v4 __attribute__((vector_size(16)));

enum { MQ_RF_ACC_PORTABLE = 12, MQ_RF_ACC_AVX2 = 12, MQ_RF_ACC_AVX512 = 24, MQ_RF_UNR = 8 };

static double mq_rf_fma_portable(int64_t iters, float *sink) {
  mq_rf_v4 acc[MQ_RF_ACC_PORTABLE];
  const mq_rf_v4 a = {MQ_RF_A, MQ_RF_A, MQ_RF_A, MQ_RF_A}, b = {MQ_RF_B, MQ_RF_B, MQ_RF_B, MQ_RF_B};
#pragma clang loop unroll(full)
  for (int i = 0; i < MQ_RF_ACC_PORTABLE; i++) acc[i] = (mq_rf_v4){0} + (float)i * 0.01f;
  for (int64_t it = 0; it < iters; it++) {
#pragma clang loop unroll(full)
    for (int i = 0; i < MQ_RF_ACC_PORTABLE; i++) acc[i] = acc[i] * a + b;
  }
  mq_rf_v4 s = acc[0];
  for (int i = 1; i < MQ_RF_ACC_PORTABLE; i++) s += acc[i];
  *sink = s[0] + s[1] + s[2] + s[3];
  return (double)iters * MQ_RF_ACC_PORTABLE * 4 * 2;
}

static float mq_rf_read_portable(const float *x, int64_t n) {
  mq_rf_v4 acc[MQ_RF_UNR];
#pragma clang loop unroll(full)
  for (int u = 0; u < MQ_RF_UNR; u++) acc[u] = (mq_rf_v4){0};
  int64_t i = 0;
  for (; i + 4 * MQ_RF_UNR <= n; i += 4 * MQ_RF_UNR) {
#pragma clang loop unroll(full)
    for (int u = 0; u < MQ_RF_UNR; u++) acc[u] += *(const mq_rf_v4 *)(x + i + 4 * u);
  }
  mq_rf_v4 s = acc[0];
  for (int u = 1; u < MQ_RF_UNR; u++) s += acc[u];
  float t = s[0] + s[1] + s[2] + s[3];
  for (; i < n; i++) t += x[i];
  return t;
}

#ifdef MQ_RF_X86
// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: ymm.
#define MQ_RF_T2 __attribute__((target("avx2,fma")))

static MQ_RF_T2 double mq_rf_fma_avx2(int64_t iters, float *sink) {
  __m256 acc[MQ_RF_ACC_AVX2];
  const __m256 a = _mm256_set1_ps(MQ_RF_A), b = _mm256_set1_ps(MQ_RF_B);
#pragma clang loop unroll(full)
  for (int i = 0; i < MQ_RF_ACC_AVX2; i++) acc[i] = _mm256_set1_ps((float)i * 0.01f);
  for (int64_t it = 0; it < iters; it++) {
#pragma clang loop unroll(full)
    for (int i = 0; i < MQ_RF_ACC_AVX2; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < MQ_RF_ACC_AVX2; i++) s = _mm256_add_ps(s, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float t = 0;
  for (int i = 0; i < 8; i++) t += lanes[i];
  *sink = t;
  return (double)iters * MQ_RF_ACC_AVX2 * 8 * 2;
}

static MQ_RF_T2 float mq_rf_read_avx2(const float *x, int64_t n) {
  __m256 acc[MQ_RF_UNR];
#pragma clang loop unroll(full)
  for (int u = 0; u < MQ_RF_UNR; u++) acc[u] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 * MQ_RF_UNR <= n; i += 8 * MQ_RF_UNR) {
#pragma clang loop unroll(full)
    for (int u = 0; u < MQ_RF_UNR; u++) acc[u] = _mm256_add_ps(acc[u], _mm256_load_ps(x + i + 8 * u));
  }
  __m256 s = acc[0];
  for (int u = 1; u < MQ_RF_UNR; u++) s = _mm256_add_ps(s, acc[u]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float t = 0;
  for (int u = 0; u < 8; u++) t += lanes[u];
  for (; i < n; i++) t += x[i];
  return t;
}

// ---------------------------------------------------------------------------------------------
// AVX-512F: zmm.
#define MQ_RF_T5 __attribute__((target("avx512f,avx2,fma")))

static MQ_RF_T5 double mq_rf_fma_avx512(int64_t iters, float *sink) {
  __m512 acc[MQ_RF_ACC_AVX512];
  const __m512 a = _mm512_set1_ps(MQ_RF_A), b = _mm512_set1_ps(MQ_RF_B);
#pragma clang loop unroll(full)
  for (int i = 0; i < MQ_RF_ACC_AVX512; i++) acc[i] = _mm512_set1_ps((float)i * 0.01f);
  for (int64_t it = 0; it < iters; it++) {
#pragma clang loop unroll(full)
    for (int i = 0; i < MQ_RF_ACC_AVX512; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < MQ_RF_ACC_AVX512; i++) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return (double)iters * MQ_RF_ACC_AVX512 * 16 * 2;
}

static MQ_RF_T5 float mq_rf_read_avx512(const float *x, int64_t n) {
  __m512 acc[MQ_RF_UNR];
#pragma clang loop unroll(full)
  for (int u = 0; u < MQ_RF_UNR; u++) acc[u] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 * MQ_RF_UNR <= n; i += 16 * MQ_RF_UNR) {
#pragma clang loop unroll(full)
    for (int u = 0; u < MQ_RF_UNR; u++) acc[u] = _mm512_add_ps(acc[u], _mm512_load_ps(x + i + 16 * u));
  }
  __m512 s = acc[0];
  for (int u = 1; u < MQ_RF_UNR; u++) s = _mm512_add_ps(s, acc[u]);
  float t = _mm512_reduce_add_ps(s);
  for (; i < n; i++) t += x[i];
  return t;
}
#endif

// ---------------------------------------------------------------------------------------------
// Dispatch.

static int mq_rf_path(int path) { return mq_gemm_path_supported(path) ? path : mq_gemm_best_path(); }

int mq_roofline_chains(int path) {
  switch (mq_rf_path(path)) {
  case MQ_GEMM_AVX512: return MQ_RF_ACC_AVX512;
  case MQ_GEMM_AVX2: return MQ_RF_ACC_AVX2;
  default: return MQ_RF_ACC_PORTABLE;
  }
}

double mq_roofline_fma(int path, int64_t iters, float *sink) {
  if (iters < 0) iters = 0;
  switch (mq_rf_path(path)) {
#ifdef MQ_RF_X86
  case MQ_GEMM_AVX512: return mq_rf_fma_avx512(iters, sink);
  case MQ_GEMM_AVX2: return mq_rf_fma_avx2(iters, sink);
#endif
  default: return mq_rf_fma_portable(iters, sink);
  }
}

float mq_roofline_read(int path, const float *x, int64_t n) {
  if (n <= 0) return 0.0f;
  switch (mq_rf_path(path)) {
#ifdef MQ_RF_X86
  case MQ_GEMM_AVX512: return mq_rf_read_avx512(x, n);
  case MQ_GEMM_AVX2: return mq_rf_read_avx2(x, n);
#endif
  default: return mq_rf_read_portable(x, n);
  }
}

void mq_roofline_fma_task(void *ctx, int ith, int nth) {
  (void)nth;
  mq_roofline_task *t = ctx;
  t->flops[ith] = mq_roofline_fma(t->path, t->iters, &t->sink[ith]);
}

void mq_roofline_read_task(void *ctx, int ith, int nth) {
  (void)nth;
  mq_roofline_task *t = ctx;
  float s = 0.0f;
  for (int64_t p = 0; p < t->passes; p++) s += mq_roofline_read(t->path, t->bufs[ith], t->floats);
  t->sink[ith] = s;
  t->flops[ith] = (double)t->passes * (double)t->floats * (double)sizeof(float);
}

void mq_roofline_fill_task(void *ctx, int ith, int nth) {
  (void)nth;
  mq_roofline_task *t = ctx;
  float *x = t->bufs[ith];
#pragma omp simd
  for (int64_t i = 0; i < t->floats; i++) x[i] = 1.0f;
  t->flops[ith] = 0.0;
  t->sink[ith] = 0.0f;
}
