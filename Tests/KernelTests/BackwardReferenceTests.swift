// Backward kernels against their `_ref` twins on random and odd shapes, and a split row (or
// column) range against the whole range. Legend as in ckernels.h: g = upstream gradient,
// y = forward output; multi-output kernels write into one concatenated buffer.
import CKernels
import Testing

typealias ActivationBackward = (
  UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64
) -> Void

@Suite struct BackwardReferenceTests {
  @Test(arguments: [1, 7, 33, 1000])
  func activationsMatchReference(n: Int) {
    var rng = SplitMix64(seed: UInt64(n))
    let x = randomFloats(n, &rng, in: -4...4), g = randomFloats(n, &rng, in: -2...2)
    let tanhY = x.map { Float(dtanh(Double($0))) }
    let sigY = x.map { Float(1 / (1 + dexp(-Double($0)))) }
    var reluY = x.map { max($0, 0) }
    reluY[0] = 0 // an exact zero output gets no gradient
    let cases: [(String, [Float], ActivationBackward, ActivationBackward)] = [
      ("tanh", tanhY, mq_tanh_backward, mq_tanh_backward_ref),
      ("sigmoid", sigY, mq_sigmoid_backward, mq_sigmoid_backward_ref),
      ("relu", reluY, mq_relu_backward, mq_relu_backward_ref),
    ]
    for (name, y, opt, ref) in cases {
      let want = runFull(count: n, rows: n) { ref($0, g, y, $1, $2) }
      let got = fullAndSplit([Float](repeating: sentinel, count: n), rows: n, split: n / 3) { opt($0, g, y, $1, $2) }
      expectBitwise(got.full, want, "\(name) n=\(n)")
      expectBitwise(got.split, want, "\(name) split n=\(n)")
      var inPlace = g // dx == g
      inPlace.withUnsafeMutableBufferPointer { opt($0.baseAddress, $0.baseAddress, y, 0, Int64(n)) }
      expectBitwise(inPlace, want, "\(name) in place")
    }
    #expect(runFull(count: 3, rows: 3) { mq_relu_backward($0, [1, 2, 3], [0, -1, 0.5], $1, $2) } == [0, 0, 3])
  }

  @Test(arguments: [(1, 1), (7, 3), (33, 300), (1000, 13)])
  func sumRowsMatchesReference(rows: Int, width: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 7 + width))
    let g = randomFloats(rows * width, &rng)
    let want = runFull(count: width, rows: width) { mq_sum_rows_ref($0, g, Int64(rows), Int64(width), $1, $2) }
    let got = fullAndSplit([Float](repeating: sentinel, count: width), rows: width, split: width / 2 + 1) {
      mq_sum_rows($0, g, Int64(rows), Int64(width), $1, $2)
    }
    expectBitwise(got.full, want, "sum_rows \(rows)x\(width)")
    expectBitwise(got.split, want, "sum_rows split")
    let exact = (0..<width).map { j in Float((0..<rows).reduce(0.0) { $0 + Double(g[$1 * width + j]) }) }
    expectBitwise(want, exact, "sum_rows in double, rows in order")
  }

  @Test func lengthMaskAndEmbeddingBackward() {
    let lengths: [Int32] = [0, 3, 5, 1]
    let want: [Float] = [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    let got = fullAndSplit([Float](repeating: sentinel, count: 20), rows: 4, split: 1) { mq_length_mask($0, lengths, 5, $1, $2) }
    #expect(got.full == want && got.split == want)
    #expect(runFull(count: 20, rows: 4) { mq_length_mask_ref($0, lengths, 5, $1, $2) } == want)

    for (vocab, n, e) in [(1, 1, 1), (11, 17, 5), (40, 300, 33)] {
      var rng = SplitMix64(seed: UInt64(vocab * n + e))
      let g = randomFloats(n * e, &rng)
      var ids = randomIds(n, below: Int32(vocab), &rng)
      if n > 2 { ids[1] = ids[0]; ids[2] = ids[0] } // repeats add up
      let ref = runFull(count: vocab * e, rows: vocab) { mq_embedding_backward_ref($0, g, ids, Int64(n), Int64(e), $1, $2) }
      let opt = fullAndSplit([Float](repeating: sentinel, count: vocab * e), rows: vocab, split: vocab / 3) {
        mq_embedding_backward($0, g, ids, Int64(n), Int64(e), $1, $2)
      }
      expectBitwise(opt.full, ref, "embedding_backward \(vocab) \(n) \(e)")
      expectBitwise(opt.split, ref, "embedding_backward split")
      var sums = [Float](repeating: 0, count: vocab * e)
      for i in 0..<n { for c in 0..<e { sums[Int(ids[i]) * e + c] += g[i * e + c] } }
      expectBitwise(ref, sums, "embedding_backward scatter-add in order")
    }
  }

  @Test(arguments: [(1, 1, 1), (2, 3, 7), (3, 5, 33), (2, 3, 1000)])
  func softmaxBackwardMatchesReference(batch: Int, q: Int, n: Int) {
    var rng = SplitMix64(seed: UInt64(batch * 100 + n))
    let rows = batch * q
    let x = randomFloats(rows * n, &rng, in: -4...4), g = randomFloats(rows * n, &rng)
    let mask = (0..<(batch * n)).map { j -> Float in j % n != 0 && j % 3 == 1 ? 1 : 0 }
    for (fill, eps, causal) in [(Float(-1e10), Float(0), Int32(0)), (-.infinity, 1e-10, 1)] {
      var y = [Float](repeating: 0, count: rows * n)
      mq_masked_softmax(&y, x, mask, Int64(q), Int64(n), 0.5, fill, eps, causal, 0, 0, Int64(rows))
      let want = runFull(count: rows * n, rows: rows) { mq_softmax_backward_ref($0, g, y, Int64(n), 0.5, eps, $1, $2) }
      let got = fullAndSplit([Float](repeating: sentinel, count: rows * n), rows: rows, split: rows / 2) {
        mq_softmax_backward($0, g, y, Int64(n), 0.5, eps, $1, $2)
      }
      expectClose(got.full, want, rtol: 1e-5, atol: 1e-7, "softmax_backward \(rows)x\(n) eps \(eps)")
      expectBitwise(got.split, got.full, "softmax_backward split")
      for r in 0..<rows { // masked entries get exactly 0
        for j in 0..<n where mask[(r / q) * n + j] != 0 { #expect(got.full[r * n + j] == 0) }
      }
    }
  }

  @Test(arguments: [(1, 2), (5, 7), (17, 33), (4, 200)])
  func layerNormBackwardMatchesReference(rows: Int, d: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 31 + d))
    var x = randomFloats(rows * d, &rng, in: -3...5)
    for j in 0..<d { x[j] = 0.75 } // a constant row: std = 0
    let g = randomFloats(rows * d, &rng), gamma = randomFloats(d, &rng, in: 0.5...1.5)
    let n = rows * d
    let call = { (f: @escaping LayerNormBackward) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in f(o, o + n, g, x, gamma, Int64(d), 1e-6, r0, r1) }
    }
    let want = runFull(count: n + 2 * rows, rows: rows, call(mq_layernorm_backward_ref))
    let got = fullAndSplit([Float](repeating: sentinel, count: n + 2 * rows), rows: rows, split: rows / 2, call(mq_layernorm_backward))
    expectClose(Array(got.full[..<n]), Array(want[..<n]), rtol: 1e-4, atol: 1e-5, "layernorm dx \(rows)x\(d)")
    expectClose(Array(got.full[n...]), Array(want[n...]), rtol: 1e-6, atol: 0, "layernorm stats")
    expectBitwise(got.split, got.full, "layernorm_backward split")
    var inPlace = g // dx == g
    inPlace.withUnsafeMutableBufferPointer {
      mq_layernorm_backward($0.baseAddress, nil, $0.baseAddress, x, gamma, Int64(d), 1e-6, 0, Int64(rows))
    }
    expectBitwise(inPlace, Array(got.full[..<n]), "layernorm_backward in place")

    let stats = Array(want[n...])
    let params = { (f: @escaping LayerNormParams) in
      { (o: UnsafeMutablePointer<Float>, c0: Int64, c1: Int64) in f(o, o + d, g, x, stats, Int64(rows), Int64(d), c0, c1) }
    }
    let pWant = runFull(count: 2 * d, rows: d, params(mq_layernorm_backward_params_ref))
    let pGot = fullAndSplit([Float](repeating: sentinel, count: 2 * d), rows: d, split: d / 2 + 1, params(mq_layernorm_backward_params))
    expectBitwise(pGot.full, pWant, "layernorm params")
    expectBitwise(pGot.split, pWant, "layernorm params split")
  }

  @Test(arguments: [(1, 1), (3, 7), (17, 33), (2, 200)])
  func lstmCellBackwardMatchesReference(batch: Int, hidden: Int) {
    var rng = SplitMix64(seed: UInt64(batch * 100 + hidden))
    let n = batch * hidden
    let gates = randomFloats(4 * n, &rng, in: -4...4), cPrev = randomFloats(n, &rng, in: -2...2)
    let dh = randomFloats(n, &rng), dc = randomFloats(n, &rng)
    var h = [Float](repeating: 0, count: n), cNew = [Float](repeating: 0, count: n)
    mq_lstm_cell(&h, &cNew, gates, cPrev, Int64(hidden), 0, Int64(batch))
    let call = { (f: @escaping LSTMBackward) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in f(o, o + 4 * n, dh, dc, gates, cPrev, cNew, Int64(hidden), r0, r1) }
    }
    let want = runFull(count: 5 * n, rows: batch, call(mq_lstm_cell_backward_ref))
    let got = fullAndSplit([Float](repeating: sentinel, count: 5 * n), rows: batch, split: batch / 2, call(mq_lstm_cell_backward))
    expectClose(got.full, want, rtol: 1e-5, atol: 1e-6, "lstm backward B=\(batch) H=\(hidden)")
    expectBitwise(got.split, got.full, "lstm backward split")
    var dgates = [Float](repeating: 0, count: 4 * n), dcInPlace = dc // dc_prev == dc
    dcInPlace.withUnsafeMutableBufferPointer { dcp in
      mq_lstm_cell_backward(&dgates, dcp.baseAddress, dh, dcp.baseAddress, gates, cPrev, cNew, Int64(hidden), 0, Int64(batch))
    }
    expectBitwise(dgates + dcInPlace, got.full, "lstm backward in place")
  }

  @Test(arguments: [
    MixtureCase(B: 1, T: 1, V: 1, X: 1, Lc: 1, Lq: 1),
    MixtureCase(B: 2, T: 3, V: 7, X: 10, Lc: 5, Lq: 4),
    MixtureCase(B: 3, T: 5, V: 1000, X: 1013, Lc: 33, Lq: 7),
  ])
  func mixtureBackwardMatchesReference(_ c: MixtureCase) {
    var rng = SplitMix64(seed: UInt64(c.V * 13 + c.Lq))
    let rows = c.B * c.T
    let dP = randomFloats(rows * c.X, &rng), pv = randomFloats(rows * c.V, &rng, in: 0...1)
    let gamma = randomFloats(rows, &rng, in: 0...1), lambda = randomFloats(rows, &rng, in: 0...1)
    let ac = randomFloats(rows * c.Lc, &rng, in: 0...1), aq = randomFloats(rows * c.Lq, &rng, in: 0...1)
    var cids = randomIds(c.B * c.Lc, below: Int32(c.X), &rng), qids = randomIds(c.B * c.Lq, below: Int32(c.X), &rng)
    if c.Lc > 2 { cids[1] = cids[0]; cids[2] = Int32(c.X - 1) }
    if c.Lq > 1 { qids[0] = cids[0] }
    let sizes = [rows * c.V, rows, rows, rows * c.Lc, rows * c.Lq]
    let offs = sizes.indices.map { sizes[..<$0].reduce(0, +) }
    let call = { (f: @escaping MixtureBackward) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in
        f(o, o + offs[1], o + offs[2], o + offs[3], o + offs[4], dP, pv, gamma, lambda, ac, cids, aq, qids,
          Int64(c.T), Int64(c.V), Int64(c.X), Int64(c.Lc), Int64(c.Lq), r0, r1)
      }
    }
    let total = sizes.reduce(0, +)
    let want = runFull(count: total, rows: rows, call(mq_pointer_mixture_backward_ref))
    #expect(!want.contains(sentinel))
    let got = fullAndSplit([Float](repeating: sentinel, count: total), rows: rows, split: rows / 2 + 1, call(mq_pointer_mixture_backward))
    expectClose(got.full, want, rtol: 1e-5, atol: 1e-6, "mixture backward \(c)")
    expectBitwise(got.split, got.full, "mixture backward split")
  }

  @Test(arguments: [1, 7, 33, 1000])
  func nllBackwardMatchesReference(rows: Int) {
    var rng = SplitMix64(seed: UInt64(rows))
    let X = 13
    let P = randomFloats(rows * X, &rng, in: 1e-3...1)
    var targets = randomIds(rows, below: Int32(X), &rng)
    for r in stride(from: 0, to: rows, by: 3) { targets[r] = 1 } // ignored rows
    let count = Int64(targets.filter { $0 != 1 }.count)
    for (g, cnt) in [(Float(0.75), count), (1, 0)] {
      let want = runFull(count: rows * X, rows: rows) { mq_nll_backward_ref($0, P, targets, Int64(X), 1, g, cnt, $1, $2) }
      let got = fullAndSplit([Float](repeating: sentinel, count: rows * X), rows: rows, split: rows / 2) {
        mq_nll_backward($0, P, targets, Int64(X), 1, g, cnt, $1, $2)
      }
      expectBitwise(got.full, want, "nll backward rows \(rows) count \(cnt)")
      expectBitwise(got.split, want, "nll backward split")
      #expect(want.filter { $0 != 0 }.count == Int(cnt))
    }
  }
}

typealias LayerNormBackward = (
  UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, Int64, Float, Int64, Int64
) -> Void
typealias LayerNormParams = (
  UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, Int64, Int64, Int64, Int64
) -> Void
typealias LSTMBackward = (
  UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64
) -> Void
typealias MixtureBackward = (
  UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?,
  UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Int32>?, UnsafePointer<Float>?,
  UnsafePointer<Int32>?, Int64, Int64, Int64, Int64, Int64, Int64, Int64
) -> Void
