// mqan's own single-precision GEMM: register-blocked microkernels over packed panels, in the
// structure of BLIS (Van Zee & van de Geijn), with the epilogue (bias, residual, activation)
// applied to each tile as it is written back.
//
// Legend (row-major throughout): C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] (+ beta * C).
//   op(A) = A, or Aᵀ when trans_a (A stored [k, m]); op(B) = B, or Bᵀ when trans_b (B stored
//   [n, k], a linear's weight). The microkernel holds an MR x NR tile of C in registers: NR
//   columns are vectors (loaded from a packed B panel), MR rows are broadcasts (from packed A).
//
// Paths, one per instruction set, each compiled with per-function target attributes (never
// -march=native) and picked once at start from cpuid and the OS's saved-state bits (xgetbv):
//   MQ_GEMM_AVX512   zmm, MR 12 x NR 32, FMA        (AVX-512F, OS saves zmm state)
//   MQ_GEMM_AVX2     ymm, MR 6 x NR 16, FMA         (AVX2 + FMA, OS saves ymm state)
//   MQ_GEMM_PORTABLE plain C, MR 4 x NR 8, mul + add (any x86-64, any other CPU)
// The SIMD paths sum each output in the same order (k in blocks of kc, FMA within a block, each
// block added to C), so AVX-512 and AVX2 give the same bits on one machine, and a result never
// depends on how a caller splits rows or columns among threads. kc comes from the L1 size (so two
// machines with different L1 caches may differ in the last bits); the portable path has no FMA.
//
// Few rows: a call whose whole product has m <= 4 rows and k <= 4096, with B not packed ahead,
// skips packing and sums each row straight from A and B (the LSTM and attention steps' tiny
// products): with B [k, n] in the packed path's order (same bits); with B stored [n, k] as vector
// dot products, whose order is the path's own (the one exception to "AVX-512 and AVX2 give the
// same bits", and there packed and unpacked B differ in the last bits).
//
// Threads: a call computes the C block [r0, r1) x [c0, c1) only, with the caller's scratch; the
// runtime splits a GEMM over its pool by rows or by columns (c0 a multiple of NR when B is packed
// ahead). Kernels never fail: shapes are validated in Swift before a call.
#ifndef MQAN_GEMM_H
#define MQAN_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  MQ_GEMM_PORTABLE = 0,
  MQ_GEMM_AVX2 = 1,
  MQ_GEMM_AVX512 = 2,
  MQ_GEMM_PATHS = 3,
};

// Epilogue activations (applied after bias and residual).
enum { MQ_ACT_NONE = 0, MQ_ACT_RELU = 1, MQ_ACT_TANH = 2, MQ_ACT_SIGMOID = 3 };

// The best path this CPU and OS run (cpuid + xgetbv); computed once.
int mq_gemm_best_path(void);
// 1 when this CPU and OS can run `path`.
int mq_gemm_path_supported(int path);
// "mqan-avx512", "mqan-avx2", "mqan-portable"; "?" for an unknown path.
const char *mq_gemm_path_name(int path);
// The microkernel's tile: rows (broadcasts) and columns (vector lanes).
int mq_gemm_mr(int path);
int mq_gemm_nr(int path);

// Cache sizes in bytes as the CPU reports them (cpuid leaf 4 / 0x8000001D; sysconf fallback;
// 32 KiB / 1 MiB / 8 MiB when nothing answers). Computed once.
typedef struct {
  int64_t l1d, l2, l3;
} mq_cache_sizes;
mq_cache_sizes mq_gemm_cache_sizes(void);

// Blocking for one path: kc (depth of a packed block), nb (columns of B held in L2), mb (rows of
// A packed per block), all derived from the cache sizes.
typedef struct {
  int path, mr, nr;
  int64_t kc, nb, mb;
} mq_gemm_config;
mq_gemm_config mq_gemm_config_for(int path);
// kc actually used for depth k: k split into ceil(k / cfg.kc) equal blocks.
int64_t mq_gemm_kc(const mq_gemm_config *cfg, int64_t k);

// Floats of per-thread scratch one call with these dims needs (packed A and B blocks).
size_t mq_gemm_scratch_floats(const mq_gemm_config *cfg, int64_t m, int64_t n, int64_t k);

// B packed ahead (weights constant over many calls): ceil(n / NR) panels of [k][NR] floats,
// columns past n zero. mq_gemm_pack_b packs panels [p0, p1) (so threads can share the work).
size_t mq_gemm_packed_b_floats(const mq_gemm_config *cfg, int64_t n, int64_t k);
void mq_gemm_pack_b(const mq_gemm_config *cfg, int trans_b, int64_t n, int64_t k, const float *b,
                    int64_t ldb, float *packed, int64_t p0, int64_t p1);

typedef struct {
  const float *bias;     // [n], added to every row, or NULL
  const float *residual; // [m, ldr], added after the bias, or NULL
  int64_t ldr;
  int act;               // MQ_ACT_*
} mq_gemm_epilogue;

// C[r0:r1, c0:c1] = alpha * op(A) op(B) + beta * C, then the epilogue (ep may be NULL). beta is 0
// (C is only written) or any other value (C read first). packed_b, when not NULL, is B packed
// ahead with mq_gemm_pack_b for this cfg (then b and ldb are not read, and c0 % NR == 0).
// scratch holds mq_gemm_scratch_floats(cfg, r1 - r0, c1 - c0, k) floats, 64-byte aligned.
void mq_gemm(const mq_gemm_config *cfg, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
             const float *packed_b, float beta, float *c, int64_t ldc, const mq_gemm_epilogue *ep,
             int64_t r0, int64_t r1, int64_t c0, int64_t c1, float *scratch);

// The oracle: one dot product per output in k order, then alpha, beta and the epilogue in the
// same order as mq_gemm (the activations are mq_relu/mq_tanh/mq_sigmoid's reference functions).
void mq_gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc, const mq_gemm_epilogue *ep, int64_t r0, int64_t r1, int64_t c0,
                 int64_t c1);

// The calling thread's GEMM backend for the kernels that call a GEMM inside themselves
// (attention): MQ_BACKEND_MQAN (the best path, or the one set here) or MQ_BACKEND_OPENBLAS
// (cblas_sgemm). Thread-local: the runtime sets it on each pool thread at the start of a run, from
// the plan, so two executors with different backends never disturb each other.
enum { MQ_BACKEND_MQAN = 0, MQ_BACKEND_OPENBLAS = 1 };
void mq_gemm_set_backend(int backend, int path);
int mq_gemm_backend(void);
int mq_gemm_backend_path(void);

// A whole single-threaded GEMM through the thread's backend (no epilogue): what the attention
// kernels call, with the thread's scratch.
void mq_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

// The calling thread's scratch of at least `floats` floats (64-byte aligned), grown on demand
// and freed when the thread exits; NULL when memory runs out. One buffer per slot: the GEMM's
// calls (and the reduced-precision linears' converted activations) share MQ_SCRATCH_GEMM;
// MQ_SCRATCH_QLINEAR is mq_qlinear's own, used while the other holds its activations.
enum { MQ_SCRATCH_GEMM = 0, MQ_SCRATCH_QLINEAR = 1, MQ_SCRATCH_SLOTS = 2 };
float *mq_thread_scratch(int slot, size_t floats);
float *mq_gemm_thread_scratch(size_t floats);

// OpenBLAS's core name (openblas_get_corename), e.g. "Haswell", "Prescott".
const char *mq_openblas_core(void);

#ifdef __cplusplus
}
#endif
#endif
