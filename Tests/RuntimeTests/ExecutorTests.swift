import CKernels
import GraphIR
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import Runtime

// MARK: - Hand-written plans

/// Builds small plans by hand (the compiler is not importable here). Every step gets a stage of
/// its own unless `newStage: false` puts it beside the previous one; arena liveness runs from the
/// producing stage to the last reading stage (outputs and body inputs are pinned to the end).
final class PlanSketch {
  let name: String
  var buffers: [Buffer] = []
  var steps: [Step] = []
  var inputs: [Int] = []
  var stage = -1
  private var pinned: Set<Int> = []

  init(_ name: String) { self.name = name }

  private func add(_ label: String, _ t: TensorType, _ s: Buffer.Storage) -> Int {
    buffers.append(Buffer(name: label, type: t, storage: s))
    return buffers.count - 1
  }
  func input(_ name: String, _ t: TensorType) -> Int { add(name, t, .input(name)) }
  func param(_ name: String, _ shape: [Dim]) -> Int { add(name, .f32(shape), .param(name)) }
  func view(_ of: Int, _ t: TensorType) -> Int { add("view", t, .view(of: of)) }
  /// A scan body's sequence slice or carry: pinned arena, filled by the scan.
  func bodyInput(_ t: TensorType) -> Int {
    let b = add("in\(inputs.count)", t, .arena(first: 0, last: 0))
    pinned.insert(b)
    inputs.append(b)
    return b
  }
  /// A scan body's const: the scan step's input k.
  func outer(_ k: Int, _ t: TensorType) -> Int {
    let b = add("outer\(k)", t, .outer(k))
    inputs.append(b)
    return b
  }

  @discardableResult
  func step(_ op: OpKind, _ ins: [Int], _ outs: [TensorType], _ attrs: Attrs = [:], lane: Int = 0,
            newStage: Bool = true, body: Plan? = nil) -> [Int] {
    if newStage || stage < 0 { stage += 1 }
    let label = "%\(steps.count)"
    let ids = outs.map { add(label, $0, .arena(first: stage, last: stage)) }
    var ws: Int?
    if body != nil { ws = add("ws", .f32([]), .workspace(step: steps.count, first: stage, last: stage)) }
    steps.append(Step(op: op, attrs: PlanAttrs(attrs), inputs: ins, outputs: ids, stage: stage, lane: lane,
                      label: label, body: body.map { [$0] } ?? [], workspace: ws))
    return ids
  }
  func one(_ op: OpKind, _ ins: [Int], _ out: TensorType, _ attrs: Attrs = [:]) -> Int {
    step(op, ins, [out], attrs)[0]
  }

  private func root(_ b: Int) -> Int {
    if case .view(let of) = buffers[b].storage { return root(of) }
    return b
  }
  private func extend(_ b: Int, to s: Int) {
    let r = root(b)
    if case .arena(let f, let l) = buffers[r].storage { buffers[r].storage = .arena(first: f, last: max(l, s)) }
  }

  func finish(_ outputs: [(String, Int)]) -> Plan {
    let count = stage + 1
    for st in steps { for i in st.inputs { extend(i, to: st.stage) } }
    for o in outputs { extend(o.1, to: count - 1) }
    for p in pinned { buffers[p].storage = .arena(first: 0, last: max(count - 1, 0)) }
    return Plan(name: name, buffers: buffers, steps: steps, stageCount: count,
                outputs: outputs.map { PlanOutput(name: $0.0, buffer: $0.1) },
                stats: PlanStats(nodesBefore: 0, nodesAfter: 0, flops: 0, parameterCount: 0), inputs: inputs)
  }
}

let B = Dim.sym("B"), T = Dim.sym("T")

/// Deterministic values in [-1, 1).
func rnd(_ n: Int, seed: UInt64) -> [Float] {
  var s = seed &* 6364136223846793005 &+ 1442695040888963407
  return (0..<n).map { _ in
    s = s &* 6364136223846793005 &+ 1442695040888963407
    return Float(Int((s >> 33) % 20000) - 10000) / 10000
  }
}
func f32T(_ shape: [Int], seed: UInt64) -> HostTensor { HostTensor(shape: shape, floats: rnd(shape.reduce(1, *), seed: seed)) }
func floats(_ t: HostTensor?) -> [Float] {
  guard let t, case .f32(let a) = t.storage else { return [] }
  return a
}
/// The largest |a - b| / max(1, |b|) and its index. Equal values (equal infinities included)
/// differ by 0; a NaN on one side only, or infinities that differ, make the error NaN at the first
/// such element, and nothing after it brings the error back down.
func closeError(_ a: [Float], _ b: [Float]) -> (error: Float, index: Int) {
  var worst: Float = 0, at = -1
  for (i, (x, y)) in zip(a, b).enumerated() {
    if x == y || (x.isNaN && y.isNaN) { continue }
    let d = abs(x - y) / max(1, abs(y))
    if !d.isFinite { return (.nan, i) }
    if d > worst { worst = d; at = i }
  }
  return (worst, at)
}
func expectClose(_ a: [Float], _ b: [Float], tol: Float = 1e-5, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) elements", sourceLocation: sourceLocation)
  let (worst, at) = closeError(a, b)
  #expect(worst <= tol, "\(what): max diff \(worst) at \(at): \(at >= 0 ? a[at] : 0) vs \(at >= 0 ? b[at] : 0); first \(Array(a.prefix(5))) vs \(Array(b.prefix(5)))",
          sourceLocation: sourceLocation)
}
func sigm(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

// MARK: - A bidirectional masked LSTM over scans

/// The LSTM step body: gates = linear(x_t, W_ih, b_ih) + linear(h, W_hh, b_hh); lstm_cell. W_hh is
/// the scan's const (input 3, `.outer`); the two linears share a stage (two lanes).
func lstmBody(_ dir: String, e: Int, h: Int) -> Plan {
  let p = PlanSketch("\(dir).body")
  let x = p.bodyInput(.f32([B, Dim(e)])), hh = p.bodyInput(.f32([B, Dim(h)])), c = p.bodyInput(.f32([B, Dim(h)]))
  let whh = p.outer(3, .f32([Dim(4 * h), Dim(h)]))
  let wih = p.param("\(dir).W_ih", [Dim(4 * h), Dim(e)]), bih = p.param("\(dir).b_ih", [Dim(4 * h)])
  let bhh = p.param("\(dir).b_hh", [Dim(4 * h)])
  let g1 = p.step(.linear, [x, wih, bih], [.f32([B, Dim(4 * h)])])[0]
  let g2 = p.step(.linear, [hh, whh, bhh], [.f32([B, Dim(4 * h)])], lane: 1, newStage: false)[0]
  let gates = p.one(.add, [g1, g2], .f32([B, Dim(4 * h)]))
  let hc = p.step(.lstmCell, [gates, c], [.f32([B, Dim(h)]), .f32([B, Dim(h)])])
  return p.finish([("h", hc[0]), ("c", hc[1]), ("y", hc[0])])
}

/// Forward and reverse masked scans in one stage (two lanes), each with its own body.
func biLSTMPlan(e: Int, h: Int) -> Plan {
  let p = PlanSketch("bilstm")
  let x = p.input("x", .f32([B, T, Dim(e)])), lengths = p.input("lengths", .i32([B]))
  let h0 = p.input("h0", .f32([B, Dim(h)])), c0 = p.input("c0", .f32([B, Dim(h)]))
  var outs: [(String, Int)] = []
  for (lane, dir) in ["fwd", "bwd"].enumerated() {
    let whh = p.param("\(dir).W_hh", [Dim(4 * h), Dim(h)])
    let r = p.step(.scan, [x, h0, c0, whh, lengths], [.f32([B, Dim(h)]), .f32([B, Dim(h)]), .f32([B, T, Dim(h)])],
                   ["nseq": .int(1), "ncarry": .int(2), "masked": .bool(true), "reverse": .bool(dir == "bwd")],
                   lane: lane, newStage: lane == 0, body: lstmBody(dir, e: e, h: h))
    outs += [("\(dir).h", r[0]), ("\(dir).c", r[1]), ("\(dir).y", r[2])]
  }
  return p.finish(outs)
}

/// PyTorch packed-LSTM semantics, one row at a time: rows stop at their length, padded outputs
/// are 0, the reverse direction starts at each row's own last token.
func packedLSTM(x: [Float], lengths: [Int], h0: [Float], c0: [Float], wih: [Float], bih: [Float],
                whh: [Float], bhh: [Float], t: Int, e: Int, h: Int, reverse: Bool) -> (y: [Float], h: [Float], c: [Float]) {
  let b = lengths.count
  var ys = [Float](repeating: 0, count: b * t * h), hs = h0, cs = c0
  for r in 0..<b {
    var hv = Array(h0[(r * h)..<((r + 1) * h)]), cv = Array(c0[(r * h)..<((r + 1) * h)])
    let order = reverse ? Array((0..<lengths[r]).reversed()) : Array(0..<lengths[r])
    for s in order {
      var g = [Float](repeating: 0, count: 4 * h)
      for j in 0..<(4 * h) {
        var a: Float = bih[j], bb: Float = bhh[j]
        for k in 0..<e { a += wih[j * e + k] * x[(r * t + s) * e + k] }
        for k in 0..<h { bb += whh[j * h + k] * hv[k] }
        g[j] = a + bb
      }
      for k in 0..<h {
        let i = sigm(g[k]), f = sigm(g[h + k]), gg = Float(tanh(Double(g[2 * h + k]))), o = sigm(g[3 * h + k])
        cv[k] = f * cv[k] + i * gg
        hv[k] = o * Float(tanh(Double(cv[k])))
        ys[(r * t + s) * h + k] = hv[k]
      }
    }
    for k in 0..<h { hs[r * h + k] = hv[k]; cs[r * h + k] = cv[k] }
  }
  return (ys, hs, cs)
}

@Suite struct ExecutorTests {
  static let e = 5, h = 3, t = 3
  static let lengths = [3, 1, 2]

  static func lstmParams() -> [String: HostTensor] {
    var p: [String: HostTensor] = [:]
    for (i, dir) in ["fwd", "bwd"].enumerated() {
      let s = UInt64(10 * i)
      p["\(dir).W_ih"] = f32T([4 * h, e], seed: s + 1)
      p["\(dir).b_ih"] = f32T([4 * h], seed: s + 2)
      p["\(dir).W_hh"] = f32T([4 * h, h], seed: s + 3)
      p["\(dir).b_hh"] = f32T([4 * h], seed: s + 4)
    }
    return p
  }
  static func lstmInputs(lengthsAsI64: Bool = false) -> [String: HostTensor] {
    let b = lengths.count
    return ["x": f32T([b, t, e], seed: 100), "h0": f32T([b, h], seed: 101), "c0": f32T([b, h], seed: 102),
            "lengths": lengthsAsI64 ? HostTensor(shape: [b], int64s: lengths.map(Int64.init))
                                     : HostTensor(shape: [b], int32s: lengths.map(Int32.init))]
  }

  @Test(arguments: [1, 2, 3, 4])
  func maskedBidirectionalScanMatchesPackedLSTM(threads: Int) throws {
    let params = Self.lstmParams(), inputs = Self.lstmInputs(lengthsAsI64: threads == 3)
    let ex = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: params, threads: threads,
                          options: .init(poisonFreed: true))
    let out = try ex.run(inputs)
    for dir in ["fwd", "bwd"] {
      let ref = packedLSTM(x: floats(inputs["x"]), lengths: Self.lengths, h0: floats(inputs["h0"]), c0: floats(inputs["c0"]),
                           wih: floats(params["\(dir).W_ih"]), bih: floats(params["\(dir).b_ih"]),
                           whh: floats(params["\(dir).W_hh"]), bhh: floats(params["\(dir).b_hh"]),
                           t: Self.t, e: Self.e, h: Self.h, reverse: dir == "bwd")
      let y = floats(out["\(dir).y"])
      expectClose(y, ref.y, tol: 2e-5, "\(dir).y")
      expectClose(floats(out["\(dir).h"]), ref.h, tol: 2e-5, "\(dir).h")
      expectClose(floats(out["\(dir).c"]), ref.c, tol: 2e-5, "\(dir).c")
      for (r, len) in Self.lengths.enumerated() {
        for s in len..<Self.t {
          for k in 0..<Self.h { #expect(y[(r * Self.t + s) * Self.h + k].bitPattern == 0, "\(dir).y[\(r), \(s)] is padding") }
        }
      }
    }
  }

  /// `reserve` sizes the arena for the largest dims once: smaller runs then keep the arena and
  /// every bound shape, and give what an executor without the reservation gives.
  @Test func reservedArenaServesSmallerRunsWithoutGrowing() throws {
    let plain = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 2)
    let reserved = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 2)
    try reserved.reserve(["B": 8, "T": 6])
    let bytes = reserved.sharedArenaBytes
    #expect(bytes > 0)
    let want = try plain.run(Self.lstmInputs())
    #expect(try reserved.run(Self.lstmInputs()) == want)
    let one = ["x": f32T([1, 4, Self.e], seed: 7), "h0": f32T([1, Self.h], seed: 8), "c0": f32T([1, Self.h], seed: 9),
               "lengths": HostTensor(shape: [1], int32s: [3])]
    #expect(try reserved.run(one) == plain.run(one))
    #expect(reserved.bucketCount == 2 && reserved.sharedArenaBytes == bytes)
    try reserved.reserve(["B": 2, "T": 2])
    #expect(reserved.bucketCount == 2 && reserved.sharedArenaBytes == bytes)
    #expect(try reserved.run(Self.lstmInputs()) == want)
  }

  @Test func threadCountsAgreeAndRunsAreBitIdentical() throws {
    var results: [[String: HostTensor]] = []
    for threads in [1, 2, 3] {
      let ex = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: threads)
      let a = try ex.run(Self.lstmInputs()), b = try ex.run(Self.lstmInputs())
      #expect(a == b, "two runs with \(threads) threads differ")
      results.append(a)
    }
    for r in results.dropFirst() {
      for (k, v) in results[0] { expectClose(floats(r[k]), floats(v), tol: 1e-6, k) }
    }
  }

  @Test func referenceKernelsAgreeWithOptimized() throws {
    let fast = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 2)
    let ref = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 2,
                           options: .init(useReference: true))
    let a = try fast.run(Self.lstmInputs()), b = try ref.run(Self.lstmInputs())
    for (k, v) in a { expectClose(floats(b[k]), floats(v), tol: 1e-5, k) }
  }

  @Test func bucketsAreCachedPerBinding() throws {
    let ex = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 2)
    _ = try ex.run(Self.lstmInputs())
    _ = try ex.run(Self.lstmInputs())
    #expect(ex.bucketCount == 1)
    var small = Self.lstmInputs()
    small["x"] = f32T([3, 2, Self.e], seed: 5)
    small["lengths"] = HostTensor(shape: [3], int32s: [2, 0, 1])
    let out = try ex.run(small)
    #expect(ex.bucketCount == 2)
    #expect(out["fwd.y"]?.shape == [3, 2, Self.h])
    // Length 0: the carries stay at their initial values.
    #expect(Array(floats(out["fwd.h"])[3..<6]) == Array(floats(small["h0"])[3..<6]))
  }

  @Test func profileCountsEveryStepExecution() throws {
    let ex = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 2,
                          options: .init(profile: true))
    _ = try ex.run(Self.lstmInputs())
    _ = try ex.run(Self.lstmInputs())
    let prof = ex.profile
    #expect(prof.count == 2 + 2 * 4)
    #expect(prof.filter { $0.op == .scan }.allSatisfy { $0.calls == 2 })
    #expect(prof.filter { $0.op == .lstmCell }.allSatisfy { $0.calls == 2 * Self.t })
    ex.resetProfile()
    #expect(ex.profile.allSatisfy { $0.calls == 0 })
  }

  /// An unmasked scan over an i32 id sequence: acc += table[ids[:, t]], with the table a const
  /// (`.outer`), and two step outputs: the embedded row and the carry as the body saw it (an
  /// output that is the carry's own input buffer).
  func runningSumPlan() -> Plan {
    let body = PlanSketch("sum.body")
    let id = body.bodyInput(.i32([B])), acc = body.bodyInput(.f32([B, 3])), table = body.outer(2, .f32([6, 3]))
    let e = body.one(.embedding, [table, id], .f32([B, 3]))
    let next = body.one(.add, [acc, e], .f32([B, 3]))
    let p = PlanSketch("sum")
    let ids = p.input("ids", .i32([B, T])), tab = p.input("table", .f32([6, 3]))
    let acc0 = p.one(.zeros, [], .f32([B, 3]), ["shape": .dims([B, 3])])
    let r = p.step(.scan, [ids, acc0, tab], [.f32([B, 3]), .f32([B, T, 3]), .f32([B, T, 3])],
                   ["nseq": .int(1), "ncarry": .int(1)],
                   body: body.finish([("acc", next), ("prev", acc), ("e", e)]))
    return p.finish([("acc", r[0]), ("prev", r[1]), ("e", r[2])])
  }

  @Test(arguments: [1, 2, 3])
  func unmaskedScanOverIdsWithConstsAndAliasedOutputs(threads: Int) throws {
    let ex = try Executor(plan: runningSumPlan(), params: [:], threads: threads, options: .init(poisonFreed: true))
    let ids: [Int32] = [0, 5, 2, 3, 3, 1, 4, 0], table = f32T([6, 3], seed: 3)
    let out = try ex.run(["ids": HostTensor(shape: [2, 4], int32s: ids), "table": table])
    var acc = [Float](repeating: 0, count: 6), prev: [Float] = [], emb: [Float] = []
    var prevRows = [[Float]](repeating: [], count: 2), embRows = [[Float]](repeating: [], count: 2)
    for b in 0..<2 {
      for t in 0..<4 {
        let row = Array(floats(table)[(Int(ids[b * 4 + t]) * 3)..<(Int(ids[b * 4 + t]) * 3 + 3)])
        prevRows[b] += acc[(b * 3)..<(b * 3 + 3)]
        embRows[b] += row
        for k in 0..<3 { acc[b * 3 + k] += row[k] }
      }
      prev += prevRows[b]
      emb += embRows[b]
    }
    expectClose(floats(out["acc"]), acc, tol: 1e-6, "final carry")
    expectClose(floats(out["prev"]), prev, tol: 1e-6, "carry as the body saw it")
    expectClose(floats(out["e"]), emb, tol: 0, "embedded rows")
    let msg = error { _ = try ex.run(["ids": HostTensor(shape: [2, 4], int32s: [0, 5, 2, 3, 3, 6, 4, 0]), "table": table]) }
    #expect(msg.contains("input \"ids\"") && msg.contains("holds 6 at [1, 1]") && msg.contains("[0, 6)"), "\(msg)")
  }

  // MARK: Memory plan poisoning

  /// y = tanh(x) + zeros[7]: with `bad`, tanh's output is declared dead after its own stage
  /// although stage 2 reads it (a broken memory plan).
  func overlapPlan(bad: Bool) -> Plan {
    let p = PlanSketch("overlap")
    let x = p.input("x", .f32([B, 7]))
    let a = p.one(.tanh, [x], .f32([B, 7]))
    let z = p.one(.zeros, [], .f32([7]), ["shape": .dims([7])])
    let c = p.one(.add, [a, z], .f32([B, 7]))
    var plan = p.finish([("y", c)])
    if bad { plan.buffers[a].storage = .arena(first: 0, last: 0) }
    return plan
  }

  @Test func poisoningKeepsValidPlansCorrectAndExposesOverlaps() throws {
    let x = f32T([3, 7], seed: 9)
    let want = floats(x).map { Float(tanh(Double($0))) }
    for threads in [1, 3] {
      let good = try Executor(plan: overlapPlan(bad: false), params: [:], threads: threads, options: .init(poisonFreed: true))
      expectClose(floats(try good.run(["x": x])["y"]), want, "poisoned valid plan")
      let bad = try Executor(plan: overlapPlan(bad: true), params: [:], threads: threads, options: .init(poisonFreed: true))
      #expect(floats(try bad.run(["x": x])["y"]).allSatisfy(\.isNaN), "reading a freed buffer gives NaN")
      let unpoisoned = try Executor(plan: overlapPlan(bad: true), params: [:], threads: threads)
      expectClose(floats(try unpoisoned.run(["x": x])["y"]), want, "the same bad plan without poisoning")
    }
  }

  // MARK: Binding errors

  func embedPlan() -> Plan {
    let p = PlanSketch("embed")
    let q = p.input("question", .i32([B, Dim.sym("Tq")])), c = p.input("context", .i32([B, Dim.sym("Tc")]))
    let table = p.param("emb", [11, 4])
    let eq = p.one(.embedding, [table, q], .f32([B, Dim.sym("Tq"), 4]))
    let ec = p.one(.embedding, [table, c], .f32([B, Dim.sym("Tc"), 4]))
    return p.finish([("q", eq), ("c", ec)])
  }

  func error(_ body: () throws -> Void) -> String {
    do { try body(); return "no error" } catch let e as RuntimeError { return e.description } catch { return "\(error)" }
  }

  @Test func bindingErrorsNameTheInput() throws {
    let ex = try Executor(plan: embedPlan(), params: ["emb": f32T([11, 4], seed: 1)], threads: 2)
    let q = HostTensor(shape: [4, 2], int32s: [1, 2, 3, 4, 5, 6, 7, 8])
    let c = HostTensor(shape: [3, 2], int64s: [1, 2, 3, 4, 5, 6])
    var msg = error { _ = try ex.run(["question": q, "context": c]) }
    #expect(msg == "input \"context\" dim 0 binds B = 3 but input \"question\" bound B = 4", "\(msg)")
    msg = error { _ = try ex.run(["question": q]) }
    #expect(msg.contains("input \"context\" is missing"), "\(msg)")
    msg = error { _ = try ex.run(["question": q, "context": q, "answer": q]) }
    #expect(msg.contains("input \"answer\" is not an input"), "\(msg)")
    msg = error { _ = try ex.run(["question": f32T([4, 2], seed: 2), "context": q]) }
    #expect(msg.contains("input \"question\"") && msg.contains("F32"), "\(msg)")
    msg = error { _ = try ex.run(["question": HostTensor(shape: [4, 2, 1], int32s: Array(repeating: 0, count: 8)), "context": q]) }
    #expect(msg.contains("input \"question\"") && msg.contains("rank"), "\(msg)")
    let badC = HostTensor(shape: [4, 2], int64s: [0, 1, 2, 3, 4, 11, 6, 7])
    msg = error { _ = try ex.run(["question": q, "context": badC]) }
    #expect(msg.contains("input \"context\"") && msg.contains("11") && msg.contains("[2, 1]") && msg.contains("[0, 11)"), "\(msg)")
    let huge = HostTensor(shape: [4, 2], int64s: [0, 1, 2, 3, 4, 5, 6, 1 << 40])
    msg = error { _ = try ex.run(["question": q, "context": huge]) }
    #expect(msg.contains("input \"context\""), "\(msg)")
    // I64 ids are narrowed and accepted.
    let ok = try ex.run(["question": q, "context": HostTensor(shape: [4, 3], int64s: (0..<12).map { Int64($0 % 11) })])
    #expect(ok["c"]?.shape == [4, 3, 4])
    #expect(Array(floats(ok["c"])[4..<8]) == Array(floats(HostTensor(shape: [11, 4], floats: rnd(44, seed: 1)))[4..<8]))
  }

  @Test func weightErrorsNameTheTensorAndBothShapes() {
    var msg = error { _ = try Executor(plan: embedPlan(), params: [:], threads: 1) }
    #expect(msg.contains("\"emb\"") && msg.contains("missing"), "\(msg)")
    msg = error { _ = try Executor(plan: embedPlan(), params: ["emb": f32T([11, 5], seed: 1)], threads: 1) }
    #expect(msg.contains("\"emb\"") && msg.contains("[11, 4]") && msg.contains("[11, 5]"), "\(msg)")
  }

  @Test func lengthsAndTargetsAreValidated() throws {
    let ex = try Executor(plan: biLSTMPlan(e: Self.e, h: Self.h), params: Self.lstmParams(), threads: 1)
    var inputs = Self.lstmInputs()
    inputs["lengths"] = HostTensor(shape: [3], int32s: [3, 4, 1])
    let msg = error { _ = try ex.run(inputs) }
    #expect(msg.contains("input \"lengths\"") && msg.contains("holds 4 at [1]"), "\(msg)")
  }
}

/// The oracle itself: a NaN or an over-tolerance error mid-tensor is never forgotten.
@Suite struct CloseErrorTests {
  @Test func aNaNMidTensorSticks() {
    let want: [Float] = [1, 2, 3, 4, 5]
    let (err, at) = closeError([1, 2.5, .nan, 4, 5], want)
    #expect(err.isNaN && at == 2)
    #expect(!(err <= 1e-5))
    #expect(closeError([1, 2, 3, .infinity, 5], want).error.isNaN)
    #expect(closeError([.infinity, 2, 3, 4, 5], [.infinity, 2, 3, 4, 5]).error == 0)
    #expect(closeError([.nan, 2], [.nan, 2]).error == 0)
    let small = closeError([1, 2, 3.5, 4, 5], want)
    #expect(abs(small.error - 0.5 / 3) < 1e-7 && small.index == 2)
  }
}

/// The op table's id operands reach the runtime's value checks: a masked scan's lengths may be
/// at most T (inclusive), and a length past it is refused before any kernel runs.
@Suite struct IdOperandCheckTests {
  @Test func scanLengthsAreCheckedInclusively() throws {
    let ex = try Executor(plan: biLSTMPlan(e: ExecutorTests.e, h: ExecutorTests.h), params: ExecutorTests.lstmParams(),
                          threads: 1)
    var inputs = ExecutorTests.lstmInputs()
    inputs["lengths"] = HostTensor(shape: [3], int32s: [3, 3, 3])  // = T: allowed
    _ = try ex.run(inputs)
    inputs["lengths"] = HostTensor(shape: [3], int32s: [3, 4, 1])
    let bad = inputs
    let error = #expect(throws: RuntimeError.self) { _ = try ex.run(bad) }
    let text = error.map { "\($0)" } ?? ""
    #expect(text.contains("input \"lengths\"") && text.contains("lengths (time steps)") && text.contains("[0, 3]"), "\(text)")
  }
}
