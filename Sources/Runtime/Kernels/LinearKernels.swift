import CKernels
import COpenBLAS
import GraphIR

/// GEMM-backed ops. Each runs mqan's own GEMM (`mq_gemm`: the path, blocking and thread split
/// the compiler recorded in the step, weights packed ahead where it said so, the epilogue in the
/// write-back), or with `gemm: openblas` one single-threaded `cblas_sgemm` per thread (OpenBLAS is
/// pinned to one thread), then the epilogue as a second pass. Either way the pool is the only
/// parallelism and each thread writes its own block of the output.
enum LinearKernels {
  /// `linear(x [..., K], w [N, K], b [N]?, r [..., N]?)` -> `[..., N]` = x wᵀ (+ b) (+ r), then
  /// the activation: rows are the M = product of x's leading dims.
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
    let act = try activation(s)
    if let precision = try QuantizedLinear.precision(s) {
      return try QuantizedLinear.kernel(s, precision: precision, m: m, n: n, k: k, bias: bb, residual: rb, act: act)
    }
    let choice = try GemmChoice(s, rows: m, columns: n)
    if s.reference || choice.openblas {
      return try linearBLAS(s, m: m, n: n, k: k, bias: bb, residual: rb, columns: choice.columns)
    }
    let packed = try packedWeight(s, choice, buffer: wb, n: n, k: k, transB: true)
    var cfg = choice.config
    return { team in
      let (r0, r1, c0, c1) = choice.block(team, rows: m, columns: n)
      guard r0 < r1, c0 < c1 else { return }
      var ep = mq_gemm_epilogue(bias: bb >= 0 ? UnsafePointer(f32(p, bb)) : nil,
                                residual: rb >= 0 ? UnsafePointer(f32(p, rb)) : nil, ldr: Int64(n), act: act)
      guard let scratch = choice.scratch(r1 - r0, c1 - c0, k) else {
        return mq_gemm_ref(0, 1, Int64(m), Int64(n), Int64(k), 1, f32(p, xb), Int64(k), f32(p, wb), Int64(k), 0,
                           f32(p, yb), Int64(n), &ep, Int64(r0), Int64(r1), Int64(c0), Int64(c1))
      }
      mq_gemm(&cfg, 0, 1, Int64(m), Int64(n), Int64(k), 1, f32(p, xb), Int64(k), f32(p, wb), Int64(k),
              packed?.pointer, 0, f32(p, yb), Int64(n), &ep, Int64(r0), Int64(r1), Int64(c0), Int64(c1), scratch)
    }
  }

  /// The packed copy of the weight in `buffer` when the step asks for one and it is a parameter.
  static func packedWeight(_ s: KernelSite, _ choice: GemmChoice, buffer: Int, n: Int, k: Int,
                           transB: Bool) throws(RuntimeError) -> PackedWeights.Entry? {
    guard choice.pack, let name = s.paramName(buffer), let source = s.ptrs[buffer] else { return nil }
    return try s.packed.entry(name: name, source: UnsafePointer(source.assumingMemoryBound(to: Float.self)),
                              n: n, k: k, transB: transB, config: choice.config)
  }

  /// The MQ_ACT_* of a linear's `activation` attribute.
  static func activation(_ s: KernelSite) throws(RuntimeError) -> Int32 {
    guard let name = s.step.attrs.values["activation"] else { return Int32(MQ_ACT_NONE) }
    switch name {
    case .string("relu"): return Int32(MQ_ACT_RELU)
    case .string("tanh"): return Int32(MQ_ACT_TANH)
    case .string("sigmoid"): return Int32(MQ_ACT_SIGMOID)
    default:
      try s.require(false, "unknown linear activation \(name)")
      return Int32(MQ_ACT_NONE)
    }
  }

  /// `linear` through `cblas_sgemm` (or the naive GEMM in reference mode), the epilogue a second
  /// pass over the rows just written.
  static func linearBLAS(_ s: KernelSite, m: Int, n: Int, k: Int, bias bb: Int, residual rb: Int,
                         columns splitColumns: Bool) throws(RuntimeError) -> Kernel {
    let p = s.ptrs, xb = s.step.inputs[0], wb = s.step.inputs[1], yb = s.step.outputs[0]
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
        for r in r0..<r1 { activation?(out + r * n + c0, out + r * n + c0, 0, Int64(c1 - c0)) }
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
    return { team in
      let out = f32(p, yb)
      if splitColumns && team.nth > 1 {
        let (c0, c1) = team.shareColumns(n)
        guard c0 < c1 else { return }
        gemm(ref, transB: true, m: m, n: c1 - c0, k: k, a: f32(p, xb), lda: k, b: f32(p, wb) + c0 * k, ldb: k,
             c: out + c0, ldc: n)
        finish(out, 0, m, c0, c1)
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
    let choice = try GemmChoice(s, rows: m, columns: n)
    var cfg = choice.config
    let blas = ref || choice.openblas
    return { team in
      let (r0, r1) = team.share(batch * m)
      let scratch = blas ? nil : choice.scratch(min(m, r1 - r0), n, k)
      var r = r0
      while r < r1 {
        let item = r / m, row = r % m
        let rows = min(m - row, r1 - r)
        let a = f32(p, ab) + item * m * k, b = f32(p, bb) + item * k * n, c = f32(p, cb) + item * m * n
        if let scratch {
          // Rows [row, row + rows) of this item's product.
          mq_gemm(&cfg, transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(lda), b,
                  Int64(ldb), nil, 0, c, Int64(n), nil, Int64(row), Int64(row + rows), 0, Int64(n), scratch)
        } else {
          gemm(ref, transA: transA, transB: transB, m: rows, n: n, k: k,
               a: a + (transA ? row : row * k), lda: lda, b: b, ldb: ldb, c: c + row * n, ldc: n)
        }
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
    let choice = try GemmChoice(s, rows: m, columns: k)
    if ref || choice.openblas {
      return { team in
        let (r0, r1) = team.share(m)
        guard r0 < r1 else { return }
        gemm(ref, transA: false, transB: false, m: r1 - r0, n: k, k: n, a: f32(p, gb) + r0 * n, lda: n,
             b: f32(p, wb), ldb: k, c: f32(p, yb) + r0 * k, ldc: k)
      }
    }
    // op(B) = w [N, K] as it is (depth N, K columns), packed ahead when the weight is a parameter.
    let packed = try packedWeight(s, choice, buffer: wb, n: k, k: n, transB: false)
    var cfg = choice.config
    return { team in
      let (r0, r1, c0, c1) = choice.block(team, rows: m, columns: k)
      guard r0 < r1, c0 < c1, let scratch = choice.scratch(r1 - r0, c1 - c0, n) else { return }
      mq_gemm(&cfg, 0, 0, Int64(m), Int64(k), Int64(n), 1, f32(p, gb), Int64(n), f32(p, wb), Int64(k),
              packed?.pointer, 0, f32(p, yb), Int64(k), nil, Int64(r0), Int64(r1), Int64(c0), Int64(c1), scratch)
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
    let choice = try GemmChoice(s, rows: n, columns: k)
    if ref || choice.openblas {
      return { team in
        let (r0, r1) = team.share(n)
        guard r0 < r1 else { return }
        gemm(ref, transA: true, transB: false, m: r1 - r0, n: k, k: m, a: f32(p, gb) + r0, lda: n,
             b: f32(p, xb), ldb: k, c: f32(p, yb) + r0 * k, ldc: k)
      }
    }
    var cfg = choice.config
    return { team in
      // op(A) = gᵀ (g stored [M, N]: trans_a, lda = N), op(B) = x [M, K]: depth M.
      let (r0, r1, c0, c1) = choice.block(team, rows: n, columns: k)
      guard r0 < r1, c0 < c1, let scratch = choice.scratch(r1 - r0, c1 - c0, m) else { return }
      mq_gemm(&cfg, 1, 0, Int64(n), Int64(k), Int64(m), 1, f32(p, gb), Int64(n), f32(p, xb), Int64(k), nil, 0,
              f32(p, yb), Int64(k), nil, Int64(r0), Int64(r1), Int64(c0), Int64(c1), scratch)
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
