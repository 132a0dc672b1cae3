// Masked softmax and LayerNorm. Legend: x [batch * q, n] with mask [batch, n] for the softmax
// (row r: batch r / q, query i = r % q); x [rows, d] with gamma, beta [d] for the layer norm.
import CKernels
import Testing

struct SoftmaxCase: CustomStringConvertible, Sendable {
  var batch: Int, q: Int, n: Int
  var masked: Bool
  var causal: Bool, offset: Int
  var fill: Float, scale: Float, eps: Float
  var description: String {
    "b\(batch) q\(q) n\(n) mask=\(masked) causal=\(causal)/\(offset) fill=\(fill) eps=\(eps)"
  }
}

private let softmaxCases: [SoftmaxCase] = [
  .init(batch: 1, q: 1, n: 1, masked: false, causal: false, offset: 0, fill: -1e10, scale: 1, eps: 0),
  .init(batch: 2, q: 3, n: 7, masked: true, causal: false, offset: 0, fill: -1e10, scale: 0.5, eps: 0),
  .init(batch: 3, q: 5, n: 33, masked: true, causal: true, offset: 0, fill: -1e10, scale: 0.25, eps: 0),
  .init(batch: 2, q: 7, n: 7, masked: false, causal: true, offset: 0, fill: -.infinity, scale: 1, eps: 1e-10),
  .init(batch: 2, q: 4, n: 33, masked: true, causal: true, offset: 2, fill: -.infinity, scale: 1, eps: 1e-10),
  .init(batch: 1, q: 9, n: 17, masked: false, causal: true, offset: -1, fill: -1e10, scale: 1, eps: 0),
  .init(batch: 2, q: 3, n: 1000, masked: true, causal: false, offset: 0, fill: -1e10, scale: 0.1, eps: 1e-10),
  .init(batch: 1, q: 19, n: 1000, masked: false, causal: false, offset: 0, fill: -1e10, scale: 3, eps: 0),
]

@Suite struct SoftmaxTests {
  @Test(arguments: softmaxCases)
  func softmaxMatchesReference(_ c: SoftmaxCase) {
    var rng = SplitMix64(seed: UInt64(c.n * 7 + c.q))
    let rows = c.batch * c.q
    let x = randomFloats(rows * c.n, &rng, in: -8...8)
    // Mask about a quarter of the keys, but never column 0 (a fully masked row with fill = -inf
    // is NaN in torch too; that case is not what this test is about).
    var mask: [Float]? = nil
    if c.masked {
      mask = (0..<(c.batch * c.n)).map { j in j % c.n != 0 && Int.random(in: 0..<4, using: &rng) == 0 ? 1 : 0 }
    }
    let call = { (f: @escaping SoftmaxKernel) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in
        withOptionalPointer(mask) { m in
          f(o, x, m, Int64(c.q), Int64(c.n), c.scale, c.fill, c.eps, c.causal ? 1 : 0, Int64(c.offset), r0, r1)
        }
      }
    }
    let want = runFull(count: rows * c.n, rows: rows, call(mq_masked_softmax_ref))
    let k = rows / 2 + (rows > 2 ? 1 : 0) // not a multiple of q
    let got = fullAndSplit([Float](repeating: sentinel, count: rows * c.n), rows: rows, split: k, call(mq_masked_softmax))
    expectClose(got.full, want, rtol: 1e-5, atol: 1e-7, "softmax \(c)")
    expectBitwise(got.split, got.full, "softmax split \(c)")
    // Rows sum to 1 (+ n * eps).
    for r in 0..<rows {
      let s = got.full[(r * c.n)..<((r + 1) * c.n)].reduce(0, +)
      #expect(abs(s - 1) < 1e-4, "row \(r) sums to \(s)")
    }
  }

  @Test func softmaxKnownValues() {
    // [2, 4, 6, 8] with the last masked, scale 0.5, eps 1e-10: softmax([1, 2, 3]) + eps, then eps.
    let x: [Float] = [2, 4, 6, 8]
    let mask: [Float] = [0, 0, 0, 1]
    let out = runFull(count: 4, rows: 1) {
      mq_masked_softmax($0, x, mask, 1, 4, 0.5, -1e10, 1e-10, 0, 0, $1, $2)
    }
    expectClose(out, [0.0900305732, 0.2447284711, 0.6652409558, 1e-10], rtol: 1e-6, atol: 1e-12, "known")
    #expect(out[3] == 1e-10)

    // Causal, q = 3, offset 0: row i sees columns 0...i; -inf fill gives exact zeros.
    let y: [Float] = [0, 0, 0, 0, 0, 0, 0, 0, 0]
    let causal = runFull(count: 9, rows: 3) {
      mq_masked_softmax($0, y, nil, 3, 3, 1, -.infinity, 0, 1, 0, $1, $2)
    }
    expectClose(causal, [1, 0, 0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3], rtol: 1e-6, atol: 0, "causal")

    // In place (out == x) matches out-of-place.
    var inPlace = x
    inPlace.withUnsafeMutableBufferPointer {
      mq_masked_softmax($0.baseAddress, $0.baseAddress, mask, 1, 4, 0.5, -1e10, 1e-10, 0, 0, 0, 1)
    }
    expectBitwise(inPlace, out, "in place")
  }

  @Test(arguments: [(1, 2), (3, 7), (17, 33), (5, 200), (4, 1000)])
  func layerNormMatchesReference(rows: Int, d: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 31 + d))
    let x = randomFloats(rows * d, &rng, in: -3...5)
    let gamma = randomFloats(d, &rng, in: 0.5...1.5)
    let beta = randomFloats(d, &rng)
    let want = runFull(count: rows * d, rows: rows) {
      mq_layernorm_ref($0, x, gamma, beta, Int64(d), 1e-6, $1, $2)
    }
    let got = fullAndSplit([Float](repeating: sentinel, count: rows * d), rows: rows, split: rows / 2) {
      mq_layernorm($0, x, gamma, beta, Int64(d), 1e-6, $1, $2)
    }
    expectClose(got.full, want, rtol: 1e-5, atol: 1e-6, "layernorm \(rows)x\(d)")
    expectBitwise(got.split, got.full, "layernorm split")
  }

  @Test func layerNormKnownValues() {
    // x = [1, 2, 3, 4]: mean 2.5, unbiased std sqrt(5/3) (not the biased sqrt(5/4)).
    let x: [Float] = [1, 2, 3, 4]
    let std = (5.0 / 3.0).squareRoot()
    let plain = runFull(count: 4, rows: 1) { mq_layernorm($0, x, [1, 1, 1, 1], [0, 0, 0, 0], 4, 1e-6, $1, $2) }
    expectClose(plain, [-1.5, -0.5, 0.5, 1.5].map { Float($0 / (std + 1e-6)) }, rtol: 1e-6, atol: 0, "plain")
    // gamma multiplies before the division, beta is added after; eps is added to std.
    let affine = runFull(count: 4, rows: 1) { mq_layernorm($0, x, [2, 2, 1, 1], [1, 0, 0, -1], 4, 0.5, $1, $2) }
    let expected: [Double] = [2 * -1.5 / (std + 0.5) + 1, 2 * -0.5 / (std + 0.5), 0.5 / (std + 0.5), 1.5 / (std + 0.5) - 1]
    expectClose(affine, expected.map { Float($0) }, rtol: 1e-6, atol: 1e-7, "affine")
    // Two rows are independent: a constant row gives beta (0 / (0 + eps)).
    let two = runFull(count: 8, rows: 2) {
      mq_layernorm($0, [7, 7, 7, 7] + x, [1, 1, 1, 1], [0.25, 0, 0, 0], 4, 1e-6, $1, $2)
    }
    expectClose(Array(two[0..<4]), [0.25, 0, 0, 0], rtol: 0, atol: 0, "constant row")
    expectBitwise(Array(two[4..<8]), [plain[0] + 0.25] + plain[1...], "second row")
  }
}

typealias SoftmaxKernel = (
  UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Float,
  Float, Float, Int32, Int64, Int64, Int64
) -> Void
