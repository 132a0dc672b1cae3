import Compiler
import Foundation
import Runtime
import Testing
import TestSupport

@testable import MQAN

/// decaNLP's optimizer step against the fixtures: the fixture's own gradients, one global-norm clip
/// and one Adam step (settings in the `adam` metadata), compared with `expected.after_step.*`.
@Suite struct AdamStepTests {
  struct AdamMetadata: Decodable {
    var lr: Double, beta1: Double, beta2: Double, eps: Double, clip: Double
  }

  static func fixture(_ name: String) throws -> ParityFixture {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try ParityFixture(path: url.path)
  }

  /// The fixture's Adam settings, with its lr held constant (the fixture's step 1 uses `lr` itself).
  static func config(_ fx: ParityFixture) throws -> AdamConfig {
    let text = try #require(fx.file.metadata["adam"])
    let m = try JSONDecoder().decode(AdamMetadata.self, from: Data(text.utf8))
    return AdamConfig(schedule: .constant(m.lr), beta1: m.beta1, beta2: m.beta2, eps: m.eps, clip: m.clip)
  }

  /// Compares `actual` parameters with `expected.after_step.*` under fixtures/README.md's tolerance:
  /// within 1e-4 of the tensor's largest magnitude, and up to lr more where the expected gradient is
  /// below 1e-4 of its tensor's largest gradient. Parameters without a gradient must be unchanged.
  /// Every parameter of the fixture (or each of `names`) must be in `actual` (a missing one is a
  /// failure), and the fixture must list an `expected.after_step.*` tensor for each. Returns one
  /// line per failing tensor.
  static func compare(_ fx: ParityFixture, _ actual: [String: [Float]], lr: Float,
                      names: Set<String>? = nil) throws -> [String] {
    var failures: [String] = []
    var compared = 0
    let expected = fx.params.filter { names?.contains($0.key) ?? true }
    for (name, before) in expected.sorted(by: { $0.key < $1.key }) {
      guard let got = actual[name] else {
        failures.append("\(name): missing from the updated parameters")
        continue
      }
      guard fx.file.tensors["expected.after_step.\(name)"] != nil else {
        failures.append("\(name): the fixture has no expected.after_step tensor")
        continue
      }
      compared += 1
      let want = try fx.file.tensor("expected.after_step.\(name)").floats
      guard want.count == got.count else {
        failures.append("\(name): \(got.count) elements, expected \(want.count)")
        continue
      }
      guard let grad = fx.file.tensors["expected.grad.\(name)"] else {
        if got != (try before.floats) { failures.append("\(name): has no gradient but changed") }
        continue
      }
      let g = try grad.floats
      let tol = max(want.reduce(Float(0)) { max($0, abs($1)) } * 1e-4, 1e-9)
      let gmax = g.reduce(Float(0)) { max($0, abs($1)) }
      var worst: (index: Int, err: Float)? = nil
      for i in want.indices {
        let allowed = tol + (abs(g[i]) < gmax * 1e-4 ? lr : 0)
        let err = abs(got[i] - want[i])
        if !(err <= allowed), worst == nil || err > worst!.err { worst = (i, err) }
      }
      if let w = worst { failures.append("\(name): element \(w.index) off by \(w.err) (tol \(tol))") }
    }
    if compared != expected.count || compared == 0 || names.map({ $0.count != expected.count }) == true {
      failures.append("compared \(compared) of \(names?.count ?? fx.params.count) parameters")
    }
    if let extra = Set(actual.keys).subtracting(expected.keys).sorted().first {
      failures.append("\(extra): updated but not a parameter of the fixture")
    }
    return failures
  }

  @Test(arguments: ["tiny", "small"], [1, 2])
  func oneStepMatchesDecaNLP(name: String, threads: Int) throws {
    let fx = try Self.fixture(name)
    let config = try Self.config(fx)
    let params = fx.params
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(config: config, parameters: mem.buffers, threads: threads)
    let report = try opt.step(grads: fx.file.tensors, prefix: "expected.grad.")
    #expect(report.step == 1 && report.learningRate == config.learningRate(step: 1))
    let withGrads = params.keys.filter { fx.file.tensors["expected.grad.\($0)"] != nil }
    #expect(report.updatedParameters == withGrads.count)
    #expect(withGrads.count < params.count, "the fixture has parameters without gradients (the linear_in weights)")
    let failures = try Self.compare(fx, mem.all, lr: Float(config.learningRate(step: 1)))
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
  }

  /// The convenience for parity checks gives the same numbers as an optimizer over owned memory.
  @Test func oneStepConvenienceMatches() throws {
    let fx = try Self.fixture("tiny")
    let config = try Self.config(fx)
    let out = try AdamOptimizer.oneStep(fx.params, grads: fx.file.tensors, prefix: "expected.grad.", config: config, threads: 2)
    let mem = ParameterMemory(fx.params)
    try AdamOptimizer(config: config, parameters: mem.buffers, threads: 1).step(grads: fx.file.tensors, prefix: "expected.grad.")
    #expect(out.mapValues { try! $0.floats } == mem.all)
    #expect(try Self.compare(fx, mem.all, lr: Float(config.learningRate(step: 1))).isEmpty)
  }

  /// The update lands in the executor's own weight block: the next run reads the new weights, and
  /// its loss equals that of a fresh executor built from decaNLP's updated parameters.
  @Test func oneStepInPlaceOnExecutorWeights() throws {
    let fx = try Self.fixture("tiny")
    let config = try Self.config(fx)
    let graph = try MQANGraph.forward(fx.config, options: ForwardOptions(decoder: .consistent, loss: true))
    let plan = try Compiler.compile(graph).plan
    let executor = try Executor(plan: plan, params: fx.params, threads: 2)
    let before = try executor.run(try fx.inputs())["loss"]!.floats[0]
    let buffers = executor.parameterBuffers()
    #expect(buffers.map(\.name) == buffers.map(\.name).sorted())
    #expect(executor.parameters() == fx.params.filter { p in buffers.contains { $0.name == p.key } })
    let opt = try AdamOptimizer(config: config, parameters: buffers, threads: 2)
    try opt.step(grads: fx.file.tensors, prefix: "expected.grad.")
    let updated = executor.parameters().mapValues { try! $0.floats }
    // The executor holds the weights its plan reads: all but decaNLP's two never-called linear_in.
    let read = Set(buffers.map(\.name))
    #expect(Set(fx.params.keys).subtracting(read).sorted().allSatisfy { $0.hasSuffix("linear_in.weight") })
    #expect(read.count == fx.params.count - 2)
    let failures = try Self.compare(fx, updated, lr: Float(config.learningRate(step: 1)), names: read)
    #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    let after = try executor.run(try fx.inputs())["loss"]!.floats[0]
    var decaNLPParams = fx.params
    for name in decaNLPParams.keys { decaNLPParams[name] = try fx.file.tensor("expected.after_step.\(name)") }
    let fresh = try Executor(plan: plan, params: decaNLPParams, threads: 2).run(try fx.inputs())["loss"]!.floats[0]
    #expect(after != before)
    #expect(abs(after - fresh) < 1e-4, "loss after the in-place step \(after), from decaNLP's parameters \(fresh)")
    // setParameters puts the old weights back.
    try executor.setParameters(fx.params)
    #expect(try executor.run(try fx.inputs())["loss"]!.floats[0] == before)
  }
}

