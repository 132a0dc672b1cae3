// Declarations of pool.c (the conventions are in ckernels.h, the umbrella header).
#ifndef MQAN_POOL_H
#define MQAN_POOL_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Thread pool: n threads in all (the caller is thread 0). mq_pool_run runs fn(ctx, i, n) on
// every thread and returns when all have returned. Idle workers spin briefly, then sleep.
// nthreads < 1 counts as 1; NULL only when memory runs out; if a worker thread cannot be started
// the pool is smaller (mq_pool_size says how big). One mq_pool_run at a time per pool.
typedef struct mq_pool mq_pool;
typedef void (*mq_task_fn)(void *ctx, int ith, int nth);
mq_pool *mq_pool_create(int nthreads);
void mq_pool_destroy(mq_pool *pool);
int mq_pool_size(const mq_pool *pool);
void mq_pool_run(mq_pool *pool, mq_task_fn fn, void *ctx);

// A reusable barrier for a team of n threads inside one mq_pool_run task (sense-reversing: the
// last arrival bumps `generation`; the others spin on it, then yield). count and generation are
// touched only through atomic builtins. Explicit padding keeps them on separate cache lines:
// Swift cannot import a struct with over-aligned (_Alignas) fields, so none are used here; the
// size is 192 (three lines), so an array of them from a 64-aligned base keeps every line apart.
typedef struct {
  int count;
  char pad0_[60];
  int generation;
  char pad1_[60];
  int n;
  char pad2_[60];
} mq_barrier;
void mq_barrier_init(mq_barrier *b, int n);
void mq_barrier_wait(mq_barrier *b);

// Pins OpenBLAS to one thread: our pool is the only threading system.
void mq_blas_single_thread(void);

// 1 when the CPU has AVX-512F, 2 when only AVX2, 0 otherwise (what target_clones will pick).
int mq_cpu_level(void);

#ifdef __cplusplus
}
#endif
#endif
