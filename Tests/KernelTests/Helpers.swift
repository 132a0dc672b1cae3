// Shared helpers for the kernel tests: a seeded RNG, tolerance checks, and a runner that calls a
// row-range kernel once over [0, rows) and once as [0, k) + [k, rows).
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Double-precision libm, for hand-computed expectations.
func dexp(_ x: Double) -> Double { exp(x) }
func dlog(_ x: Double) -> Double { log(x) }
func dtanh(_ x: Double) -> Double { tanh(x) }
func dsin(_ x: Double) -> Double { sin(x) }
func dcos(_ x: Double) -> Double { cos(x) }
func dpow(_ x: Double, _ y: Double) -> Double { pow(x, y) }

/// SplitMix64: deterministic inputs, so a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

func randomFloats(_ n: Int, _ rng: inout SplitMix64, in range: ClosedRange<Float> = -1...1)
  -> [Float]
{
  (0..<n).map { _ in Float.random(in: range, using: &rng) }
}

/// `rows` attention rows of `width` weights drawn from `range`, each row normalised to sum 1.
func randomAttention(rows: Int, width n: Int, _ rng: inout SplitMix64, in range: ClosedRange<Float> = 0...1) -> [Float] {
  var a = randomFloats(rows * n, &rng, in: range)
  for r in 0..<rows { let s = a[(r * n)..<((r + 1) * n)].reduce(0, +); for i in 0..<n { a[r * n + i] /= s } }
  return a
}

func randomIds(_ n: Int, below bound: Int32, _ rng: inout SplitMix64) -> [Int32] {
  (0..<n).map { _ in Int32.random(in: 0..<bound, using: &rng) }
}

/// Largest |a - b| / (atol + rtol * |b|); <= 1 means every element is within tolerance.
/// NaN in exactly one of the two counts as infinitely far; NaN in both matches.
func scaledError(_ a: [Float], _ b: [Float], rtol: Float, atol: Float) -> Float {
  precondition(a.count == b.count)
  var worst: Float = 0
  for i in a.indices {
    if a[i].isNaN && b[i].isNaN { continue }
    if a[i] == b[i] { continue } // includes equal infinities
    let e = abs(a[i] - b[i]) / (atol + rtol * abs(b[i]))
    if !(e <= worst) { worst = e.isNaN ? .infinity : e }
  }
  return worst
}

func expectClose(
  _ a: [Float], _ b: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
  _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(a.count == b.count, sourceLocation: sourceLocation)
  guard a.count == b.count else { return }
  let e = scaledError(a, b, rtol: rtol, atol: atol)
  #expect(e <= 1, "\(what): scaled error \(e)", sourceLocation: sourceLocation)
}

/// Bit-for-bit equality (NaNs with the same payload compare equal).
func expectBitwise(
  _ a: [Float], _ b: [Float], _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(a.count == b.count, sourceLocation: sourceLocation)
  let same = a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
  #expect(same, "\(what): outputs differ", sourceLocation: sourceLocation)
}

/// A value no kernel writes, so rows a kernel forgot to write stand out.
let sentinel: Float = -7777.25

/// Calls `kernel(out, r0, r1)` over [0, rows) on one copy of `initial`, and over [0, k) then
/// [k, rows) on another; returns both outputs.
func fullAndSplit(
  _ initial: [Float], rows: Int, split k: Int,
  _ kernel: (UnsafeMutablePointer<Float>, Int64, Int64) -> Void
) -> (full: [Float], split: [Float]) {
  var full = initial
  var split = initial
  full.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, 0, Int64(rows)) }
  split.withUnsafeMutableBufferPointer {
    kernel($0.baseAddress!, 0, Int64(k))
    kernel($0.baseAddress!, Int64(k), Int64(rows))
  }
  return (full, split)
}

/// Runs `kernel(out, r0, r1)` over [0, rows) into a sentinel-filled buffer of `count` floats.
func runFull(count: Int, rows: Int, _ kernel: (UnsafeMutablePointer<Float>, Int64, Int64) -> Void)
  -> [Float]
{
  var out = [Float](repeating: sentinel, count: count)
  out.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, 0, Int64(rows)) }
  return out
}

/// Passes an optional array to C as a nullable pointer.
func withOptionalPointer<T, R>(_ a: [T]?, _ body: (UnsafePointer<T>?) -> R) -> R {
  guard let a else { return body(nil) }
  return a.withUnsafeBufferPointer { body($0.baseAddress) }
}
