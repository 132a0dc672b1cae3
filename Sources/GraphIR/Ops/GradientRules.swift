/// Every op's gradient rule, in one table: how d loss / d output becomes d loss / d input, written
/// with ordinary ops (forward ops and the backward ops of Backward.swift). `scan` has no rule here:
/// the autodiff pass differentiates its body itself (a reverse scan). Sources have no inputs;
/// backward ops are never differentiated (no second derivatives).
enum GradientRules {
  static func rule(for op: OpKind) -> GradientRule? {
    switch op {
    case .input, .param, .zeros, .positionalEncoding, .dropoutMask, .padMask, .scan, .cacheUpdate, .topK, .mixtureTopK, .scatterColumns: return nil
    case .add: return add
    case .addN: return { c throws(GraphError) in
      let g = try c.g()
      return c.inputs.map { _ in g }
    }
    case .sub: return sub
    case .mul: return mul
    case .affine: return affine
    case .tanh, .sigmoid, .relu: return activation(op)
    case .linear: return linear
    case .matmul: return matmul
    case .concat: return concat
    case .slice: return slice
    case .reshape: return reshape
    case .transpose: return { c throws(GraphError) in [try c.builder.transpose(try c.g())] }
    case .broadcast: return broadcast
    case .embedding: return embedding
    case .softmax: return softmax
    case .attention: return attention
    case .layerNorm: return layerNorm
    case .lstmCell: return lstmCell
    case .mixture: return mixture
    case .nllLoss: return nllLoss
    case .mixtureNll: return mixtureNll
    case .sumTo, .tanhGrad, .sigmoidGrad, .reluGrad, .linearGradInput, .linearGradWeight, .sliceGrad,
         .softmaxGrad, .attentionGrad, .layerNormGrad, .lstmCellGrad, .mixtureGrad, .nllLossGrad, .lengthMask,
         .embeddingGrad, .mixtureNllGrad:
      return nil
    }
  }

  /// `g` reduced to `shape` (the gradient of a suffix broadcast), or `g` when shapes already match.
  static func reduce(_ b: GraphBuilder, _ g: Value, to shape: [Dim]) throws(GraphError) -> Value {
    g.shape == shape ? g : try b.node(.sumTo, [g], ["shape": .dims(shape)])[0]
  }

  static let add: GradientRule = { c throws(GraphError) in
    let g = try c.g()
    return [g, try reduce(c.builder, g, to: c.inputs[1].shape)]
  }
  static let sub: GradientRule = { c throws(GraphError) in
    let g = try c.g()
    return [g, try c.builder.affine(reduce(c.builder, g, to: c.inputs[1].shape), alpha: -1)]
  }
  static let mul: GradientRule = { c throws(GraphError) in
    let b = c.builder, g = try c.g()
    return [try b.mul(g, c.inputs[1]), try reduce(b, b.mul(g, c.inputs[0]), to: c.inputs[1].shape)]
  }
  static let affine: GradientRule = { c throws(GraphError) in
    [try c.builder.affine(try c.g(), alpha: c.node.attrs.float("alpha") ?? 1)]
  }
  /// `activationGradient(g, y)` of the activation `op`.
  static func activation(_ op: OpKind) -> GradientRule {
    { c throws(GraphError) in
      guard let grad = op.activationGradient else {
        throw .graph("node %\(c.index) (\(op.rawValue)): no activation gradient op in the op table")
      }
      return [try c.builder.node(grad, [try c.g(), c.outputs[0]])[0]]
    }
  }

  /// y = act(x wᵀ + b): dz = act'(g); dx = dz w; dw = dzᵀ x; db = Σ dz.
  static let linear: GradientRule = { c throws(GraphError) in
    let b = c.builder
    var dz = try c.g()
    if let a = c.node.attrs.string("activation") {
      guard let grad = LinearOps.epilogues[a]?.activationGradient else {
        throw .graph("node %\(c.index) (linear): no gradient for the epilogue activation \"\(a)\"")
      }
      dz = try b.node(grad, [dz, c.outputs[0]])[0]
    }
    let (x, w) = (c.inputs[0], c.inputs[1])
    let residual = c.node.attrs.bool("residual") ?? false
    var grads: [Value?] = [try b.node(.linearGradInput, [dz, w])[0], try b.node(.linearGradWeight, [dz, x])[0]]
    if c.inputs.count == (residual ? 4 : 3) { grads.append(try reduce(b, dz, to: c.inputs[2].shape)) }
    if residual { grads.append(dz) }
    return grads
  }

  /// C = op(A) op(B): each operand's gradient is another (transposed) batched product.
  static let matmul: GradientRule = { c throws(GraphError) in
    let b = c.builder, g = try c.g(), (x, y) = (c.inputs[0], c.inputs[1])
    let tA = c.node.attrs.bool("transA") ?? false, tB = c.node.attrs.bool("transB") ?? false
    switch (tA, tB) {
    case (false, false): return [try b.matmul(g, y, transB: true), try b.matmul(x, g, transA: true)]
    case (false, true): return [try b.matmul(g, y), try b.matmul(g, x, transA: true)]
    case (true, false): return [try b.matmul(y, g, transB: true), try b.matmul(x, g)]
    case (true, true): return [try b.matmul(y, g, transA: true, transB: true), try b.matmul(g, x, transA: true, transB: true)]
    }
  }

  /// Each piece's gradient is its window of g; only the last piece may have a symbolic length.
  static let concat: GradientRule = { c throws(GraphError) in
    let axis = c.node.attrs.int("axis") ?? 0, g = try c.g()
    var offset = 0
    var grads: [Value?] = []
    for (i, x) in c.inputs.enumerated() {
      grads.append(try c.builder.slice(g, axis: axis, start: offset, length: x.shape[axis]))
      guard let len = x.shape[axis].constant else {
        if i == c.inputs.count - 1 { break }
        throw .graph("node %\(c.index) (concat): no gradient when a piece before the last has a symbolic length")
      }
      offset += len
    }
    return grads
  }
  static let slice: GradientRule = { c throws(GraphError) in
    let axis = c.node.attrs.int("axis") ?? 0
    return [try c.builder.node(.sliceGrad, [try c.g()], ["axis": .int(axis), "start": .int(c.node.attrs.int("start") ?? 0),
                                                          "full": .dim(c.inputs[0].shape[axis])])[0]]
  }
  static let reshape: GradientRule = { c throws(GraphError) in [try c.builder.reshape(try c.g(), c.inputs[0].shape)] }

  /// A broadcast's gradient sums the repeats: supported where x (without leading 1s) is a suffix.
  static let broadcast: GradientRule = { c throws(GraphError) in
    let x = c.inputs[0]
    let core = Array(x.shape.drop { $0 == Dim(1) })
    let g = try c.g()
    guard Array(g.shape.suffix(core.count)) == core else {
      throw .graph("node %\(c.index) (broadcast): no gradient for broadcasting \(x.type) to \(g.type) (only suffixes)")
    }
    return [try c.builder.reshape(reduce(c.builder, g, to: core), x.shape)]
  }

  /// The fixed table gets a gradient only when it is trained (`--train-embeddings`).
  static let embedding: GradientRule = { c throws(GraphError) in
    [try c.builder.node(.embeddingGrad, [try c.g(), c.inputs[1]], ["rows": .dim(c.inputs[0].shape[0])])[0], nil]
  }
  static let softmax: GradientRule = { c throws(GraphError) in
    var attrs: Attrs = ["scale": .float(c.node.attrs.float("scale") ?? 1), "eps": .float(c.node.attrs.float("eps") ?? 0)]
    attrs["fill"] = c.node.attrs["fill"]
    return [try c.builder.node(.softmaxGrad, [try c.g(), c.outputs[0]], attrs)[0], nil]
  }
  static let attention: GradientRule = { c throws(GraphError) in
    let out = try c.builder.node(.attentionGrad, [try c.g()] + c.inputs, c.node.attrs)
    return [out[0], out[1], out[2], nil, nil]
  }
  static let layerNorm: GradientRule = { c throws(GraphError) in
    if c.node.attrs.bool("residual") == true {
      throw .graph("node %\(c.index) (layer_norm with a residual): a fused node has no gradient; differentiate before fusing")
    }
    let out = try c.builder.node(.layerNormGrad, [try c.g(), c.inputs[0], c.inputs[1]], c.node.attrs)
    return [out[0], out[1], out[2]]
  }
  /// Either output's gradient may be missing (a final cell state nobody reads): it is zero.
  static let lstmCell: GradientRule = { c throws(GraphError) in
    let b = c.builder
    var dh: Value, dc: Value
    if let g = c.outputGradients[0] { dh = g } else { dh = try b.zeros(c.outputs[0].shape) }
    if let g = c.outputGradients[1] { dc = g } else { dc = try b.zeros(c.outputs[1].shape) }
    let out = try b.node(.lstmCellGrad, [dh, dc, c.inputs[0], c.inputs[1], c.outputs[1]])
    return [out[0], out[1]]
  }
  static let mixture: GradientRule = { c throws(GraphError) in
    let i = c.inputs
    let out = try c.builder.node(.mixtureGrad, [try c.g(), i[0], i[1], i[2], i[3], i[4], i[5], i[6]])
    return [out[0], out[1], out[2], out[3], nil, out[4], nil]
  }
  static let mixtureNll: GradientRule = { c throws(GraphError) in
    let i = c.inputs
    let out = try c.builder.node(.mixtureNllGrad, [try c.g()] + Array(i[0...7]) + [c.outputs[1]], c.node.attrs)
    return [out[0], out[1], out[2], out[3], nil, out[4], nil, nil]
  }
  static let nllLoss: GradientRule = { c throws(GraphError) in
    [try c.builder.node(.nllLossGrad, [try c.g(), c.inputs[0], c.inputs[1]], c.node.attrs)[0], nil]
  }
}

extension GradientContext {
  /// The gradient of output 0 (a rule is only called when some output has one).
  func g() throws(GraphError) -> Value {
    guard let g = outputGradients[0] else {
      throw .graph("node %\(index) (\(node.op.rawValue)): gradient rule called without an output gradient")
    }
    return g
  }
}
