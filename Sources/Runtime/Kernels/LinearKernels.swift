import CKernels
import COpenBLAS
import GraphIR

/// GEMM-backed ops. Each thread multiplies its own share of output rows with one single-threaded
/// `cblas_sgemm` call (OpenBLAS is pinned to one thread), so the pool is the only parallelism.
enum LinearKernels {
  /// `linear(x [..., K], w [N, K], b [N]?)` -> `[..., N]`: rows are the M = product of x's leading
  /// dims; each thread runs sgemm (RowMajor, NoTrans x, Trans w) on its rows, then `mq_add_bias`.
  static func linear(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...4, outputs: 1)
    let x = s.inShape(0), w = s.inShape(1), y = s.outShape(0)
    try s.require(x.count >= 1 && w.count == 2, "x \(x) and weight \(w) are not [..., K] and [N, K]")
    let k = x[x.count - 1], n = w[0]
    try s.require(w[1] == k, "x \(x) against weight \(w)")
    let m = elements(Array(x.dropLast()))
    try s.require(elements(y) == m * n, "output \(y) is not [\(m), \(n)]")
    let residual = s.step.attrs.bool("residual")
    let hasBias = s.step.inputs.count == (residual ? 4 : 3)
    if hasBias { try s.require(elements(s.inShape(2)) == n, "bias \(s.inShape(2)) against weight \(w)") }
    if residual { try s.require(s.inShape(s.step.inputs.count - 1) == y, "residual \(s.inShape(s.step.inputs.count - 1)) against output \(y)") }
    let p = s.ptrs, xb = s.step.inputs[0], wb = s.step.inputs[1], yb = s.step.outputs[0]
    let bb = hasBias ? s.step.inputs[2] : -1, rb = residual ? s.step.inputs[s.step.inputs.count - 1] : -1
    let ref = s.reference
    let addBias = ref ? mq_add_bias_ref : mq_add_bias
    let addBiasResidual = ref ? mq_add_bias_residual_ref : mq_add_bias_residual
    // The epilogue on rows [r0, r1), columns [c0, c1) just written: bias, then the residual or the
    // activation.
    let activation = try epilogue(s)
    func finish(_ out: UnsafeMutablePointer<Float>, _ r0: Int, _ r1: Int, _ c0: Int, _ c1: Int) {
      let biasPtr: UnsafePointer<Float>? = bb >= 0 ? UnsafePointer(f32(p, bb)) + c0 : nil
      if rb >= 0 {
        addBiasResidual(out + r0 * n + c0, biasPtr, f32(p, rb) + r0 * n + c0, Int64(c1 - c0), Int64(n), 0,
                        Int64(r1 - r0))
        return
      }
      if c0 == 0 && c1 == n {
        if let biasPtr { addBias(out, biasPtr, Int64(n), Int64(r0), Int64(r1)) }
        activation?(out, out, Int64(r0 * n), Int64(r1 * n))
        return
      }
      for r in r0..<r1 {
        let row = out + r * n + c0
        if let biasPtr { addBias(row, biasPtr, Int64(c1 - c0), 0, 1) }
        activation?(row, row, 0, Int64(c1 - c0))
      }
    }
    // Few rows and many columns (decoding: 64 hypotheses x 50,000 words): threads split the
    // columns, so each reads only its share of the weight instead of all of it.
    let splitColumns = n > m
    // A few rows against a weight larger than the caches (batch-1 decoding: one row against the
    // 40 MB output layer) is bound by reading the weight. Each thread then walks its columns in
    // blocks, forward on one call and backward on the next, so each call starts on the blocks the
    // last one read most recently, which the last-level cache still holds.
    let serpentine = m <= 8 && n * k * 4 >= 8 << 20
    let block = 1024
    let parity = try AlignedBuffer(bytes: 64 * s.teamSize, what: "\(s.name) block order")
    return { team in
      let out = f32(p, yb)
      if splitColumns && team.nth > 1 || serpentine {
        let (c0, c1) = team.nth > 1 ? team.shareColumns(n) : (0, n)
        guard c0 < c1 else { return }
        let blocks = serpentine ? (c1 - c0 + block - 1) / block : 1
        let flip = parity.base.advanced(by: 64 * team.ith).assumingMemoryBound(to: Int.self)
        let backward = flip.pointee & 1 == 1
        flip.pointee &+= 1
        for i in 0..<blocks {
          let j = backward ? blocks - 1 - i : i
          let b0 = serpentine ? c0 + j * block : c0, b1 = serpentine ? min(b0 + block, c1) : c1
          let width = b1 - b0
          gemm(ref, transB: true, m: m, n: width, k: k, a: f32(p, xb), lda: k, b: f32(p, wb) + b0 * k, ldb: k,
               c: out + b0, ldc: n)
          finish(out, 0, m, b0, b1)
        }
        return
      }
      let (r0, r1) = team.share(m)
      guard r0 < r1 else { return }
      gemm(ref, transB: true, m: r1 - r0, n: n, k: k, a: f32(p, xb) + r0 * k, lda: k,
           b: f32(p, wb), ldb: k, c: out + r0 * n, ldc: n)
      // The epilogue runs on the rows this thread just wrote, while they are in cache.
      finish(out, r0, r1, 0, n)
    }
  }

  /// The kernel of a linear's `activation` attribute (nil when it has none).
  static func epilogue(_ s: KernelSite) throws(RuntimeError)
    -> ((UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64, Int64) -> Void)?
  {
    guard let name = s.step.attrs.values["activation"] else { return nil }
    let ref = s.reference
    switch name {
    case .string("relu"): return ref ? mq_relu_ref : mq_relu
    case .string("tanh"): return ref ? mq_tanh_ref : mq_tanh
    case .string("sigmoid"): return ref ? mq_sigmoid_ref : mq_sigmoid
    default:
      try s.require(false, "unknown linear activation \(name)")
      return nil
    }
  }

  /// `matmul {transA, transB}(a [..., M, K] or [..., K, M], b [..., K, N] or [..., N, K])` ->
  /// `[..., M, N]`. Rows are the (batch item, output row) pairs, so threads split the batch, and
  /// split rows inside a batch item when the batch is smaller than the team. With transA a
  /// thread's output rows are columns of A: its block starts at that column, with lda = M.
  static func matmul(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let a = s.inShape(0), b = s.inShape(1), c = s.outShape(0)
    try s.require(a.count >= 2 && b.count == a.count && c.count == a.count,
                  "operands \(a) and \(b) are not [..., M, K] and [..., K, N]")
    let transA = s.step.attrs.bool("transA"), transB = s.step.attrs.bool("transB")
    let m = transA ? a[a.count - 1] : a[a.count - 2], k = transA ? a[a.count - 2] : a[a.count - 1]
    let kb = transB ? b[b.count - 1] : b[b.count - 2], n = transB ? b[b.count - 2] : b[b.count - 1]
    let batch = elements(Array(a.dropLast(2)))
    try s.require(kb == k && Array(a.dropLast(2)) == Array(b.dropLast(2)), "operands \(a) and \(b)")
    try s.require(Array(c.suffix(2)) == [m, n], "output \(c) against \(a) x \(b)")
    let p = s.ptrs, ab = s.step.inputs[0], bb = s.step.inputs[1], cb = s.step.outputs[0]
    let ref = s.reference
    let lda = transA ? m : k, ldb = transB ? k : n
    return { team in
      let (r0, r1) = team.share(batch * m)
      var r = r0
      while r < r1 {
        let item = r / m, row = r % m
        let rows = min(m - row, r1 - r)
        gemm(ref, transA: transA, transB: transB, m: rows, n: n, k: k,
             a: f32(p, ab) + item * m * k + (transA ? row : row * k), lda: lda,
             b: f32(p, bb) + item * k * n, ldb: ldb,
             c: f32(p, cb) + (item * m + row) * n, ldc: n)
        r += rows
      }
    }
  }

  /// `linear_grad_input(g [..., N], w [N, K])` -> `[..., K]` = g w: rows are the M = product of
  /// g's leading dims, each thread's block one sgemm (NoTrans, NoTrans).
  static func linearGradInput(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let g = s.inShape(0), w = s.inShape(1), y = s.outShape(0)
    try s.require(g.count >= 1 && w.count == 2 && g[g.count - 1] == w[0],
                  "g \(g) and weight \(w) are not [..., N] and [N, K]")
    let n = w[0], k = w[1], m = elements(Array(g.dropLast()))
    try s.require(y == Array(g.dropLast()) + [k], "output \(y) is not \(Array(g.dropLast()) + [k])")
    let p = s.ptrs, gb = s.step.inputs[0], wb = s.step.inputs[1], yb = s.step.outputs[0]
    let ref = s.reference
    return { team in
      let (r0, r1) = team.share(m)
      guard r0 < r1 else { return }
      gemm(ref, transA: false, transB: false, m: r1 - r0, n: k, k: n, a: f32(p, gb) + r0 * n, lda: n,
           b: f32(p, wb), ldb: k, c: f32(p, yb) + r0 * k, ldc: k)
    }
  }

  /// `linear_grad_weight(g [..., N], x [..., K])` -> `[N, K]` = gᵀ x summed over the M rows:
  /// threads split the N output rows (columns of g: A = g + n0, TransA, lda = N), so each output
  /// element is one thread's dot product over all M rows.
  static func linearGradWeight(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let g = s.inShape(0), x = s.inShape(1), y = s.outShape(0)
    try s.require(g.count >= 1 && x.count == g.count && Array(g.dropLast()) == Array(x.dropLast()),
                  "g \(g) and x \(x) are not [..., N] and [..., K] with equal rows")
    let n = g[g.count - 1], k = x[x.count - 1], m = elements(Array(g.dropLast()))
    try s.require(y == [n, k], "output \(y) is not [\(n), \(k)]")
    let p = s.ptrs, gb = s.step.inputs[0], xb = s.step.inputs[1], yb = s.step.outputs[0]
    let ref = s.reference
    return { team in
      let (r0, r1) = team.share(n)
      guard r0 < r1 else { return }
      gemm(ref, transA: true, transB: false, m: r1 - r0, n: k, k: m, a: f32(p, gb) + r0, lda: n,
           b: f32(p, xb), ldb: k, c: f32(p, yb) + r0 * k, ldc: k)
    }
  }

  /// C[m, n] = A B, row-major, beta = 0: A is [m, k] (or [k, m] when transA), B is [k, n] (or
  /// [n, k] when transB). The reference mode uses a naive triple loop instead of OpenBLAS.
  @inline(__always)
  static func gemm(_ reference: Bool, transA: Bool = false, transB: Bool, m: Int, n: Int, k: Int,
                   a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                   c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    if reference {
      naiveGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
      return
    }
    if k == 0 {
      for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
      return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), 1, a, blasint(lda), b, blasint(ldb), 0, c, blasint(ldc))
  }

  /// The GEMM oracle: one dot product per output, summed in k order.
  static func naiveGemm(transA: Bool = false, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>,
                        lda: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
      for j in 0..<n {
        var acc: Float = 0
        for e in 0..<k {
          acc += (transA ? a[e * lda + i] : a[i * lda + e]) * (transB ? b[j * ldb + e] : b[e * ldb + j])
        }
        c[i * ldc + j] = acc
      }
    }
  }
}
