/// Recurrences: the LSTM gate update and `scan`, whose body is a graph run once per time step.
enum Recurrence {
  /// `lstm_cell(gates [B, 4H], c [B, H])` -> `h' [B, H], c' [B, H]` (PyTorch gate order i, f, g, o).
  static let lstmCell = OpSpec(
    arity: 2...2, kernel: "mq_lstm_cell",
    flops: { _, out in out[0].elementCount * Dim(30) }
  ) { c throws(GraphError) in
    let g = try c.require(0, .f32, rank: 2, name: "gates")
    let cell = try c.require(1, .f32, rank: 2, name: "c")
    try c.requireEqual(g.shape[0], cell.shape[0], "batch dim of c against gates \(g)")
    try c.requireEqual(g.shape[1], cell.shape[1] * Dim(4), "gates width against 4 x c's width \(cell)")
    return [cell, cell]
  }

  /// Input layout of a scan node: seqs, initial carries, loop-invariant consts, optional lengths.
  public struct Layout: Sendable {
    public var nseq: Int, ncarry: Int, nconst: Int, masked: Bool
    public var seqs: Range<Int> { 0..<nseq }
    public var carries: Range<Int> { nseq..<(nseq + ncarry) }
    public var consts: Range<Int> { (nseq + ncarry)..<(nseq + ncarry + nconst) }
    public var lengths: Int? { masked ? nseq + ncarry + nconst : nil }
  }

  static func layout(_ c: InferContext) throws(GraphError) -> Layout {
    let nseq = try c.int("nseq"), ncarry = try c.int("ncarry")
    let masked = c.attrs.bool("masked") ?? false
    let nconst = c.inputs.count - nseq - ncarry - (masked ? 1 : 0)
    guard nseq >= 1, ncarry >= 0, nconst >= 0 else {
      throw .arity(node: c.node, op: c.op, expected: "nseq >= 1 sequences + ncarry carries", actual: c.inputs.count)
    }
    return Layout(nseq: nseq, ncarry: ncarry, nconst: nconst, masked: masked)
  }

  /// `scan {nseq, ncarry, nacc?, reverse, masked, body}(seqs..., carries..., consts..., lengths?)`.
  ///
  /// Sequences are `[B, T, ...]`; step t's body gets `seq[:, t]`, the carries and the consts, and
  /// returns the new carries then the step outputs. The scan returns the final carries then each
  /// step output stacked to `[B, T, ...]`. With `masked`, lengths `[B]` (i32) freeze a row's
  /// carries and zero its outputs at steps t >= length (PyTorch packed-sequence semantics; a
  /// `reverse` scan then starts each row at its own last token). The last `nacc` carries are
  /// accumulators (autodiff's gradient sums over time): any shape, never masked.
  static let scan = OpSpec(
    arity: 1...64, kernel: "scan", nonDifferentiable: [],
    flops: { c, _ in
      guard let body = c.attrs.graph("body"), let t = c.inputs.first?.shape.dropFirst().first else { return 0 }
      return body.cost().flops * t
    }
  ) { c throws(GraphError) in
    let l = try layout(c)
    guard let body = c.attrs.graph("body") else {
      throw .attribute(node: c.node, op: c.op, name: "body", problem: "missing")
    }
    _ = c.attrs.bool("reverse")
    let seq0 = c.inputs[0]
    guard seq0.rank >= 2 else { throw c.mismatch("sequence 0 rank", expected: "[B, T, ...]", actual: seq0.description) }
    let batch = seq0.shape[0], time = seq0.shape[1]
    var expectedInputs: [TensorType] = []
    for i in l.seqs {
      let s = c.inputs[i]
      guard s.rank >= 2, s.shape[0] == batch, s.shape[1] == time else {
        throw c.mismatch("sequence \(i)", expected: "[\(batch), \(time), ...]", actual: s.description)
      }
      var step = s.shape
      step.remove(at: 1)
      expectedInputs.append(TensorType(s.dtype, step))
    }
    for i in l.carries { expectedInputs.append(c.inputs[i]) }
    for i in l.consts { expectedInputs.append(c.inputs[i]) }
    if let li = l.lengths {
      let len = try c.require(li, .i32, rank: 1, name: "lengths")
      try c.requireEqual(len.shape[0], batch, "lengths against the batch dim")
    }
    let bodyInputs = body.inputNodes
    guard bodyInputs.count == expectedInputs.count else {
      throw c.mismatch("body inputs", expected: "\(expectedInputs.count)", actual: "\(bodyInputs.count)")
    }
    for (k, n) in bodyInputs.enumerated() where body.nodes[n].types[0] != expectedInputs[k] {
      throw c.mismatch("body input \(k)", expected: expectedInputs[k].description,
                       actual: body.nodes[n].types[0].description)
    }
    guard body.outputs.count >= l.ncarry else {
      throw c.mismatch("body outputs", expected: ">= \(l.ncarry) (the carries)", actual: "\(body.outputs.count)")
    }
    var result: [TensorType] = []
    for (k, o) in body.outputs.enumerated() {
      let t = body.type(of: o.value)
      if k < l.ncarry {
        let carry = c.inputs[l.carries.lowerBound + k]
        if t != carry { throw c.mismatch("body carry output \(k)", expected: carry.description, actual: t.description) }
        result.append(t)
      } else {
        guard t.rank >= 1, t.shape[0] == batch else {
          throw c.mismatch("body step output \(k)", expected: "[\(batch), ...]", actual: t.description)
        }
        var s = t.shape
        s.insert(time, at: 1)
        result.append(TensorType(t.dtype, s))
      }
    }
    return result
  }
}
