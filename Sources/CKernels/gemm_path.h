// One GEMM path (no include guard on purpose): included by gemm.c once per instruction set, with these defined:
//   P(name)        the path's name for a function (mq_gemm_avx512_name)
//   MQ_TARGET      the function attribute that enables the instruction set
//   VEC, VL        the vector type and its lanes; NV vectors make a tile row (NR = NV * VL)
//   MR             the tile's rows
//   VLOAD(p) VLOADN(p, n) VSTORE(p, v) VSTOREN(p, v, n) VSET1(x) VZERO() VFMA(a, b, c)
//   VADD(a, b) VMUL(a, b) VRELU(v)   (N: the first n lanes only, n < VL; the rest read as 0)
//   SFMA(a, b, c)  scalar a * b + c (fused where the path has FMA)
// Everything here is static: gemm.c exports the dispatch.

#define NR (NV * VL)

// The microkernel: C tile [mr, nr_eff] (nr_eff <= nv * VL: a narrow edge tile computes only the
// vectors it writes) of rows ap (kc x MR packed, broadcast) times panel bp
// (kc x NR packed, vectors), with alpha, beta and the epilogue in the write-back. `load_c`: C is
// read (times beta, unless beta is 1) and the product added; otherwise C is only written.
// `ep`: the epilogue on the last k block (NULL before it); bias and res are already offset to this
// tile's first column / first element.
static inline __attribute__((always_inline)) MQ_TARGET void P(tile)(
    const int mr, const int nv, int64_t kc, const float *restrict ap, const float *restrict bp, float *c, int64_t ldc,
    int nr_eff, float alpha, int load_c, float beta, const mq_gemm_epilogue *ep, const float *bias,
    const float *res, int64_t ldr) {
  VEC acc[MR][NV];
#pragma clang loop unroll(full)
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++)
      if (v < nv) acc[i][v] = VZERO();
  }
  for (int64_t p = 0; p < kc; p++) {
    // B panels stream (from L2, or from memory when packed ahead and used by few rows).
    __builtin_prefetch(bp + (p + 16) * NR, 0, 3);
    VEC bv[NV];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++)
      if (v < nv) bv[v] = VLOAD(bp + p * NR + v * VL);
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) {
      if (i >= mr) break;
      VEC a = VSET1(ap[p * MR + i]);
#pragma clang loop unroll(full)
      for (int v = 0; v < NV; v++)
        if (v < nv) acc[i][v] = VFMA(a, bv[v], acc[i][v]);
    }
  }
  const VEC valpha = VSET1(alpha), vbeta = VSET1(beta);
#pragma clang loop unroll(full)
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float *ci = c + i * ldc;
    const float *ri = ep && res ? res + i * ldr : NULL;
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) {
      const int col = v * VL;
      if (col >= nr_eff) break;
      const int n = nr_eff - col; // lanes to write: VL or fewer
      VEC r = acc[i][v];
      if (alpha != 1.0f) r = VMUL(r, valpha);
      if (load_c) {
        VEC old = n >= VL ? VLOAD(ci + col) : VLOADN(ci + col, n);
        if (beta != 1.0f) old = VMUL(old, vbeta);
        r = VADD(old, r);
      }
      if (ep) {
        if (bias) r = VADD(r, n >= VL ? VLOAD(bias + col) : VLOADN(bias + col, n));
        if (ri) r = VADD(r, n >= VL ? VLOAD(ri + col) : VLOADN(ri + col, n));
        if (ep->act == MQ_ACT_RELU) r = VRELU(r);
      }
      if (n >= VL) VSTORE(ci + col, r);
      else VSTOREN(ci + col, r, n);
    }
    // tanh and sigmoid: the same vectorized functions as mq_tanh / mq_sigmoid, on the row just
    // stored (in L1), so fused and unfused give the same bits.
    if (ep && ep->act == MQ_ACT_TANH) {
#pragma omp simd
      for (int j = 0; j < nr_eff; j++) ci[j] = mq_tanhf(ci[j]);
    } else if (ep && ep->act == MQ_ACT_SIGMOID) {
#pragma omp simd
      for (int j = 0; j < nr_eff; j++) ci[j] = mq_sigmoidf(ci[j]);
    }
  }
}

// One microkernel call with the row count as a constant, so the tile's loops unroll.
static MQ_TARGET void P(tile_any)(int mr, int64_t kc, const float *ap, const float *bp, float *c,
                                  int64_t ldc, int nr_eff, float alpha, int load_c, float beta,
                                  const mq_gemm_epilogue *ep, const float *bias, const float *res,
                                  int64_t ldr) {
#define MQ_TILE_CASE(R)                                                                            \
  case R:                                                                                          \
    if (nr_eff <= VL) P(tile)(R, 1, kc, ap, bp, c, ldc, nr_eff, alpha, load_c, beta, ep, bias, res, ldr); \
    else P(tile)(R, NV, kc, ap, bp, c, ldc, nr_eff, alpha, load_c, beta, ep, bias, res, ldr);        \
    return;
  switch (mr) {
    MQ_TILE_CASE(1)
    MQ_TILE_CASE(2)
    MQ_TILE_CASE(3)
    MQ_TILE_CASE(4)
#if MR > 4
    MQ_TILE_CASE(5)
    MQ_TILE_CASE(6)
#endif
#if MR > 6
    MQ_TILE_CASE(7)
    MQ_TILE_CASE(8)
    MQ_TILE_CASE(9)
    MQ_TILE_CASE(10)
    MQ_TILE_CASE(11)
    MQ_TILE_CASE(12)
#endif
  default: return;
  }
#undef MQ_TILE_CASE
}

// Packs rows [i0, i0 + mc) x depth [p0, p0 + kc) of op(A) into micro-panels of MR rows:
// panel q holds element (p, ii) at q * kc * MR + p * MR + ii. Rows past mc are not read.
static MQ_TARGET void P(pack_a)(int trans_a, const float *a, int64_t lda, int64_t i0, int64_t mc,
                                int64_t p0, int64_t kc, float *dst) {
  if (trans_a) {
    // op(A)(i, p) = a[p * lda + i]: walk each row of a once (contiguous reads; a panel-by-panel
    // walk would touch kc rows, often kc pages, for every MR floats).
    for (int64_t p = 0; p < kc; p++) {
      const float *s = a + (p0 + p) * lda + i0;
      for (int64_t q = 0; q * MR < mc; q++) {
        float *d = dst + q * kc * MR + p * MR;
        const int64_t rows = mc - q * MR < MR ? mc - q * MR : MR;
        for (int64_t ii = 0; ii < rows; ii++) d[ii] = s[q * MR + ii];
      }
    }
    return;
  }
  for (int64_t q = 0; q * MR < mc; q++) { // op(A)(i, p) = a[i * lda + p]: a row per ii
    float *d = dst + q * kc * MR;
    const int64_t rows = mc - q * MR < MR ? mc - q * MR : MR;
    const int64_t row0 = i0 + q * MR;
    for (int64_t ii = 0; ii < rows; ii++) {
      const float *s = a + (row0 + ii) * lda + p0;
      for (int64_t p = 0; p < kc; p++) d[p * MR + ii] = s[p];
    }
  }
}

// Packs depth [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) into panels of NR columns (zero past
// nc): panel q holds element (p, jj) at q * stride + p * NR + jj.
static MQ_TARGET void P(pack_b)(int trans_b, const float *b, int64_t ldb, int64_t p0, int64_t kc,
                                int64_t j0, int64_t nc, float *dst, int64_t stride) {
  for (int64_t q = 0; q * NR < nc; q++) {
    float *d = dst + q * stride;
    const int64_t cols = nc - q * NR < NR ? nc - q * NR : NR;
    const int64_t col0 = j0 + q * NR;
    if (trans_b) { // op(B)(p, j) = b[j * ldb + p]: a row of b per column
      if (cols < NR)
        for (int64_t p = 0; p < kc; p++)
          for (int64_t jj = cols; jj < NR; jj++) d[p * NR + jj] = 0.0f;
      for (int64_t jj = 0; jj < cols; jj++) {
        const float *s = b + (col0 + jj) * ldb + p0;
        for (int64_t p = 0; p < kc; p++) d[p * NR + jj] = s[p];
      }
    } else { // op(B)(p, j) = b[p * ldb + j]: contiguous columns
      for (int64_t p = 0; p < kc; p++) {
        const float *s = b + (p0 + p) * ldb + col0;
        float *dp = d + p * NR;
        int64_t jj = 0;
        for (; jj < cols; jj++) dp[jj] = s[jj];
        for (; jj < NR; jj++) dp[jj] = 0.0f;
      }
    }
  }
}

// Few rows (m <= MQ_SMALL_M, B not packed ahead): no packing at all; each output row is summed
// straight from A and B, in chunks of 256 columns kept in a local row. B [k, n]: axpys in the
// microkernel's order (the same bits as the packed path). B stored [n, k]: vector dot products
// per column (their own order, which depends on the vector width). Chosen from the whole call's
// m, so a thread split never changes which path (and which summation order) an output gets.
static MQ_TARGET void P(small)(int trans_a, int trans_b, int64_t k, int64_t kcb, float alpha, const float *a,
                               int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                               int64_t ldc, const mq_gemm_epilogue *ep, int64_t r0, int64_t r1,
                               int64_t c0, int64_t c1) {
  float acc[256] __attribute__((aligned(64)));
  for (int64_t i = r0; i < r1; i++) {
    float *ci = c + i * ldc;
    for (int64_t j0 = c0; j0 < c1; j0 += 256) {
      const int64_t w = c1 - j0 < 256 ? c1 - j0 : 256;
      if (!trans_b) {
        // The microkernel's order, so packed and unpacked B give the same bits: FMAs in k order
        // within each kc block, each block times alpha added to the row (the first onto beta * C).
        float part[256] __attribute__((aligned(64)));
        for (int64_t pc = 0; pc < k; pc += kcb) {
          const int64_t kc = k - pc < kcb ? k - pc : kcb;
          for (int64_t j = 0; j < w; j++) part[j] = 0.0f;
          for (int64_t p = pc; p < pc + kc; p++) {
            const float av = trans_a ? a[p * lda + i] : a[i * lda + p];
            const float *bp = b + p * ldb + j0;
#pragma omp simd
            for (int64_t j = 0; j < w; j++) part[j] = SFMA(av, bp[j], part[j]);
          }
          for (int64_t j = 0; j < w; j++) {
            float v = alpha == 1.0f ? part[j] : part[j] * alpha;
            if (pc > 0) v = acc[j] + v;
            else if (beta != 0.0f) v = (beta == 1.0f ? ci[j0 + j] : ci[j0 + j] * beta) + v;
            acc[j] = v;
          }
        }
      } else {
        if (!trans_a) {
          // Four columns per pass over the A row; a last group of fewer repeats its last column,
          // so every column is summed by the same instructions wherever a block starts.
          const float *ai = a + i * lda;
          for (int64_t j = 0; j < w; j += 4) {
            const int64_t j1 = j + 1 < w ? j + 1 : w - 1, j2 = j + 2 < w ? j + 2 : w - 1,
                          j3 = j + 3 < w ? j + 3 : w - 1;
            const float *b0 = b + (j0 + j) * ldb, *b1 = b + (j0 + j1) * ldb, *b2 = b + (j0 + j2) * ldb,
                        *b3 = b + (j0 + j3) * ldb;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int64_t p = 0; p < k; p++) {
              s0 += ai[p] * b0[p];
              s1 += ai[p] * b1[p];
              s2 += ai[p] * b2[p];
              s3 += ai[p] * b3[p];
            }
            acc[j] = s0;
            acc[j1] = s1;
            acc[j2] = s2;
            acc[j3] = s3;
          }
        } else {
          for (int64_t j = 0; j < w; j++) {
            const float *bj = b + (j0 + j) * ldb;
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s = SFMA(a[p * lda + i], bj[p], s);
            acc[j] = s;
          }
        }
      }
      for (int64_t j = 0; j < w; j++) {
        float v = acc[j];
        if (trans_b) {
          v = alpha == 1.0f ? v : v * alpha;
          if (beta != 0.0f) v = (beta == 1.0f ? ci[j0 + j] : ci[j0 + j] * beta) + v;
        }
        if (ep) {
          if (ep->bias) v = v + ep->bias[j0 + j];
          if (ep->residual) v = v + ep->residual[i * ep->ldr + j0 + j];
          if (ep->act == MQ_ACT_RELU) v = v < 0.0f ? 0.0f : v;
        }
        acc[j] = v;
      }
      if (ep && ep->act == MQ_ACT_TANH) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) acc[j] = mq_tanhf(acc[j]);
      } else if (ep && ep->act == MQ_ACT_SIGMOID) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) acc[j] = mq_sigmoidf(acc[j]);
      }
      for (int64_t j = 0; j < w; j++) ci[j0 + j] = acc[j];
    }
  }
}

static MQ_TARGET void P(gemm)(const mq_gemm_config *cfg, int trans_a, int trans_b, int64_t k,
                              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                              const float *packed_b, float beta, float *c, int64_t ldc,
                              const mq_gemm_epilogue *ep, int64_t r0, int64_t r1, int64_t c0,
                              int64_t c1, float *scratch) {
  const int64_t kcb = mq_gemm_kc(cfg, k);
  const int64_t mb = cfg->mb, nb = cfg->nb;
  const int64_t mrows = r1 - r0 < mb ? r1 - r0 : mb;
  float *apack = scratch;
  float *bpack = scratch + (mrows + MR - 1) / MR * MR * kcb;
  const float *bias = ep ? ep->bias : NULL;
  const float *res = ep ? ep->residual : NULL;
  const int64_t ldr = ep ? ep->ldr : 0;
  for (int64_t ib = r0; ib < r1; ib += mb) {
    const int64_t mc = r1 - ib < mb ? r1 - ib : mb;
    for (int64_t pc = 0; pc < k; pc += kcb) {
      const int64_t kc = k - pc < kcb ? k - pc : kcb;
      const int first = pc == 0, last = pc + kc >= k;
      const int load_c = !first || beta != 0.0f;
      const float beta_k = first ? beta : 1.0f;
      const mq_gemm_epilogue *ep_k = last ? ep : NULL;
      P(pack_a)(trans_a, a, lda, ib, mc, pc, kc, apack);
      for (int64_t jb = c0; jb < c1; jb += nb) {
        const int64_t ncb = c1 - jb < nb ? c1 - jb : nb;
        const float *bp;
        int64_t stride;
        if (packed_b) {
          bp = packed_b + (jb / NR) * k * NR + pc * NR;
          stride = k * NR;
        } else {
          P(pack_b)(trans_b, b, ldb, pc, kc, jb, ncb, bpack, kc * NR);
          bp = bpack;
          stride = kc * NR;
        }
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int mr = (int)(mc - ir < MR ? mc - ir : MR);
          const float *ap = apack + (ir / MR) * kc * MR;
          float *crow = c + (ib + ir) * ldc;
          const float *rrow = res ? res + (ib + ir) * ldr : NULL;
          for (int64_t jr = 0; jr < ncb; jr += NR) {
            const int nr_eff = (int)(ncb - jr < NR ? ncb - jr : NR);
            const int64_t col = jb + jr;
            P(tile_any)(mr, kc, ap, bp + (jr / NR) * stride, crow + col, ldc, nr_eff, alpha, load_c,
                        beta_k, ep_k, bias ? bias + col : NULL, rrow ? rrow + col : NULL, ldr);
          }
        }
      }
    }
  }
}

#undef NR
