import Compiler
import Foundation
import GraphIR
import Runtime

/// One line of `mqan verify`: `ok`, `FAIL` or `skipped`, the fixture's tensor name, the detail.
public struct ParityLine: Sendable, CustomStringConvertible {
  public enum Status: String, Sendable { case ok, fail = "FAIL", skipped }
  public var status: Status
  public var name: String
  public var detail: String
  public var description: String { "\(status.rawValue) \(name) \(detail)" }
}

/// Runs MQAN's graphs on a parity fixture and compares every `expected.*` tensor.
public enum ParityCheck {
  /// Tolerances of fixtures/README.md.
  static let lossTolerance: Float = 1e-5
  static let activationTolerance: Float = 1e-4

  /// Runs MQAN's graphs on the fixture and compares every `expected.*` tensor.
  ///
  /// - Parameters:
  ///   - options: executor options; tests run with `poisonFreed` (freed arena regions filled with
  ///     NaN, so a memory plan that overlaps live buffers fails parity) and with `useReference`.
  ///   - planTransform: applied to each compiled plan before it runs (tests round-trip plans
  ///     through a plan file here).
  public static func run(_ fx: ParityFixture, threads: Int = 1, options: ExecutorOptions = .init(), fuse: Bool = true,
                         gemm: GemmTarget = Gemm.best,
                         planTransform: (Plan) throws -> Plan = { $0 }) throws -> [ParityLine] {
    let computed = try outputs(fx, threads: threads, options: options, fuse: fuse, gemm: gemm,
                               planTransform: planTransform)
    return try compareAll(fx, computed.tensors, greedyIDs: computed.greedyIDs)
  }

  /// What mqan computes for each `expected.*` name of the fixture, and the greedy ids.
  public static func outputs(_ fx: ParityFixture, threads: Int = 1, options: ExecutorOptions = .init(),
                             fuse: Bool = true, gemm: GemmTarget = Gemm.best,
                             planTransform: (Plan) throws -> Plan = { $0 })
    throws -> (tensors: [String: HostTensor], greedyIDs: [[Int64]]?)
  {
    let params = fx.params
    var results: [String: HostTensor] = [:]

    // 1. decaNLP's training computation, teacher forced, dropout off.
    var teacherForced = MQANPlanOptions(decoder: .consistent)
    teacherForced.probs = true
    teacherForced.activations = true
    let train = try planTransform(compile(fuse: fuse, gemm: gemm, MQANPlans.graph(kind: .forward, config: fx.config,
                                                                        options: teacherForced)).plan)
    let trainOut = try Executor(plan: train, params: params, threads: threads, options: options).run(try fx.inputs())
    results["expected.loss"] = trainOut["loss"]
    results["expected.probs"] = trainOut["probs"]
    for (k, v) in trainOut where k.hasPrefix("act.") { results["expected.\(k)"] = v }

    // 2. The backward pass: autodiff's gradients of the same loss.
    if fx.file.tensors.keys.contains(where: { $0.hasPrefix("expected.grad.") }) {
      var compileOptions = CompileOptions()
      compileOptions.fuse = fuse
      compileOptions.gemm = gemm
      // The train plan with dropout off (the fixtures are evaluation-mode numbers).
      let plan = try planTransform(MQANPlans.compile(kind: .train, config: fx.config,
                                                     options: MQANPlanOptions(decoder: .consistent, dropout: nil),
                                                     compileOptions: compileOptions).plan)
      let out = try Executor(plan: plan, params: params, threads: threads, options: options).run(try fx.inputs())
      for (k, v) in out where k.hasPrefix("grad.") { results["expected.\(k)"] = v }

      // 2b. One optimizer step on those gradients: global-norm clip, then Adam, with the
      //     fixture's settings (step 1, constant learning rate).
      if let adam = fx.adam, fx.file.tensors.keys.contains(where: { $0.hasPrefix("expected.after_step.") }) {
        let config = AdamConfig(schedule: .constant(adam.lr), beta1: adam.beta1, beta2: adam.beta2, eps: adam.eps,
                                clip: adam.clip)
        let stepped = try AdamOptimizer.oneStep(params, grads: out, prefix: "grad.", config: config, threads: threads)
        for (k, v) in stepped { results["expected.after_step.\(k)"] = v }
      }
    }

    // 3. decaNLP's greedy computation, teacher forced on its own greedy output: its input at step t
    //    is its output at t-1, so this reproduces greedy decoding step for step.
    var greedyIDs: [[Int64]]? = nil
    if fx.file.tensors["expected.greedy_decanlp"] != nil {
      let expectedIDs = try fx.file.tensor("expected.greedy_decanlp")
      let steps = fx.file.tensors["expected.act.greedy_probs"]?.shape[1] ?? expectedIDs.shape[1]
      var feed = try fx.inputs()
      feed["answer"] = try greedyInput(expectedIDs, steps: steps, initToken: fx.config.initToken)
      feed["answer_limited"] = nil
      var greedyOptions = MQANPlanOptions(decoder: .decanlp)
      greedyOptions.loss = false
      greedyOptions.probs = true
      greedyOptions.activations = true
      greedyOptions.name = "greedy"
      let greedy = try planTransform(compile(fuse: fuse, gemm: gemm, MQANPlans.graph(kind: .forward, config: fx.config,
                                                                          options: greedyOptions)).plan)
      let out = try Executor(plan: greedy, params: params, threads: threads, options: options).run(feed)
      for (k, v) in out where k.hasPrefix("act.greedy") { results["expected.\(k)"] = v }
      if let probs = out["probs"] {
        results["expected.act.greedy_probs"] = probs
        greedyIDs = try argmaxFull(probs, limitedToFull: fx.file.tensor("input.limited_to_full"))
      }
    }
    return (results, greedyIDs)
  }

  static func compareAll(_ fx: ParityFixture, _ results: [String: HostTensor], greedyIDs: [[Int64]]?) throws -> [ParityLine] {
    var lines: [ParityLine] = []
    for name in fx.expectedNames {
      let expected = try fx.file.tensor(name)
      if name == "expected.greedy_decanlp" {
        lines.append(compareGreedy(expected, greedyIDs, eos: fx.config.eos, pad: fx.config.pad))
        continue
      }
      if name.hasPrefix("expected.grad."), let actual = results[name] {
        lines.append(compare(name, expected: expected, actual: actual, tolerance: gradientTolerance(expected)))
        continue
      }
      if name.hasPrefix("expected.after_step."), let actual = results[name] {
        let key = String(name.dropFirst("expected.after_step.".count))
        lines.append(compareStep(name, expected: expected, actual: actual, grad: fx.file.tensors["expected.grad.\(key)"],
                                 lr: Float(fx.adam?.lr ?? 0)))
        continue
      }
      guard let actual = results[name] else {
        lines.append(ParityLine(status: .skipped, name: name, detail: "(mqan computes no tensor of this name)"))
        continue
      }
      let tol = name == "expected.loss" || name == "expected.probs" ? lossTolerance : activationTolerance
      lines.append(compare(name, expected: expected, actual: actual, tolerance: tol))
    }
    return lines
  }

  /// Updated weights: within 1e-4 of the tensor's largest magnitude, except where the expected
  /// gradient is below 1e-4 of the tensor's largest gradient: there Adam's first step,
  /// lr * g / (|g| + eps), turns rounding noise into an update of up to lr (fixtures/README.md).
  static func compareStep(_ name: String, expected: HostTensor, actual: HostTensor, grad: HostTensor?,
                          lr: Float) -> ParityLine {
    guard let e = try? expected.floats, let a = try? actual.floats, e.count == a.count else {
      return ParityLine(status: .fail, name: name, detail: "shape: expected \(expected.shape), got \(actual.shape)")
    }
    let tol = max(e.reduce(Float(0)) { max($0, abs($1)) } * 1e-4, 1e-9)
    let g = (grad.flatMap { try? $0.floats }) ?? []
    let gmax = g.reduce(Float(0)) { max($0, abs($1)) }
    let maxAbs = maxAbsError(e, a).error
    var worstExcess: Float = 0, worst = -1
    for i in e.indices {
      let d = abs(e[i] - a[i])
      let allowed = tol + (i < g.count && abs(g[i]) < gmax * 1e-4 ? lr : 0)
      guard !(d <= allowed) else { continue }
      // A NaN difference fails (`!(NaN <= allowed)`) and, once found, stays the worst element.
      let excess = d - allowed
      if worst < 0 || (!worstExcess.isNaN && (excess.isNaN || excess > worstExcess)) { worst = i; worstExcess = excess }
    }
    let detail = String(format: "max_abs=%.1e tol=%.0e", maxAbs, tol)
      + (worst < 0 ? "" : " at flat index \(worst): expected \(e[worst]), got \(a[worst])")
    return ParityLine(status: worst < 0 ? .ok : .fail, name: name, detail: detail)
  }

  /// Gradients: within 1e-4 of the largest magnitude of the expected tensor (fixtures/README.md).
  static func gradientTolerance(_ expected: HostTensor) -> Float {
    let m = ((try? expected.floats) ?? []).reduce(Float(0)) { max($0, abs($1)) }
    return max(m * 1e-4, 1e-9)
  }

  static func compile(fuse: Bool = true, gemm: GemmTarget, _ g: Graph) throws -> Compilation {
    var options = CompileOptions()
    options.fuse = fuse
    options.gemm = gemm
    return try Compiler.compile(g, options: options)
  }

  /// `[<init>, g_0, ..., g_{T-2}, pad]`: the tokens greedy decoding fed itself, plus one unused slot.
  static func greedyInput(_ ids: HostTensor, steps: Int, initToken: Int) throws -> HostTensor {
    let b = ids.shape[0], t = ids.shape[1]
    let src = try ids.int64s
    var out = [Int64](repeating: Int64(initToken), count: b * (steps + 1))
    for i in 0..<b {
      for s in 1...steps where s - 1 < t { out[i * (steps + 1) + s] = src[i * t + s - 1] }
    }
    return HostTensor(shape: [b, steps + 1], int64s: out)
  }

  /// The argmax of each step's mixture, mapped to full-vocabulary ids.
  static func argmaxFull(_ probs: HostTensor, limitedToFull: HostTensor) throws -> [[Int64]] {
    let p = try probs.floats
    let map = try limitedToFull.int64s
    let (b, t, x) = (probs.shape[0], probs.shape[1], probs.shape[2])
    return (0..<b).map { i in
      (0..<t).map { s in
        let row = (i * t + s) * x
        var best = 0
        for j in 1..<x where p[row + j] > p[row + best] { best = j }
        return best < map.count ? map[best] : -1
      }
    }
  }

  static func compareGreedy(_ expected: HostTensor, _ ids: [[Int64]]?, eos: Int, pad: Int) -> ParityLine {
    let name = "expected.greedy_decanlp"
    guard let ids, let exp = try? expected.int64s else {
      return ParityLine(status: .skipped, name: name, detail: "(no greedy probabilities to decode)")
    }
    let (b, t) = (expected.shape[0], expected.shape[1])
    var mismatches = 0, first = ""
    for i in 0..<b {
      for s in 0..<t {
        let want = exp[i * t + s]
        // Past the step where every row had produced <eos>, decaNLP stopped and left <pad>.
        let got = s < ids[i].count ? ids[i][s] : Int64(pad)
        if want != got {
          if mismatches == 0 { first = " first at [\(i), \(s)]: expected \(want), got \(got)" }
          mismatches += 1
        }
      }
    }
    return ParityLine(status: mismatches == 0 ? .ok : .fail, name: name,
                      detail: "ids_equal=\(mismatches == 0) mismatches=\(mismatches)\(first)")
  }

  /// The largest |expected - actual| and its flat index. Once an element differs by NaN (a NaN on
  /// either side, or infinities of the same sign) the result is NaN at the first such element, so a
  /// later finite element can never hide it; an infinite difference likewise stays the maximum.
  static func maxAbsError(_ e: [Float], _ a: [Float]) -> (error: Float, index: Int) {
    var maxAbs: Float = 0, worst = 0
    for i in 0..<min(e.count, a.count) {
      let d = abs(e[i] - a[i])
      if d.isNaN { return (.nan, i) }
      if d > maxAbs { maxAbs = d; worst = i }
    }
    return (maxAbs, worst)
  }

  static func compare(_ name: String, expected: HostTensor, actual: HostTensor, tolerance: Float) -> ParityLine {
    let expShape = expected.shape, actShape = actual.shape
    guard let e = try? expected.floats, let a = try? actual.floats else {
      return ParityLine(status: .fail, name: name, detail: "dtype \(expected.dtype) vs \(actual.dtype)")
    }
    guard e.count == a.count, expShape.reduce(1, *) == actShape.reduce(1, *) else {
      return ParityLine(status: .fail, name: name, detail: "shape: expected \(expShape), got \(actShape)")
    }
    let (maxAbs, worst) = maxAbsError(e, a)
    let ok = maxAbs <= tolerance
    let detail = String(format: "max_abs=%.1e tol=%.0e", maxAbs, tolerance)
      + (ok ? "" : " at flat index \(worst): expected \(e[worst]), got \(a[worst])")
    return ParityLine(status: ok ? .ok : .fail, name: name, detail: detail)
  }
}
