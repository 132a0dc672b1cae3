import Compiler
import Foundation
import GraphIR
import Testing
@testable import MQAN

/// MQAN's graphs and plans, as `mqan compile --emit ir` and `--emit plan` print them, are checked
/// in under IR/ (`PRESET.PLAN.mqir`, `PRESET.PLAN.plan`). A change to the model or a pass shows up
/// as a diff there; `MQAN_RECORD_IR=1 swift test` re-records them (and fails the recording run, so
/// a run that records never passes as a check).
@Suite struct IRSnapshotTests {
  static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  static let cases: [(preset: String, plan: MQANPlanKind)] = [
    ("tiny", .train), ("tiny", .encode), ("tiny", .decodeStep), ("default", .train), ("default", .encode),
    ("default", .decodeStep),
  ]

  /// Exactly "1" re-records; any other value (even "0") compares.
  static var recording: Bool { ProcessInfo.processInfo.environment["MQAN_RECORD_IR"] == "1" }

  /// As `mqan compile --preset P --plan K` compiles it (the train plan without dropout: the
  /// parity computation).
  static func compiled(_ index: Int) throws -> Compilation {
    let (preset, plan) = cases[index]
    let cfg = try #require(ModelConfig.presets[preset])
    // The plan goldens name OpenBLAS as the GEMM: mqan's own paths carry blocking derived from the
    // machine's caches, which would make the goldens differ between machines.
    var options = CompileOptions()
    options.gemm = .openblas
    return try MQANPlans.compile(kind: plan, config: cfg, compileOptions: options)
  }

  /// Compares `text` with the checked-in file, or records it when `MQAN_RECORD_IR=1`.
  static func check(_ text: String, against file: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let url = repoRoot.appendingPathComponent(file)
    if recording {
      try text.write(to: url, atomically: true, encoding: .utf8)
      Issue.record("recorded \(file) (MQAN_RECORD_IR=1); review the diff and run the tests again without it",
                   sourceLocation: sourceLocation)
      return
    }
    let stored = try String(contentsOf: url, encoding: .utf8)
    #expect(stored == text, "\(file) drifted from the compiler's output; re-record with MQAN_RECORD_IR=1 swift test if the change is intended",
            sourceLocation: sourceLocation)
  }

  @Test(arguments: 0..<cases.count)
  func irMatchesCheckedInText(index: Int) throws {
    let (preset, plan) = Self.cases[index]
    let compiled = try Self.compiled(index).graph
    let file = "IR/\(preset).\(plan.rawValue).mqir"
    try Self.check(compiled.text() + "\n", against: file)
    if Self.recording { return }
    // The checked-in text parses back to the same graph.
    let url = Self.repoRoot.appendingPathComponent(file)
    #expect(try Graph(parsing: String(contentsOf: url, encoding: .utf8), file: url.path) == compiled)
  }

  @Test(arguments: 0..<cases.count)
  func planMatchesCheckedInText(index: Int) throws {
    let (preset, plan) = Self.cases[index]
    try Self.check(try Self.compiled(index).plan.text() + "\n", against: "IR/\(preset).\(plan.rawValue).plan")
  }
}
