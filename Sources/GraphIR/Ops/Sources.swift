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
