/// MQAN's output layer: the dual pointer-generator mixture and the token-level NLL loss.
enum OutputOps {
  /// `mixture {extended}(pvocab [B, T, V], gamma [B, T, 1], lambda [B, T, 1], ac [B, T, Lc],
  /// cids [B, Lc], aq [B, T, Lq], qids [B, Lq])` -> `[B, T, extended]`:
  /// gamma * pvocab, 1e-10 in the OOV slots, plus scatter-adds of the two pointer distributions.
  static let mixture = OpSpec(
    arity: 7...7, kernel: "mq_pointer_mixture", nonDifferentiable: [4, 6],
    flops: { c, out in
      out[0].elementCount + c.inputs[3].elementCount * Dim(3) + c.inputs[5].elementCount * Dim(3)
    }
  ) { c throws(GraphError) in
    let pv = try c.require(0, .f32, rank: 3, name: "pvocab")
    let ext = try c.dim("extended")
    let bt = [pv.shape[0], pv.shape[1]]
    for (i, name) in [(1, "gamma"), (2, "lambda")] {
      let t = try c.require(i, .f32, rank: 3, name: name)
      if t.shape != bt + [1] { throw c.mismatch(name, expected: "f32\(bt + [1])", actual: t.description) }
    }
    for (a, ids, name) in [(3, 4, "context"), (5, 6, "question")] {
      let at = try c.require(a, .f32, rank: 3, name: "\(name) attention")
      let it = try c.require(ids, .i32, rank: 2, name: "\(name) ids")
      if Array(at.shape.prefix(2)) != bt || it.shape != [pv.shape[0], at.shape[2]] {
        throw c.mismatch("\(name) attention and ids", expected: "[B, T, L] and [B, L] with B, T of \(pv)",
                         actual: "\(at) and \(it)")
      }
    }
    return [.f32(bt + [ext])]
  }

  /// `nll_loss {ignore}(P [B, T, X], targets [B, T])` -> `f32[]`: mean of -log P[target] over the
  /// positions whose target is not `ignore` (decaNLP's mask + F.nll_loss(P.log())).
  static let nllLoss = OpSpec(
    arity: 2...2, kernel: "mq_nll", nonDifferentiable: [1],
    flops: { c, _ in c.inputs[1].elementCount * Dim(2) }
  ) { c throws(GraphError) in
    let p = try c.require(0, .f32, rank: 3, name: "P")
    let t = try c.require(1, .i32, rank: 2, name: "targets")
    _ = try c.int("ignore")
    if Array(p.shape.prefix(2)) != t.shape {
      throw c.mismatch("targets against P's [B, T]", expected: "\(p)", actual: t.description)
    }
    return [.f32([])]
  }

  /// `mixture_nll {ignore, extended}(logits [..., V], gamma [B, T, 1], lambda [B, T, 1],
  /// ac [B, T, Lc], cids [B, Lc], aq [B, T, Lq], qids [B, Lq], targets [B, T])` -> `loss f32[]`,
  /// `stats [B, T, 3]`: `nll_loss(mixture(softmax(logits), ...), targets)` without the
  /// `[B, T, V]` probabilities or the `[B, T, extended]` mixture (the logits' rows are the B * T
  /// positions); `stats` (max, sum of exps, P[target] per position) is what the backward needs.
  /// The train plan's loss after `fuse-loss`.
  static let mixtureNll = OpSpec(
    arity: 8...8, kernel: "mq_mixture_nll", nonDifferentiable: [4, 6, 7],
    flops: { c, _ in c.inputs[0].elementCount * Dim(6) }
  ) { c throws(GraphError) in
    let logits = try c.require(0, .f32, name: "logits")
    guard let v = logits.shape.last else { throw c.mismatch("logits rank", expected: "rank >= 1", actual: logits.description) }
    let g = c.inputs[1]
    let pv = TensorType.f32([g.shape.first ?? 0, g.shape.dropFirst().first ?? 0, v])
    let mixed = try mixture.infer(InferContext(node: c.node, op: .mixture, inputs: [pv] + Array(c.inputs[1...6]),
                                               attrs: c.attrs))
    let bt = Array(mixed[0].shape.prefix(2))
    try c.requireEqual(logits.shape.dropLast().reduce(Dim(1)) { $0 * $1 }, bt[0] * bt[1], "logits rows against B * T")
    let targets = try c.require(7, .i32, rank: 2, name: "targets")
    if targets.shape != bt { throw c.mismatch("targets", expected: "i32\(bt)", actual: targets.description) }
    _ = try c.int("ignore")
    return [.f32([]), .f32(bt + [3])]
  }
}
