// Elementwise kernels and the row bias. Legend: n = flat element count, bn = elements of the
// broadcast operand b (divides n), rows x width for add_bias.
import CKernels
import Testing

typealias BinaryKernel = (
  UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64
) -> Void
typealias UnaryKernel = (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64, Int64) -> Void

/// (n, bn): equal shapes, scalar broadcast, and suffix broadcasts whose period does not line up
/// with vector widths.
private let binaryShapes: [(Int, Int)] = [
  (1, 1), (7, 7), (7, 1), (33, 11), (33, 33), (1000, 1000), (1000, 40), (1000, 1), (999, 37),
]

@Suite struct ElementwiseTests {
  @Test(arguments: binaryShapes)
  func binaryMatchesReference(n: Int, bn: Int) {
    var rng = SplitMix64(seed: UInt64(n * 131 + bn))
    let a = randomFloats(n, &rng, in: -10...10)
    let b = randomFloats(bn, &rng, in: -10...10)
    let binaryOps: [(String, BinaryKernel, BinaryKernel)] = [
      ("add", mq_add, mq_add_ref), ("sub", mq_sub, mq_sub_ref), ("mul", mq_mul, mq_mul_ref),
    ]
    for (name, opt, ref) in binaryOps {
      let want = runFull(count: n, rows: n) { ref($0, a, b, Int64(bn), $1, $2) }
      let k = n / 3 + (n > 1 ? 1 : 0) // an r0 that is not a multiple of bn
      let got = fullAndSplit([Float](repeating: sentinel, count: n), rows: n, split: k) {
        opt($0, a, b, Int64(bn), $1, $2)
      }
      expectBitwise(got.full, want, "\(name) n=\(n) bn=\(bn)")
      expectBitwise(got.split, want, "\(name) split n=\(n) bn=\(bn)")
    }
  }

  @Test func binaryInPlace() {
    var rng = SplitMix64(seed: 5)
    let a = randomFloats(100, &rng)
    let b = randomFloats(20, &rng)
    let want = runFull(count: 100, rows: 100) { mq_mul_ref($0, a, b, 20, $1, $2) }
    var inPlace = a
    inPlace.withUnsafeMutableBufferPointer { mq_mul($0.baseAddress, $0.baseAddress, b, 20, 0, 100) }
    expectBitwise(inPlace, want, "mul in place")
  }

  @Test func broadcastKnownValues() {
    let a: [Float] = [1, 2, 3, 4, 5, 6]
    let b: [Float] = [10, 20, 30]
    let sum = runFull(count: 6, rows: 6) { mq_add($0, a, b, 3, $1, $2) }
    #expect(sum == [11, 22, 33, 14, 25, 36])
    let diff = runFull(count: 6, rows: 6) { mq_sub($0, a, [0.5], 1, $1, $2) }
    #expect(diff == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
  }

  @Test(arguments: [1, 7, 33, 1000])
  func unaryMatchesReference(n: Int) {
    var rng = SplitMix64(seed: UInt64(n))
    var x = randomFloats(n, &rng, in: -12...12)
    // Edge values: zeros, tiny, the tanh polynomial/exp switch point, saturation.
    let edges: [Float] = [0, -0.0, 1e-30, -1e-7, 0.624, 0.626, -0.625, 9, -9, 50, -50, 100, -100]
    for (i, e) in edges.enumerated() where i < n { x[i] = e }
    let k = n / 2
    let blank = [Float](repeating: sentinel, count: n)

    let unary: [(String, UnaryKernel, UnaryKernel, Bool)] = [
      ("tanh", mq_tanh, mq_tanh_ref, false), ("sigmoid", mq_sigmoid, mq_sigmoid_ref, false),
      ("relu", mq_relu, mq_relu_ref, true),
    ]
    for (name, opt, ref, exact) in unary {
      let want = runFull(count: n, rows: n) { ref($0, x, $1, $2) }
      let got = fullAndSplit(blank, rows: n, split: k) { opt($0, x, $1, $2) }
      if exact {
        expectBitwise(got.full, want, name)
      } else {
        expectClose(got.full, want, rtol: 1e-5, atol: 1e-7, "\(name) n=\(n)")
      }
      expectBitwise(got.split, got.full, "\(name) split")
    }

    let want = runFull(count: n, rows: n) { mq_affine_ref($0, x, 0.37, -1.5, $1, $2) }
    let got = fullAndSplit(blank, rows: n, split: k) { mq_affine($0, x, 0.37, -1.5, $1, $2) }
    expectBitwise(got.full, want, "affine")
    expectBitwise(got.split, want, "affine split")
  }

  @Test func unaryKnownValues() {
    let x: [Float] = [0, 1, -1, -3, 2]
    let t = runFull(count: 5, rows: 5) { mq_tanh($0, x, $1, $2) }
    expectClose(t, [0, 0.7615941560, -0.7615941560, -0.9950547537, 0.9640275801], "tanh")
    let s = runFull(count: 5, rows: 5) { mq_sigmoid($0, x, $1, $2) }
    expectClose(s, [0.5, 0.7310585786, 0.2689414214, 0.0474258732, 0.8807970780], "sigmoid")
    let r = runFull(count: 5, rows: 5) { mq_relu($0, x, $1, $2) }
    #expect(r == [0, 1, 0, 0, 2])
    let a = runFull(count: 5, rows: 5) { mq_affine($0, x, 2, 0.5, $1, $2) }
    #expect(a == [0.5, 2.5, -1.5, -5.5, 4.5])
    let big = runFull(count: 4, rows: 4) { mq_sigmoid($0, [-200, 200, -Float.infinity, .infinity], $1, $2) }
    #expect(big == [0, 1, 0, 1])
  }

  @Test(arguments: [(1, 1), (3, 7), (17, 33), (5, 1000)])
  func addBiasMatchesReference(rows: Int, width: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 1000 + width))
    let y = randomFloats(rows * width, &rng)
    let bias = randomFloats(width, &rng)
    var want = y
    want.withUnsafeMutableBufferPointer { mq_add_bias_ref($0.baseAddress, bias, Int64(width), 0, Int64(rows)) }
    let got = fullAndSplit(y, rows: rows, split: rows / 2) { mq_add_bias($0, bias, Int64(width), $1, $2) }
    expectBitwise(got.full, want, "add_bias")
    expectBitwise(got.split, want, "add_bias split")
    #expect(want[width - 1] == y[width - 1] + bias[width - 1])
  }
}
