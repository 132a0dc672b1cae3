/// GEMM-backed ops (mqan's own mq_gemm, or cblas_sgemm with --gemm openblas).
public enum LinearOps {
  /// Activations a `linear` can apply in its epilogue (the `fuse-epilogues` pass puts them there).
  public static let epilogues: [String: OpKind] = ["relu": .relu, "tanh": .tanh, "sigmoid": .sigmoid]

  /// `linear {activation?, residual?}(x [..., K], w [N, K], b [N]?, r [..., N]?)` -> `[..., N]`:
  /// x wᵀ + b, as torch's nn.Linear, then the optional activation (relu, tanh or sigmoid), or with
  /// `residual` the last input added ((x wᵀ + b) + r, the residual and LSTM gate sums), all in the
  /// GEMM's epilogue (the `fuse-epilogues` pass puts them there).
  static let linear = OpSpec(
    arity: 2...4, kernel: "mq_gemm+bias",
    flops: { c, out in
      var f = out[0].elementCount * c.inputs[0].shape.last! * Dim(2)
      if let a = c.attrs.string("activation"), let op = epilogues[a] {
        f += op.spec.flops(c, out)
      }
      return f
    }
  ) { c throws(GraphError) in
    if let a = c.attrs["activation"] {
      guard case .string(let name) = a, epilogues[name] != nil else {
        throw .attribute(node: c.node, op: c.op, name: "activation", problem: "must be \"relu\", \"tanh\" or \"sigmoid\"")
      }
    }
    let x = try c.require(0, .f32, name: "x")
    let w = try c.require(1, .f32, rank: 2, name: "weight")
    guard x.rank >= 1 else { throw c.mismatch("x rank", expected: "rank >= 1", actual: x.description) }
    try c.requireEqual(x.shape.last!, w.shape[1], "last dim of x \(x) against weight [out, in] \(w)")
    let residual = c.attrs["residual"] != nil ? try c.bool("residual") : false
    if residual && c.attrs["activation"] != nil {
      throw .attribute(node: c.node, op: c.op, name: "residual", problem: "does not combine with an activation")
    }
    let out = TensorType.f32(Array(x.shape.dropLast()) + [w.shape[0]])
    let biasCount = c.inputs.count - 2 - (residual ? 1 : 0)
    guard biasCount == 0 || biasCount == 1 else {
      throw .arity(node: c.node, op: c.op, expected: residual ? "3...4 with a residual" : "2...3", actual: c.inputs.count)
    }
    if biasCount == 1 {
      let b = try c.require(2, .f32, rank: 1, name: "bias")
      try c.requireEqual(b.shape[0], w.shape[0], "bias length against weight rows \(w)")
    }
    if residual {
      let r = try c.require(c.inputs.count - 1, .f32, name: "residual")
      if r != out { throw c.mismatch("residual", expected: out.description, actual: r.description) }
    }
    return [out]
  }

  /// `matmul {transA, transB}(a [..., M, K] or [..., K, M], b [..., K, N] or [..., N, K])` ->
  /// `[..., M, N]`, batched over equal leading dims.
  static let matmul = OpSpec(
    arity: 2...2, kernel: "mq_gemm",
    flops: { c, out in
      let a = c.inputs[0].shape
      let k = (c.attrs.bool("transA") ?? false) ? a[a.count - 2] : a[a.count - 1]
      return out[0].elementCount * k * Dim(2)
    }
  ) { c throws(GraphError) in
    let a = try c.require(0, .f32, name: "a")
    let b = try c.require(1, .f32, name: "b")
    let transA = c.attrs.bool("transA") ?? false
    let transB = c.attrs.bool("transB") ?? false
    guard a.rank >= 2, b.rank == a.rank else {
      throw c.mismatch("operand ranks", expected: "equal ranks >= 2", actual: "\(a) and \(b)")
    }
    let batchA = a.shape.dropLast(2), batchB = b.shape.dropLast(2)
    if Array(batchA) != Array(batchB) {
      throw c.mismatch("batch dims", expected: a.description, actual: b.description)
    }
    let m = transA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
    let k = transA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
    let kb = transB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
    let n = transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
    try c.requireEqual(kb, k, "inner dim of b \(b) against a \(a)")
    return [.f32(Array(batchA) + [m, n])]
  }
}
