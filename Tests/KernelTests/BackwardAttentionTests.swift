// Attention backward. Legend: B = batch, Tq / Tk = query / key length, D = width, heads as given
// to torch.chunk, C = mq_attention_chunks(D, heads); g, q, dq [B, Tq, D]; k, v, dk, dv [B, Tk, D];
// keypad [B, Tk]; rows are (batch, chunk) pairs; scratch 2 Tq Tk floats.
import CKernels
import Testing

private let cases: [AttentionCase] = [
  .init(B: 2, Tq: 5, Tk: 7, D: 20, heads: 3, causal: false, keypad: true), // 7 / 7 / 6
  .init(B: 1, Tq: 4, Tk: 4, D: 10, heads: 4, causal: true, keypad: false), // 3 / 3 / 3 / 1
  .init(B: 2, Tq: 3, Tk: 6, D: 9, heads: 4, causal: false, keypad: true), // 3 chunks of 3
  .init(B: 1, Tq: 1, Tk: 1, D: 1, heads: 1, causal: false, keypad: false),
  .init(B: 3, Tq: 17, Tk: 17, D: 12, heads: 2, causal: true, keypad: true),
  .init(B: 2, Tq: 33, Tk: 40, D: 64, heads: 4, causal: false, keypad: true),
  .init(B: 1, Tq: 2, Tk: 0, D: 3, heads: 2, causal: false, keypad: false), // no keys: zero gradients
]

/// Random q, k, v, g and a key padding mask that never pads key 0.
private struct AttentionInputs {
  let q: [Float], k: [Float], v: [Float], g: [Float]
  let keypad: [Float]?
  init(_ c: AttentionCase, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    q = randomFloats(c.B * c.Tq * c.D, &rng, in: -1...1)
    k = randomFloats(c.B * c.Tk * c.D, &rng, in: -1...1)
    v = randomFloats(c.B * c.Tk * c.D, &rng, in: -1...1)
    g = randomFloats(c.B * c.Tq * c.D, &rng, in: -1...1)
    keypad = c.keypad ? (0..<(c.B * c.Tk)).map { j in j % c.Tk != 0 && j % 3 == 2 ? 1 : 0 } : nil
  }
}

@Suite struct BackwardAttentionTests {
  @Test(arguments: cases)
  func attentionBackwardMatchesReference(_ c: AttentionCase) {
    mq_blas_single_thread()
    let x = AttentionInputs(c, seed: UInt64(c.D * 1000 + c.Tq * 10 + c.Tk))
    let rows = c.B * Int(mq_attention_chunks(Int64(c.D), Int64(c.heads)))
    let nq = c.B * c.Tq * c.D, nk = c.B * c.Tk * c.D
    var scratch = [Float](repeating: 0, count: max(2 * c.Tq * c.Tk, 1))
    let call = { (f: @escaping AttentionBackward) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in
        withOptionalPointer(x.keypad) { kp in
          f(o, o + nq, o + nq + nk, x.g, x.q, x.k, x.v, kp, Int64(c.Tq), Int64(c.Tk), Int64(c.D), Int64(c.heads),
            0.4, -1e10, c.causal ? 1 : 0, &scratch, r0, r1)
        }
      }
    }
    let want = runFull(count: nq + 2 * nk, rows: rows, call(mq_attention_backward_ref))
    #expect(!want.contains(sentinel), "reference left outputs unwritten")
    let got = fullAndSplit([Float](repeating: sentinel, count: nq + 2 * nk), rows: rows,
                           split: min(rows, rows / 2 + 1), call(mq_attention_backward))
    expectClose(got.full, want, rtol: 1e-4, atol: 1e-5, "attention backward \(c)")
    expectBitwise(got.split, got.full, "attention backward split \(c)")
    if c.Tk == 0 { #expect(got.full.allSatisfy { $0 == 0 }) }
  }

  /// D = 10 with 4 heads (chunks 3 / 3 / 3 / 1), causal and key padding, Tq = Tk and Tq != Tk.
  @Test(arguments: [
    AttentionCase(B: 2, Tq: 5, Tk: 5, D: 10, heads: 4, causal: true, keypad: false),
    AttentionCase(B: 2, Tq: 3, Tk: 6, D: 10, heads: 4, causal: false, keypad: true),
    AttentionCase(B: 2, Tq: 5, Tk: 5, D: 10, heads: 4, causal: true, keypad: true),
    AttentionCase(B: 1, Tq: 4, Tk: 5, D: 9, heads: 3, causal: false, keypad: false),
  ])
  func attentionGradient(_ c: AttentionCase) {
    mq_blas_single_thread()
    let x = AttentionInputs(c, seed: UInt64(c.Tq * 7 + c.Tk))
    let rows = c.B * Int(mq_attention_chunks(Int64(c.D), Int64(c.heads)))
    let scale: Float = 0.5
    let nq = c.B * c.Tq * c.D, nk = c.B * c.Tk * c.D
    func loss(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
      var scratch = [Float](repeating: 0, count: c.Tq * c.Tk)
      let out = runFull(count: nq, rows: rows) { o, r0, r1 in
        withOptionalPointer(x.keypad) { kp in
          mq_attention(o, q, k, v, kp, Int64(c.Tq), Int64(c.Tk), Int64(c.D), Int64(c.heads), scale, -1e10,
                       c.causal ? 1 : 0, &scratch, r0, r1)
        }
      }
      return dot(out, x.g)
    }
    var scratch = [Float](repeating: 0, count: 2 * c.Tq * c.Tk)
    let grads = runFull(count: nq + 2 * nk, rows: rows) { o, r0, r1 in
      withOptionalPointer(x.keypad) { kp in
        mq_attention_backward(o, o + nq, o + nq + nk, x.g, x.q, x.k, x.v, kp, Int64(c.Tq), Int64(c.Tk), Int64(c.D),
                              Int64(c.heads), scale, -1e10, c.causal ? 1 : 0, &scratch, r0, r1)
      }
    }
    let dq = Array(grads[..<nq]), dk = Array(grads[nq..<(nq + nk)]), dv = Array(grads[(nq + nk)...])
    checkGradient("attention_grad dq \(c)", x: x.q, analytic: dq, samples: 60) { loss($0, x.k, x.v) }
    checkGradient("attention_grad dk \(c)", x: x.k, analytic: dk, samples: 60) { loss(x.q, $0, x.v) }
    checkGradient("attention_grad dv \(c)", x: x.v, analytic: dv, samples: 60) { loss(x.q, x.k, $0) }
    if let pad = x.keypad { // padded keys get no gradient
      for b in 0..<c.B {
        for j in 0..<c.Tk where pad[b * c.Tk + j] != 0 {
          let row = (b * c.Tk + j) * c.D
          #expect(dk[row..<(row + c.D)].allSatisfy { $0 == 0 } && dv[row..<(row + c.D)].allSatisfy { $0 == 0 })
        }
      }
    }
  }
}

typealias AttentionBackward = (
  UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64,
  Int64, Float, Float, Int32, UnsafeMutablePointer<Float>?, Int64, Int64
) -> Void
