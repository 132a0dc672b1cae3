import Compiler
import Foundation
import GraphIR
import Testing
@testable import MQAN

/// MQAN's graphs, as `mqan compile --emit ir` prints them, are checked in under IR/. A change to
/// the model or a pass shows up as a diff there; `MQAN_RECORD_IR=1 swift test` re-records them.
@Suite struct IRSnapshotTests {
  static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  static let cases: [(preset: String, plan: String)] = [
    ("tiny", "train"), ("tiny", "encode"), ("tiny", "decode-step"), ("default", "train"), ("default", "encode"),
    ("default", "decode-step"),
  ]

  @Test(arguments: 0..<cases.count)
  func irMatchesCheckedInText(index: Int) throws {
    let (preset, plan) = Self.cases[index]
    let cfg = try #require(ModelConfig.presets[preset])
    // As `mqan compile --plan P` builds them.
    let graph: Graph
    switch plan {
    case "encode": graph = try MQANGraph.encoder(cfg, crossAttention: .consistent)
    case "decode-step": graph = try MQANGraph.decodeStep(cfg, mode: .consistent)
    default: graph = try MQANGraph.forward(cfg, options: ForwardOptions(decoder: .consistent, loss: true))
    }
    // As `mqan compile --emit ir` compiles them: the train plan with its backward pass.
    var options = CompileOptions()
    if plan == "train" { options.differentiate = "loss" }
    let compiled = try compile(graph, options: options).graph
    let text = compiled.text() + "\n"
    let url = Self.repoRoot.appendingPathComponent("IR/\(preset).\(plan).mqir")
    if ProcessInfo.processInfo.environment["MQAN_RECORD_IR"] != nil {
      try text.write(to: url, atomically: true, encoding: .utf8)
      return
    }
    let stored = try String(contentsOf: url, encoding: .utf8)
    #expect(stored == text, "IR/\(preset).\(plan).mqir drifted from the compiler's output; re-record with MQAN_RECORD_IR=1 swift test if the change is intended")
    // The checked-in text parses back to the same graph.
    #expect(try Graph(parsing: stored, file: url.path) == compiled)
  }
}
