// Reduced-precision linears (mq_qlinear.h): every path this CPU runs against the oracle
// mq_qlinear_ref (the same quantized operands summed in double), and against the fp32 product
// within the documented error bounds; column blocks, epilogues and the packing round trip.
//
// Legend: y[m, n] = x[m, k] wᵀ, w stored [n, k]; panels of 32 output columns.
import CKernels
import Foundation
import Testing

private let precisions: [(name: String, id: Int32)] = [("bf16", Int32(MQ_PREC_BF16)), ("int8", Int32(MQ_PREC_INT8))]

/// The paths this CPU runs for a precision (portable always).
private func paths(_ p: Int32) -> [Int32] {
  [Int32(MQ_QPATH_PORTABLE), Int32(MQ_QPATH_AVX512), Int32(MQ_QPATH_AVX2)].filter { mq_qpath_supported(p, $0) != 0 }
}

/// Aligned raw storage for packed weights and converted activations.
private final class Raw {
  let base: UnsafeMutableRawPointer
  init(_ bytes: Int) {
    base = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    base.initializeMemory(as: UInt8.self, repeating: 0xA5, count: max(bytes, 64))
  }
  deinit { base.deallocate() }
}

private struct Problem {
  let m: Int, n: Int, k: Int
  var x: [Float], w: [Float], bias: [Float], residual: [Float]

  init(m: Int, n: Int, k: Int, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    self.m = m
    self.n = n
    self.k = k
    x = randomFloats(m * k, &rng, in: -2...2)
    // Rows of the weight with different scales (per-column int8 scales matter), one all zero.
    w = randomFloats(n * k, &rng, in: -0.5...0.5)
    for j in 0..<n { for e in 0..<k { w[j * k + e] *= Float(1 + j % 5) } }
    if n > 2 { for e in 0..<k { w[2 * k + e] = 0 } }
    if m > 1 { for e in 0..<k { x[k + e] = 0 } }
    bias = randomFloats(n, &rng)
    residual = randomFloats(m * n, &rng)
  }

  func pack(_ p: Int32) -> Raw {
    let out = Raw(Int(mq_qweight_bytes(p, Int64(n), Int64(k))))
    mq_qweight_pack(p, Int64(n), Int64(k), w, out.base, 0, mq_qweight_panels(Int64(n)))
    return out
  }

  func activations(_ p: Int32) -> Raw {
    let out = Raw(Int(mq_qact_bytes(p, Int64(m), Int64(k))))
    mq_qact_convert(p, Int64(m), Int64(k), x, Int64(k), out.base)
    return out
  }

  /// mq_qlinear over columns [c0, c1) into y (other columns untouched).
  func run(_ p: Int32, path: Int32, act: Int32 = Int32(MQ_ACT_NONE), epilogue: Bool, c0: Int, c1: Int,
           into y: inout [Float]) {
    let packed = pack(p), a = activations(p)
    bias.withUnsafeBufferPointer { b in
      residual.withUnsafeBufferPointer { r in
        var ep = mq_gemm_epilogue(bias: b.baseAddress, residual: r.baseAddress, ldr: Int64(n), act: act)
        y.withUnsafeMutableBufferPointer { out in
          withUnsafePointer(to: &ep) { e in
            mq_qlinear(p, path, Int64(m), Int64(n), Int64(k), a.base, packed.base, out.baseAddress, Int64(n),
                       epilogue ? e : nil, Int64(c0), Int64(c1))
          }
        }
      }
    }
  }

  func reference(_ p: Int32, act: Int32 = Int32(MQ_ACT_NONE), epilogue: Bool) -> [Float] {
    var y = [Float](repeating: 0, count: m * n)
    bias.withUnsafeBufferPointer { b in
      residual.withUnsafeBufferPointer { r in
        var ep = mq_gemm_epilogue(bias: b.baseAddress, residual: r.baseAddress, ldr: Int64(n), act: act)
        withUnsafePointer(to: &ep) { e in
          mq_qlinear_ref(p, Int64(m), Int64(n), Int64(k), x, Int64(k), w, &y, Int64(n), epilogue ? e : nil)
        }
      }
    }
    return y
  }

  /// The documented bound of |y_q - y_fp32| at (i, j) (mq_qlinear.h), plus fp32 summation slack.
  func bound(_ p: Int32, _ i: Int, _ j: Int) -> Double {
    var sxw = 0.0, sx = 0.0, sw = 0.0, ax = 0.0, aw = 0.0
    for e in 0..<k {
      let xv = Double(x[i * k + e]), wv = Double(w[j * k + e])
      sxw += abs(xv * wv); sx += abs(xv); sw += abs(wv); ax = max(ax, abs(xv)); aw = max(aw, abs(wv))
    }
    let slack = 1e-6 * Double(k) * sxw + 1e-7
    if p == Int32(MQ_PREC_BF16) { return (2 * 0x1p-8 + 0x1p-16) * sxw + slack }
    let t = ax / 127, s = aw / 127
    return s / 2 * sx + t / 2 * sw + Double(k) * t * s / 4 + slack
  }
}

private let shapes: [(m: Int, n: Int, k: Int)] = [
  (1, 1, 1), (1, 50, 200), (3, 33, 7), (5, 31, 3), (12, 64, 64), (13, 100, 203), (30, 97, 2), (1, 32, 4097),
  // The AVX2 path's row blocks (expanded activations, 64 bytes per row and word, in half the L2):
  // int8's 1,650 words make blocks of at most 8 rows on any L2 up to 2 MiB, so 9 rows take two.
  (9, 40, 6600),
]

@Suite struct QLinearTests {
  @Test(arguments: precisions.map(\.id))
  func everyPathMatchesTheOracle(precision p: Int32) {
    for (index, s) in shapes.enumerated() {
      let problem = Problem(m: s.m, n: s.n, k: s.k, seed: UInt64(100 + index))
      let want = problem.reference(p, epilogue: true)
      for path in paths(p) {
        var got = [Float](repeating: .nan, count: s.m * s.n)
        problem.run(p, path: path, epilogue: true, c0: 0, c1: s.n, into: &got)
        var worst = 0.0
        for i in 0..<s.m {
          for j in 0..<s.n {
            // The oracle sums in double; the kernels in fp32 (bf16) or exactly (int8, then one
            // fp32 product): allow the fp32 rounding of a k-term sum of this magnitude.
            let tol = 1e-6 * Double(s.k) * problem.bound(Int32(MQ_PREC_BF16), i, j) / 0x1p-7 + 1e-5
            worst = max(worst, abs(Double(got[i * s.n + j] - want[i * s.n + j])) / tol)
          }
        }
        #expect(worst <= 1, "precision \(p) path \(path) shape \(s): \(worst) x the tolerance")
      }
    }
  }

  @Test(arguments: precisions.map(\.id))
  func withinTheDocumentedBoundOfFP32(precision p: Int32) {
    for (index, s) in shapes.enumerated() {
      let problem = Problem(m: s.m, n: s.n, k: s.k, seed: UInt64(200 + index))
      var got = [Float](repeating: .nan, count: s.m * s.n)
      problem.run(p, path: mq_qpath_best(p), epilogue: false, c0: 0, c1: s.n, into: &got)
      for i in 0..<s.m {
        for j in 0..<s.n {
          var exact = 0.0
          for e in 0..<s.k { exact += Double(problem.x[i * s.k + e]) * Double(problem.w[j * s.k + e]) }
          let err = abs(Double(got[i * s.n + j]) - exact)
          #expect(err <= problem.bound(p, i, j), "precision \(p) shape \(s) at (\(i), \(j)): error \(err)")
          if err > problem.bound(p, i, j) { return }
        }
      }
    }
  }

  /// Threads compute column blocks at panel boundaries: the blocks together equal one whole call,
  /// bit for bit, and write nothing outside their columns.
  @Test(arguments: precisions.map(\.id))
  func columnBlocksEqualTheWholeCall(precision p: Int32) {
    let problem = Problem(m: 7, n: 100, k: 37, seed: 7)
    for path in paths(p) {
      var whole = [Float](repeating: .nan, count: 7 * 100)
      problem.run(p, path: path, epilogue: true, c0: 0, c1: 100, into: &whole)
      var parts = [Float](repeating: -12345, count: 7 * 100)
      problem.run(p, path: path, epilogue: true, c0: 32, c1: 64, into: &parts)
      for i in 0..<7 { for j in 0..<100 where j < 32 || j >= 64 { #expect(parts[i * 100 + j] == -12345) } }
      problem.run(p, path: path, epilogue: true, c0: 0, c1: 32, into: &parts)
      problem.run(p, path: path, epilogue: true, c0: 64, c1: 100, into: &parts)
      #expect(parts == whole, "precision \(p) path \(path)")
    }
  }

  /// Every path gives the portable path's bits, epilogues included: int8's sums are exact
  /// integers; bf16's products are exact in fp32 and summed in the same order (no denormals here).
  @Test(arguments: precisions.map(\.id))
  func everyPathGivesThePortableBits(precision p: Int32) {
    for (index, s) in shapes.enumerated() {
      let problem = Problem(m: s.m, n: s.n, k: s.k, seed: UInt64(300 + index))
      var portable = [Float](repeating: 0, count: s.m * s.n)
      problem.run(p, path: Int32(MQ_QPATH_PORTABLE), epilogue: true, c0: 0, c1: s.n, into: &portable)
      for path in paths(p) where path != Int32(MQ_QPATH_PORTABLE) {
        var simd = [Float](repeating: .nan, count: s.m * s.n)
        problem.run(p, path: path, epilogue: true, c0: 0, c1: s.n, into: &simd)
        #expect(simd == portable, "precision \(p) path \(path) shape \(s)")
      }
    }
  }

  @Test(arguments: precisions.map(\.id))
  func epiloguesFollowTheFP32Order(precision p: Int32) {
    let problem = Problem(m: 5, n: 40, k: 19, seed: 9)
    for act in [MQ_ACT_RELU, MQ_ACT_TANH, MQ_ACT_SIGMOID].map(Int32.init) {
      let want = problem.reference(p, act: act, epilogue: true)
      var got = [Float](repeating: .nan, count: 5 * 40)
      problem.run(p, path: mq_qpath_best(p), act: act, epilogue: true, c0: 0, c1: 40, into: &got)
      for i in got.indices { #expect(abs(got[i] - want[i]) <= 1e-4, "act \(act) at \(i)") }
    }
  }

  /// Quantization round trip: the unpacked weight is within half a step of the original, and
  /// packing it again gives the same bytes (a converted checkpoint loads to the same panels).
  @Test(arguments: precisions.map(\.id))
  func packingRoundTrips(precision p: Int32) {
    let problem = Problem(m: 1, n: 45, k: 21, seed: 11)
    let packed = problem.pack(p)
    var back = [Float](repeating: 0, count: 45 * 21)
    mq_qweight_unpack(p, 45, 21, packed.base, &back)
    for j in 0..<45 {
      let row = problem.w[(j * 21)..<((j + 1) * 21)]
      let step = p == Int32(MQ_PREC_INT8) ? (row.map(abs).max() ?? 0) / 127 : 0
      for e in 0..<21 {
        let w = problem.w[j * 21 + e], b = back[j * 21 + e]
        let limit = p == Int32(MQ_PREC_INT8) ? step / 2 * 1.0001 : abs(w) * 0x1p-8
        #expect(abs(w - b) <= limit, "(\(j), \(e)): \(w) -> \(b)")
      }
    }
    var again = problem
    again.w = back
    let repacked = again.pack(p)
    let bytes = Int(mq_qweight_bytes(p, 45, 21))
    #expect(memcmp(packed.base, repacked.base, bytes) == 0)
  }

  /// What `mqan quantize` stores: the exported values (bf16 bits, or int8 q and column scales)
  /// give back the unpacked weight, and that packs into the same bytes, on 4,000 columns with
  /// scales of many magnitudes (the largest value 127 s must give back s = (127 s) / 127).
  @Test(arguments: precisions.map(\.id))
  func exportedValuesPackAgainIdentically(precision p: Int32) {
    var problem = Problem(m: 1, n: 4000, k: 9, seed: 12)
    for j in 0..<4000 { for e in 0..<9 { problem.w[j * 9 + e] *= Float(1 + j) * 0.37 } }
    let packed = problem.pack(p)
    var back = [Float](repeating: 0, count: 4000 * 9)
    mq_qweight_unpack(p, 4000, 9, packed.base, &back)
    var scales = [Float](repeating: 0, count: 4000)
    var restored = [Float](repeating: 0, count: 4000 * 9)
    if p == Int32(MQ_PREC_INT8) {
      var q = [Int8](repeating: 0, count: 4000 * 9)
      mq_qweight_export(p, 4000, 9, packed.base, &q, &scales)
      for i in 0..<q.count { restored[i] = Float(q[i]) * scales[i / 9] }
    } else {
      var bits = [UInt16](repeating: 0, count: 4000 * 9)
      mq_qweight_export(p, 4000, 9, packed.base, &bits, nil)
      for i in 0..<bits.count { restored[i] = Float(bitPattern: UInt32(bits[i]) << 16) }
    }
    #expect(restored == back)
    var again = problem
    again.w = restored
    let repacked = again.pack(p)
    #expect(memcmp(packed.base, repacked.base, Int(mq_qweight_bytes(p, 4000, 9))) == 0)
  }

  /// The activation conversion on every path writes the portable loop's bytes: every depth 1...70
  /// (tails of every length), an all-zero row, halves that round to even, tiny and huge values.
  @Test(arguments: precisions.map(\.id))
  func activationConversionMatchesThePortableLoop(precision p: Int32) {
    var rng = SplitMix64(seed: 21)
    for k in 1...70 {
      let m = 5
      var x = randomFloats(m * k, &rng, in: -3...3)
      for e in 0..<k { x[k + e] = 0 }
      for e in 0..<k { x[2 * k + e] = Float(e % 7) - 3.5 }  // q = x / t lands on halves
      for e in 0..<k { x[3 * k + e] *= e % 2 == 0 ? 1e-39 : 1e30 }
      let bytes = Int(mq_qact_bytes(p, Int64(m), Int64(k)))
      let portable = Raw(bytes)
      mq_qact_convert_portable(p, Int64(m), Int64(k), x, Int64(k), portable.base)
      let used = m * 4 * Int(p == Int32(MQ_PREC_INT8) ? (k + 3) / 4 : (k + 1) / 2) + (p == Int32(MQ_PREC_INT8) ? m * 4 : 0)
      for path in paths(p) {
        let fast = Raw(bytes)
        mq_qact_convert_path(path, p, Int64(m), Int64(k), x, Int64(k), fast.base)
        #expect(memcmp(fast.base, portable.base, used) == 0, "path \(path) k \(k)")
      }
      let best = Raw(bytes)
      mq_qact_convert(p, Int64(m), Int64(k), x, Int64(k), best.base)
      #expect(memcmp(best.base, portable.base, used) == 0, "k \(k)")
    }
  }

  @Test func pathNamesAndNeeds() {
    #expect(String(cString: mq_qpath_name(Int32(MQ_PREC_BF16), Int32(MQ_QPATH_AVX512))) == "avx512-bf16")
    #expect(String(cString: mq_qpath_name(Int32(MQ_PREC_INT8), Int32(MQ_QPATH_AVX512))) == "avx512-vnni")
    #expect(String(cString: mq_qpath_name(Int32(MQ_PREC_INT8), Int32(MQ_QPATH_AVX2))) == "avx2")
    #expect(String(cString: mq_qpath_needs(Int32(MQ_PREC_INT8), Int32(MQ_QPATH_AVX512))).hasPrefix("AVX512_VNNI"))
    #expect(String(cString: mq_qpath_needs(Int32(MQ_PREC_BF16), Int32(MQ_QPATH_AVX2))) == "AVX2 and FMA")
    #expect(mq_qpath_supported(Int32(MQ_PREC_INT8), Int32(MQ_QPATH_AVX2)) == mq_gemm_path_supported(Int32(MQ_GEMM_AVX2)))
    #expect(mq_qpath_supported(Int32(MQ_PREC_FP32), Int32(MQ_QPATH_PORTABLE)) == 0)
    #expect(mq_qlinear_max_k(Int32(MQ_PREC_INT8)) == 65536)
  }
}
