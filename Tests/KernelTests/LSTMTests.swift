// LSTM cell. Legend: B = batch rows, H = hidden width, gates [B, 4H] in order i | f | g | o,
// c_in, h_out, c_out [B, H].
import CKernels
import Testing

@Suite struct LSTMTests {
  @Test(arguments: [(1, 1), (3, 7), (17, 33), (2, 200)])
  func cellMatchesReference(batch: Int, hidden: Int) {
    var rng = SplitMix64(seed: UInt64(batch * 100 + hidden))
    let gates = randomFloats(batch * 4 * hidden, &rng, in: -6...6)
    let c = randomFloats(batch * hidden, &rng, in: -3...3)
    let n = batch * hidden
    // h and c outputs share one buffer [h | c] so the split runner can drive both.
    let call = { (f: @escaping LSTMKernel) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in
        f(o, o + n, gates, c, Int64(hidden), r0, r1)
      }
    }
    let want = runFull(count: 2 * n, rows: batch, call(mq_lstm_cell_ref))
    let got = fullAndSplit([Float](repeating: sentinel, count: 2 * n), rows: batch, split: batch / 2, call(mq_lstm_cell))
    expectClose(got.full, want, rtol: 1e-5, atol: 1e-6, "lstm B=\(batch) H=\(hidden)")
    expectBitwise(got.split, got.full, "lstm split")

    // In place: c_out == c_in.
    var h = [Float](repeating: sentinel, count: n)
    var cc = c
    h.withUnsafeMutableBufferPointer { hp in
      cc.withUnsafeMutableBufferPointer { cp in
        mq_lstm_cell(hp.baseAddress, cp.baseAddress, gates, cp.baseAddress, Int64(hidden), 0, Int64(batch))
      }
    }
    expectBitwise(h + cc, got.full, "lstm in place")
  }

  @Test func cellKnownValues() {
    // All-zero gates, c = 1: every gate is sigmoid(0) = 0.5 and tanh(0) = 0, so c' = 0.5 and
    // h' = 0.5 * tanh(0.5).
    var h: [Float] = [0], c: [Float] = [0]
    mq_lstm_cell(&h, &c, [0, 0, 0, 0], [1], 1, 0, 1)
    expectClose(c, [0.5], rtol: 1e-6, atol: 0, "c zero gates")
    expectClose(h, [0.2310585786], rtol: 1e-6, atol: 0, "h zero gates")

    // H = 2, one row: i = [1, -2], f = [-1, 3], g = [0.5, -0.25], o = [2, 0], c = [-0.3, 0.8].
    func sig(_ x: Double) -> Double { 1 / (1 + dexp(-x)) }
    let i = [1.0, -2], f = [-1.0, 3], g = [0.5, -0.25], o = [2.0, 0], c0 = [-0.3, 0.8]
    let cExp = (0..<2).map { sig(f[$0]) * c0[$0] + sig(i[$0]) * dtanh(g[$0]) }
    let hExp = (0..<2).map { sig(o[$0]) * dtanh(cExp[$0]) }
    var h2: [Float] = [0, 0], c2: [Float] = [0, 0]
    let gates = (i + f + g + o).map { Float($0) }
    mq_lstm_cell(&h2, &c2, gates, c0.map { Float($0) }, 2, 0, 1)
    expectClose(c2, cExp.map { Float($0) }, rtol: 1e-6, atol: 1e-7, "c")
    expectClose(h2, hExp.map { Float($0) }, rtol: 1e-6, atol: 1e-7, "h")
  }
}

typealias LSTMKernel = (
  UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, Int64, Int64, Int64
) -> Void
