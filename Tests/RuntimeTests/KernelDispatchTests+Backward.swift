import GraphIR
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import Runtime

/// The backward ops and matmul's transA through the executor against plain Swift, at 1 and 2
/// threads (each run twice: reruns are bit-identical) and with the `_ref` twins.
extension KernelDispatchTests {
  /// Runs a one-step plan and compares output i ("y", "y1", ...) with `want[i]`.
  func check(_ op: OpKind, _ ins: [(String, TensorType, HostTensor)], _ outs: [TensorType], _ attrs: Attrs = [:],
             want: [[Float]], tol: Float = 1e-5, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let plan = single(op, ins.map { ($0.0, $0.1) }, outs, attrs)
    let feed = Dictionary(uniqueKeysWithValues: ins.map { ($0.0, $0.2) })
    func compare(_ out: [String: HostTensor], _ how: String) {
      for (i, w) in want.enumerated() {
        expectClose(floats(out[i == 0 ? "y" : "y\(i)"]), w, tol: tol, "\(what) output \(i) \(how)", sourceLocation: sourceLocation)
      }
    }
    for threads in [1, 2] {
      let first = try run(plan, feed, threads: threads)
      #expect(try run(plan, feed, threads: threads) == first, "\(what): a rerun differs", sourceLocation: sourceLocation)
      compare(first, "at \(threads) threads")
    }
    let ref = try Executor(plan: plan, params: [:], threads: 2, options: .init(poisonFreed: true, useReference: true))
    compare(try ref.run(feed), "with the reference kernels")
  }

  @Test func activationGradsSumToSliceGradAndLengthMask() throws {
    let g = f32T([3, 5], seed: 1), y = f32T([3, 5], seed: 2), gs = floats(g), ys = floats(y)
    let gy: [(String, TensorType, HostTensor)] = [("g", .f32([B, 5]), g), ("y", .f32([B, 5]), y)]
    try check(.tanhGrad, gy, [.f32([B, 5])], want: [zip(gs, ys).map { $0 * (1 - $1 * $1) }], "tanh_grad")
    try check(.sigmoidGrad, gy, [.f32([B, 5])], want: [zip(gs, ys).map { $0 * ($1 * (1 - $1)) }], "sigmoid_grad")
    try check(.reluGrad, gy, [.f32([B, 5])], want: [zip(gs, ys).map { $1 > 0 ? $0 : 0 }], "relu_grad")

    let s = f32T([2, 3, 4], seed: 3), ss = floats(s)
    for shape in [[3, 4], [4]] {
      let w = shape.reduce(1, *)
      let want = (0..<w).map { j in (0..<(24 / w)).reduce(Float(0)) { $0 + ss[$1 * w + j] } }
      try check(.sumTo, [("g", .f32([B, 3, 4]), s)], [.f32(shape.map { Dim($0) })], ["shape": .dims(shape.map { Dim($0) })],
                want: [want], "sum_to \(shape)")
    }
    // slice_grad: g [2, 2, 3] into [2, 4, 3] at rows 1..<3 of axis 1.
    let sg = f32T([2, 2, 3], seed: 4)
    var placed = [Float](repeating: 0, count: 24)
    for o in 0..<2 { for j in 0..<6 { placed[o * 12 + 3 + j] = floats(sg)[o * 6 + j] } }
    try check(.sliceGrad, [("g", .f32([B, 2, 3]), sg)], [.f32([B, 4, 3])],
              ["axis": .int(1), "start": .int(1), "full": .int(4)], want: [placed], tol: 0, "slice_grad")
    let lengths = HostTensor(shape: [3], int32s: [0, 2, 4])
    try check(.lengthMask, [("len", .i32([B]), lengths)], [.f32([B, 4])], ["length": .int(4)],
              want: [[0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1]], tol: 0, "length_mask")
  }

  @Test func softmaxGradEmbeddingGradAndNLLGrad() throws {
    let x = f32T([2, 3, 5], seed: 1), g = f32T([2, 3, 5], seed: 2), gs = floats(g)
    let mask = [Float]([0, 0, 1, 0, 1, 0, 0, 0, 0, 1])
    let ys = softmaxRef(floats(x), rows: 6, n: 5, q: 3, mask: mask, scale: 0.5, eps: 1e-3, causal: false)
    var want: [Float] = []
    for r in 0..<6 {
      let p = (0..<5).map { ys[r * 5 + $0] - 1e-3 }
      let dotp = (0..<5).reduce(Float(0)) { $0 + gs[r * 5 + $1] * p[$1] }
      want += (0..<5).map { 0.5 * p[$0] * (gs[r * 5 + $0] - dotp) }
    }
    try check(.softmaxGrad, [("g", .f32([B, 3, 5]), g), ("y", .f32([B, 3, 5]), HostTensor(shape: [2, 3, 5], floats: ys))],
              [.f32([B, 3, 5])], ["scale": .float(0.5), "eps": .float(1e-3)], want: [want], "softmax_grad")

    let eg = f32T([2, 3, 2], seed: 3), ids: [Int32] = [4, 0, 4, 6, 4, 1]
    var table = [Float](repeating: 0, count: 14)
    for (i, id) in ids.enumerated() { for e in 0..<2 { table[Int(id) * 2 + e] += floats(eg)[i * 2 + e] } }
    try check(.embeddingGrad, [("g", .f32([B, 3, 2]), eg), ("ids", .i32([B, 3]), HostTensor(shape: [2, 3], int32s: ids))],
              [.f32([7, 2])], ["rows": .int(7)], want: [table], "embedding_grad")

    let p = HostTensor(shape: [2, 3, 4], floats: floats(f32T([2, 3, 4], seed: 4)).map { abs($0) + 0.1 })
    let targets: [Int32] = [3, 1, 0, 1, 2, 3]
    var dp = [Float](repeating: 0, count: 24)
    for (r, t) in targets.enumerated() where t != 1 { dp[r * 4 + Int(t)] = -0.7 / (4 * floats(p)[r * 4 + Int(t)]) }
    try check(.nllLossGrad, [("g", .f32([]), HostTensor(shape: [], floats: [0.7])), ("P", .f32([B, 3, 4]), p),
                             ("t", .i32([B, 3]), HostTensor(shape: [2, 3], int32s: targets))],
              [.f32([B, 3, 4])], ["ignore": .int(1)], want: [dp], "nll_loss_grad")
  }

  /// a [..., K, M] with transA is the transpose of an [..., M, K] operand.
  func transposed(_ a: [Float], batch: Int, rows: Int, cols: Int) -> [Float] {
    var t = [Float](repeating: 0, count: a.count)
    for z in 0..<batch { for i in 0..<rows { for j in 0..<cols { t[(z * cols + j) * rows + i] = a[(z * rows + i) * cols + j] } } }
    return t
  }

  @Test func linearGradsAndMatmulTransA() throws {
    let g = f32T([2, 3, 4], seed: 1), w = f32T([4, 5], seed: 2), x = f32T([2, 3, 5], seed: 3)
    try check(.linearGradInput, [("g", .f32([B, 3, 4]), g), ("w", .f32([4, 5]), w)], [.f32([B, 3, 5])],
              want: [matmulRef(floats(g), floats(w), batch: 1, m: 6, k: 4, n: 5, transB: false)], "linear_grad_input")
    let gt = transposed(floats(g), batch: 1, rows: 6, cols: 4)
    try check(.linearGradWeight, [("g", .f32([B, 3, 4]), g), ("x", .f32([B, 3, 5]), x)], [.f32([4, 5])],
              want: [matmulRef(gt, floats(x), batch: 1, m: 4, k: 6, n: 5, transB: false)], "linear_grad_weight")
    // matmul transA: a [2, 5, 3] is the transpose of [2, 3, 5]; b [2, 5, 4] or, with transB, [2, 4, 5].
    let a = f32T([2, 5, 3], seed: 4), at = transposed(floats(a), batch: 2, rows: 5, cols: 3)
    for transB in [false, true] {
      let bShape = transB ? [2, 4, 5] : [2, 5, 4], b = f32T(bShape, seed: 5)
      var attrs: Attrs = ["transA": .bool(true)]
      if transB { attrs["transB"] = .bool(true) }
      try check(.matmul, [("a", .f32([B, 5, 3]), a), ("b", .f32(bShape.map { Dim($0) }), b)], [.f32([B, 3, 4])], attrs,
                want: [matmulRef(at, floats(b), batch: 2, m: 3, k: 5, n: 4, transB: transB)], "matmul transA transB \(transB)")
    }
    let flat = f32T([7, 3], seed: 6), fb = f32T([7, 2], seed: 7) // unbatched, M = 3 rows split over threads
    try check(.matmul, [("a", .f32([7, 3]), flat), ("b", .f32([7, 2]), fb)], [.f32([3, 2])], ["transA": .bool(true)],
              want: [matmulRef(transposed(floats(flat), batch: 1, rows: 7, cols: 3), floats(fb), batch: 1, m: 3, k: 7, n: 2,
                               transB: false)], "matmul transA unbatched")
  }

  @Test func layerNormGradAndLSTMCellGrad() throws {
    let rows = 3, d = 6
    let g = f32T([rows, d], seed: 1), x = f32T([rows, d], seed: 2), gamma = f32T([d], seed: 3)
    let gs = floats(g).map(Double.init), xs = floats(x).map(Double.init), gm = floats(gamma).map(Double.init)
    var dx = [Float](), dgamma = [Double](repeating: 0, count: d), dbeta = dgamma
    for r in 0..<rows {
      let row = Array(xs[(r * d)..<(r * d + d)]), gr = Array(gs[(r * d)..<(r * d + d)])
      let mean = row.reduce(0, +) / Double(d)
      let std = (row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d - 1)).squareRoot()
      let rr = 1 / (std + 1e-6), dxhat = (0..<d).map { gr[$0] * gm[$0] }
      let s = (0..<d).reduce(0.0) { $0 + dxhat[$1] * (row[$1] - mean) }, mg = dxhat.reduce(0, +) / Double(d)
      dx += (0..<d).map { Float(rr * (dxhat[$0] - mg) - rr * rr * s * (row[$0] - mean) / (Double(d - 1) * std)) }
      for j in 0..<d { dgamma[j] += gr[j] * (row[j] - mean) * rr; dbeta[j] += gr[j] }
    }
    try check(.layerNormGrad, [("g", .f32([B, 6]), g), ("x", .f32([B, 6]), x), ("gamma", .f32([6]), gamma)],
              [.f32([B, 6]), .f32([6]), .f32([6])], ["eps": .float(1e-6)],
              want: [dx, dgamma.map(Float.init), dbeta.map(Float.init)], tol: 1e-4, "layer_norm_grad")

    // lstm_cell_grad: B = 3, H = 2, c_new from the forward formula.
    let gates = floats(f32T([3, 8], seed: 4)).map { $0 * 2 }, c = floats(f32T([3, 2], seed: 5))
    let dh = f32T([3, 2], seed: 6), dc = f32T([3, 2], seed: 7)
    var cn = [Float](), dgates = [Float](repeating: 0, count: 24), dcp = [Float]()
    for r in 0..<3 {
      for j in 0..<2 {
        let gv = { (k: Int) in gates[r * 8 + k * 2 + j] }
        let i = sigm(gv(0)), f = sigm(gv(1)), gg = tanhf(gv(2)), o = sigm(gv(3))
        let cy = f * c[r * 2 + j] + i * gg, tc = tanhf(cy), h = floats(dh)[r * 2 + j]
        let dct = floats(dc)[r * 2 + j] + h * o * (1 - tc * tc)
        cn.append(cy)
        for (k, v) in [dct * gg * i * (1 - i), dct * c[r * 2 + j] * f * (1 - f), dct * i * (1 - gg * gg), h * tc * o * (1 - o)].enumerated() {
          dgates[r * 8 + k * 2 + j] = v
        }
        dcp.append(dct * f)
      }
    }
    let hb = { (n: String, v: [Float]) in (n, TensorType.f32([B, 2]), HostTensor(shape: [3, 2], floats: v)) }
    try check(.lstmCellGrad, [hb("dh", floats(dh)), hb("dc", floats(dc)), ("gates", .f32([B, 8]), HostTensor(shape: [3, 8], floats: gates)),
                              hb("c", c), hb("cn", cn)],
              [.f32([B, 8]), .f32([B, 2])], want: [dgates, dcp], "lstm_cell_grad")
  }

  @Test func mixtureGrad() throws {
    let b = 2, t = 3, v = 4, x = 7, lc = 3, lq = 2
    let dP = f32T([b, t, x], seed: 1), pv = f32T([b, t, v], seed: 2), ac = f32T([b, t, lc], seed: 3), aq = f32T([b, t, lq], seed: 4)
    let gm = (0..<6).map { Float($0 + 1) / 8 }, lm = (0..<6).map { Float(6 - $0) / 7 }
    let cids: [Int32] = [1, 5, 5, 0, 6, 2], qids: [Int32] = [4, 1, 6, 6] // repeats and OOV slots (>= 4)
    let d = floats(dP), a = floats(ac), q = floats(aq)
    var dpv = [Float](), dg = [Float](), dl = [Float](), dac = [Float](), daq = [Float]()
    for r in 0..<(b * t) {
      let z = r / t
      dpv += (0..<v).map { gm[r] * d[r * x + $0] }
      let sv = (0..<v).reduce(0.0) { $0 + Double(d[r * x + $1] * floats(pv)[r * v + $1]) }
      let sc = (0..<lc).reduce(0.0) { $0 + Double(d[r * x + Int(cids[z * lc + $1])] * a[r * lc + $1]) }
      let sq = (0..<lq).reduce(0.0) { $0 + Double(d[r * x + Int(qids[z * lq + $1])] * q[r * lq + $1]) }
      dg.append(Float(sv - Double(lm[r]) * sc - Double(1 - lm[r]) * sq))
      dl.append(Float(Double(1 - gm[r]) * (sc - sq)))
      dac += (0..<lc).map { lm[r] * (1 - gm[r]) * d[r * x + Int(cids[z * lc + $0])] }
      daq += (0..<lq).map { (1 - lm[r]) * (1 - gm[r]) * d[r * x + Int(qids[z * lq + $0])] }
    }
    let col = { (n: String, vals: [Float]) in (n, TensorType.f32([B, T, 1]), HostTensor(shape: [b, t, 1], floats: vals)) }
    try check(.mixtureGrad, [("dP", .f32([B, T, 7]), dP), ("pv", .f32([B, T, 4]), pv), col("g", gm), col("l", lm),
                             ("ac", .f32([B, T, 3]), ac), ("cids", .i32([B, 3]), HostTensor(shape: [b, lc], int32s: cids)),
                             ("aq", .f32([B, T, 2]), aq), ("qids", .i32([B, 2]), HostTensor(shape: [b, lq], int32s: qids))],
              [.f32([B, T, 4]), .f32([B, T, 1]), .f32([B, T, 1]), .f32([B, T, 3]), .f32([B, T, 2])],
              want: [dpv, dg, dl, dac, daq], "mixture_grad")
  }

  /// D = 10, heads = 4: chunks 3 / 3 / 3 / 1; key padding, causal, and both.
  @Test func attentionGrad() throws {
    let b = 2, tk = 5, d = 10
    let k = f32T([b, tk, d], seed: 2), v = f32T([b, tk, d], seed: 3), pad = [Float]([0, 0, 1, 0, 1, 0, 0, 0, 0, 1])
    for (causal, padded, tq) in [(false, true, 3), (true, false, 5), (true, true, 5)] {
      let q = f32T([b, tq, d], seed: 4), g = f32T([b, tq, d], seed: 5)
      var ins: [(String, TensorType, HostTensor)] = [("g", .f32([B, T, 10]), g), ("q", .f32([B, T, 10]), q),
                                                     ("k", .f32([B, Dim.sym("S"), 10]), k), ("v", .f32([B, Dim.sym("S"), 10]), v)]
      if padded { ins.append(("pad", .f32([B, Dim.sym("S")]), HostTensor(shape: [b, tk], floats: pad))) }
      let want = attentionGradRef(floats(g), floats(q), floats(k), floats(v), pad: padded ? pad : nil, b: b, tq: tq, tk: tk,
                                  d: d, heads: 4, scale: 0.3, causal: causal)
      try check(.attentionGrad, ins, [.f32([B, T, 10]), .f32([B, Dim.sym("S"), 10]), .f32([B, Dim.sym("S"), 10])],
                ["heads": .int(4), "scale": .float(0.3), "causal": .bool(causal)], want: want, "attention_grad causal \(causal) pad \(padded)")
    }
  }

  /// dq, dk, dv of decaNLP's MultiHead (torch.chunk heads, no projections), one (batch, chunk) at a time.
  func attentionGradRef(_ g: [Float], _ q: [Float], _ k: [Float], _ v: [Float], pad: [Float]?, b: Int, tq: Int, tk: Int,
                        d: Int, heads: Int, scale: Float, causal: Bool) -> [[Float]] {
    var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
    let w = (d + heads - 1) / heads
    for z in 0..<b {
      for c0 in stride(from: 0, to: d, by: w) {
        let cols = c0..<min(c0 + w, d)
        let qi = { (i: Int, e: Int) in (z * tq + i) * d + e }, kj = { (j: Int, e: Int) in (z * tk + j) * d + e }
        for i in 0..<tq {
          var s = (0..<tk).map { j -> Float in
            if (causal && j > i) || (pad?[z * tk + j] ?? 0) != 0 { return -1e10 * scale }
            return cols.reduce(Float(0)) { $0 + q[qi(i, $1)] * k[kj(j, $1)] } * scale
          }
          let m = s.max()!
          s = s.map { expf($0 - m) }
          let total = s.reduce(0, +), p = s.map { $0 / total }
          let dp = (0..<tk).map { j in cols.reduce(Float(0)) { $0 + g[qi(i, $1)] * v[kj(j, $1)] } }
          let rowDot = (0..<tk).reduce(Float(0)) { $0 + dp[$1] * p[$1] }
          for j in 0..<tk {
            let ds = scale * p[j] * (dp[j] - rowDot)
            for e in cols {
              dv[kj(j, e)] += p[j] * g[qi(i, e)]
              dq[qi(i, e)] += ds * k[kj(j, e)]
              dk[kj(j, e)] += ds * q[qi(i, e)]
            }
          }
        }
      }
    }
    return [dq, dk, dv]
  }
}
