import CKernels
import COpenBLAS
import GraphIR

/// GEMM-backed ops. Each thread multiplies its own share of output rows with one single-threaded
/// `cblas_sgemm` call (OpenBLAS is pinned to one thread), so the pool is the only parallelism.
enum LinearKernels {
  /// `linear(x [..., K], w [N, K], b [N]?)` -> `[..., N]`: rows are the M = product of x's leading
  /// dims; each thread runs sgemm (RowMajor, NoTrans x, Trans w) on its rows, then `mq_add_bias`.
  static func linear(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...3, outputs: 1)
    let x = s.inShape(0), w = s.inShape(1), y = s.outShape(0)
    try s.require(x.count >= 1 && w.count == 2, "x \(x) and weight \(w) are not [..., K] and [N, K]")
    let k = x[x.count - 1], n = w[0]
    try s.require(w[1] == k, "x \(x) against weight \(w)")
    let m = elements(Array(x.dropLast()))
    try s.require(elements(y) == m * n, "output \(y) is not [\(m), \(n)]")
    let hasBias = s.step.inputs.count == 3
    if hasBias { try s.require(elements(s.inShape(2)) == n, "bias \(s.inShape(2)) against weight \(w)") }
    let p = s.ptrs, xb = s.step.inputs[0], wb = s.step.inputs[1], yb = s.step.outputs[0]
    let bb = hasBias ? s.step.inputs[2] : -1
    let ref = s.reference
    let bias = ref ? mq_add_bias_ref : mq_add_bias
    let activation = try epilogue(s)
    return { team in
      let (r0, r1) = team.share(m)
      guard r0 < r1 else { return }
      let out = f32(p, yb)
      gemm(ref, transB: true, m: r1 - r0, n: n, k: k, a: f32(p, xb) + r0 * k, lda: k,
           b: f32(p, wb), ldb: k, c: out + r0 * n, ldc: n)
      if bb >= 0 { bias(out, f32(p, bb), Int64(n), Int64(r0), Int64(r1)) }
      // The fused epilogue runs on the rows this thread just wrote, while they are in cache.
      activation?(out, out, Int64(r0 * n), Int64(r1 * n))
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

  /// `matmul {transB}(a [..., M, K], b [..., K, N] or [..., N, K])` -> `[..., M, N]`. Rows are the
  /// (batch item, output row) pairs, so threads split the batch, and split rows inside a batch
  /// item when the batch is smaller than the team.
  static func matmul(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let a = s.inShape(0), b = s.inShape(1), c = s.outShape(0)
    try s.require(a.count >= 2 && b.count == a.count && c.count == a.count,
                  "operands \(a) and \(b) are not [..., M, K] and [..., K, N]")
    let transB = s.step.attrs.bool("transB")
    let m = a[a.count - 2], k = a[a.count - 1]
    let kb = transB ? b[b.count - 1] : b[b.count - 2], n = transB ? b[b.count - 2] : b[b.count - 1]
    let batch = elements(Array(a.dropLast(2)))
    try s.require(kb == k && Array(a.dropLast(2)) == Array(b.dropLast(2)), "operands \(a) and \(b)")
    try s.require(Array(c.suffix(2)) == [m, n], "output \(c) against \(a) x \(b)")
    let p = s.ptrs, ab = s.step.inputs[0], bb = s.step.inputs[1], cb = s.step.outputs[0]
    let ref = s.reference
    let ldb = transB ? k : n
    return { team in
      let (r0, r1) = team.share(batch * m)
      var r = r0
      while r < r1 {
        let item = r / m, row = r % m
        let rows = min(m - row, r1 - r)
        gemm(ref, transB: transB, m: rows, n: n, k: k,
             a: f32(p, ab) + (item * m + row) * k, lda: k,
             b: f32(p, bb) + item * k * n, ldb: ldb,
             c: f32(p, cb) + (item * m + row) * n, ldc: n)
        r += rows
      }
    }
  }

  /// C[m, n] = A[m, k] B (B is [k, n], or [n, k] when transB), row-major, beta = 0. The reference
  /// mode uses a naive triple loop instead of OpenBLAS.
  @inline(__always)
  static func gemm(_ reference: Bool, transB: Bool, m: Int, n: Int, k: Int,
                   a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                   c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    if reference {
      naiveGemm(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
      return
    }
    if k == 0 {
      for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
      return
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), 1, a, blasint(lda), b, blasint(ldb), 0, c, blasint(ldc))
  }

  /// The GEMM oracle: one dot product per output, summed in k order.
  static func naiveGemm(transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                        b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
      for j in 0..<n {
        var acc: Float = 0
        for e in 0..<k {
          acc += a[i * lda + e] * (transB ? b[j * ldb + e] : b[e * ldb + j])
        }
        c[i * ldc + j] = acc
      }
    }
  }
}
