@testable import GraphIR

/// Graphs the GraphIR tests share.
enum Fixtures {
  static let B = Dim.sym("B"), Tc = Dim.sym("Tc"), Tq = Dim.sym("Tq"), Ta = Dim.sym("Ta")
  static let N = Dim.sym("N"), Nv = Dim.sym("Nv")

  /// A small MQAN-shaped graph that uses every op in `OpKind.allCases` (the scan's body holds the
  /// LSTM cell; a nested scan exercises indentation of bodies inside bodies).
  static func everyOp() throws -> Graph {
    let b = GraphBuilder(name: "every_op")
    let ctx = try b.input("context", .i32, [B, Tc])
    let q = try b.input("question", .i32, [B, Tq])
    let ans = try b.input("answer", .i32, [B, Ta])
    let clen = try b.input("context_lengths", .i32, [B])
    let table = try b.input("embeddings", .f32, [Nv, 8])
    let w = try b.param("encoder_embeddings.projection.linear.weight", [4, 8])
    let bias = try b.param("encoder_embeddings.projection.linear.bias", [4])
    let ec = try b.embedding(table, ctx)
    let eq = try b.embedding(table, q)
    let pc = try b.linear(ec, w, bias)
    let pq = try b.linear(eq, w)
    let pe = try b.positionalEncoding(Tc, 4)
    let x1 = try b.add(pc, pe)
    let x2 = try b.sub(x1, pc)
    let x3 = try b.mul(x2, bias)
    let x4 = try b.affine(x3, alpha: 0.5, beta: -1e10)
    let x5 = try b.relu(b.sigmoid(b.tanh(x4)))
    let mask = try b.padMask(ctx, pad: 1)
    let scores = try b.matmul(pq, x5, transB: true)
    let att = try b.softmax(scores, mask: mask, scale: 0.5, fill: -.infinity, eps: 1e-10)
    let cv = try b.matmul(att, x5)
    let cat = try b.concat([pq, cv], axis: -1)
    let sl = try b.slice(cat, axis: 1, start: 1, length: Tq - 1)
    let tr = try b.transpose(b.reshape(sl, [B * Tq - B, 8]))
    let bc = try b.broadcast(bias, to: [B, Tq, 4])
    let mh = try b.attention(q: pq, k: x5, v: x5, keyPadding: mask, heads: 3, scale: 0.5, causal: true)
    let gamma = try b.param("norm.gamma", [4]), beta = try b.param("norm.beta", [4])
    let ln = try b.layerNorm(b.add(mh, bc), gamma: gamma, beta: beta, eps: 1e-6)
    let h0 = try b.zeros([B, 4]), c0 = try b.zeros([B, 4])
    let wl = try b.param("rnn.weight_ih_l0", [16, 8]), bl = try b.param("rnn.bias_ih_l0", [16])
    let (carries, ys) = try b.scan(name: "lstm_bwd", seqs: [x5], carries: [h0, c0], consts: [wl, bl],
                                   lengths: clen, reverse: true) { (body, s) throws(GraphError) in
      let xh = try body.concat([s.seqs[0], s.carries[0]], axis: 1)
      let gates = try body.linear(xh, s.consts[0], s.consts[1])
      let (h, c) = try body.lstmCell(gates: gates, c: s.carries[1])
      // A nested scan over a [B, 2, 4] view of h, to print a body inside a body.
      let hs = try body.reshape(body.concat([h, h], axis: 1), [B, 2, 4])
      let (_, inner) = try body.scan(name: "inner", seqs: [hs], carries: []) { (ib, t) throws(GraphError) in
        ([], [try ib.tanh(t.seqs[0])])
      }
      let y = try body.add(h, body.reshape(body.slice(inner[0], axis: 1, start: 0, length: 1), [B, 4]))
      return ([h, c], [y])
    }
    // Output layer: vocabulary distribution, switches, pointer mixture and loss.
    let V: Dim = 10
    let wv = try b.param("out.weight", [V, 4])
    let yt = try b.linear(b.embedding(table, ans), w)
    let pv = try b.softmax(b.linear(yt, wv))
    let wg = try b.param("switch.weight", [1, 4])
    let gsw = try b.sigmoid(b.linear(yt, wg))
    let lsw = try b.affine(gsw, alpha: -1, beta: 1)
    let ac = try b.softmax(b.matmul(yt, x5, transB: true))
    let aq = try b.softmax(b.matmul(yt, pq, transB: true))
    let mix = try b.node(.mixture, [pv, gsw, lsw, ac, ctx, aq, q], ["extended": .dim(V + N)])[0]
    let loss = try b.node(.nllLoss, [mix, ans], ["ignore": .int(1)])[0]
    // Backward ops, as autodiff's gradient rules emit them.
    let one = try b.affine(b.zeros([]), alpha: 0, beta: 1)
    let dmix = try b.node(.nllLossGrad, [one, mix, ans], ["ignore": .int(1)])[0]
    let mg = try b.node(.mixtureGrad, [dmix, pv, gsw, lsw, ac, ctx, aq, q])
    let dpv = try b.node(.softmaxGrad, [mg[0], pv], ["scale": .float(1), "eps": .float(0)])[0]
    let dyt = try b.node(.linearGradInput, [dpv, wv])[0]
    let dwv = try b.node(.linearGradWeight, [dpv, yt])[0]
    let dsw = try b.node(.sigmoidGrad, [mg[1], gsw])[0]
    let dx4 = try b.node(.reluGrad, [b.node(.tanhGrad, [x4, x4])[0], x4])[0]
    let dbias = try b.node(.sumTo, [dx4], ["shape": .dims([4])])[0]
    let dcat = try b.node(.sliceGrad, [sl], ["axis": .int(1), "start": .int(1), "full": .dim(Tq)])[0]
    let datt = try b.node(.attentionGrad, [mh, pq, x5, x5, mask], ["heads": .int(3), "scale": .float(0.5),
                                                                    "fill": .float(-1e10), "causal": .bool(true)])
    let dln = try b.node(.layerNormGrad, [ln, mh, gamma], ["eps": .float(1e-6)])
    let dcell = try b.node(.lstmCellGrad, [h0, c0, b.zeros([B, 16]), h0, c0])
    let live = try b.node(.lengthMask, [clen], ["length": .dim(Tc)])[0]
    let dtable = try b.node(.embeddingGrad, [ec, ctx], ["rows": .dim(Nv)])[0]
    let seed = try b.input("dropout_seed", .i32, [1])
    let dmask = try b.node(.dropoutMask, [seed], ["p": .float(0.2), "salt": .int(3), "shape": .dims([B, Tc, 4])])[0]
    // Incremental decoding: a cache of Ta slots for B rows, and the best 2 of the mixture.
    let cache = try b.input("cache", .f32, [B, Ta, 4])
    let step = try b.input("step", .i32, [1])
    let rows = try b.input("reorder", .i32, [B])
    let updated = try b.node(.cacheUpdate, [cache, rows, b.slice(x4, axis: 1, start: 0, length: 1), step])[0]
    let top = try b.node(.topK, [mix], ["k": .dim(2), "log": .bool(true)])
    let fusedTop = try b.node(.mixtureTopK, [b.reshape(pv, [B * Ta, V]), gsw, lsw, ac, ctx, aq, q],
                              ["extended": .dim(V + N), "k": .dim(3), "log": .bool(false)])
    try b.output("fused.ids", fusedTop[1])
    // Over a vocabulary shortlist of 3 words: the scatter among -inf, and the fused layer on 3 logits.
    let shortlist = try b.input("shortlist", .i32, [Dim(3)])
    let three = try b.slice(b.reshape(pv, [B * Ta, V]), axis: 1, start: 0, length: 3)
    try b.output("scattered", b.node(.scatterColumns, [three, shortlist], ["columns": .dim(V), "fill": .float(-.infinity)])[0])
    let shortTop = try b.node(.mixtureTopK, [three, gsw, lsw, ac, ctx, aq, q, shortlist],
                              ["extended": .dim(V + N), "k": .dim(3), "log": .bool(false), "vocab": .dim(V)])
    try b.output("shortlisted.ids", shortTop[1])
    let fusedLoss = try b.node(.mixtureNll, [b.reshape(pv, [B * Ta, V]), gsw, lsw, ac, ctx, aq, q, ans],
                               ["extended": .dim(V + N), "ignore": .int(1)])
    let fusedGrad = try b.node(.mixtureNllGrad, [one, b.reshape(pv, [B * Ta, V]), gsw, lsw, ac, ctx, aq, q, ans,
                                                 fusedLoss[1]], ["ignore": .int(1)])
    try b.output("fused.loss", fusedLoss[0])
    try b.output("sum3", b.node(.addN, [x1, x2, x3])[0])
    try b.output("fused.dlogits", fusedGrad[0])
    try b.output("cache", updated)
    try b.output("top.logp", top[0])
    try b.output("top.ids", top[1])
    for (name, v) in [("d.yt", dyt), ("d.wv", dwv), ("d.switch", dsw), ("d.bias", dbias), ("d.cat", dcat),
                      ("d.q", datt[0]), ("d.gamma", dln[1]), ("d.gates", dcell[0]), ("live", live),
                      ("d.table", dtable), ("d.ac", mg[3]), ("dropped", try b.mul(x4, dmask))] {
      try b.output(name, v)
    }
    try b.output("loss", loss)
    try b.output("final.h", carries[0])
    try b.output("final c", carries[1])
    try b.output("transposed", tr)
    try b.output("norm", ln)
    try b.output("context_attention", att)
    try b.output("states", ys[0])
    return b.finish()
  }

  /// `%0 = input x f32[B, 4]`, `%1 = param w [3, 4]`, `%2 = linear`, `%3 = tanh`, output y.
  static func tiny() throws -> Graph {
    let b = GraphBuilder(name: "tiny")
    let x = try b.input("x", .f32, [B, 4])
    let w = try b.param("w", [3, 4])
    try b.output("y", b.tanh(b.linear(x, w)))
    return b.finish()
  }

  /// Every op used in a graph, through scan bodies.
  static func ops(_ g: Graph) -> Set<OpKind> {
    var out = Set<OpKind>()
    for n in g.nodes {
      out.insert(n.op)
      for case .graph(let body) in n.attrs.values { out.formUnion(ops(body)) }
    }
    return out
  }
}
