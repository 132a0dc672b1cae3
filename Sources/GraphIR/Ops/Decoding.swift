/// Incremental decoding: the key/value cache update with beam reordering, and top-k selection.
enum DecodingOps {
  /// `cache_update(cache [R, S, D], reorder i32 [R], row [R, 1, D], step i32 [1] or [R])` -> `[R, S, D]`:
  /// one decoding step's write into a key/value cache, with the beam reordering folded in.
  /// With `t` = row r's step (`step[0]` for every row, or `step[r]`: rows at different positions,
  /// as a server's): `out[r, j] = cache[reorder[r], j]` for `j < t`, `out[r, t] = row[r]`, and
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
    if step.shape[0] != Dim(1) { try c.requireEqual(step.shape[0], cache.shape[0], "step length (1 or the rows)") }
    return [cache]
  }

  /// `scatter_columns {columns, fill}(x [..., S], ids i32 [S])` -> `[..., columns]`: each row's
  /// S values placed at columns `ids` (distinct, in `0 ..< columns`), every other column `fill`.
  /// Decoding's vocabulary shortlist: the output layer computes the logits of S words, placed
  /// among -inf for the rest, so the softmax and mixture after it are exact over those S words.
  static let scatterColumns = OpSpec(
    arity: 2...2, kernel: "mq_scatter_columns", nonDifferentiable: [0, 1],
    flops: { c, _ in c.inputs[0].elementCount }
  ) { c throws(GraphError) in
    let x = try c.require(0, .f32, name: "x")
    let ids = try c.require(1, .i32, rank: 1, name: "ids")
    guard let s = x.shape.last else { throw c.mismatch("x rank", expected: "rank >= 1", actual: x.description) }
    try c.requireEqual(ids.shape[0], s, "ids length against the last axis of \(x)")
    if c.attrs["fill"] != nil { _ = try c.float("fill") }
    return [.f32(Array(x.shape.dropLast()) + [try c.dim("columns")])]
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

  /// `mixture_top_k {extended, k, log}(logits [..., V], gamma [B, T, 1], lambda [B, T, 1],
  /// ac [B, T, Lc], cids [B, Lc], aq [B, T, Lq], qids [B, Lq])` -> `values [B, T, k]`,
  /// `indices i32 [B, T, k]`: `top_k(mixture(softmax(logits), ...))` in one pass per row, never
  /// writing the `[B, T, extended]` mixture (the logits' rows are the B * T positions). The
  /// decode-step plan's output layer after `fuse-output`.
  ///
  /// With an eighth input `shortlist i32 [N]` and attribute `vocab` (V): the logits are `[..., N]`,
  /// column s the word `shortlist[s]`; the softmax is over those N words, what the pointers copy
  /// is unchanged, and the other words are not candidates (`top_k` of the mixture of the softmax
  /// scattered among -inf, without the scatter).
  static let mixtureTopK = OpSpec(
    arity: 7...8, kernel: "mq_mixture_topk", nonDifferentiable: Set(0...7),
    flops: { c, _ in c.inputs[0].elementCount * Dim(8) + c.inputs[3].elementCount * Dim(3) + c.inputs[5].elementCount * Dim(3) }
  ) { c throws(GraphError) in
    let logits = try c.require(0, .f32, name: "logits")
    guard let n = logits.shape.last else { throw c.mismatch("logits rank", expected: "rank >= 1", actual: logits.description) }
    var v = n
    if c.inputs.count == 8 {
      let ids = try c.require(7, .i32, rank: 1, name: "shortlist")
      try c.requireEqual(ids.shape[0], n, "shortlist length against the logits' last axis \(logits)")
      v = try c.dim("vocab")
    }
    let types = try OutputOps.mixture.infer(InferContext(
      node: c.node, op: .mixture, inputs: [.f32([c.inputs[1].shape.first ?? 0, c.inputs[1].shape.dropFirst().first ?? 0, v])]
        + Array(c.inputs.dropFirst().prefix(6)), attrs: c.attrs))
    let bt = Array(types[0].shape.prefix(2))
    let rows = logits.shape.dropLast().reduce(Dim(1)) { $0 * $1 }
    try c.requireEqual(rows, bt[0] * bt[1], "logits rows against gamma's B * T")
    let k = try c.dim("k")
    if let kc = k.constant, kc < 1 {
      throw .attribute(node: c.node, op: c.op, name: "k", problem: "must be >= 1, got \(kc)")
    }
    if c.attrs["log"] != nil { _ = try c.bool("log") }
    return [.f32(bt + [k]), .i32(bt + [k])]
  }
}
