/// Elementwise ops. Binary ops take `b` equal-shaped or a broadcast suffix of `a`'s shape
/// (a bias row, a positional table over the batch).
enum Elementwise {
  static func binary(_ kernel: String) -> OpSpec {
    OpSpec(arity: 2...2, kernel: kernel, flops: { _, out in out[0].elementCount }) { c throws(GraphError) in
      let a = try c.require(0, .f32, name: "lhs")
      let b = try c.require(1, .f32, name: "rhs")
      let suffix = Array(a.shape.suffix(b.rank))
      if b.rank > a.rank || suffix != b.shape {
        throw c.mismatch("rhs must equal lhs or a suffix of its shape", expected: a.description,
                         actual: b.description)
      }
      return [a]
    }
  }

  /// `add_n(x0, x1, ..., xk)` -> `x0`'s type, all inputs of one type: ((x0 + x1) + x2) + ... in
  /// that order (a chain of adds, folded by `fuse-epilogues`: the gradient sums of shared weights).
  static let addN = OpSpec(arity: 2...64, kernel: "mq_add",
                           flops: { c, out in out[0].elementCount * Dim(c.inputs.count - 1) }) { c throws(GraphError) in
    let a = try c.require(0, .f32, name: "x0")
    for i in 1..<c.inputs.count where c.inputs[i] != a {
      throw c.mismatch("input \(i)", expected: a.description, actual: c.inputs[i].description)
    }
    return [a]
  }

  /// `affine {alpha, beta}`: alpha * x + beta.
  static let affine = OpSpec(arity: 1...1, kernel: "mq_affine",
                             flops: { _, out in out[0].elementCount * Dim(2) }) { c throws(GraphError) in
    _ = try c.float("alpha")
    _ = try c.float("beta")
    return [try c.require(0, .f32, name: "x")]
  }

  static func unary(_ kernel: String, flopsPerElement: Int) -> OpSpec {
    OpSpec(arity: 1...1, kernel: kernel,
           flops: { _, out in out[0].elementCount * Dim(flopsPerElement) }) { c throws(GraphError) in
      [try c.require(0, .f32, name: "x")]
    }
  }
}
