/// Data movement: concat, slice, reshape, transpose, broadcast, gathers and masks.
enum ShapeOps {
  static func axis(_ c: InferContext, rank: Int) throws(GraphError) -> Int {
    let a = try c.int("axis")
    guard a >= 0, a < rank else {
      throw .attribute(node: c.node, op: c.op, name: "axis", problem: "\(a) is outside rank \(rank)")
    }
    return a
  }

  /// `concat {axis}(x0, x1, ...)`: all dims but `axis` equal.
  static let concat = OpSpec(arity: 1...64, kernel: "mq_copy_blocks") { c throws(GraphError) in
    let first = c.inputs[0]
    let ax = try axis(c, rank: first.rank)
    var total = Dim(0)
    for (i, t) in c.inputs.enumerated() {
      var a = t.shape, b = first.shape
      if t.rank == first.rank { a[ax] = 0; b[ax] = 0 }
      if t.dtype != first.dtype || t.rank != first.rank || a != b {
        throw c.mismatch("concat input \(i) on axis \(ax)", expected: first.description, actual: t.description)
      }
      total += t.shape[ax]
    }
    var shape = first.shape
    shape[ax] = total
    return [TensorType(first.dtype, shape)]
  }

  /// `slice {axis, start, length}(x)`: `length` entries of `axis` from `start`.
  static let slice = OpSpec(arity: 1...1, kernel: "mq_copy_blocks") { c throws(GraphError) in
    let x = c.inputs[0]
    let ax = try axis(c, rank: x.rank)
    let start = try c.int("start")
    let length = try c.dim("length")
    if let n = x.shape[ax].constant, let l = length.constant, start + l > n || start < 0 {
      throw c.mismatch("slice [\(start), \(start)+\(l)) of axis \(ax)", expected: "within \(n)",
                       actual: x.description)
    }
    var shape = x.shape
    shape[ax] = length
    return [TensorType(x.dtype, shape)]
  }

  /// `reshape {shape}(x)`: same elements, new shape (a view).
  static let reshape = OpSpec(arity: 1...1, kernel: "view", isView: true) { c throws(GraphError) in
    let x = c.inputs[0]
    let shape = try c.dims("shape")
    let out = TensorType(x.dtype, shape)
    if out.elementCount != x.elementCount {
      throw c.mismatch("element count", expected: x.description, actual: out.description)
    }
    return [out]
  }

  /// `transpose(x [..., M, N])` -> `[..., N, M]`.
  static let transpose = OpSpec(arity: 1...1, kernel: "mq_transpose") { c throws(GraphError) in
    let x = try c.require(0, .f32, name: "x")
    guard x.rank >= 2 else { throw c.mismatch("rank", expected: "rank >= 2", actual: x.description) }
    var s = x.shape
    s.swapAt(x.rank - 1, x.rank - 2)
    return [.f32(s)]
  }

  /// `broadcast {shape}(x)`: repeat x (right-aligned; its dims 1 or equal) to `shape`.
  static let broadcast = OpSpec(arity: 1...1, kernel: "mq_copy_blocks") { c throws(GraphError) in
    let x = try c.require(0, .f32, name: "x")
    let shape = try c.dims("shape")
    let tail = Array(shape.suffix(x.rank))
    let ok = x.rank <= shape.count && zip(x.shape, tail).allSatisfy { $0 == $1 || $0 == Dim(1) }
    if !ok { throw c.mismatch("broadcast", expected: "\(shape)", actual: x.description) }
    return [.f32(shape)]
  }

  /// `embedding(table [Nv, E], ids [...])` -> `[..., E]`: rows of a table (fixed when it is an
  /// input; trained, with `embedding_grad`, when it is a param).
  static let embedding = OpSpec(arity: 2...2, kernel: "mq_embedding", nonDifferentiable: [1]) {
    c throws(GraphError) in
    let table = try c.require(0, .f32, rank: 2, name: "table")
    let ids = try c.require(1, .i32, name: "ids")
    return [.f32(ids.shape + [table.shape[1]])]
  }

  /// `pad_mask {pad}(ids)` -> f32 of the same shape: 1 where ids == pad.
  static let padMask = OpSpec(arity: 1...1, kernel: "mq_pad_mask", nonDifferentiable: [0]) {
    c throws(GraphError) in
    _ = try c.int("pad")
    let ids = try c.require(0, .i32, name: "ids")
    return [.f32(ids.shape)]
  }
}
