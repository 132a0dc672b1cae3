// Top-k selection for beam search.
//
// Legend: x [n] scores, values [k] / indices [k] the k best, best first. The order is total:
// a larger value ranks first; equal values rank by lower index; NaN ranks below every number
// (NaNs among themselves by index). k is clamped to [0, n]; only that many outputs are written.
//
// mq_topk keeps a size-k min-heap (root = the worst kept element) in the output arrays, scans x
// once (O(n log k), one compare per element in the common case), then heap-sorts the k kept
// elements in place. mq_topk_ref sorts all n (index, value) pairs and copies the first k.
#pragma STDC FP_CONTRACT OFF
#include <stdlib.h>
#include "ckernels.h"
#include "mq_math.h"

// 1 when (va, ia) ranks before (vb, ib).
MQ_INLINE int mq_topk_before(float va, int64_t ia, float vb, int64_t ib) {
  const int na = va != va, nb = vb != vb;
  if (na != nb) return nb;
  if (!na && va != vb) return va > vb;
  return ia < ib;
}

// Restores the min-heap (root ranks last) below position i of a heap of size m.
MQ_INLINE void mq_topk_sift_down(float *v, int32_t *ix, int64_t m, int64_t i) {
  const float cv = v[i];
  const int32_t ci = ix[i];
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= m) break;
    // Pick the child that ranks last (the "smaller" one).
    if (c + 1 < m && mq_topk_before(v[c], ix[c], v[c + 1], ix[c + 1])) c++;
    if (!mq_topk_before(cv, ci, v[c], ix[c])) break;
    v[i] = v[c];
    ix[i] = ix[c];
    i = c;
  }
  v[i] = cv;
  ix[i] = ci;
}

// Heap sort of a min-heap of size m (root = the worst): moving the root to the end each time
// leaves the arrays best first.
MQ_INLINE void mq_topk_heap_sort(float *v, int32_t *ix, int64_t m) {
  for (int64_t s = m - 1; s > 0; s--) {
    const float tv = v[0];
    const int32_t ti = ix[0];
    v[0] = v[s];
    ix[0] = ix[s];
    v[s] = tv;
    ix[s] = ti;
    mq_topk_sift_down(v, ix, s, 0);
  }
}

MQ_HOT void mq_topk(const float *x, int64_t n, int64_t k, float *values, int32_t *indices) {
  if (k > n) k = n;
  if (k <= 0) return;
  for (int64_t i = 0; i < k; i++) {
    values[i] = x[i];
    indices[i] = (int32_t)i;
  }
  for (int64_t i = k / 2 - 1; i >= 0; i--) mq_topk_sift_down(values, indices, k, i);
  // Later elements have larger indices, so they lose ties: only a strictly larger value (or any
  // number against a NaN root) replaces the root.
  float thr = values[0];
  for (int64_t i = k; i < n; i++) {
    const float xi = x[i];
    if (xi > thr || (thr != thr && xi == xi)) {
      values[0] = xi;
      indices[0] = (int32_t)i;
      mq_topk_sift_down(values, indices, k, 0);
      thr = values[0];
    }
  }
  mq_topk_heap_sort(values, indices, k);
}

typedef struct {
  float v;
  int64_t i;
} mq_topk_pair;

static int mq_topk_cmp(const void *a, const void *b) {
  const mq_topk_pair *p = a, *q = b;
  if (mq_topk_before(p->v, p->i, q->v, q->i)) return -1;
  if (mq_topk_before(q->v, q->i, p->v, p->i)) return 1;
  return 0;
}

void mq_topk_ref(const float *x, int64_t n, int64_t k, float *values, int32_t *indices) {
  if (k > n) k = n;
  if (k <= 0) return;
  mq_topk_pair *p = malloc((size_t)n * sizeof *p);
  if (!p) return;
  for (int64_t i = 0; i < n; i++) p[i] = (mq_topk_pair){x[i], i};
  qsort(p, (size_t)n, sizeof *p, mq_topk_cmp);
  for (int64_t i = 0; i < k; i++) {
    values[i] = p[i].v;
    indices[i] = (int32_t)p[i].i;
  }
  free(p);
}

// ---------------------------------------------------------------------------------------------
// Decoding's output layer in one pass per row: softmax over the logits, the pointer-generator
// mixture and the k best of the extended vocabulary, without writing the [rows, X] mixture.
//
// Legend: logits [rows, V], gamma / lambda [rows], ac [rows, Lc], cids [B, Lc], aq [rows, Lq],
// qids [B, Lq] (row r belongs to item r / T); values / indices [rows, k]. Per row, the values are
// bit for bit what mq_masked_softmax (no mask, scale 1, eps 0) + mq_pointer_mixture + mq_topk
// give: the same exp, max and sum (mq_sum16 over the exps, kept in the scratch row), the same
// products, and each copied id's additions in the same order. Words no pointer touches rank by
// gamma * p, words the pointers touch by their full value, untouched OOV slots at 1e-10.
//
// scratch (per thread, floats): V (the exps) + ceil(V / 32) (a bitmap of touched words) +
// 2 * (Lc + Lq) (touched ids and values); it must hold mq_mixture_topk_scratch(V, Lc, Lq) floats.

int64_t mq_mixture_topk_scratch(int64_t V, int64_t Lc, int64_t Lq) { return V + (V + 31) / 32 + 2 * (Lc + Lq); }

// Offers (v, i) to the size-m min-heap of the k best (root = the worst kept); `size` grows to k.
MQ_INLINE void mq_heap_offer(float *hv, int32_t *hi, int64_t *size, int64_t k, float v, int32_t i) {
  if (*size < k) {
    // Sift up: parents rank after their children.
    int64_t c = (*size)++;
    while (c > 0) {
      const int64_t p = (c - 1) / 2;
      if (!mq_topk_before(hv[p], hi[p], v, i)) break;
      hv[c] = hv[p];
      hi[c] = hi[p];
      c = p;
    }
    hv[c] = v;
    hi[c] = i;
    return;
  }
  if (!mq_topk_before(v, i, hv[0], hi[0])) return;
  hv[0] = v;
  hi[0] = i;
  mq_topk_sift_down(hv, hi, k, 0);
}

// Columns [j0, j1) of a row's exps, less the row's max m.
MQ_INLINE void mq_mix_exps(const float *l, float m, int64_t j0, int64_t j1, float *e) {
#pragma omp simd
  for (int64_t j = j0; j < j1; j++) e[j] = mq_expf(l[j] - m);
}

// Row r's softmax: its exps into e and their sum, as mq_masked_softmax computes them (x * 1 is x).
MQ_INLINE float mq_mix_softmax(const float *l, int64_t N, float *e) {
  mq_mix_exps(l, mq_max16(l, N), 0, N, e);
  return mq_sum16(e, N);
}

// The words' mixture values gamma * p, in place (vectorized, in cache).
MQ_INLINE void mq_mix_scale(float *e, int64_t j0, int64_t j1, float g, float sum) {
#pragma omp simd
  for (int64_t j = j0; j < j1; j++) e[j] = g * (e[j] / sum + 0.0f);
}

// Row r from its words' mixture values e (g * p): the copied ids' values, then the k best.
// `touched` is all zero on entry and on return.
MQ_INLINE void mq_mix_select(float *values, int32_t *indices, const int32_t *ids, const int32_t *slot, int64_t N,
                             const float *gamma, const float *lambda, const float *ac, const int32_t *cids,
                             const float *aq, const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc,
                             int64_t Lq, int64_t k, int take_log, const float *e, uint32_t *touched, int32_t *tid,
                             float *tval, int64_t r) {
  const int64_t b = r / T;
  const float g = gamma[r];
  const float cc = lambda[r] * (1.0f - g);
  const float cq = (1.0f - lambda[r]) * (1.0f - g);
  // The copied ids, their mixture values built in mq_pointer_mixture's order (a word outside
  // the shortlist starts from 0, an OOV slot from 1e-10).
  int64_t nt = 0;
  for (int64_t s = 0; s < Lc + Lq; s++) {
    const int32_t id = s < Lc ? cids[b * Lc + s] : qids[b * Lq + (s - Lc)];
    const float add = s < Lc ? cc * ac[r * Lc + s] : cq * aq[r * Lq + (s - Lc)];
    int64_t t = 0;
    while (t < nt && tid[t] != id) t++;
    if (t == nt) {
      const int32_t col = id < V ? (slot ? slot[id] : id) : -1;
      tid[nt] = id;
      tval[nt] = col >= 0 ? e[col] : id < V ? 0.0f : 1e-10f;
      if (col >= 0) touched[col >> 5] |= 1u << (col & 31);
      nt++;
    }
    tval[t] += add;
  }
  // Words in column order (ascending ids): once the heap is full, only a strictly larger value
  // (or a number against a NaN root) can enter, as in mq_topk.
  float *hv = values + r * k;
  int32_t *hi = indices + r * k;
  int64_t size = 0;
  float thr = 0;
  int64_t j = 0;
  for (; j < N; j++) {
    // Once the heap is full and its threshold a number, skip blocks of 16 with nothing larger.
    if (size == k && thr == thr && (j & 15) == 0 && j + 16 <= N) {
      int any = 0;
#pragma omp simd reduction(| : any)
      for (int q = 0; q < 16; q++) any |= e[j + q] > thr;
      if (!any) {
        j += 15;
        continue;
      }
    }
    const float v = e[j];
    if (size == k && !(v > thr || (thr != thr && v == v))) continue;
    if (touched[j >> 5] >> (j & 31) & 1u) continue;
    mq_heap_offer(hv, hi, &size, k, v, ids ? ids[j] : (int32_t)j);
    if (size == k) thr = hv[0];
  }
  for (int64_t t = 0; t < nt; t++) mq_heap_offer(hv, hi, &size, k, tval[t], tid[t]);
  // Untouched OOV slots hold 1e-10; the lowest k of them are the only ones that can rank.
  int64_t offered = 0;
  for (int64_t j = V; j < X && offered < k; j++) {
    int untouched = 1;
    for (int64_t t = 0; t < nt; t++) if (tid[t] == j) { untouched = 0; break; }
    if (!untouched) continue;
    mq_heap_offer(hv, hi, &size, k, 1e-10f, (int32_t)j);
    offered++;
  }
  for (int64_t t = 0; t < nt; t++) {
    const int32_t col = tid[t] < V ? (slot ? slot[tid[t]] : tid[t]) : -1;
    if (col >= 0) touched[col >> 5] = 0;
  }
  // Best first, then the log when asked; slots past X hold -inf and index 0.
  mq_topk_heap_sort(hv, hi, size);
  if (take_log)
    for (int64_t s = 0; s < size; s++) hv[s] = logf(hv[s]);
  for (int64_t s = size; s < k; s++) {
    hv[s] = -INFINITY;
    hi[s] = 0;
  }
}

// The scratch past its first N floats (the exps row): the touched bitmap (all zero here), the
// copied ids and their values and, for a shortlist, the word -> column map (`slot`, built here;
// NULL without one): the layout the _scratch functions size.
typedef struct {
  uint32_t *touched;
  int32_t *tid;
  float *tval;
  int32_t *slot;
} mq_mix_work;

MQ_INLINE mq_mix_work mq_mix_work_at(float *scratch, const int32_t *ids, int64_t N, int64_t V, int64_t Lc, int64_t Lq) {
  mq_mix_work w;
  w.touched = (uint32_t *)(scratch + N);
  w.tid = (int32_t *)(scratch + N + (N + 31) / 32);
  w.tval = scratch + N + (N + 31) / 32 + (Lc + Lq);
  w.slot = NULL;
  if (ids) {
    w.slot = (int32_t *)(w.tval + (Lc + Lq));
    for (int64_t j = 0; j < V; j++) w.slot[j] = -1;
    for (int64_t s = 0; s < N; s++) w.slot[ids[s]] = (int32_t)s;
  }
  memset(w.touched, 0, (size_t)((N + 31) / 32) * sizeof(uint32_t));
  return w;
}

// Both entry points: `ids` NULL (the logits' N = V columns are the words 0 ..< V) or a shortlist
// (column s is word ids[s]); the exps row is the scratch's first N floats.
MQ_INLINE void mq_mixture_topk_rows(float *values, int32_t *indices, const float *logits, const int32_t *ids, int64_t N,
                                    const float *gamma, const float *lambda, const float *ac, const int32_t *cids,
                                    const float *aq, const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc,
                                    int64_t Lq, int64_t k, int take_log, float *scratch, int64_t r0, int64_t r1) {
  const mq_mix_work w = mq_mix_work_at(scratch, ids, N, V, Lc, Lq);
  for (int64_t r = r0; r < r1; r++) {
    const float sum = mq_mix_softmax(logits + r * N, N, scratch);
    mq_mix_scale(scratch, 0, N, gamma[r], sum);
    mq_mix_select(values, indices, ids, w.slot, N, gamma, lambda, ac, cids, aq, qids, T, V, X, Lc, Lq, k, take_log,
                  scratch, w.touched, w.tid, w.tval, r);
  }
}

MQ_HOT void mq_mixture_topk(float *values, int32_t *indices, const float *logits, const float *gamma,
                            const float *lambda, const float *ac, const int32_t *cids, const float *aq,
                            const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq,
                            int64_t k, int take_log, float *scratch, int64_t r0, int64_t r1) {
  mq_mixture_topk_rows(values, indices, logits, NULL, V, gamma, lambda, ac, cids, aq, qids, T, V, X, Lc, Lq, k,
                       take_log, scratch, r0, r1);
}

int64_t mq_mixture_topk_shortlist_scratch(int64_t V, int64_t N, int64_t Lc, int64_t Lq) {
  return N + (N + 31) / 32 + 2 * (Lc + Lq) + V;
}

MQ_HOT void mq_mixture_topk_shortlist(float *values, int32_t *indices, const float *logits, const int32_t *ids,
                                      int64_t N, const float *gamma, const float *lambda, const float *ac,
                                      const int32_t *cids, const float *aq, const int32_t *qids, int64_t T, int64_t V,
                                      int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch,
                                      int64_t r0, int64_t r1) {
  mq_mixture_topk_rows(values, indices, logits, ids, N, gamma, lambda, ac, cids, aq, qids, T, V, X, Lc, Lq, k,
                       take_log, scratch, r0, r1);
}

MQ_HOT void mq_mixture_topk_team(int ith, int nth, mq_barrier *barrier, float *shared, float *values, int32_t *indices,
                                 const float *logits, const int32_t *ids, int64_t N, const float *gamma, const float *lambda,
                                 const float *ac, const int32_t *cids, const float *aq, const int32_t *qids, int64_t T,
                                 int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch,
                                 int64_t r) {
  float *e = shared, *part = shared + N;
  const float *l = logits + r * N;
  // This thread's columns, in blocks of 16 (no two threads write a cache line of e).
  const int64_t per = ((N + 15) / 16 + nth - 1) / nth * 16;
  const int64_t c0 = per * ith < N ? per * ith : N, c1 = c0 + per < N ? c0 + per : N;
  part[ith] = mq_max16(l + c0, c1 - c0);
  mq_barrier_wait(barrier);
  // The max of the parts is the row's max (NaNs skipped in both).
  float m = part[0];
  for (int t = 1; t < nth; t++) m = part[t] > m ? part[t] : m;
  mq_mix_exps(l, m, c0, c1, e);
  mq_barrier_wait(barrier);
  // The sum in mq_sum16's one order, as the one-thread kernel adds.
  if (ith == 0) part[nth] = mq_sum16(e, N);
  mq_barrier_wait(barrier);
  mq_mix_scale(e, c0, c1, gamma[r], part[nth]);
  mq_barrier_wait(barrier);
  if (ith != 0) return;
  const mq_mix_work w = mq_mix_work_at(scratch, ids, N, V, Lc, Lq);
  mq_mix_select(values, indices, ids, w.slot, N, gamma, lambda, ac, cids, aq, qids, T, V, X, Lc, Lq, k, take_log, e,
                w.touched, w.tid, w.tval, r);
}

// The reference twins' last step for one row of the mixture (X values): its k best by mq_topk_ref
// (their logs when take_log), slots past X filled with -inf and id 0.
static void mq_topk_row_ref(const float *mix, int64_t X, int64_t k, int take_log, float *values, int32_t *indices) {
  const int64_t m = k < X ? k : X;
  mq_topk_ref(mix, X, m, values, indices);
  for (int64_t s = 0; s < m; s++)
    if (take_log) values[s] = logf(values[s]);
  for (int64_t s = m; s < k; s++) {
    values[s] = -INFINITY;
    indices[s] = 0;
  }
}

// The same from the reference kernels: the softmax, the mixture into the scratch row (X floats),
// then mq_topk_ref. scratch must hold V + X floats.
void mq_mixture_topk_ref(float *values, int32_t *indices, const float *logits, const float *gamma,
                         const float *lambda, const float *ac, const int32_t *cids, const float *aq,
                         const int32_t *qids, int64_t T, int64_t V, int64_t X, int64_t Lc, int64_t Lq, int64_t k,
                         int take_log, float *scratch, int64_t r0, int64_t r1) {
  float *p = scratch, *mix = scratch + V;
  for (int64_t r = r0; r < r1; r++) {
    mq_masked_softmax_ref(p, logits + r * V, NULL, 1, V, 1.0f, -1e10f, 0.0f, 0, 0, 0, 1);
    // One row of the mixture: a row index of 0 with T = 1 and this row's item's ids.
    const int64_t b = r / T;
    mq_pointer_mixture_ref(mix, p, gamma + r, lambda + r, ac + r * Lc, cids + b * Lc, aq + r * Lq, qids + b * Lq, 1,
                           V, X, Lc, Lq, 0, 1);
    mq_topk_row_ref(mix, X, k, take_log, values + r * k, indices + r * k);
  }
}

// The shortlisted output layer from the reference kernels: the softmax over the N logits placed
// at their words (0 elsewhere), the mixture, then mq_topk_ref over the words of the shortlist,
// the copied ids and the OOV slots (every other word -inf). scratch: 2 V + X + N floats.
void mq_mixture_topk_shortlist_ref(float *values, int32_t *indices, const float *logits, const int32_t *ids,
                                   int64_t N, const float *gamma, const float *lambda, const float *ac,
                                   const int32_t *cids, const float *aq, const int32_t *qids, int64_t T, int64_t V,
                                   int64_t X, int64_t Lc, int64_t Lq, int64_t k, int take_log, float *scratch,
                                   int64_t r0, int64_t r1) {
  float *p = scratch, *mix = scratch + V, *q = scratch + V + X, *keep = scratch + V + X + N;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t b = r / T;
    mq_masked_softmax_ref(q, logits + r * N, NULL, 1, N, 1.0f, -1e10f, 0.0f, 0, 0, 0, 1);
    for (int64_t j = 0; j < V; j++) p[j] = 0.0f, keep[j] = 0.0f;
    for (int64_t s = 0; s < N; s++) p[ids[s]] = q[s], keep[ids[s]] = 1.0f;
    for (int64_t s = 0; s < Lc; s++) if (cids[b * Lc + s] < V) keep[cids[b * Lc + s]] = 1.0f;
    for (int64_t s = 0; s < Lq; s++) if (qids[b * Lq + s] < V) keep[qids[b * Lq + s]] = 1.0f;
    mq_pointer_mixture_ref(mix, p, gamma + r, lambda + r, ac + r * Lc, cids + b * Lc, aq + r * Lq, qids + b * Lq, 1,
                           V, X, Lc, Lq, 0, 1);
    for (int64_t j = 0; j < V; j++) if (keep[j] == 0.0f) mix[j] = -INFINITY;
    mq_topk_row_ref(mix, X, k, take_log, values + r * k, indices + r * k);
  }
}
