// Top-k selection for beam search.
//
// Legend: x [n] scores, values [k] / indices [k] the k best, best first. The order is total:
// a larger value ranks first; equal values rank by lower index; NaN ranks below every number
// (NaNs among themselves by index). k is clamped to [0, n]; only that many outputs are written.
//
// mq_topk keeps a size-k min-heap (root = the worst kept element) in the output arrays, scans x
// once (O(n log k), one compare per element in the common case), then heap-sorts the k kept
// elements in place. mq_topk_ref sorts all n (index, value) pairs and copies the first k.
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
  // Heap sort: moving the root (the worst) to the end leaves the array best first.
  for (int64_t m = k - 1; m > 0; m--) {
    const float tv = values[0];
    const int32_t ti = indices[0];
    values[0] = values[m];
    indices[0] = indices[m];
    values[m] = tv;
    indices[m] = ti;
    mq_topk_sift_down(values, indices, m, 0);
  }
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
