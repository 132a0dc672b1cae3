/// Softmax, multi-head attention and decaNLP's layer norm.
enum AttentionOps {
  /// `softmax {scale, fill, eps, causal}(x [Bt, ..., K], mask [Bt, K]?)`: masked positions (mask != 0,
  /// and j > i when causal) are set to `fill` before scaling, then softmax over the last axis,
  /// then `eps` is added to every weight (decaNLP's EPSILON in the LSTM decoder attention).
  static let softmax = OpSpec(
    arity: 1...2, kernel: "mq_masked_softmax", nonDifferentiable: [1],
    flops: { _, out in out[0].elementCount * Dim(5) }
  ) { c throws(GraphError) in
    let x = try c.require(0, .f32, name: "x")
    for k in ["scale", "fill", "eps"] where c.attrs[k] != nil { _ = try c.float(k) }
    if c.inputs.count == 2 {
      let m = try c.require(1, .f32, rank: 2, name: "mask")
      guard x.rank >= 2 else { throw c.mismatch("x rank", expected: "rank >= 2 with a mask", actual: x.description) }
      try c.requireEqual(m.shape[0], x.shape[0], "mask batch dim")
      try c.requireEqual(m.shape[1], x.shape[x.rank - 1], "mask length against x's last dim")
    }
    return [x]
  }

  /// `attention {heads, scale, fill, causal, dropout?, salt?}(q [B, Tq, D], k [B, Tk, D], v [B, Tk, D],
  /// keypad [B, Tk]?, seed i32[1]?)`: decaNLP's MultiHead after the projections: torch.chunk heads
  /// (uneven widths), scores scaled by `scale`, no output projection; with `dropout` p, decaNLP's
  /// dropout on the attention weights, drawn from (seed, salt) (the seed is the last input).
  static let attention = OpSpec(
    arity: 3...5, kernel: "mq_attention", nonDifferentiable: [3, 4],
    flops: { c, out in
      let q = c.inputs[0].shape, k = c.inputs[1].shape
      return q[0] * q[1] * k[1] * q[2] * Dim(4) + q[0] * q[1] * k[1] * Dim(5)
    }
  ) { c throws(GraphError) in
    let q = try c.require(0, .f32, rank: 3, name: "q")
    let k = try c.require(1, .f32, rank: 3, name: "k")
    let v = try c.require(2, .f32, rank: 3, name: "v")
    let heads = try c.int("heads")
    guard heads >= 1 else { throw .attribute(node: c.node, op: c.op, name: "heads", problem: "must be >= 1") }
    _ = try c.float("scale")
    if k.shape != v.shape { throw c.mismatch("v against k", expected: k.description, actual: v.description) }
    try c.requireEqual(k.shape[0], q.shape[0], "k batch dim against q \(q)")
    try c.requireEqual(k.shape[2], q.shape[2], "k width against q \(q)")
    let dropout = try dropoutInput(c, first: 3)
    if c.inputs.count == (dropout ? 5 : 4) {
      let m = try c.require(3, .f32, rank: 2, name: "keypad")
      if m.shape != [k.shape[0], k.shape[1]] {
        throw c.mismatch("key padding mask", expected: "f32[\(k.shape[0]), \(k.shape[1])]", actual: m.description)
      }
    }
    return [q]
  }

  /// With a `dropout` attribute (p in [0, 1) and a `salt`), the last input is the i32[1] seed.
  static func dropoutInput(_ c: InferContext, first: Int) throws(GraphError) -> Bool {
    guard c.attrs["dropout"] != nil else {
      if c.inputs.count > first + 1 { throw .arity(node: c.node, op: c.op, expected: "\(first)...\(first + 1)", actual: c.inputs.count) }
      return false
    }
    let p = try c.float("dropout")
    guard p >= 0, p < 1 else {
      throw .attribute(node: c.node, op: c.op, name: "dropout", problem: "must be in [0, 1), got \(p)")
    }
    _ = try c.int("salt")
    guard c.inputs.count > first else { throw .arity(node: c.node, op: c.op, expected: "a seed input", actual: c.inputs.count) }
    _ = try c.require(c.inputs.count - 1, .i32, rank: 1, name: "seed")
    return true
  }

  /// `layer_norm {eps, residual?}(x [..., D], r?, gamma [D], beta [D])`: decaNLP's LayerNorm
  /// (unbiased std, eps on std); with `residual`, of x + r (the residual block's sum, folded in by
  /// `fuse-epilogues` where nothing else reads the sum).
  static let layerNorm = OpSpec(
    arity: 3...4, kernel: "mq_layernorm",
    flops: { _, out in out[0].elementCount * Dim(8) }
  ) { c throws(GraphError) in
    let x = try c.require(0, .f32, name: "x")
    _ = try c.float("eps")
    let residual = c.attrs["residual"] != nil ? try c.bool("residual") : false
    guard c.inputs.count == (residual ? 4 : 3) else {
      throw .arity(node: c.node, op: c.op, expected: residual ? "4 with a residual" : "3", actual: c.inputs.count)
    }
    if residual {
      let r = try c.require(1, .f32, name: "residual")
      if r != x { throw c.mismatch("residual", expected: x.description, actual: r.description) }
    }
    let first = residual ? 2 : 1
    for i in first...(first + 1) {
      let name = i == first ? "gamma" : "beta"
      let p = try c.require(i, .f32, rank: 1, name: name)
      try c.requireEqual(p.shape[0], x.shape.last ?? 0, "\(name) length against x \(x)")
    }
    return [x]
  }
}
