import CKernels
import Foundation
import GraphIR
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import Runtime

/// Every op kind through the executor, on small odd shapes, against plain Swift (or the C `_ref`
/// twin), at 1, 2 and 3 threads.
@Suite struct KernelDispatchTests {
  func run(_ plan: Plan, _ inputs: [String: HostTensor], params: [String: HostTensor] = [:], threads: Int,
           dims: [String: Int] = [:]) throws -> [String: HostTensor] {
    try Executor(plan: plan, params: params, threads: threads, options: .init(poisonFreed: true)).run(inputs, dims: dims)
  }

  /// One step over inputs fed by name; returns output "y" (and the rest).
  func single(_ op: OpKind, _ ins: [(String, TensorType)], _ out: [TensorType], _ attrs: Attrs = [:]) -> Plan {
    let p = PlanSketch(op.rawValue)
    let ids = ins.map { p.input($0.0, $0.1) }
    let outs = p.step(op, ids, out, attrs)
    return p.finish(outs.enumerated().map { ($0.offset == 0 ? "y" : "y\($0.offset)", $0.element) })
  }

  @Test(arguments: [1, 2, 3])
  func elementwise(threads: Int) throws {
    let a = f32T([3, 5], seed: 1), b = f32T([3, 5], seed: 2), row = f32T([5], seed: 3)
    let xa = floats(a), xb = floats(b), xr = floats(row)
    for (op, f) in [(OpKind.add, { (x: Float, y: Float) in x + y }), (.sub, { $0 - $1 }), (.mul, { $0 * $1 })] {
      let full = single(op, [("a", .f32([B, 5])), ("b", .f32([B, 5]))], [.f32([B, 5])])
      expectClose(floats(try run(full, ["a": a, "b": b], threads: threads)["y"]), zip(xa, xb).map(f), tol: 0, "\(op)")
      let bias = single(op, [("a", .f32([B, 5])), ("b", .f32([5]))], [.f32([B, 5])])
      expectClose(floats(try run(bias, ["a": a, "b": row], threads: threads)["y"]),
                  xa.enumerated().map { f($0.element, xr[$0.offset % 5]) }, tol: 0, "\(op) with a broadcast row")
    }
    let affine = single(.affine, [("a", .f32([B, 5]))], [.f32([B, 5])], ["alpha": .float(-1.5), "beta": .float(0.25)])
    expectClose(floats(try run(affine, ["a": a], threads: threads)["y"]), xa.map { -1.5 * $0 + 0.25 }, tol: 1e-6, "affine")
    let unary: [(OpKind, (Float) -> Float)] = [(.tanh, { tanhf($0) }), (.sigmoid, { 1 / (1 + expf(-$0)) }), (.relu, { max($0, 0) })]
    for (op, f) in unary {
      let plan = single(op, [("a", .f32([B, 5]))], [.f32([B, 5])])
      expectClose(floats(try run(plan, ["a": a], threads: threads)["y"]), xa.map(f), tol: 1e-6, "\(op)")
    }
  }

  @Test(arguments: [1, 2, 3])
  func linearAndMatmul(threads: Int) throws {
    // linear [3, 5] x [4, 5]ᵀ + b
    let p = PlanSketch("linear")
    let x = p.input("x", .f32([B, 5])), w = p.param("w", [4, 5]), b = p.param("b", [4])
    let y = p.one(.linear, [x, w, b], .f32([B, 4]))
    let xs = f32T([3, 5], seed: 4), ws = f32T([4, 5], seed: 5), bs = f32T([4], seed: 6)
    let out = try run(p.finish([("y", y)]), ["x": xs], params: ["w": ws, "b": bs], threads: threads)
    expectClose(floats(out["y"]), matmulRef(floats(xs), floats(ws), batch: 1, m: 3, k: 5, n: 4, transB: true)
      .enumerated().map { $0.element + floats(bs)[$0.offset % 4] }, tol: 1e-5, "linear")
    // rank-3 linear without bias: M = 2 * 3 rows
    let q = PlanSketch("linear3")
    let x3 = q.input("x", .f32([2, T, 5])), w3 = q.param("w", [4, 5])
    let y3 = q.one(.linear, [x3, w3], .f32([2, T, 4]))
    let xs3 = f32T([2, 3, 5], seed: 7)
    expectClose(floats(try run(q.finish([("y", y3)]), ["x": xs3], params: ["w": ws], threads: threads)["y"]),
                matmulRef(floats(xs3), floats(ws), batch: 1, m: 6, k: 5, n: 4, transB: true), tol: 1e-5, "linear rank 3")
    // matmul, batched, with and without transB; and an unbatched one split by rows
    for (transB, bShape) in [(true, [2, 4, 5]), (false, [2, 5, 4])] {
      let plan = single(.matmul, [("a", .f32([2, 3, 5])), ("b", .f32(bShape.map { Dim($0) }))], [.f32([2, 3, 4])],
                        transB ? ["transB": .bool(true)] : [:])
      let a = f32T([2, 3, 5], seed: 8), bt = f32T(bShape, seed: 9)
      expectClose(floats(try run(plan, ["a": a, "b": bt], threads: threads)["y"]),
                  matmulRef(floats(a), floats(bt), batch: 2, m: 3, k: 5, n: 4, transB: transB), tol: 1e-5, "matmul transB \(transB)")
    }
    let flat = single(.matmul, [("a", .f32([7, 5])), ("b", .f32([5, 3]))], [.f32([7, 3])])
    let fa = f32T([7, 5], seed: 10), fb = f32T([5, 3], seed: 11)
    expectClose(floats(try run(flat, ["a": fa, "b": fb], threads: threads)["y"]),
                matmulRef(floats(fa), floats(fb), batch: 1, m: 7, k: 5, n: 3, transB: false), tol: 1e-5, "matmul unbatched")
  }

  func matmulRef(_ a: [Float], _ b: [Float], batch: Int, m: Int, k: Int, n: Int, transB: Bool) -> [Float] {
    var c = [Float](repeating: 0, count: batch * m * n)
    for z in 0..<batch {
      for i in 0..<m {
        for j in 0..<n {
          var s: Float = 0
          for e in 0..<k { s += a[(z * m + i) * k + e] * (transB ? b[(z * n + j) * k + e] : b[(z * k + e) * n + j]) }
          c[(z * m + i) * n + j] = s
        }
      }
    }
    return c
  }

  @Test(arguments: [1, 2, 3])
  func dataMovement(threads: Int) throws {
    // concat on the middle axis
    let parts = [f32T([2, 3, 4], seed: 1), f32T([2, 1, 4], seed: 2), f32T([2, 2, 4], seed: 3)]
    let cat = single(.concat, [("a", .f32([B, 3, 4])), ("b", .f32([B, 1, 4])), ("c", .f32([B, 2, 4]))],
                     [.f32([B, 6, 4])], ["axis": .int(1)])
    var want: [Float] = []
    for o in 0..<2 { for (part, n) in zip(parts, [3, 1, 2]) { want += floats(part)[(o * n * 4)..<((o + 1) * n * 4)] } }
    expectClose(floats(try run(cat, ["a": parts[0], "b": parts[1], "c": parts[2]], threads: threads)["y"]), want, tol: 0, "concat")
    // slice on the middle axis with a symbolic length T-1 from start 1
    let x = f32T([2, 5, 3], seed: 4)
    let sl = single(.slice, [("x", .f32([B, T, 3]))], [.f32([B, T - Dim(1), 3])],
                    ["axis": .int(1), "start": .int(1), "length": .dim(T - Dim(1))])
    want = []
    for o in 0..<2 { want += floats(x)[(o * 15 + 3)..<(o * 15 + 15)] }
    expectClose(floats(try run(sl, ["x": x], threads: threads)["y"]), want, tol: 0, "slice")
    // broadcast: a row, a middle axis, a column
    let cases: [([Int], [Int])] = [([3], [2, 4, 3]), ([2, 1, 3], [2, 4, 3]), ([4, 1], [2, 4, 3]), ([2, 4, 3], [2, 4, 3])]
    for (from, to) in cases {
      let src = f32T(from, seed: 5)
      let plan = single(.broadcast, [("x", .f32(from.map { Dim($0) }))], [.f32(to.map { Dim($0) })],
                        ["shape": .dims(to.map { Dim($0) })])
      let pad = [Int](repeating: 1, count: to.count - from.count) + from
      var ref: [Float] = []
      for i in 0..<to.reduce(1, *) {
        let pos = Bindings.position(i, in: to)
        var off = 0
        for d in 0..<to.count { off = off * pad[d] + (pad[d] == 1 ? 0 : pos[d]) }
        ref.append(floats(src)[off])
      }
      expectClose(floats(try run(plan, ["x": src], threads: threads)["y"]), ref, tol: 0, "broadcast \(from) -> \(to)")
    }
    // transpose
    let tx = f32T([2, 3, 5], seed: 6)
    let tp = single(.transpose, [("x", .f32([B, 3, 5]))], [.f32([B, 5, 3])])
    want = []
    for z in 0..<2 { for j in 0..<5 { for i in 0..<3 { want.append(floats(tx)[z * 15 + i * 5 + j]) } } }
    expectClose(floats(try run(tp, ["x": tx], threads: threads)["y"]), want, tol: 0, "transpose")
  }

  @Test(arguments: [1, 2, 3])
  func gathersMasksAndSources(threads: Int) throws {
    let table = f32T([7, 3], seed: 1), ids: [Int32] = [0, 6, 2, 2, 5, 1]
    let emb = single(.embedding, [("t", .f32([7, 3])), ("ids", .i32([B, 3]))], [.f32([B, 3, 3])])
    let out = try run(emb, ["t": table, "ids": HostTensor(shape: [2, 3], int32s: ids)], threads: threads)
    expectClose(floats(out["y"]), ids.flatMap { floats(table)[(Int($0) * 3)..<(Int($0) * 3 + 3)] }, tol: 0, "embedding")
    let pm = single(.padMask, [("ids", .i32([B, 3]))], [.f32([B, 3])], ["pad": .int(2)])
    expectClose(floats(try run(pm, ["ids": HostTensor(shape: [2, 3], int32s: ids)], threads: threads)["y"]),
                ids.map { $0 == 2 ? 1 : 0 }, tol: 0, "pad_mask")
    // zeros and positional encoding need a symbol bound by `dims:`.
    let p = PlanSketch("sources")
    let z = p.one(.zeros, [], .f32([T, 5]), ["shape": .dims([T, 5])])
    let pe = p.one(.positionalEncoding, [], .f32([T, 6]), ["shape": .dims([T, 6])])
    let src = try run(p.finish([("z", z), ("pe", pe)]), [:], threads: threads, dims: ["T": 5])
    #expect(floats(src["z"]) == [Float](repeating: 0, count: 25))
    var ref: [Float] = []
    for pos in 0..<5 {
      for c in 0..<6 {
        let angle = Float(pos) / Float(pow(10000.0, Double(c - c % 2) / 6))
        ref.append(c % 2 == 0 ? sinf(angle) : cosf(angle))
      }
    }
    expectClose(floats(src["pe"]), ref, tol: 1e-5, "positional_encoding")
    // The rows come from the shared table: the kernel's bits, also past the first table's 64 rows
    // (the table of the width grows) and again for a shorter request after that.
    for rows in [5, 150, 7] {
      let got = floats(try run(p.finish([("pe", pe)]), [:], threads: threads, dims: ["T": rows])["pe"])
      var want = [Float](repeating: .nan, count: rows * 6)
      mq_positional_encoding(&want, 6, 0, Int64(rows))
      #expect(got == want, "positional_encoding T \(rows)")
    }
    // dropout_mask: the kernel's values for the fed seed, the same at every thread count.
    let dm = single(.dropoutMask, [("seed", .i32([1]))], [.f32([3, 7])],
                    ["p": .float(0.25), "salt": .int(9), "shape": .dims([3, 7])])
    let mask = floats(try run(dm, ["seed": HostTensor(shape: [1], int32s: [77])], threads: threads)["y"])
    var refMask = [Float](repeating: 0, count: 21)
    refMask.withUnsafeMutableBufferPointer { mq_dropout_mask_ref($0.baseAddress, 0.25, 77, 9, 0, 21) }
    #expect(mask == refMask)
  }

  @Test(arguments: [1, 2, 3])
  func softmaxLayerNormAndLSTMCell(threads: Int) throws {
    let x = f32T([2, 3, 5], seed: 1)
    let mask = HostTensor(shape: [2, 5], floats: [0, 0, 1, 0, 1, 0, 0, 0, 0, 1])
    let sm = single(.softmax, [("x", .f32([B, 3, 5])), ("m", .f32([B, 5]))], [.f32([B, 3, 5])],
                    ["scale": .float(0.5), "eps": .float(1e-3)])
    expectClose(floats(try run(sm, ["x": x, "m": mask], threads: threads)["y"]),
                softmaxRef(floats(x), rows: 6, n: 5, q: 3, mask: floats(mask), scale: 0.5, eps: 1e-3, causal: false),
                tol: 1e-6, "masked softmax")
    let cx = f32T([2, 4, 4], seed: 2)
    let causal = single(.softmax, [("x", .f32([B, 4, 4]))], [.f32([B, 4, 4])], ["causal": .bool(true)])
    expectClose(floats(try run(causal, ["x": cx], threads: threads)["y"]),
                softmaxRef(floats(cx), rows: 8, n: 4, q: 4, mask: nil, scale: 1, eps: 0, causal: true), tol: 1e-6, "causal softmax")
    // layer norm: unbiased std, eps on the std
    let lx = f32T([3, 6], seed: 3), g = f32T([6], seed: 4), bt = f32T([6], seed: 5)
    let ln = single(.layerNorm, [("x", .f32([B, 6])), ("g", .f32([6])), ("b", .f32([6]))], [.f32([B, 6])], ["eps": .float(1e-6)])
    var want: [Float] = []
    for r in 0..<3 {
      let row = floats(lx)[(r * 6)..<(r * 6 + 6)]
      let mean = row.reduce(0, +) / 6
      let std = (row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 5).squareRoot()
      for (c, v) in row.enumerated() { want.append(floats(g)[c] * (v - mean) / (std + 1e-6) + floats(bt)[c]) }
    }
    expectClose(floats(try run(ln, ["x": lx, "g": g, "b": bt], threads: threads)["y"]), want, tol: 1e-5, "layer_norm")
    // lstm cell, gate order i, f, g, o
    let gates = f32T([3, 8], seed: 6), c = f32T([3, 2], seed: 7)
    let cell = single(.lstmCell, [("g", .f32([B, 8])), ("c", .f32([B, 2]))], [.f32([B, 2]), .f32([B, 2])])
    let out = try run(cell, ["g": gates, "c": c], threads: threads)
    var hs: [Float] = [], cs: [Float] = []
    for r in 0..<3 {
      for k in 0..<2 {
        let gv = { (i: Int) in floats(gates)[r * 8 + i * 2 + k] }
        let cn = sigm(gv(1)) * floats(c)[r * 2 + k] + sigm(gv(0)) * tanhf(gv(2))
        cs.append(cn)
        hs.append(sigm(gv(3)) * tanhf(cn))
      }
    }
    expectClose(floats(out["y"]), hs, tol: 1e-6, "lstm h")
    expectClose(floats(out["y1"]), cs, tol: 1e-6, "lstm c")
  }

  func softmaxRef(_ x: [Float], rows: Int, n: Int, q: Int, mask: [Float]?, scale: Float, eps: Float, causal: Bool) -> [Float] {
    var out: [Float] = []
    for r in 0..<rows {
      var s = (0..<n).map { j -> Float in
        let masked = (mask?[(r / q) * n + j] ?? 0) != 0 || (causal && j > r % q)
        return (masked ? -1e10 : x[r * n + j]) * scale
      }
      let m = s.max()!
      s = s.map { expf($0 - m) }
      let total = s.reduce(0, +)
      out += s.map { $0 / total + eps }
    }
    return out
  }

  @Test(arguments: [1, 2, 3])
  func attentionWithUnevenHeads(threads: Int) throws {
    // D = 9, heads = 4: torch.chunk gives 3 chunks of 3.
    let b = 2, tq = 3, tk = 5, d = 9
    let q = f32T([b, tq, d], seed: 1), k = f32T([b, tk, d], seed: 2), v = f32T([b, tk, d], seed: 3)
    let keypad = HostTensor(shape: [b, tk], floats: [0, 0, 0, 1, 1, 0, 0, 0, 0, 1])
    for (causal, padded) in [(false, true), (true, false), (true, true)] {
      var ins: [(String, TensorType)] = [("q", .f32([B, T, 9])), ("k", .f32([B, Dim.sym("S"), 9])), ("v", .f32([B, Dim.sym("S"), 9]))]
      if padded { ins.append(("pad", .f32([B, Dim.sym("S")]))) }
      let tqc = causal ? tk : tq
      let qc = causal ? f32T([b, tk, d], seed: 4) : q
      let plan = single(.attention, ins, [.f32([B, T, 9])],
                        ["heads": .int(4), "scale": .float(0.3), "causal": .bool(causal)])
      var feed = ["q": qc, "k": k, "v": v]
      if padded { feed["pad"] = keypad }
      let got = floats(try run(plan, feed, threads: threads)["y"])
      var want = [Float](repeating: 0, count: b * tqc * d), scratch = [Float](repeating: 0, count: tqc * tk)
      let rows = Int64(b) * mq_attention_chunks(Int64(d), 4)
      #expect(rows == 6)
      let qa = floats(qc), ka = floats(k), va = floats(v), pa = floats(keypad)
      pa.withUnsafeBufferPointer { pad in
        mq_attention_ref(&want, qa, ka, va, padded ? pad.baseAddress : nil, Int64(tqc), Int64(tk), Int64(d), 4, 0.3,
                         -1e10, causal ? 1 : 0, &scratch, 0, rows)
      }
      expectClose(got, want, tol: 1e-5, "attention causal \(causal) keypad \(padded)")
    }
  }

  @Test(arguments: [1, 2, 3])
  func mixtureAndLoss(threads: Int) throws {
    let b = 2, t = 3, v = 4, x = 7, lc = 3, lq = 2
    let pv = f32T([b, t, v], seed: 1), gamma = HostTensor(shape: [b, t, 1], floats: (0..<6).map { Float($0 + 1) / 8 })
    let lambda = HostTensor(shape: [b, t, 1], floats: (0..<6).map { Float(6 - $0) / 7 })
    let ac = f32T([b, t, lc], seed: 2), aq = f32T([b, t, lq], seed: 3)
    let cids: [Int32] = [1, 5, 5, 0, 6, 2], qids: [Int32] = [4, 1, 6, 6]
    let p = PlanSketch("mixture")
    let ins = [p.input("pv", .f32([B, T, 4])), p.input("g", .f32([B, T, 1])), p.input("l", .f32([B, T, 1])),
               p.input("ac", .f32([B, T, 3])), p.input("cids", .i32([B, 3])), p.input("aq", .f32([B, T, 2])),
               p.input("qids", .i32([B, 2]))]
    let mix = p.one(.mixture, ins, .f32([B, T, Dim(x)]), ["extended": .int(x)])
    let targets = p.input("targets", .i32([B, T]))
    let loss = p.one(.nllLoss, [mix, targets], .f32([]), ["ignore": .int(1)])
    let plan = p.finish([("p", mix), ("loss", loss)])
    let tg: [Int32] = [3, 1, 6, 0, 1, 5]
    let feed: [String: HostTensor] = [
      "pv": pv, "g": gamma, "l": lambda, "ac": ac, "aq": aq, "cids": HostTensor(shape: [b, lc], int32s: cids),
      "qids": HostTensor(shape: [b, lq], int32s: qids), "targets": HostTensor(shape: [b, t], int32s: tg)]
    let out = try run(plan, feed, threads: threads)
    var want = [Float](repeating: 0, count: b * t * x)
    for r in 0..<(b * t) {
      let z = r / t, gm = floats(gamma)[r], lm = floats(lambda)[r]
      for j in 0..<x { want[r * x + j] = j < v ? gm * floats(pv)[r * v + j] : 1e-10 }
      for i in 0..<lc { want[r * x + Int(cids[z * lc + i])] += lm * (1 - gm) * floats(ac)[r * lc + i] }
      for j in 0..<lq { want[r * x + Int(qids[z * lq + j])] += (1 - lm) * (1 - gm) * floats(aq)[r * lq + j] }
    }
    expectClose(floats(out["p"]), want, tol: 1e-6, "mixture")
    let kept = tg.enumerated().filter { $0.element != 1 }
    let nll = kept.map { -Double(logf(want[$0.offset * x + Int($0.element)])) }.reduce(0, +) / Double(kept.count)
    expectClose(floats(out["loss"]), [Float(nll)], tol: 1e-6, "nll_loss")
    var allIgnored = feed
    allIgnored["targets"] = HostTensor(shape: [b, t], int32s: [1, 1, 1, 1, 1, 1])
    #expect(floats(try run(plan, allIgnored, threads: threads)["loss"]) == [0])
    var bad = feed
    bad["targets"] = HostTensor(shape: [b, t], int32s: [3, 1, 7, 0, 1, 5])
    #expect(throws: RuntimeError.self) { try run(plan, bad, threads: threads) }
    bad = feed
    bad["qids"] = HostTensor(shape: [b, lq], int32s: [4, 1, -1, 6])
    do { _ = try run(plan, bad, threads: threads); Issue.record("no error") } catch let e as RuntimeError {
      #expect(e.description.contains("input \"qids\"") && e.description.contains("-1 at [1, 0]"), "\(e)")
    }
  }

  /// A stage of several independent steps: sub-teams when k <= threads, one thread running several
  /// steps in turn when k > threads; plus a reshape view feeding a step.
  @Test(arguments: [1, 2, 3, 4, 5])
  func parallelStagesAndViews(threads: Int) throws {
    let p = PlanSketch("lanes")
    let x = p.input("x", .f32([B, 6]))
    let ops: [OpKind] = [.tanh, .relu, .sigmoid]
    let ys = ops.enumerated().map { p.step($0.element, [x], [.f32([B, 6])], lane: $0.offset, newStage: $0.offset == 0)[0] }
    let w = p.param("w", [2, 3])
    let view = p.view(ys[0], .f32([B, 2, 3]))
    let lin = p.one(.linear, [view, w], .f32([B, 2, 2]))
    let sum = p.step(.add, [ys[1], ys[2]], [.f32([B, 6])], lane: 1, newStage: false)[0]
    let flat = p.view(x, .f32([B, 2, 3]))
    let plan = p.finish([("lin", lin), ("sum", sum), ("flat", flat)])
    let xs = f32T([5, 6], seed: 1), ws = f32T([2, 3], seed: 2)
    let out = try run(plan, ["x": xs], params: ["w": ws], threads: threads)
    let th = floats(xs).map { tanhf($0) }
    expectClose(floats(out["lin"]), matmulRef(th, floats(ws), batch: 1, m: 10, k: 3, n: 2, transB: true), tol: 1e-5, "lin")
    expectClose(floats(out["sum"]), floats(xs).map { max($0, 0) + 1 / (1 + expf(-$0)) }, tol: 1e-6, "sum")
    #expect(out["flat"] == HostTensor(shape: [5, 2, 3], floats: floats(xs)))
  }

  /// The op kinds some test runs through the executor, read from the tests' own sources (so a new
  /// op fails here until a test runs it, and no hand-kept list can claim one):
  /// - in `Tests/RuntimeTests`, an op put into a plan: the first argument of `single(`, `check(`,
  ///   `step(` or `one(`, or an op of a `(.op, reference)` table that a loop runs;
  /// - in `Tests/CompilerTests`, an op a test requires a compiled plan or graph to hold
  ///   (`#expect(... { $0.op == .op })`, not negated, or `.filter { $0.op == .op }`), the plans
  ///   those tests run;
  /// - `input`, `param` and `reshape` are buffers and views, never steps (`nonStepOpsAreRefused`).
  static func opsRunByTests() throws -> Set<OpKind> {
    let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    func sources(_ folder: String) throws -> [String] {
      let dir = tests.appendingPathComponent(folder)
      return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }.sorted()
        .map { try String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8) }
    }
    // Swift case names: the raw value in lower camel case (`layer_norm` -> `layerNorm`).
    var byCaseName: [String: OpKind] = [:]
    for op in OpKind.allCases {
      let parts = op.rawValue.split(separator: "_")
      byCaseName[parts[0] + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()] = op
    }
    func matches(_ pattern: String, in texts: [String]) throws -> Set<OpKind> {
      let re = try NSRegularExpression(pattern: pattern)
      var out = Set<OpKind>()
      for text in texts {
        for m in re.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
          if let r = Range(m.range(at: 1), in: text), let op = byCaseName[String(text[r])] { out.insert(op) }
        }
      }
      return out
    }
    let runtime = try sources("RuntimeTests"), compiler = try sources("CompilerTests")
    var ops = try matches(#"\b(?:single|check|step|one)\(\s*(?:OpKind)?\.(\w+)"#, in: runtime)
    ops.formUnion(try matches(#"\(\s*(?:OpKind)?\.(\w+)\s*,\s*\{"#, in: runtime))
    ops.formUnion(try matches(#"#expect\([^!\n]*\{ \$0\.op == \.(\w+) \}"#, in: compiler))
    ops.formUnion(try matches(#"\.filter \{ \$0\.op == \.(\w+) \}"#, in: compiler))
    ops.formUnion([.input, .param, .reshape])
    return ops
  }

  @Test func everyOpKindHasAKernelTest() throws {
    let covered = try Self.opsRunByTests()
    let untested = Set(OpKind.allCases).subtracting(covered).map(\.rawValue).sorted()
    #expect(untested.isEmpty, "no test runs: \(untested)")
    #expect(covered.count >= 3, "the scan of the test sources found nothing")
  }

  /// Sources and views are buffers, never steps: a plan that makes one a step is refused.
  @Test func nonStepOpsAreRefused() {
    for op in OpKind.allCases where [.input, .param, .reshape].contains(op) {
      let p = PlanSketch("bad")
      let x = p.input("x", .f32([2, 2]))
      let y = p.one(op, op == .reshape ? [x] : [], .f32([2, 2]), ["name": .string("x"), "shape": .dims([2, 2])])
      #expect(throws: RuntimeError.self) { try Executor(plan: p.finish([("y", y)]), params: [:], threads: 1).run(["x": f32T([2, 2], seed: 1)]) }
    }
  }
}
