// Multi-head attention. Legend: B = batch, Tq / Tk = query / key length, D = width, heads as
// given to torch.chunk, C = mq_attention_chunks(D, heads) chunks; q, out [B, Tq, D],
// k, v [B, Tk, D], keypad [B, Tk]; rows are (batch, chunk) pairs, B * C of them.
import CKernels
import Testing

struct AttentionCase: CustomStringConvertible, Sendable {
  var B: Int, Tq: Int, Tk: Int, D: Int, heads: Int
  var causal: Bool, keypad: Bool
  var description: String { "B\(B) Tq\(Tq) Tk\(Tk) D\(D) h\(heads) causal=\(causal) pad=\(keypad)" }
}

private let attentionCases: [AttentionCase] = [
  .init(B: 2, Tq: 5, Tk: 7, D: 20, heads: 3, causal: false, keypad: true), // 7 / 7 / 6
  .init(B: 1, Tq: 4, Tk: 4, D: 10, heads: 4, causal: true, keypad: false), // 3 / 3 / 3 / 1
  .init(B: 2, Tq: 3, Tk: 6, D: 9, heads: 4, causal: false, keypad: true), // 3 chunks of 3
  .init(B: 1, Tq: 1, Tk: 1, D: 1, heads: 1, causal: false, keypad: false),
  .init(B: 3, Tq: 17, Tk: 17, D: 12, heads: 2, causal: true, keypad: true),
  .init(B: 2, Tq: 33, Tk: 40, D: 64, heads: 4, causal: false, keypad: true),
  // Decoding shapes (the few-query path): one new position over a 32-slot cache, 4 beams over
  // a context, MQAN's 67 / 67 / 66 heads.
  .init(B: 3, Tq: 1, Tk: 32, D: 200, heads: 3, causal: false, keypad: true),
  .init(B: 2, Tq: 4, Tk: 128, D: 200, heads: 3, causal: false, keypad: true),
]

@Suite struct AttentionTests {
  @Test func chunkCounts() {
    #expect(mq_attention_chunks(20, 3) == 3)
    #expect(mq_attention_chunks(10, 4) == 4)
    #expect(mq_attention_chunks(9, 4) == 3)
    #expect(mq_attention_chunks(8, 3) == 3)
    #expect(mq_attention_chunks(200, 3) == 3)
    #expect(mq_attention_chunks(1, 1) == 1)
    #expect(mq_attention_chunks(3, 8) == 3)
  }

  @Test(arguments: attentionCases)
  func attentionMatchesReference(_ c: AttentionCase) {
    mq_blas_single_thread()
    var rng = SplitMix64(seed: UInt64(c.D * 1000 + c.Tq * 10 + c.Tk))
    let q = randomFloats(c.B * c.Tq * c.D, &rng, in: -2...2)
    let k = randomFloats(c.B * c.Tk * c.D, &rng, in: -2...2)
    let v = randomFloats(c.B * c.Tk * c.D, &rng, in: -2...2)
    var keypad: [Float]? = nil
    if c.keypad {
      keypad = (0..<(c.B * c.Tk)).map { j in j % c.Tk != 0 && Int.random(in: 0..<3, using: &rng) == 0 ? 1 : 0 }
    }
    let chunks = Int(mq_attention_chunks(Int64(c.D), Int64(c.heads)))
    let rows = c.B * chunks
    let w = (c.D + c.heads - 1) / c.heads
    let scale = 1 / Float(w).squareRoot()
    var scratch = [Float](repeating: 0, count: c.Tq * c.Tk)
    let call = { (f: @escaping AttentionKernel) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in
        withOptionalPointer(keypad) { kp in
          f(o, q, k, v, kp, Int64(c.Tq), Int64(c.Tk), Int64(c.D), Int64(c.heads), scale, -1e10,
            c.causal ? 1 : 0, &scratch, r0, r1)
        }
      }
    }
    let count = c.B * c.Tq * c.D
    let want = runFull(count: count, rows: rows, call(mq_attention_ref))
    #expect(!want.contains(sentinel), "reference left outputs unwritten")
    let got = fullAndSplit([Float](repeating: sentinel, count: count), rows: rows, split: min(rows, rows / 2 + 1), call(mq_attention))
    expectClose(got.full, want, rtol: 1e-4, atol: 1e-5, "attention \(c)")
    expectBitwise(got.split, got.full, "attention split \(c)")
  }

  @Test func keyPaddingSelectsOneKey() {
    // Keys 0 and 2 padded: every query attends only to key 1, so out = v[1] on each row.
    let q: [Float] = [1, 2, -3, 0.5]
    let k: [Float] = [5, 5, 0, 1, -5, 7]
    let v: [Float] = [10, 20, 0.25, -0.75, 30, 40]
    var scratch = [Float](repeating: 0, count: 6)
    let out = runFull(count: 4, rows: 1) {
      mq_attention($0, q, k, v, [1, 0, 1], 2, 3, 2, 1, 0.7, -1e10, 0, &scratch, $1, $2)
    }
    expectClose(out, [0.25, -0.75, 0.25, -0.75], rtol: 1e-6, atol: 1e-7, "keypad")
  }

  @Test func causalAveragesThePast() {
    // q = k = 0 gives equal scores; causal row i averages v[0...i]. heads = 2 on D = 2 gives two
    // one-wide chunks, rows = 2 (batch 1).
    let zeros = [Float](repeating: 0, count: 6)
    let v: [Float] = [3, -6, 6, 0, 0, 12]
    var scratch = [Float](repeating: 0, count: 9)
    let out = runFull(count: 6, rows: 2) {
      mq_attention($0, zeros, zeros, v, nil, 3, 3, 2, 2, 1, -1e10, 1, &scratch, $1, $2)
    }
    expectClose(out, [3, -6, 4.5, -3, 3, 2], rtol: 1e-6, atol: 1e-6, "causal")
  }
}

typealias AttentionKernel = (
  UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64, Int64, Float, Float, Int32,
  UnsafeMutablePointer<Float>?, Int64, Int64
) -> Void
