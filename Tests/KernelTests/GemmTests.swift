// mqan's own GEMM (mq_gemm.h): every path this CPU runs against the oracle mq_gemm_ref, and the
// bit-level promises the runtime relies on (packed B = unpacked B, any row / column split = one
// whole call, fused epilogue = the unfused kernels, AVX-512 = AVX2).
//
// Legend: C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] (+ beta * C), row-major; MR x NR the path's
// microkernel tile, kc its depth block. Every operand (A, B, C, bias, residual, packed B) starts one
// float past its array's start (unaligned) and A, B, C, residual have leading dimensions past the
// minimum, with sentinels in the padding columns of C. Scratch is 64-byte aligned, as the API asks.
//
// Paths: `gemmPaths` is every path `mq_gemm_path_supported` says this CPU and OS run. On an
// AVX-512 machine that is all three: AVX2 and portable are forced there (`mq_gemm_config_for`
// passed to `mq_gemm`), though `mq_gemm_best_path()` would never pick them.
import CKernels
import Testing

/// Every path this CPU and OS run (portable always).
private let gemmPaths: [Int32] = (0..<Int32(MQ_GEMM_PATHS)).filter { mq_gemm_path_supported($0) != 0 }

/// Tolerance against the oracle, pinned: |got - want| <= gemmTolerance * (1 + magnitude), the
/// magnitude of a cell being |alpha|·Σ_p |op(A)[i,p]|·|op(B)[p,j]| + |beta·C[i,j]| + |bias[j]| +
/// |residual[i,j]| (the scale of what was summed, so the bound grows with k and with the values).
private let gemmTolerance: Float = 1e-5

private func i64(_ x: Int) -> Int64 { Int64(x) }

/// n floats uniform in [-1, 1) from `rng`: randomFloats' job, with one 64-bit draw a float and no
/// generic Float.random (which dominates this file's time in debug builds).
private func uniformFloats(_ n: Int, _ rng: inout SplitMix64) -> [Float] {
  [Float](unsafeUninitializedCapacity: n) { buf, count in
    for i in 0..<n { buf[i] = Float(Int32(truncatingIfNeeded: rng.next() >> 32)) * 0x1p-31 }
    count = n
  }
}

/// One GEMM's inputs. Arrays hold a padding float at index 0: operands start at index 1.
private struct GemmProblem: CustomStringConvertible {
  let m: Int, n: Int, k: Int
  let transA: Bool, transB: Bool
  var alpha: Float, beta: Float
  /// mq_gemm sums this product (at most 4 rows, B stored [n, k], not packed) as vector dot
  /// products, in an order of its own: packed B, or another path, may differ in the last bits.
  var dotProducts: Bool { m <= 4 && transB && k <= 4096 && k > 1 }
  let lda: Int, ldb: Int, ldc: Int
  var a: [Float], b: [Float], c: [Float]

  init(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float = 1, beta: Float = 0,
       seed: UInt64)
  {
    var rng = SplitMix64(seed: seed)
    self.m = m
    self.n = n
    self.k = k
    self.transA = transA
    self.transB = transB
    self.alpha = alpha
    self.beta = beta
    // Stored A is [k, m] when transposed, else [m, k]; stored B is [n, k] when transposed, else
    // [k, n]. Leading dimensions 3 (A), 1 (B) and 5 (C) floats past the minimum.
    lda = (transA ? m : k) + 3
    ldb = (transB ? k : n) + 1
    ldc = n + 5
    a = [0] + uniformFloats((transA ? k : m) * lda, &rng)
    b = [0] + uniformFloats((transB ? n : k) * ldb, &rng)
    c = [0] + uniformFloats(m * ldc, &rng)
    for i in 0..<m { for j in n..<ldc { c[1 + i * ldc + j] = sentinel } }
  }

  var description: String {
    "m=\(m) n=\(n) k=\(k) ta=\(transA) tb=\(transB) alpha=\(alpha) beta=\(beta)"
  }

  /// Every cell of C outside [0, m) x [0, n) (the padding columns) and the padding float.
  func paddingUntouched(_ out: [Float]) -> Bool {
    for i in 0..<m { for j in n..<ldc where out[1 + i * ldc + j].bitPattern != c[1 + i * ldc + j].bitPattern { return false } }
    return out[0] == c[0]
  }

  /// B packed ahead for `cfg`: panels [0, split) then [split, panels) (split nil: one call over all
  /// panels). The buffer starts as NaN, so a panel packing skipped shows up in the results.
  func packB(_ cfg: mq_gemm_config, split: Int? = nil) -> [Float] {
    var cfg = cfg
    let panels = (n + Int(cfg.nr) - 1) / Int(cfg.nr)
    var packed = [Float](repeating: .nan, count: 1 + Int(mq_gemm_packed_b_floats(&cfg, i64(n), i64(k))))
    packed.withUnsafeMutableBufferPointer { p in
      b.withUnsafeBufferPointer { bp in
        let dst = p.baseAddress! + 1, src = bp.baseAddress! + 1
        if let split {
          mq_gemm_pack_b(&cfg, transB ? 1 : 0, i64(n), i64(k), src, i64(ldb), dst, 0, i64(split))
          mq_gemm_pack_b(&cfg, transB ? 1 : 0, i64(n), i64(k), src, i64(ldb), dst, i64(split), i64(panels))
        } else {
          mq_gemm_pack_b(&cfg, transB ? 1 : 0, i64(n), i64(k), src, i64(ldb), dst, 0, i64(panels))
        }
      }
    }
    return packed
  }

  /// mq_gemm over the block rows x cols (default: all of C) with `cfg`, on `into` (default: a copy
  /// of c). Scratch is filled with NaN first, so reading scratch nothing wrote shows up.
  func run(_ cfg: mq_gemm_config, packed: [Float]? = nil, ep: GemmEpilogue? = nil,
           rows: Range<Int>? = nil, cols: Range<Int>? = nil, into start: [Float]? = nil) -> [Float]
  {
    var cfg = cfg
    let rows = rows ?? 0..<m, cols = cols ?? 0..<n
    var out = start ?? c
    let floats = Int(mq_gemm_scratch_floats(&cfg, i64(rows.count), i64(cols.count), i64(k)))
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(floats, 1) * 4, alignment: 64)
    defer { raw.deallocate() }
    let scratch = raw.initializeMemory(as: Float.self, repeating: .nan, count: max(floats, 1))
    a.withUnsafeBufferPointer { ap in
      b.withUnsafeBufferPointer { bp in
        withOptionalPointer(packed) { pp in
          out.withUnsafeMutableBufferPointer { cp in
            GemmEpilogue.with(ep) { e in
              mq_gemm(&cfg, transA ? 1 : 0, transB ? 1 : 0, i64(m), i64(n), i64(k), alpha,
                      ap.baseAddress! + 1, i64(lda), bp.baseAddress! + 1, i64(ldb), pp.map { $0 + 1 },
                      beta, cp.baseAddress! + 1, i64(ldc), e, i64(rows.lowerBound), i64(rows.upperBound),
                      i64(cols.lowerBound), i64(cols.upperBound), scratch)
            }
          }
        }
      }
    }
    return out
  }

  /// The oracle over all of C.
  func reference(ep: GemmEpilogue? = nil) -> [Float] {
    var out = c
    a.withUnsafeBufferPointer { ap in
      b.withUnsafeBufferPointer { bp in
        out.withUnsafeMutableBufferPointer { cp in
          GemmEpilogue.with(ep) { e in
            mq_gemm_ref(transA ? 1 : 0, transB ? 1 : 0, i64(m), i64(n), i64(k), alpha, ap.baseAddress! + 1,
                        i64(lda), bp.baseAddress! + 1, i64(ldb), beta, cp.baseAddress! + 1, i64(ldc), e, 0,
                        i64(m), 0, i64(n))
          }
        }
      }
    }
    return out
  }

  /// Each cell's magnitude (see gemmTolerance): the oracle on |A|, |B|, |C|, |bias|, |residual|.
  func magnitude(ep: GemmEpilogue? = nil) -> [Float] {
    var abs = self
    abs.a = a.map { Swift.abs($0) }
    abs.b = b.map { Swift.abs($0) }
    abs.c = c.map { Swift.abs($0) }
    var absEp = ep.map { e in
      GemmEpilogue(bias: e.bias?.map { Swift.abs($0) }, residual: e.residual?.map { Swift.abs($0) },
                   ldr: e.ldr, act: Int32(MQ_ACT_NONE))
    }
    if absEp?.bias == nil && absEp?.residual == nil { absEp = nil }
    abs.alpha = Swift.abs(alpha)
    abs.beta = Swift.abs(beta)
    return abs.reference(ep: absEp)
  }

  /// Every cell of C within the pinned tolerance of `want`, padding untouched.
  func expectNear(_ got: [Float], _ want: [Float], _ mag: [Float], _ what: String,
                  sourceLocation: SourceLocation = #_sourceLocation)
  {
    var worst: Float = 0, at = (0, 0)
    for i in 0..<m {
      for j in 0..<n {
        let x = 1 + i * ldc + j
        if got[x].isNaN && want[x].isNaN { continue }
        let e = Swift.abs(got[x] - want[x]) / (gemmTolerance * (1 + mag[x]))
        if !(e <= worst) { (worst, at) = (e.isNaN ? .infinity : e, (i, j)) }
      }
    }
    #expect(worst <= 1, "\(what) \(self): scaled error \(worst) at \(at)", sourceLocation: sourceLocation)
    #expect(paddingUntouched(got), "\(what) \(self): padding written", sourceLocation: sourceLocation)
  }
}

/// An epilogue whose arrays start one float in (index 0 is padding).
private struct GemmEpilogue {
  var bias: [Float]?
  var residual: [Float]?
  var ldr: Int
  var act: Int32

  static func with<R>(_ ep: GemmEpilogue?, _ body: (UnsafePointer<mq_gemm_epilogue>?) -> R) -> R {
    guard let ep else { return body(nil) }
    return withOptionalPointer(ep.bias) { bp in
      withOptionalPointer(ep.residual) { rp in
        let e = mq_gemm_epilogue(bias: bp.map { $0 + 1 }, residual: rp.map { $0 + 1 }, ldr: i64(ep.ldr), act: ep.act)
        return withUnsafePointer(to: e) { body($0) }
      }
    }
  }
}

private let transposes: [(Bool, Bool)] = [(false, false), (false, true), (true, false), (true, true)]

/// The odd sizes for a path: 1, 2, 3, around MR, around NR, and two larger than any tile.
private func oddSizes(_ path: Int32) -> [Int] {
  let mr = Int(mq_gemm_mr(path)), nr = Int(mq_gemm_nr(path))
  var sizes: [Int] = []
  for s in [1, 2, 3, mr - 1, mr, mr + 1, nr - 1, nr, nr + 1, 37, 70] where !sizes.contains(s) { sizes.append(s) }
  return sizes
}

/// gemmProblems(path) for every path, built once for the tests that share them.
private let problemsByPath: [Int32: [GemmProblem]] = Dictionary(
  uniqueKeysWithValues: gemmPaths.map { ($0, gemmProblems($0)) })

/// A representative product of shapes for one path: every (m, n) pair of the odd sizes with k
/// cycling through them, the transposes, alpha and beta cycling with it; then every transpose
/// and beta with k = 0 and with k = 2·kc + 3 (three k blocks accumulated into C).
private func gemmProblems(_ path: Int32) -> [GemmProblem] {
  let sizes = oddSizes(path)
  let deep = Int(mq_gemm_config_for(path).kc) * 2 + 3
  let betas: [Float] = [0, 1, 0.5]
  var out: [GemmProblem] = []
  for (mi, m) in sizes.enumerated() {
    for (ni, n) in sizes.enumerated() {
      let (ta, tb) = transposes[(mi + ni) % 4]
      out.append(GemmProblem(m: m, n: n, k: sizes[(mi * 3 + ni) % sizes.count], transA: ta, transB: tb,
                             alpha: (mi + ni) % 2 == 0 ? 1 : -0.75, beta: betas[(mi + 2 * ni) % 3],
                             seed: UInt64(path) << 32 | UInt64(mi * 64 + ni)))
    }
  }
  let mr = Int(mq_gemm_mr(path)), nr = Int(mq_gemm_nr(path))
  for (ti, (ta, tb)) in transposes.enumerated() {
    for (bi, beta) in betas.enumerated() {
      for (si, (m, n)) in [(mr + 1, nr + 1), (37, 70)].enumerated() {
        for k in [0, deep] {
          out.append(GemmProblem(m: m, n: n, k: k, transA: ta, transB: tb, alpha: 1.5, beta: beta,
                                 seed: UInt64(path) << 32 | UInt64(0x10000 + ti * 256 + bi * 16 + si * 2 + (k > 0 ? 1 : 0))))
        }
      }
    }
  }
  return out
}

/// C with `block` taken from `inside` and every other cell from `outside`.
private func merged(_ p: GemmProblem, _ outside: [Float], _ inside: [Float], _ rows: Range<Int>, _ cols: Range<Int>) -> [Float] {
  var out = outside
  for i in rows { for j in cols { out[1 + i * p.ldc + j] = inside[1 + i * p.ldc + j] } }
  return out
}

@Suite struct GemmTests {
  @Test(arguments: gemmPaths)
  func matchesReference(path: Int32) {
    let cfg = mq_gemm_config_for(path)
    for p in problemsByPath[path]! {
      let got = p.run(cfg)
      p.expectNear(got, p.reference(), p.magnitude(), mq_gemmPathName(path))
    }
  }

  /// B packed ahead (all panels at once, or in two calls [0, p) and [p, panels)) gives the bits of
  /// B packed inside the call.
  @Test(arguments: gemmPaths)
  func packedBMatchesUnpacked(path: Int32) {
    let cfg = mq_gemm_config_for(path)
    for p in problemsByPath[path]! {
      let want = p.run(cfg)
      let panels = (p.n + Int(cfg.nr) - 1) / Int(cfg.nr)
      let packed = p.run(cfg, packed: p.packB(cfg))
      if p.dotProducts {
        p.expectNear(packed, p.reference(), p.magnitude(), "packed \(mq_gemmPathName(path)) \(p)")
      } else {
        expectBitwise(packed, want, "packed \(mq_gemmPathName(path)) \(p)")
      }
      expectBitwise(p.run(cfg, packed: p.packB(cfg, split: panels / 2)), packed,
                    "packed in halves \(mq_gemmPathName(path)) \(p)")
    }
  }

  /// The thread split: C computed as blocks [r0, r1) x [c0, c1) (a 2 x 2 grid; c0 a multiple of NR
  /// when B is packed) gives the bits of one whole call, and a block call leaves every cell
  /// outside its block as it was.
  @Test(arguments: gemmPaths)
  func blocksMatchWholeCall(path: Int32) {
    let cfg = mq_gemm_config_for(path)
    let nr = Int(cfg.nr)
    for p in problemsByPath[path]! {
      let whole = p.run(cfg)
      let packed = p.packB(cfg)
      let rs = p.m / 2 + (p.m > 4 ? 1 : 0) // not a multiple of MR for most m
      for usePacked in [false, true] {
        let whole = usePacked && p.dotProducts ? p.run(cfg, packed: packed) : whole
        let cs = usePacked ? p.n / 2 / nr * nr : min(p.n, p.n / 2 + 1)
        let blocks = [(0..<rs, 0..<cs), (0..<rs, cs..<p.n), (rs..<p.m, 0..<cs), (rs..<p.m, cs..<p.n)]
        var union = p.c
        for (rows, cols) in blocks {
          let one = p.run(cfg, packed: usePacked ? packed : nil, rows: rows, cols: cols)
          expectBitwise(one, merged(p, p.c, whole, rows, cols),
                        "block \(rows) x \(cols) packed=\(usePacked) \(mq_gemmPathName(path)) \(p)")
          union = p.run(cfg, packed: usePacked ? packed : nil, rows: rows, cols: cols, into: union)
        }
        expectBitwise(union, whole, "union of blocks packed=\(usePacked) \(mq_gemmPathName(path)) \(p)")
      }
    }
  }

  /// The fused epilogue gives the bits of the unfused sequence on the same path: the GEMM alone,
  /// then the bias, then the residual (ldr != n), then mq_relu / mq_tanh / mq_sigmoid. Also
  /// against the oracle with its epilogue, within tolerance. relu keeps a NaN of the residual.
  @Test(arguments: gemmPaths)
  func epilogueMatchesUnfused(path: Int32) {
    let cfg = mq_gemm_config_for(path)
    let deep = Int(cfg.kc) * 2 + 3
    let mr = Int(cfg.mr), nr = Int(cfg.nr)
    let shapes = [(37, 70, 29, false, true), (mr + 1, nr + 1, deep, false, true), (mr - 1, 2 * nr - 1, 5, true, false),
                  (3, 7, 0, false, true)]
    let acts: [Int32] = [Int32(MQ_ACT_NONE), Int32(MQ_ACT_RELU), Int32(MQ_ACT_TANH), Int32(MQ_ACT_SIGMOID)]
    for (si, (m, n, k, ta, tb)) in shapes.enumerated() {
      for (bi, beta) in [Float(0), 1, 0.5].enumerated() {
        let p = GemmProblem(m: m, n: n, k: k, transA: ta, transB: tb, alpha: 0.8, beta: beta,
                            seed: UInt64(path) << 32 | UInt64(0x20000 + si * 16 + bi))
        var rng = SplitMix64(seed: UInt64(path) << 32 | UInt64(0x30000 + si * 16 + bi))
        let ldr = n + 3
        let bias = [0] + randomFloats(n, &rng, in: -2...2)
        let residual = [0] + randomFloats(m * ldr, &rng, in: -2...2)
        // relu (and no activation) keep a NaN of the residual; tanh and sigmoid get finite inputs.
        var nanResidual = residual
        nanResidual[1 + (m - 1) * ldr + n / 2] = .nan
        let nanAt = 1 + (m - 1) * p.ldc + n / 2
        let plain = p.run(cfg)
        for act in acts {
          for (useBias, useRes) in [(true, false), (false, true), (true, true), (false, false)] {
            let withNaN = useRes && (act == Int32(MQ_ACT_RELU) || act == Int32(MQ_ACT_NONE))
            let res = withNaN ? nanResidual : residual
            let ep = GemmEpilogue(bias: useBias ? bias : nil, residual: useRes ? res : nil, ldr: ldr, act: act)
            let fused = p.run(cfg, ep: ep)
            // Unfused, on the same path.
            var want = plain
            for i in 0..<m {
              for j in 0..<n {
                if useBias { want[1 + i * p.ldc + j] = want[1 + i * p.ldc + j] + bias[1 + j] }
                if useRes { want[1 + i * p.ldc + j] = want[1 + i * p.ldc + j] + res[1 + i * ldr + j] }
              }
            }
            want.withUnsafeMutableBufferPointer { w in
              let c = w.baseAddress! + 1
              for i in 0..<m {
                let row = c + i * p.ldc
                switch act {
                case Int32(MQ_ACT_RELU): mq_relu(row, row, 0, i64(n))
                case Int32(MQ_ACT_TANH): mq_tanh(row, row, 0, i64(n))
                case Int32(MQ_ACT_SIGMOID): mq_sigmoid(row, row, 0, i64(n))
                default: break
                }
              }
            }
            let what = "epilogue act=\(act) bias=\(useBias) residual=\(useRes) \(mq_gemmPathName(path)) \(p)"
            expectBitwise(fused, want, what)
            p.expectNear(fused, p.reference(ep: ep), p.magnitude(ep: ep), what)
            if withNaN {
              #expect(fused[nanAt].isNaN, "\(what): the residual's NaN is lost")
            }
            // The epilogue on blocks: same bits as the whole call.
            let rs = m / 2, cs = n / 2 / nr * nr
            var union = p.c
            for (rows, cols) in [(0..<rs, 0..<cs), (0..<rs, cs..<n), (rs..<m, 0..<cs), (rs..<m, cs..<n)] {
              union = p.run(cfg, packed: tb ? p.packB(cfg) : nil, ep: ep, rows: rows, cols: cols, into: union)
            }
            expectBitwise(union, fused, "blocks of \(what)")
          }
        }
      }
    }
  }

  /// The header's promise: AVX-512 and AVX2 sum each output in the same order (same kc, FMA
  /// within a block), so they give the same bits, epilogue included.
  @Test(.enabled(if: mq_gemm_path_supported(Int32(MQ_GEMM_AVX512)) != 0
                   && mq_gemm_path_supported(Int32(MQ_GEMM_AVX2)) != 0))
  func avx512MatchesAVX2() {
    let c512 = mq_gemm_config_for(Int32(MQ_GEMM_AVX512)), c2 = mq_gemm_config_for(Int32(MQ_GEMM_AVX2))
    #expect(c512.kc == c2.kc)
    let deep = Int(c512.kc) * 2 + 3
    var rng = SplitMix64(seed: 0x512)
    for (si, (m, n, k)) in [(1, 1, 1), (5, 15, 17), (13, 33, 70), (37, 70, deep), (25, 47, 0), (70, 37, 11)].enumerated() {
      for (ti, (ta, tb)) in transposes.enumerated() {
        let beta: [Float] = [0, 1, 0.5]
        let p = GemmProblem(m: m, n: n, k: k, transA: ta, transB: tb, alpha: ti % 2 == 0 ? 1 : -1.25,
                            beta: beta[(si + ti) % 3], seed: UInt64(0x40000 + si * 16 + ti))
        if p.dotProducts {
          p.expectNear(p.run(c512), p.run(c2), p.magnitude(), "avx512 vs avx2 \(p)")
        } else {
          expectBitwise(p.run(c512), p.run(c2), "avx512 vs avx2 \(p)")
        }
        expectBitwise(p.run(c512, packed: p.packB(c512)), p.run(c2, packed: p.packB(c2)), "avx512 vs avx2 packed \(p)")
        let ep = GemmEpilogue(bias: [0] + randomFloats(n, &rng), residual: [0] + randomFloats(m * (n + 2), &rng),
                              ldr: n + 2, act: Int32([MQ_ACT_RELU, MQ_ACT_TANH, MQ_ACT_SIGMOID][ti % 3]))
        expectBitwise(p.run(c512, ep: ep), p.run(c2, ep: ep), "avx512 vs avx2 epilogue \(p)")
      }
    }
  }

  /// mq_sgemm through the calling thread's backend: mqan's own with each path (the bits of
  /// mq_gemm with that path's config), and OpenBLAS, both against the oracle. The backend is
  /// thread-local and this synchronous test stays on one thread, so tests running beside it are
  /// not disturbed; it is set back to mqan's own, best path, at the end.
  @Test func sgemmBackends() {
    defer { mq_gemm_set_backend(Int32(MQ_BACKEND_MQAN), mq_gemm_best_path()) }
    var problems: [GemmProblem] = []
    for (ti, (ta, tb)) in transposes.enumerated() {
      for (si, (m, n, k)) in [(1, 1, 1), (7, 13, 9), (37, 70, 1100), (70, 37, 0)].enumerated() {
        problems.append(GemmProblem(m: m, n: n, k: k, transA: ta, transB: tb, alpha: si % 2 == 0 ? 1 : 0.5,
                                    beta: [0, 1, 0.5][(si + ti) % 3], seed: UInt64(0x50000 + ti * 16 + si)))
      }
    }
    func sgemm(_ p: GemmProblem) -> [Float] {
      var out = p.c
      p.a.withUnsafeBufferPointer { ap in
        p.b.withUnsafeBufferPointer { bp in
          out.withUnsafeMutableBufferPointer { cp in
            mq_sgemm(p.transA ? 1 : 0, p.transB ? 1 : 0, i64(p.m), i64(p.n), i64(p.k), p.alpha, ap.baseAddress! + 1,
                     i64(p.lda), bp.baseAddress! + 1, i64(p.ldb), p.beta, cp.baseAddress! + 1, i64(p.ldc))
          }
        }
      }
      return out
    }
    for path in gemmPaths {
      mq_gemm_set_backend(Int32(MQ_BACKEND_MQAN), path)
      #expect(mq_gemm_backend() == Int32(MQ_BACKEND_MQAN))
      #expect(mq_gemm_backend_path() == path)
      for p in problems {
        let got = sgemm(p)
        p.expectNear(got, p.reference(), p.magnitude(), "mq_sgemm \(mq_gemmPathName(path))")
        expectBitwise(got, p.run(mq_gemm_config_for(path)), "mq_sgemm vs mq_gemm \(mq_gemmPathName(path)) \(p)")
      }
    }
    mq_gemm_set_backend(Int32(MQ_BACKEND_OPENBLAS), mq_gemm_best_path())
    #expect(mq_gemm_backend() == Int32(MQ_BACKEND_OPENBLAS))
    for p in problems {
      p.expectNear(sgemm(p), p.reference(), p.magnitude(), "mq_sgemm openblas")
    }
    // An unsupported path falls back to the best one.
    mq_gemm_set_backend(Int32(MQ_BACKEND_MQAN), 99)
    #expect(mq_gemm_backend_path() == mq_gemm_best_path())
  }

  @Test func configurationAndNames() {
    let cs = mq_gemm_cache_sizes()
    #expect(cs.l1d > 0 && cs.l2 > 0 && cs.l3 > 0, "cache sizes \(cs)")
    #expect(mq_gemm_path_supported(Int32(MQ_GEMM_PORTABLE)) != 0)
    #expect(mq_gemm_path_supported(mq_gemm_best_path()) != 0)
    #expect(mq_gemm_best_path() == gemmPaths.max())
    #expect(mq_gemm_path_supported(Int32(MQ_GEMM_PATHS)) == 0 && mq_gemm_path_supported(-1) == 0)
    let names = [Int32(MQ_GEMM_PORTABLE): "mqan-portable", Int32(MQ_GEMM_AVX2): "mqan-avx2",
                 Int32(MQ_GEMM_AVX512): "mqan-avx512", Int32(MQ_GEMM_PATHS): "?", -1: "?"]
    for (path, name) in names { #expect(mq_gemmPathName(path) == name) }
    let tiles = [Int32(MQ_GEMM_PORTABLE): (4, 8), Int32(MQ_GEMM_AVX2): (6, 16), Int32(MQ_GEMM_AVX512): (12, 32)]
    for (path, (mr, nr)) in tiles {
      var cfg = mq_gemm_config_for(path)
      #expect(cfg.path == path && Int(cfg.mr) == mr && Int(cfg.nr) == nr)
      #expect(mq_gemm_mr(path) == cfg.mr && mq_gemm_nr(path) == cfg.nr)
      #expect(cfg.kc > 0 && cfg.nb > 0 && cfg.mb > 0, "\(cfg)")
      #expect(cfg.nb % Int64(cfg.nr) == 0 && cfg.mb % Int64(cfg.mr) == 0, "\(cfg)")
      // k in ceil(k / kc) equal blocks, none deeper than kc.
      for k: Int64 in [1, 7, cfg.kc, cfg.kc + 1, 2 * cfg.kc + 3] {
        let kc = mq_gemm_kc(&cfg, k)
        let blocks = (k + cfg.kc - 1) / cfg.kc
        #expect(kc <= cfg.kc && kc * blocks >= k && kc * (blocks - 1) < k, "kc(\(k)) = \(kc)")
      }
      #expect(mq_gemm_kc(&cfg, 0) == 1)
    }
  }
}

private func mq_gemmPathName(_ path: Int32) -> String { String(cString: mq_gemm_path_name(path)) }
