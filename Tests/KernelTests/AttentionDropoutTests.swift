import CKernels
import Testing

/// Attention with decaNLP's dropout on the weights: fast vs reference, the mask's effect, and the
/// backward against central differences of the forward with the same draw.
@Suite struct AttentionDropoutTests {
  let B = 2, Tq = 3, Tk = 4, D = 10, heads = 4
  let p: Float = 0.3
  let seed: UInt64 = 11, salt: UInt64 = 5

  func forward(_ q: [Float], _ k: [Float], _ v: [Float], p: Float, ref: Bool = false) -> [Float] {
    let rows = Int64(B) * mq_attention_chunks(Int64(D), Int64(heads))
    var out = [Float](repeating: 0, count: B * Tq * D), scratch = [Float](repeating: 0, count: Tq * Tk)
    let f = ref ? mq_attention_dropout_ref : mq_attention_dropout
    f(&out, q, k, v, nil, Int64(Tq), Int64(Tk), Int64(D), Int64(heads), 0.5, -1e10, 0, p, seed, salt, &scratch, 0, rows)
    return out
  }

  func inputs() -> ([Float], [Float], [Float]) {
    var rng = SplitMix64(seed: 3)
    return (randomFloats(B * Tq * D, &rng), randomFloats(B * Tk * D, &rng), randomFloats(B * Tk * D, &rng))
  }

  @Test func fastMatchesReferenceAndDropsWeights() {
    let (q, k, v) = inputs()
    let fast = forward(q, k, v, p: p), ref = forward(q, k, v, p: p, ref: true)
    for (a, b) in zip(fast, ref) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
    #expect(fast != forward(q, k, v, p: 0), "dropout changes the output")
    #expect(forward(q, k, v, p: 0) == { () -> [Float] in
      let rows = Int64(B) * mq_attention_chunks(Int64(D), Int64(heads))
      var out = [Float](repeating: 0, count: B * Tq * D), scratch = [Float](repeating: 0, count: Tq * Tk)
      mq_attention(&out, q, k, v, nil, Int64(Tq), Int64(Tk), Int64(D), Int64(heads), 0.5, -1e10, 0, &scratch, 0, rows)
      return out
    }(), "p = 0 is plain attention")
  }

  @Test(arguments: [false, true])
  func backwardMatchesFiniteDifferences(reference: Bool) {
    var (q, k, v) = inputs()
    var rng = SplitMix64(seed: 9)
    let g = randomFloats(B * Tq * D, &rng)
    let rows = Int64(B) * mq_attention_chunks(Int64(D), Int64(heads))
    var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count)
    var dv = [Float](repeating: 0, count: v.count), scratch = [Float](repeating: 0, count: 2 * Tq * Tk)
    let f = reference ? mq_attention_backward_dropout_ref : mq_attention_backward_dropout
    f(&dq, &dk, &dv, g, q, k, v, nil, Int64(Tq), Int64(Tk), Int64(D), Int64(heads), 0.5, -1e10, 0, p, seed, salt,
      &scratch, 0, rows)
    func loss() -> Double { zip(forward(q, k, v, p: p), g).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    let eps: Float = 1e-2
    for (which, grads) in [(0, dq), (1, dk), (2, dv)] {
      for i in stride(from: 0, to: grads.count, by: 7) {
        func bump(_ d: Float) {
          switch which { case 0: q[i] += d; case 1: k[i] += d; default: v[i] += d }
        }
        bump(eps); let up = loss(); bump(-2 * eps); let down = loss(); bump(eps)
        let numeric = (up - down) / Double(2 * eps)
        #expect(abs(numeric - Double(grads[i])) <= 1e-2 * max(1, abs(numeric)) + 1e-3, "input \(which) [\(i)]")
      }
    }
  }
}
