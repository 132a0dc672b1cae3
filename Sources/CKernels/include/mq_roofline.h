// Roofline calibration (roofline.c): the machine's single-precision FMA peak for one GEMM path and
// its streaming read bandwidth from L2, the last-level cache and memory, measured on every thread
// of a pool at once. The kernels only count; the Swift side (Runtime's Roofline) times them.
//
// Legend: path = MQ_GEMM_* (mq_gemm.h); a path this CPU cannot run falls back to the best one it
// can (mq_gemm_best_path). FLOPs count 2 per lane per FMA (portable path: per mul + add pair).
#ifndef MQAN_ROOFLINE_H
#define MQAN_ROOFLINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Independent FMA chains the peak loop keeps in flight (vector registers of accumulators):
// 24 zmm (AVX-512), 12 ymm (AVX2), 12 xmm (portable), enough to hide the FMA latency on every
// core that has 1 or 2 FMA pipes.
int mq_roofline_chains(int path);

// The peak loop: `iters` rounds of one FMA on each of mq_roofline_chains(path) accumulators;
// returns the FLOPs done. The accumulators converge to a finite value (no overflow, no
// denormals) and are summed into *sink so the loop is not optimized away.
double mq_roofline_fma(int path, int64_t iters, float *sink);

// The sum of x[0, n) with the path's widest vector loads and several accumulators (x 64-byte
// aligned; any n). The returned sum keeps the loads from being optimized away.
float mq_roofline_read(int path, const float *x, int64_t n);

// One calibration on every thread of a pool (mq_pool_run(pool, task, &ctx)): thread ith runs
// mq_roofline_fma(path, iters) (fma task) or reads its own buffer bufs[ith] of `floats` floats
// `passes` times (read task), or writes 1.0f over its buffer (fill task: first touch, so every
// page is backed and owned by the thread's node before a read is timed). Results: flops[ith]
// (FLOPs, or bytes read) and sink[ith]; both arrays hold nth entries.
typedef struct {
  int path;
  int64_t iters;
  float *const *bufs;
  int64_t floats;
  int64_t passes;
  double *flops;
  float *sink;
} mq_roofline_task;
void mq_roofline_fma_task(void *ctx, int ith, int nth);
void mq_roofline_read_task(void *ctx, int ith, int nth);
void mq_roofline_fill_task(void *ctx, int ith, int nth);

#ifdef __cplusplus
}
#endif
#endif
