// mqan's GEMM: the three paths (gemm_path.h instantiated per instruction set), the dispatch,
// packing B ahead, the process-wide backend for kernels that call a GEMM inside, and the oracle.
//
// FP contraction is off in this file: the FMAs are the explicit intrinsics of the microkernels,
// and the epilogue's tanh / sigmoid give the bits of mq_tanh / mq_sigmoid.
#pragma STDC FP_CONTRACT OFF
#include "mq_gemm.h"
#include "mq_math.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// Calls with at most this many rows (of the whole product) and this depth, B not packed ahead,
// skip packing: packing B costs as much as the product when A has a row or two.
#define MQ_SMALL_M 4
#define MQ_SMALL_K 4096

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_HAVE_X86 1
#endif

// ---------------------------------------------------------------------------------------------
// Portable path: GCC/Clang vector extensions (SSE2 on any x86-64), multiply then add.
typedef float mq_v4 __attribute__((vector_size(16), aligned(4)));
static inline mq_v4 mq_v4_loadn(const float *p, int n) {
  mq_v4 v = {0, 0, 0, 0};
  for (int i = 0; i < n; i++) v[i] = p[i];
  return v;
}
static inline void mq_v4_storen(float *p, mq_v4 v, int n) {
  for (int i = 0; i < n; i++) p[i] = v[i];
}
static inline mq_v4 mq_v4_relu(mq_v4 v) {
  for (int i = 0; i < 4; i++) v[i] = v[i] < 0.0f ? 0.0f : v[i];
  return v;
}
#define P(name) mq_gemm_portable_##name
#define MQ_TARGET
#define VEC mq_v4
#define VL 4
#define NV 2
#define MR 4
#define VLOAD(p) (*(const mq_v4 *)(p))
#define VLOADN(p, n) mq_v4_loadn(p, n)
#define VSTORE(p, v) (*(mq_v4 *)(p) = (v))
#define VSTOREN(p, v, n) mq_v4_storen(p, v, n)
#define VSET1(x) ((mq_v4){(x), (x), (x), (x)})
#define VZERO() ((mq_v4){0, 0, 0, 0})
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) ((a) + (b))
#define VMUL(a, b) ((a) * (b))
#define VRELU(v) mq_v4_relu(v)
#define SFMA(a, b, c) ((a) * (b) + (c))
#include "gemm_path.h"
#undef P
#undef MQ_TARGET
#undef VEC
#undef VL
#undef NV
#undef MR
#undef VLOAD
#undef VLOADN
#undef VSTORE
#undef VSTOREN
#undef VSET1
#undef VZERO
#undef VFMA
#undef VADD
#undef VMUL
#undef VRELU
#undef SFMA

#ifdef MQ_HAVE_X86
// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: ymm, 6 x 16 tile (12 accumulators, 2 B vectors, 1 broadcast of 16 registers).
#define MQ_T2 __attribute__((target("avx2,fma")))
static inline MQ_T2 __m256i mq_mask8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline MQ_T2 __m256 mq_relu8(__m256 v) { return _mm256_max_ps(_mm256_setzero_ps(), v); }
#define P(name) mq_gemm_avx2_##name
#define MQ_TARGET MQ_T2
#define VEC __m256
#define VL 8
#define NV 2
#define MR 6
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADN(p, n) _mm256_maskload_ps(p, mq_mask8(n))
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSTOREN(p, v, n) _mm256_maskstore_ps(p, mq_mask8(n), v)
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VRELU(v) mq_relu8(v)
#define SFMA(a, b, c) __builtin_fmaf(a, b, c)
#include "gemm_path.h"
#undef P
#undef MQ_TARGET
#undef VEC
#undef VL
#undef NV
#undef MR
#undef VLOAD
#undef VLOADN
#undef VSTORE
#undef VSTOREN
#undef VSET1
#undef VZERO
#undef VFMA
#undef VADD
#undef VMUL
#undef VRELU
#undef SFMA

// ---------------------------------------------------------------------------------------------
// AVX-512F: zmm, 12 x 32 tile (24 accumulators, 2 B vectors, 1 broadcast of 32 registers);
// opmasks for the column edge. max(0, v) keeps NaN (the second operand wins on NaN), as mq_relu.
#define MQ_T5 __attribute__((target("avx512f,avx2,fma")))
#define P(name) mq_gemm_avx512_##name
#define MQ_TARGET MQ_T5
#define VEC __m512
#define VL 16
#define NV 2
#define MR 12
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADN(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), v)
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VRELU(v) _mm512_max_ps(_mm512_setzero_ps(), v)
#define SFMA(a, b, c) __builtin_fmaf(a, b, c)
#include "gemm_path.h"
#undef P
#undef MQ_TARGET
#undef VEC
#undef VL
#undef NV
#undef MR
#undef VLOAD
#undef VLOADN
#undef VSTORE
#undef VSTOREN
#undef VSET1
#undef VZERO
#undef VFMA
#undef VADD
#undef VMUL
#undef VRELU
#undef SFMA
#endif

// ---------------------------------------------------------------------------------------------

int64_t mq_gemm_kc(const mq_gemm_config *cfg, int64_t k) {
  if (k <= 0) return 1;
  int64_t blocks = (k + cfg->kc - 1) / cfg->kc;
  return (k + blocks - 1) / blocks;
}

size_t mq_gemm_scratch_floats(const mq_gemm_config *cfg, int64_t m, int64_t n, int64_t k) {
  int64_t kc = mq_gemm_kc(cfg, k);
  int64_t rows = m < cfg->mb ? m : cfg->mb;
  int64_t cols = n < cfg->nb ? n : cfg->nb;
  rows = (rows + cfg->mr - 1) / cfg->mr * cfg->mr;
  cols = (cols + cfg->nr - 1) / cfg->nr * cfg->nr;
  return (size_t)((rows + cols) * kc + 16);
}

size_t mq_gemm_packed_b_floats(const mq_gemm_config *cfg, int64_t n, int64_t k) {
  return (size_t)((n + cfg->nr - 1) / cfg->nr * cfg->nr * k);
}

void mq_gemm_pack_b(const mq_gemm_config *cfg, int trans_b, int64_t n, int64_t k, const float *b,
                    int64_t ldb, float *packed, int64_t p0, int64_t p1) {
  const int64_t nr = cfg->nr;
  for (int64_t p = p0; p < p1 && p * nr < n; p++) {
    const int64_t cols = n - p * nr < nr ? n - p * nr : nr;
    switch (cfg->path) {
#ifdef MQ_HAVE_X86
    case MQ_GEMM_AVX512:
      mq_gemm_avx512_pack_b(trans_b, b, ldb, 0, k, p * nr, cols, packed + p * k * nr, k * nr);
      break;
    case MQ_GEMM_AVX2:
      mq_gemm_avx2_pack_b(trans_b, b, ldb, 0, k, p * nr, cols, packed + p * k * nr, k * nr);
      break;
#endif
    default:
      mq_gemm_portable_pack_b(trans_b, b, ldb, 0, k, p * nr, cols, packed + p * k * nr, k * nr);
      break;
    }
  }
}

// k = 0: the product is zero; C = beta * C (or 0), then the epilogue.
static void mq_gemm_empty(float beta, float *c, int64_t ldc, const mq_gemm_epilogue *ep, int64_t r0,
                          int64_t r1, int64_t c0, int64_t c1) {
  for (int64_t i = r0; i < r1; i++) {
    float *ci = c + i * ldc;
    for (int64_t j = c0; j < c1; j++) {
      float v = 0.0f;
      if (beta != 0.0f) v = (beta == 1.0f ? ci[j] : ci[j] * beta) + v;
      if (ep) {
        if (ep->bias) v = v + ep->bias[j];
        if (ep->residual) v = v + ep->residual[i * ep->ldr + j];
        if (ep->act == MQ_ACT_RELU) v = v < 0.0f ? 0.0f : v;
        if (ep->act == MQ_ACT_TANH) v = mq_tanhf(v);
        if (ep->act == MQ_ACT_SIGMOID) v = mq_sigmoidf(v);
      }
      ci[j] = v;
    }
  }
}

void mq_gemm(const mq_gemm_config *cfg, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
             const float *packed_b, float beta, float *c, int64_t ldc, const mq_gemm_epilogue *ep,
             int64_t r0, int64_t r1, int64_t c0, int64_t c1, float *scratch) {
  (void)n;
  if (r0 >= r1 || c0 >= c1) return;
  if (ep && !ep->bias && !ep->residual && ep->act == MQ_ACT_NONE) ep = NULL;
  if (k <= 0) {
    mq_gemm_empty(beta, c, ldc, ep, r0, r1, c0, c1);
    return;
  }
  const int small = m <= MQ_SMALL_M && !packed_b && k <= MQ_SMALL_K;
  switch (cfg->path) {
#ifdef MQ_HAVE_X86
  case MQ_GEMM_AVX512:
    if (small) {
      mq_gemm_avx512_small(trans_a, trans_b, k, mq_gemm_kc(cfg, k), alpha, a, lda, b, ldb, beta, c, ldc, ep, r0, r1, c0, c1);
      return;
    }
    mq_gemm_avx512_gemm(cfg, trans_a, trans_b, k, alpha, a, lda, b, ldb, packed_b, beta, c, ldc, ep,
                        r0, r1, c0, c1, scratch);
    return;
  case MQ_GEMM_AVX2:
    if (small) {
      mq_gemm_avx2_small(trans_a, trans_b, k, mq_gemm_kc(cfg, k), alpha, a, lda, b, ldb, beta, c, ldc, ep, r0, r1, c0, c1);
      return;
    }
    mq_gemm_avx2_gemm(cfg, trans_a, trans_b, k, alpha, a, lda, b, ldb, packed_b, beta, c, ldc, ep, r0,
                      r1, c0, c1, scratch);
    return;
#endif
  default:
    if (small) {
      mq_gemm_portable_small(trans_a, trans_b, k, mq_gemm_kc(cfg, k), alpha, a, lda, b, ldb, beta, c, ldc, ep, r0, r1, c0, c1);
      return;
    }
    mq_gemm_portable_gemm(cfg, trans_a, trans_b, k, alpha, a, lda, b, ldb, packed_b, beta, c, ldc,
                          ep, r0, r1, c0, c1, scratch);
    return;
  }
}

void mq_gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc, const mq_gemm_epilogue *ep, int64_t r0, int64_t r1, int64_t c0,
                 int64_t c1) {
  (void)m;
  (void)n;
  for (int64_t i = r0; i < r1; i++) {
    for (int64_t j = c0; j < c1; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; p++) {
        float x = trans_a ? a[p * lda + i] : a[i * lda + p];
        float y = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += x * y;
      }
      float v = alpha == 1.0f ? acc : acc * alpha;
      if (beta != 0.0f) v = (beta == 1.0f ? c[i * ldc + j] : c[i * ldc + j] * beta) + v;
      if (ep) {
        if (ep->bias) v = v + ep->bias[j];
        if (ep->residual) v = v + ep->residual[i * ep->ldr + j];
        if (ep->act == MQ_ACT_RELU) v = v < 0.0f ? 0.0f : v;
        if (ep->act == MQ_ACT_TANH) v = tanhf(v);
        if (ep->act == MQ_ACT_SIGMOID) v = 1.0f / (1.0f + expf(-v));
      }
      c[i * ldc + j] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The thread's backend, for kernels with a GEMM inside (attention), and the thread's scratch.

// -1: not set on this thread (mqan's own, best path).
static _Thread_local int mq_backend_state = -1;
static _Thread_local int mq_backend_path_state = -1;

void mq_gemm_set_backend(int backend, int path) {
  if (!mq_gemm_path_supported(path)) path = mq_gemm_best_path();
  mq_backend_path_state = path;
  mq_backend_state = backend;
}

int mq_gemm_backend(void) { return mq_backend_state < 0 ? MQ_BACKEND_MQAN : mq_backend_state; }

int mq_gemm_backend_path(void) {
  return mq_backend_path_state < 0 ? mq_gemm_best_path() : mq_backend_path_state;
}

// Per-thread scratch, one buffer per slot, grown on demand and freed when the thread exits
// (pthread key destructor).
typedef struct {
  float *p[MQ_SCRATCH_SLOTS];
  size_t floats[MQ_SCRATCH_SLOTS];
} mq_scratch;
static pthread_key_t mq_scratch_key;
static pthread_once_t mq_scratch_once = PTHREAD_ONCE_INIT;
static void mq_scratch_free(void *v) {
  mq_scratch *s = v;
  if (s)
    for (int i = 0; i < MQ_SCRATCH_SLOTS; i++) free(s->p[i]);
  free(s);
}
static void mq_scratch_init(void) { pthread_key_create(&mq_scratch_key, mq_scratch_free); }

float *mq_thread_scratch(int slot, size_t floats) {
  if (slot < 0 || slot >= MQ_SCRATCH_SLOTS) return NULL;
  pthread_once(&mq_scratch_once, mq_scratch_init);
  mq_scratch *s = pthread_getspecific(mq_scratch_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (pthread_setspecific(mq_scratch_key, s) != 0) {
      free(s);
      return NULL;
    }
  }
  if (floats > s->floats[slot]) {
    free(s->p[slot]);
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    s->p[slot] = aligned_alloc(64, bytes);
    s->floats[slot] = s->p[slot] ? floats : 0;
  }
  return s->p[slot];
}

float *mq_gemm_thread_scratch(size_t floats) { return mq_thread_scratch(MQ_SCRATCH_GEMM, floats); }

static mq_gemm_config mq_configs[MQ_GEMM_PATHS];
static pthread_once_t mq_configs_once = PTHREAD_ONCE_INIT;
static void mq_configs_init(void) {
  for (int p = 0; p < MQ_GEMM_PATHS; p++) mq_configs[p] = mq_gemm_config_for(p);
}

void mq_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (mq_gemm_backend() == MQ_BACKEND_OPENBLAS && k > 0) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    return;
  }
  pthread_once(&mq_configs_once, mq_configs_init);
  const mq_gemm_config *cfg = &mq_configs[mq_gemm_backend_path()];
  float *scratch = mq_gemm_thread_scratch(mq_gemm_scratch_floats(cfg, m, n, k));
  if (!scratch) { // out of memory: the naive loop needs no scratch
    mq_gemm_ref(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, 0, m, 0, n);
    return;
  }
  mq_gemm(cfg, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc, NULL, 0, m, 0, n,
          scratch);
}
