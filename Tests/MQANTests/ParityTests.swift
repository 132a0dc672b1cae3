import Compiler
import Foundation
import GraphIR
import Runtime
import Testing
@testable import MQAN

/// decaNLP's own numbers: every expected tensor of the bundled fixtures within its tolerance.
@Suite struct ParityTests {
  static func fixture(_ name: String) throws -> ParityFixture {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try ParityFixture(path: url.path)
  }

  static func expectAllOK(_ lines: [ParityLine]) {
    let failures = lines.filter { $0.status == .fail }
    #expect(failures.isEmpty, "\(failures.map(\.description).joined(separator: "\n"))")
    let ok = Set(lines.filter { $0.status == .ok }.map(\.name))
    #expect(ok.contains("expected.loss"))
    #expect(ok.contains("expected.probs"))
    #expect(ok.contains("expected.greedy_decanlp"))
    // Every activation the fixture lists is compared, none skipped.
    for l in lines where l.name.hasPrefix("expected.act.") { #expect(l.status == .ok, "\(l)") }
    // Gradients and the Adam step, where the fixture has them, are compared, never skipped.
    for l in lines where l.name.hasPrefix("expected.grad.") || l.name.hasPrefix("expected.after_step.") {
      #expect(l.status == .ok, "\(l)")
    }
    #expect(!lines.contains { $0.status == .skipped }, "\(lines.filter { $0.status == .skipped })")
  }

  @Test(arguments: ["tiny", "small", "d18-h4-l1", "d10-h4-l2", "d24-h2-l2-b5", "d16-h3-l2-oovrep"], [1, 2])
  func forwardMatchesDecaNLP(name: String, threads: Int) throws {
    Self.expectAllOK(try ParityCheck.run(Self.fixture(name), threads: threads))
  }

  /// Every GEMM path this CPU runs (AVX2 and portable are forced on an AVX-512 machine) and
  /// OpenBLAS give decaNLP's numbers within the fixtures' tolerances, unchanged.
  @Test(arguments: ["mqan-avx512", "mqan-avx2", "mqan-portable", "openblas"], ["tiny", "small", "d24-h2-l2-b5"])
  func parityOnEveryGemmPath(gemm: String, name: String) throws {
    guard let target = try? Gemm.target(named: gemm) else { return } // a path this CPU lacks
    let lines = try ParityCheck.run(Self.fixture(name), threads: 2, gemm: target)
    Self.expectAllOK(lines)
  }

  /// A plan compiled for a GEMM path names it in every GEMM step, and the weights it packs.
  @Test func gemmChoiceIsRecordedInThePlan() throws {
    let fx = try Self.fixture("tiny")
    var options = CompileOptions()
    options.gemm = try Gemm.target(named: "mqan-portable")
    let plan = try MQANPlans.compile(kind: .decodeStep, config: fx.config, compileOptions: options).plan
    let gemmSteps = plan.steps.filter { [.linear, .matmul].contains($0.op) }
    #expect(!gemmSteps.isEmpty)
    for st in gemmSteps {
      #expect(st.attrs.string("gemm") == "mqan-portable", "\(st.label)")
      // Linears split rows or columns; a matmul splits its batch.
      if st.op == .linear { #expect(["rows", "columns"].contains(st.attrs.string("split") ?? ""), "\(st.label)") }
    }
    #expect(plan.steps.contains { $0.op == .linear && $0.attrs.bool("pack") })
  }

  /// The memory plan: every arena region is filled with NaN once its buffer is dead, so a plan
  /// that lets two live buffers share memory would corrupt a result and fail parity.
  @Test(arguments: ["tiny", "small"])
  func parityHoldsWithFreedMemoryPoisoned(name: String) throws {
    Self.expectAllOK(try ParityCheck.run(Self.fixture(name), threads: 2, options: ExecutorOptions(poisonFreed: true)))
  }

  /// The unfused plan (`--no-fuse`) gives decaNLP's numbers as well.
  @Test func parityWithoutFusion() throws {
    Self.expectAllOK(try ParityCheck.run(Self.fixture("small"), threads: 2, fuse: false))
  }

  /// The reference kernels reproduce decaNLP too (the oracle the fast kernels are tested against).
  @Test func parityWithReferenceKernels() throws {
    Self.expectAllOK(try ParityCheck.run(Self.fixture("tiny"), options: ExecutorOptions(useReference: true)))
  }

  /// The runtime needs nothing but a plan and weights: plans that went through a plan file give
  /// the same numbers.
  @Test func parityThroughPlanFiles() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-plan-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var n = 0
    let lines = try ParityCheck.run(Self.fixture("small")) { plan in
      n += 1
      let path = dir.appendingPathComponent("\(n).json").path
      try PlanFile(plans: [plan]).write(to: path)
      let loaded = try PlanFile.read(path: path).plan(named: plan.name, path: path)
      #expect(loaded == plan)
      return loaded
    }
    Self.expectAllOK(lines)
  }

  /// Same seed, same thread count: bit-identical results.
  @Test func runsAreBitIdentical() throws {
    let fx = try Self.fixture("small")
    let a = try ParityCheck.outputs(fx, threads: 2)
    let b = try ParityCheck.outputs(fx, threads: 2)
    #expect(a.tensors.count >= 30)
    #expect(a.tensors == b.tensors)
    #expect(a.greedyIDs == b.greedyIDs)
  }
}
