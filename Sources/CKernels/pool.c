// Thread pool, team barrier, OpenBLAS pinning and CPU level.
//
// Legend: n = threads in the pool (the caller is thread 0, workers are 1..n-1), ith = a thread's
// index, gen = the run counter that publishes a task to the workers.
//
// One run: the caller stores fn/ctx, sets pending = n - 1 and bumps gen (release); each worker
// sees the new gen (acquire), runs fn(ctx, ith, n), and decrements pending (release); the caller
// runs its own share, then waits for pending == 0 (acquire). Waiting is a spin with a pause
// instruction for ~75 us (after the first ~2 us it also yields the core now and then, which
// matters only when threads outnumber cores), then a sleep on a condition variable, so a burst
// of tiny runs stays in user space and an idle pool costs no CPU. The sleep handshakes are
// Dekker-style: the sleeper announces itself (seq_cst) and rechecks under the mutex; the waker
// publishes (seq_cst) and only then checks for sleepers, taking the mutex before it broadcasts.
#define _GNU_SOURCE
#include "ckernels.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MQ_SPIN_NS 75000 // how long a waiting thread spins before it sleeps

static inline void mq_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline int64_t mq_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct {
  mq_pool *pool;
  int ith;
} mq_worker_arg;

struct mq_pool {
  int n;
  pthread_t *threads;
  mq_worker_arg *args;
  mq_task_fn fn; // written by the caller before it bumps gen, read by workers after they see it
  void *ctx;
  _Alignas(64) atomic_uint gen;
  _Alignas(64) atomic_int pending;  // workers that have not finished the current run
  _Alignas(64) atomic_int sleepers; // workers asleep (or about to be) on work_cv
  atomic_int caller_sleeping;       // the caller is asleep (or about to be) on done_cv
  atomic_int stop;
  pthread_mutex_t mu;
  pthread_cond_t work_cv;
  pthread_cond_t done_cv;
};

// One step of a bounded spin: a pause; every 32 steps a clock check. Returns 1 once the budget
// is spent. After the first check the spinner also yields every 32 steps, so on an oversubscribed
// machine the thread it waits for gets the core (a yield with nothing else to run is ~0.2 us).
static int mq_spin_step(int i, int64_t *deadline) {
  mq_cpu_relax();
  if ((i & 31) != 31) return 0;
  int64_t now = mq_now_ns();
  if (*deadline == 0) {
    *deadline = now + MQ_SPIN_NS;
    return 0;
  }
  if (now > *deadline) return 1;
  sched_yield();
  return 0;
}

// Spins until gen != seen or the spin budget runs out; returns the last gen read.
static unsigned mq_spin_for_gen(mq_pool *pool, unsigned seen) {
  int64_t deadline = 0;
  for (int i = 0;; i++) {
    unsigned g = atomic_load_explicit(&pool->gen, memory_order_acquire);
    if (g != seen || mq_spin_step(i, &deadline)) return g;
  }
}

static void *mq_worker_main(void *p) {
  mq_worker_arg *arg = p;
  mq_pool *pool = arg->pool;
  unsigned seen = 0; // gen starts at 0 and the pool is created before any run
  for (;;) {
    unsigned g = mq_spin_for_gen(pool, seen);
    if (g == seen) {
      pthread_mutex_lock(&pool->mu);
      atomic_fetch_add_explicit(&pool->sleepers, 1, memory_order_seq_cst);
      while ((g = atomic_load_explicit(&pool->gen, memory_order_seq_cst)) == seen)
        pthread_cond_wait(&pool->work_cv, &pool->mu);
      atomic_fetch_sub_explicit(&pool->sleepers, 1, memory_order_relaxed);
      pthread_mutex_unlock(&pool->mu);
    }
    seen = g;
    if (atomic_load_explicit(&pool->stop, memory_order_acquire)) break;
    pool->fn(pool->ctx, arg->ith, pool->n);
    if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&pool->caller_sleeping, memory_order_seq_cst)) {
      pthread_mutex_lock(&pool->mu);
      pthread_cond_broadcast(&pool->done_cv);
      pthread_mutex_unlock(&pool->mu);
    }
  }
  return NULL;
}

// Publishes a new gen to the workers and wakes any that sleep.
static void mq_publish(mq_pool *pool) {
  atomic_fetch_add_explicit(&pool->gen, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&pool->sleepers, memory_order_seq_cst) > 0) {
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->mu);
  }
}

mq_pool *mq_pool_create(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  mq_pool *pool = aligned_alloc(64, (sizeof(mq_pool) + 63) / 64 * 64);
  if (!pool) return NULL;
  memset(pool, 0, sizeof *pool);
  pool->n = 1;
  atomic_init(&pool->gen, 0);
  atomic_init(&pool->pending, 0);
  atomic_init(&pool->sleepers, 0);
  atomic_init(&pool->caller_sleeping, 0);
  atomic_init(&pool->stop, 0);
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->work_cv, NULL);
  pthread_cond_init(&pool->done_cv, NULL);
  pool->threads = calloc((size_t)nthreads, sizeof(pthread_t));
  pool->args = calloc((size_t)nthreads, sizeof(mq_worker_arg));
  if (!pool->threads || !pool->args) {
    mq_pool_destroy(pool);
    return NULL;
  }
  // n grows only as workers start, so a failed pthread_create leaves a smaller working pool.
  for (int i = 1; i < nthreads; i++) {
    pool->args[i] = (mq_worker_arg){pool, i};
    if (pthread_create(&pool->threads[i], NULL, mq_worker_main, &pool->args[i]) != 0) break;
    pool->n = i + 1;
  }
  return pool;
}

void mq_pool_destroy(mq_pool *pool) {
  if (!pool) return;
  if (pool->n > 1) {
    atomic_store_explicit(&pool->stop, 1, memory_order_release);
    mq_publish(pool);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
  }
  pthread_cond_destroy(&pool->done_cv);
  pthread_cond_destroy(&pool->work_cv);
  pthread_mutex_destroy(&pool->mu);
  free(pool->args);
  free(pool->threads);
  free(pool);
}

int mq_pool_size(const mq_pool *pool) { return pool ? pool->n : 1; }

// One caller at a time per pool (runs are not reentrant).
void mq_pool_run(mq_pool *pool, mq_task_fn fn, void *ctx) {
  if (!pool || pool->n == 1) {
    fn(ctx, 0, 1);
    return;
  }
  pool->fn = fn;
  pool->ctx = ctx;
  atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_relaxed);
  mq_publish(pool); // the seq_cst bump also releases fn, ctx and pending
  fn(ctx, 0, pool->n);

  int64_t deadline = 0;
  for (int i = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) != 0; i++) {
    if (!mq_spin_step(i, &deadline)) continue;
    pthread_mutex_lock(&pool->mu);
    atomic_store_explicit(&pool->caller_sleeping, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&pool->pending, memory_order_seq_cst) != 0)
      pthread_cond_wait(&pool->done_cv, &pool->mu);
    atomic_store_explicit(&pool->caller_sleeping, 0, memory_order_relaxed);
    pthread_mutex_unlock(&pool->mu);
    break;
  }
}

// ---------------------------------------------------------------------------------------------
// Barrier: count and generation are plain ints in the header (Swift imports the struct) and are
// only ever accessed through __atomic builtins here.
void mq_barrier_init(mq_barrier *b, int n) {
  __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&b->generation, 0, __ATOMIC_RELAXED);
  b->n = n;
}

void mq_barrier_wait(mq_barrier *b) {
  if (b->n <= 1) return;
  // Read the generation before arriving: the last arrival bumps it, which is what we wait for.
  int gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
  if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
    __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED); // ordered before the release below
    __atomic_store_n(&b->generation, gen + 1, __ATOMIC_RELEASE);
    return;
  }
  for (int i = 0; __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == gen; i++) {
    if (i < 1024) mq_cpu_relax(); // ~10-50 us of pure spinning, depending on the pause cost
    else sched_yield();           // then a late thread may be waiting for our core
  }
}

// ---------------------------------------------------------------------------------------------
void mq_blas_single_thread(void) { openblas_set_num_threads(1); }

int mq_cpu_level(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return 1;
  if (__builtin_cpu_supports("avx2")) return 2;
#endif
  return 0;
}
