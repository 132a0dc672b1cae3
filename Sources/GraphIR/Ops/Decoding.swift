/// Incremental decoding: the key/value cache update with beam reordering, and top-k selection.
enum DecodingOps {
  /// `cache_update(cache [R, S, D], reorder i32 [R], row [R, 1, D], step i32 [1])` -> `[R, S, D]`:
  /// one decoding step's write into a key/value cache, with the beam reordering folded in.
  /// With `t = step[0]`: `out[r, j] = cache[reorder[r], j]` for `j < t`, `out[r, t] = row[r]`, and
  /// `out[r, j] = 0` for `j > t`. The output may share memory with `cache` when `reorder` is the
  /// identity (greedy decoding): the prefix is then not copied at all.
  static let cacheUpdate = OpSpec(
    arity: 4...4, kernel: "mq_cache_update", nonDifferentiable: [0, 1, 2, 3]
  ) { c throws(GraphError) in
    let cache = try c.require(0, .f32, rank: 3, name: "cache")
    let reorder = try c.require(1, .i32, rank: 1, name: "reorder")
    let row = try c.require(2, .f32, rank: 3, name: "row")
    let step = try c.require(3, .i32, rank: 1, name: "step")
    try c.requireEqual(reorder.shape[0], cache.shape[0], "reorder length against cache rows \(cache)")
    if row.shape != [cache.shape[0], Dim(1), cache.shape[2]] {
      throw c.mismatch("row against cache \(cache)", expected: "f32[\(cache.shape[0]), 1, \(cache.shape[2])]",
                       actual: row.description)
    }
    try c.requireEqual(step.shape[0], Dim(1), "step length")
    return [cache]
  }

  /// `top_k {k, log}(x [..., N])` -> `values [..., k]`, `indices i32 [..., k]`: the k largest
  /// entries of each last-axis row, best first (ties to the lower index, NaN last; no full sort).
  /// With `log`, the values are returned as their natural logarithms (log 0 = -inf). When
  /// k > N the slots past N hold -inf and index 0.
  static let topK = OpSpec(
    arity: 1...1, kernel: "mq_topk", nonDifferentiable: [0],
    flops: { c, _ in c.inputs[0].elementCount }
  ) { c throws(GraphError) in
    let x = try c.require(0, .f32, name: "x")
    guard x.rank >= 1 else { throw c.mismatch("x rank", expected: "rank >= 1", actual: x.description) }
    let k = try c.dim("k")
    if let kc = k.constant, kc < 1 {
      throw .attribute(node: c.node, op: c.op, name: "k", problem: "must be >= 1, got \(kc)")
    }
    if c.attrs["log"] != nil { _ = try c.bool("log") }
    let shape = Array(x.shape.dropLast()) + [k]
    return [.f32(shape), .i32(shape)]
  }
}
