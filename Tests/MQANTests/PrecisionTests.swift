import Compiler
import Foundation
import GraphIR
import Runtime
import Testing
@testable import MQAN

/// Reduced-precision decoding (`--precision bf16|int8`): the output layer converted, the answers
/// close to fp32's, fp32 untouched, the portable path equal to the SIMD one where the sums are exact.
@Suite struct PrecisionTests {
  static func decode(_ fx: ParityFixture, _ target: PrecisionTarget?, beam: Int = 1) throws -> [[BeamHypothesis]] {
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2, precision: target)
    let options = BeamSearchOptions(beamSize: beam, maxLength: 8, nBest: beam, eos: Int32(fx.config.eos),
                                    initToken: Int32(fx.config.initToken))
    return try decoder.beamSearch(try fx.inputs(), options: options)
  }

  static func target(_ p: Precision, path: String? = nil) throws -> PrecisionTarget {
    var t = try #require(try Precisions.target(named: p.rawValue).target)
    if let path { t.path = path }
    return t
  }

  /// On the fixtures' models, greedy and beam 3: the same answers as fp32, each score within 1e-3
  /// relative (the logits' errors are ~1e-3 of their size, far below these models' margins).
  @Test(arguments: ["small", "d24-h2-l2-b5", "d16-h3-l2-oovrep"])
  func answersMatchFP32(name: String) throws {
    let fx = try ParityTests.fixture(name)
    for beam in [1, 3] {
      let fp32 = try Self.decode(fx, nil, beam: beam)
      for p in [Precision.bf16, .int8] {
        let got = try Self.decode(fx, try Self.target(p), beam: beam)
        #expect(got.count == fp32.count)
        for (row, (a, b)) in zip(fp32, got).enumerated() {
          #expect(a.map(\.tokens) == b.map(\.tokens), "\(name) \(p) beam \(beam) row \(row)")
          for (x, y) in zip(a, b) {
            #expect(abs(x.score - y.score) <= 1e-3 * (1 + abs(x.score)), "\(name) \(p) row \(row): \(x.score) vs \(y.score)")
          }
        }
      }
    }
  }

  /// int8's sums are exact integers: the portable (emulated) path decodes to the same bits.
  @Test func int8PortablePathGivesTheSameBits() throws {
    let fx = try ParityTests.fixture("d16-h3-l2-oovrep")
    let simd = try Self.decode(fx, try Self.target(.int8), beam: 2)
    let portable = try Self.decode(fx, try Self.target(.int8, path: "portable"), beam: 2)
    #expect(simd.map { $0.map(\.tokens) } == portable.map { $0.map(\.tokens) })
    #expect(simd.map { $0.map(\.score) } == portable.map { $0.map(\.score) })
  }

  /// Only the output layer is converted (the fixtures' other weights are far under 2^20
  /// elements); the encoder plan and a fp32 target are left exactly as they were.
  @Test func onlyTheOutputLayerIsConverted() throws {
    let config = try ParityTests.fixture("small").config
    func plan(_ kind: MQANPlanKind, _ precision: PrecisionTarget?) throws -> Plan {
      var options = CompileOptions()
      options.gemm = Gemm.best
      options.precision = precision
      return try MQANPlans.compile(kind: kind, config: config, compileOptions: options).plan
    }
    let bf16 = try Self.target(.bf16)
    let step = try plan(.decodeStep, bf16)
    let converted = step.steps.filter { $0.attrs.string("precision") != nil }
    #expect(converted.count == 1)
    #expect(converted.first?.op == .linear && converted.first?.attrs.string("precision") == "bf16")
    let logits = step.steps.first { $0.op == .mixtureTopK }?.inputs.first
    #expect(converted.first?.outputs.first == logits)
    #expect(try plan(.encode, bf16) == plan(.encode, nil))
    #expect(try Precisions.target(named: "fp32").target == nil)
    #expect(try plan(.decodeStep, PrecisionTarget(precision: .fp32, path: "portable")) == plan(.decodeStep, nil))
    // The train plan stays fp32 through MQANPlans; asked directly, the compiler refuses.
    #expect(try plan(.train, bf16) == plan(.train, nil))
    var options = CompileOptions()
    options.precision = bf16
    options.differentiate = "loss"
    #expect(throws: CompileError.self) {
      _ = try compile(MQANPlans.graph(kind: .forward, config: config), options: options)
    }
  }

  /// A plan naming a path that does not exist is refused when bound, naming the step.
  @Test func anUnknownPathIsRefused() throws {
    let fx = try ParityTests.fixture("small")
    #expect {
      _ = try MQANDecoder(config: fx.config, params: fx.params, threads: 1,
                          precision: PrecisionTarget(precision: .int8, path: "avx512-bf16"))
      _ = try Self.decode(fx, PrecisionTarget(precision: .int8, path: "avx512-bf16"))
    } throws: { "\($0)".contains("unknown int8 path \"avx512-bf16\"") }
    #expect(throws: RuntimeError.self) { _ = try Precisions.target(named: "fp16") }
  }
}
