/// Ops that only backward passes use: autodiff's gradient rules build the backward graph from
/// these and the forward ops. Each names the forward op it differentiates.
enum BackwardOps {
  static func same(_ c: InferContext, _ a: Int, _ b: Int, _ what: String) throws(GraphError) {
    if c.inputs[a].shape != c.inputs[b].shape {
      throw c.mismatch(what, expected: c.inputs[b].description, actual: c.inputs[a].description)
    }
  }

  /// `sum_to {shape}(g [..., S...])` -> `[S...]`: sums the leading dims away (the gradient of a
  /// broadcast: a bias row, a positional table, a sentinel).
  static let sumTo = OpSpec(arity: 1...1, kernel: "mq_sum_rows",
                            flops: { c, _ in c.inputs[0].elementCount }) { c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    let shape = try c.dims("shape")
    if shape.count > g.rank || Array(g.shape.suffix(shape.count)) != shape {
      throw c.mismatch("target shape must be a suffix of g's", expected: "\(shape)", actual: g.description)
    }
    return [.f32(shape)]
  }

  /// `tanh_grad / sigmoid_grad / relu_grad (g, y)`: the gradient through an activation from its
  /// output y: g (1 - y²), g y (1 - y), g [y > 0].
  static func activationGrad(_ kernel: String) -> OpSpec {
    OpSpec(arity: 2...2, kernel: kernel, flops: { _, out in out[0].elementCount * Dim(3) }) { c throws(GraphError) in
      let g = try c.require(0, .f32, name: "g")
      _ = try c.require(1, .f32, name: "y")
      try same(c, 1, 0, "y against g")
      return [g]
    }
  }

  /// `linear_grad_input(g [..., N], w [N, K])` -> `[..., K]`: g w (the gradient of x wᵀ wrt x).
  static let linearGradInput = OpSpec(
    arity: 2...2, kernel: "mq_gemm",
    flops: { c, out in out[0].elementCount * c.inputs[1].shape[0] * Dim(2) }
  ) { c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    let w = try c.require(1, .f32, rank: 2, name: "weight")
    guard let n = g.shape.last else { throw c.mismatch("g rank", expected: ">= 1", actual: g.description) }
    try c.requireEqual(n, w.shape[0], "last dim of g \(g) against weight rows \(w)")
    return [.f32(Array(g.shape.dropLast()) + [w.shape[1]])]
  }

  /// `linear_grad_weight(g [..., N], x [..., K])` -> `[N, K]`: Σ over rows of gᵀ x.
  static let linearGradWeight = OpSpec(
    arity: 2...2, kernel: "mq_gemm",
    flops: { c, out in out[0].elementCount * Dim.product(c.inputs[0].shape.dropLast()) * Dim(2) }
  ) { c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    let x = try c.require(1, .f32, name: "x")
    guard g.rank >= 1, x.rank == g.rank, Array(g.shape.dropLast()) == Array(x.shape.dropLast()) else {
      throw c.mismatch("rows of x against g", expected: g.description, actual: x.description)
    }
    return [.f32([g.shape[g.rank - 1], x.shape[x.rank - 1]])]
  }

  /// `slice_grad {axis, start, full}(g)`: g placed at [start, start + len) of an axis of length
  /// `full`, zeros elsewhere (the gradient of `slice`).
  static let sliceGrad = OpSpec(arity: 1...1, kernel: "mq_copy_blocks") { c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    let ax = try ShapeOps.axis(c, rank: g.rank)
    _ = try c.int("start")
    var shape = g.shape
    shape[ax] = try c.dim("full")
    return [.f32(shape)]
  }

  /// `softmax_grad {scale, eps}(g, y)`: with p = y - eps, scale · p ⊙ (g - Σ_j g_j p_j) per row.
  static let softmaxGrad = OpSpec(arity: 2...2, kernel: "mq_softmax_backward",
                                  flops: { _, out in out[0].elementCount * Dim(4) }) { c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    _ = try c.require(1, .f32, name: "y")
    try same(c, 1, 0, "y against g")
    return [g]
  }

  /// `attention_grad {heads, scale, fill, causal, dropout?, salt?}(g, q, k, v, keypad?, seed?)` ->
  /// `dq, dk, dv`: recomputes each head's probabilities (and its dropout mask), then the products'
  /// gradients.
  static let attentionGrad = OpSpec(
    arity: 4...6, kernel: "mq_attention_backward", nonDifferentiable: [4, 5],
    flops: { c, _ in
      let q = c.inputs[1].shape, k = c.inputs[2].shape
      return q[0] * q[1] * k[1] * q[2] * Dim(10)
    }
  ) { c throws(GraphError) in
    let g = try c.require(0, .f32, rank: 3, name: "g")
    let q = try c.require(1, .f32, rank: 3, name: "q")
    let k = try c.require(2, .f32, rank: 3, name: "k")
    let v = try c.require(3, .f32, rank: 3, name: "v")
    try same(c, 0, 1, "g against q")
    try same(c, 3, 2, "v against k")
    _ = try c.int("heads")
    let dropout = try AttentionOps.dropoutInput(c, first: 4)
    if c.inputs.count == (dropout ? 6 : 5) { _ = try c.require(4, .f32, rank: 2, name: "keypad") }
    return [q, k, v]
  }

  /// `layer_norm_grad {eps}(g, x, gamma)` -> `dx, dgamma, dbeta` for decaNLP's LayerNorm.
  static let layerNormGrad = OpSpec(arity: 3...3, kernel: "mq_layernorm_backward",
                                    flops: { _, out in out[0].elementCount * Dim(12) }) { c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    _ = try c.require(1, .f32, name: "x")
    let gamma = try c.require(2, .f32, rank: 1, name: "gamma")
    try same(c, 1, 0, "x against g")
    return [g, gamma, gamma]
  }

  /// `lstm_cell_grad(dh, dc, gates, c_prev, c_new)` -> `dgates [B, 4H], dc_prev [B, H]`.
  static let lstmCellGrad = OpSpec(arity: 5...5, kernel: "mq_lstm_cell_backward",
                                   flops: { _, out in out[0].elementCount * Dim(10) }) { c throws(GraphError) in
    let dh = try c.require(0, .f32, rank: 2, name: "dh")
    try same(c, 1, 0, "dc against dh")
    let gates = try c.require(2, .f32, rank: 2, name: "gates")
    try same(c, 3, 0, "c_prev against dh")
    try same(c, 4, 0, "c_new against dh")
    try c.requireEqual(gates.shape[1], dh.shape[1] * Dim(4), "gates width against 4 x hidden")
    return [gates, dh]
  }

  /// `mixture_grad(dP, pvocab, gamma, lambda, ac, cids, aq, qids)` -> `dpvocab, dgamma, dlambda,
  /// dac, daq`: the gradient of the pointer-generator mixture (its scatter-adds become gathers).
  static let mixtureGrad = OpSpec(arity: 8...8, kernel: "mq_pointer_mixture_backward", nonDifferentiable: [5, 7],
                                  flops: { c, _ in c.inputs[1].elementCount * Dim(2) }) { c throws(GraphError) in
    let dp = try c.require(0, .f32, rank: 3, name: "dP")
    let pv = try c.require(1, .f32, rank: 3, name: "pvocab")
    guard Array(dp.shape.prefix(2)) == Array(pv.shape.prefix(2)) else {
      throw c.mismatch("dP against pvocab", expected: pv.description, actual: dp.description)
    }
    return [pv, c.inputs[2], c.inputs[3], c.inputs[4], c.inputs[6]]
  }

  /// `nll_loss_grad {ignore}(g [], P [B, T, X], targets [B, T])` -> `dP`: -g / (count · P[target])
  /// at each kept target, zero elsewhere.
  static let nllLossGrad = OpSpec(arity: 3...3, kernel: "mq_nll_backward", nonDifferentiable: [2]) {
    c throws(GraphError) in
    _ = try c.require(0, .f32, rank: 0, name: "g")
    let p = try c.require(1, .f32, rank: 3, name: "P")
    _ = try c.require(2, .i32, rank: 2, name: "targets")
    _ = try c.int("ignore")
    return [p]
  }

  /// `mixture_nll_grad {ignore}(g [], logits, gamma, lambda, ac, cids, aq, qids, targets, stats)` ->
  /// `dlogits, dgamma, dlambda, dac, daq`: the gradient of `mixture_nll`, from its saved stats.
  static let mixtureNllGrad = OpSpec(arity: 10...10, kernel: "mq_mixture_nll_backward",
                                     nonDifferentiable: Set(0...9),
                                     flops: { c, _ in c.inputs[1].elementCount * Dim(8) }) { c throws(GraphError) in
    _ = try c.require(0, .f32, rank: 0, name: "g")
    let logits = try c.require(1, .f32, name: "logits")
    let stats = try c.require(9, .f32, rank: 3, name: "stats")
    if Array(stats.shape.prefix(2)) != Array(c.inputs[8].shape.prefix(2)) {
      throw c.mismatch("stats against targets \(c.inputs[8])", expected: "[B, T, 3]", actual: stats.description)
    }
    _ = try c.int("ignore")
    return [logits, c.inputs[2], c.inputs[3], c.inputs[4], c.inputs[6]]
  }

  /// `length_mask {length}(lengths [B])` -> `f32[B, length]`: 1 where t < lengths[b], else 0
  /// (the rows a masked scan step updates; backward scans zero the others' gradients with it).
  static let lengthMask = OpSpec(arity: 1...1, kernel: "mq_length_mask", nonDifferentiable: [0]) {
    c throws(GraphError) in
    let len = try c.require(0, .i32, rank: 1, name: "lengths")
    return [.f32([len.shape[0], try c.dim("length")])]
  }

  /// `embedding_grad {rows}(g [..., E], ids [...])` -> `[rows, E]`: scatter-adds each g row into
  /// its id's row (the gradient of the table, for --train-embeddings).
  static let embeddingGrad = OpSpec(arity: 2...2, kernel: "mq_embedding_backward", nonDifferentiable: [1]) {
    c throws(GraphError) in
    let g = try c.require(0, .f32, name: "g")
    let ids = try c.require(1, .i32, name: "ids")
    guard g.rank == ids.rank + 1, Array(g.shape.dropLast()) == ids.shape else {
      throw c.mismatch("g against ids", expected: "\(ids.shape) + [E]", actual: g.description)
    }
    return [.f32([try c.dim("rows"), g.shape[g.rank - 1]])]
  }
}
