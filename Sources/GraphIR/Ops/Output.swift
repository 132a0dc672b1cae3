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
}
