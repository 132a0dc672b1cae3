// The fused training output layer (mq_mixture_nll and its backward) against the unfused kernels
// (bit for bit), against its reference twins, and its gradient against finite differences.
// Legend: rows = B * T, logits [rows, V], ids in [0, X), targets [rows] (ignore = 1).
import CKernels
import Testing

private struct OutputLayerCase {
  let b: Int, t: Int, v: Int, x: Int, lc: Int, lq: Int
  var logits: [Float], gamma: [Float], lambda: [Float], ac: [Float], aq: [Float]
  let cids: [Int32], qids: [Int32], targets: [Int32]
  var rows: Int { b * t }
  static let ignore: Int32 = 1

  init(b: Int, t: Int, v: Int, x: Int, lc: Int, lq: Int, seed: UInt64) {
    (self.b, self.t, self.v, self.x, self.lc, self.lq) = (b, t, v, x, lc, lq)
    var rng = SplitMix64(seed: seed)
    let rows = b * t
    logits = randomFloats(rows * v, &rng, in: -3...3)
    gamma = randomFloats(rows, &rng, in: 0.1...0.9)
    lambda = randomFloats(rows, &rng, in: 0.1...0.9)
    func attention(_ n: Int) -> [Float] { randomAttention(rows: rows, width: n, &rng, in: 0.05...1) }
    ac = attention(lc)
    aq = attention(lq)
    let c = (0..<(b * lc)).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    cids = c
    qids = (0..<(b * lq)).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    // Targets: some copied (in cids), some ignored, the rest random (words and OOV slots).
    var tg: [Int32] = []
    for r in 0..<rows {
      switch r % 4 {
      case 0: tg.append(c[(r / t) * lc])
      case 1: tg.append(OutputLayerCase.ignore)
      default: tg.append(Int32(Int.random(in: 0..<x, using: &rng)))
      }
    }
    targets = tg
  }

  func fusedLoss(ref: Bool = false) -> (loss: Double, stats: [Float]) {
    var sum = 0.0, count: Int64 = 0
    var stats = [Float](repeating: .nan, count: rows * 3)
    let f = ref ? mq_mixture_nll_ref : mq_mixture_nll
    f(&sum, &count, &stats, logits, gamma, lambda, ac, cids, aq, qids, targets, Int64(t), Int64(v), Int64(lc), Int64(lq),
      Self.ignore, 0, Int64(rows))
    return (count == 0 ? 0 : sum / Double(count), stats)
  }

  var count: Int64 { Int64(targets.filter { $0 != Self.ignore }.count) }
}

@Suite struct MixtureNllTests {
  @Test(arguments: [(2, 3, 11, 15, 4, 3), (3, 5, 97, 104, 9, 6), (1, 2, 4, 9, 7, 5)])
  func fusedEqualsUnfused(b: Int, t: Int, v: Int, x: Int, lc: Int, lq: Int) {
    let c = OutputLayerCase(b: b, t: t, v: v, x: x, lc: lc, lq: lq, seed: UInt64(v * 7 + lc))
    let rows = c.rows
    // Unfused forward: softmax, mixture, nll.
    var p = [Float](repeating: 0, count: rows * v), mix = [Float](repeating: 0, count: rows * x)
    mq_masked_softmax(&p, c.logits, nil, 1, Int64(v), 1, -1e10, 0, 0, 0, 0, Int64(rows))
    mq_pointer_mixture(&mix, p, c.gamma, c.lambda, c.ac, c.cids, c.aq, c.qids, Int64(t), Int64(v), Int64(x), Int64(lc),
                       Int64(lq), 0, Int64(rows))
    var sum = 0.0, count: Int64 = 0
    mq_nll(&sum, &count, mix, c.targets, Int64(x), OutputLayerCase.ignore, 0, Int64(rows))
    let (loss, stats) = c.fusedLoss()
    #expect(loss == sum / Double(count))
    #expect(abs(c.fusedLoss(ref: true).loss - loss) <= 1e-5 * max(1, abs(loss)))
    // Unfused backward: nll, mixture, softmax.
    let gl: Float = 0.7
    var dP = [Float](repeating: 0, count: rows * x)
    mq_nll_backward(&dP, mix, c.targets, Int64(x), OutputLayerCase.ignore, gl, count, 0, Int64(rows))
    var dpv = [Float](repeating: 0, count: rows * v), dg = [Float](repeating: 0, count: rows)
    var dl = dg, dac = [Float](repeating: 0, count: rows * lc), daq = [Float](repeating: 0, count: rows * lq)
    mq_pointer_mixture_backward(&dpv, &dg, &dl, &dac, &daq, dP, p, c.gamma, c.lambda, c.ac, c.cids, c.aq, c.qids, Int64(t),
                                Int64(v), Int64(x), Int64(lc), Int64(lq), 0, Int64(rows))
    var dlogits = [Float](repeating: 0, count: rows * v)
    mq_softmax_backward(&dlogits, dpv, p, Int64(v), 1, 0, 0, Int64(rows))
    // Fused, in two row ranges.
    var fl = [Float](repeating: .nan, count: rows * v), fg = [Float](repeating: .nan, count: rows)
    var fla = fg, fac = [Float](repeating: .nan, count: rows * lc), faq = [Float](repeating: .nan, count: rows * lq)
    for (r0, r1) in [(0, rows / 2), (rows / 2, rows)] {
      mq_mixture_nll_backward(&fl, &fg, &fla, &fac, &faq, gl, count, c.logits, c.gamma, c.lambda, c.ac, c.cids, c.aq,
                              c.qids, c.targets, stats, Int64(t), Int64(v), Int64(lc), Int64(lq), OutputLayerCase.ignore,
                              Int64(r0), Int64(r1))
    }
    func same(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { $0 == $1 } }
    #expect(same(fl, dlogits), "dlogits")
    #expect(same(fg, dg), "dgamma")
    #expect(same(fla, dl), "dlambda")
    #expect(same(fac, dac), "dac")
    #expect(same(faq, daq), "daq")
    // The reference twin's backward: within float rounding. Its outputs start as NaN, so an
    // element it never writes fails the comparison.
    var rl = [Float](repeating: .nan, count: fl.count), rg = [Float](repeating: .nan, count: fg.count)
    var rla = [Float](repeating: .nan, count: fla.count), rac = [Float](repeating: .nan, count: fac.count)
    var raq = [Float](repeating: .nan, count: faq.count)
    mq_mixture_nll_backward_ref(&rl, &rg, &rla, &rac, &raq, gl, count, c.logits, c.gamma, c.lambda, c.ac, c.cids, c.aq,
                                c.qids, c.targets, stats, Int64(t), Int64(v), Int64(lc), Int64(lq),
                                OutputLayerCase.ignore, 0, Int64(rows))
    for (what, a, r) in [("dlogits", fl, rl), ("dgamma", fg, rg), ("dlambda", fla, rla), ("dac", fac, rac), ("daq", faq, raq)] {
      #expect(a.count == r.count && !r.contains { $0.isNaN }, "\(what): the reference left elements unwritten")
      #expect(zip(a, r).allSatisfy { abs($0 - $1) <= 1e-5 * max(1e-3, abs($1)) + 1e-7 }, "\(what)")
    }
  }

  @Test func gradientMatchesFiniteDifferences() {
    let c = OutputLayerCase(b: 2, t: 3, v: 9, x: 13, lc: 5, lq: 4, seed: 5)
    let rows = c.rows
    let (_, stats) = c.fusedLoss()
    var dl = [Float](repeating: 0, count: rows * 9), dg = [Float](repeating: 0, count: rows), dla = dg
    var dac = [Float](repeating: 0, count: rows * 5), daq = [Float](repeating: 0, count: rows * 4)
    mq_mixture_nll_backward(&dl, &dg, &dla, &dac, &daq, 1, c.count, c.logits, c.gamma, c.lambda, c.ac, c.cids, c.aq,
                            c.qids, c.targets, stats, 3, 9, 5, 4, OutputLayerCase.ignore, 0, Int64(rows))
    func loss(_ edit: (inout OutputLayerCase) -> Void) -> Double {
      var d = c
      edit(&d)
      return d.fusedLoss().loss
    }
    checkGradient("logits", x: c.logits, analytic: dl, eps: 1e-2) { x in loss { $0.logits = x } }
    checkGradient("gamma", x: c.gamma, analytic: dg, eps: 1e-3) { x in loss { $0.gamma = x } }
    checkGradient("lambda", x: c.lambda, analytic: dla, eps: 1e-3) { x in loss { $0.lambda = x } }
    checkGradient("ac", x: c.ac, analytic: dac, eps: 1e-3) { x in loss { $0.ac = x } }
    checkGradient("aq", x: c.aq, analytic: daq, eps: 1e-3) { x in loss { $0.aq = x } }
  }
}
