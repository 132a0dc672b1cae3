/// Ops with no inputs: graph inputs, weights, constants.
enum Sources {
  static func declared(_ c: InferContext, defaultType: DType) throws(GraphError) -> [TensorType] {
    let shape = try c.dims("shape")
    var dtype = defaultType
    if let s = c.attrs.string("dtype") {
      guard let d = DType(rawValue: s) else {
        throw .attribute(node: c.node, op: c.op, name: "dtype", problem: "unknown dtype \(s)")
      }
      dtype = d
    }
    return [TensorType(dtype, shape)]
  }

  /// `input {name, dtype, shape}`: a tensor fed at run time (ids, lengths, the embedding table).
  static let input = OpSpec(arity: 0...0, kernel: "feed") { c throws(GraphError) in
    _ = try c.string("name")
    return try declared(c, defaultType: .f32)
  }
  /// `param {name, shape}`: a trained weight, named by its decaNLP state_dict key.
  static let param = OpSpec(arity: 0...0, kernel: "weight") { c throws(GraphError) in
    _ = try c.string("name")
    return try declared(c, defaultType: .f32)
  }
  /// `zeros {shape}`: an f32 tensor of zeros (initial states).
  static let zeros = OpSpec(arity: 0...0, kernel: "mq_fill") { c throws(GraphError) in
    try declared(c, defaultType: .f32)
  }
  /// `dropout_mask {p, salt, shape}(seed i32[1])`: 1/(1-p) where kept, 0 where dropped, a pure
  /// function of (seed, salt, element); multiplying by it is decaNLP's inverted dropout. The seed
  /// changes every training step; `salt` tells the sites apart.
  static let dropoutMask = OpSpec(arity: 1...1, kernel: "mq_dropout_mask", nonDifferentiable: [0],
                                  flops: { _, out in out[0].elementCount * Dim(4) }) { c throws(GraphError) in
    _ = try c.require(0, .i32, rank: 1, name: "seed")
    let p = try c.float("p")
    guard p >= 0, p < 1 else { throw .attribute(node: c.node, op: c.op, name: "p", problem: "must be in [0, 1), got \(p)") }
    _ = try c.int("salt")
    return [.f32(try c.dims("shape"))]
  }

  /// `positional_encoding {shape: [T, D]}`: decaNLP's interleaved sin/cos table.
  static let positionalEncoding = OpSpec(
    arity: 0...0, kernel: "mq_positional_encoding",
    flops: { _, out in out[0].elementCount * Dim(4) }
  ) { c throws(GraphError) in
    let shape = try c.dims("shape")
    guard shape.count == 2 else {
      throw .attribute(node: c.node, op: c.op, name: "shape", problem: "must be [T, D]")
    }
    return [.f32(shape)]
  }
}
