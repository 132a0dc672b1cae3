import Compiler
import GraphIR
import Testing

/// Liveness in stages and arena placement.
@Suite struct MemoryTests {
  static let bindings: [[String: Int]] = [["B": 1, "T": 1], ["B": 3, "T": 5], ["B": 8, "T": 17], ["B": 2, "T": 64]]

  @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
  func randomGraphsNeverOverlapLiveBuffers(seed: UInt64) throws {
    let g = try randomGraph(seed: seed, count: 30 + Int(seed) * 4)
    let plan = try compile(g).plan
    try verifyPlan(plan)
    #expect(plan.steps.count >= 20)
    for env in Self.bindings {
      try assertNoLiveOverlap(plan: plan, env: env)
    }
  }

  @Test func outputsLiveToTheLastStage() throws {
    let plan = try compile(randomGraph(seed: 11, count: 40)).plan
    for o in plan.outputs {
      var root = o.buffer
      if case .view(let base) = plan.buffers[root].storage { root = base }
      guard case .arena(_, let last) = plan.buffers[root].storage else { continue }
      #expect(last == plan.stageCount - 1, "output \(o.name) (#\(root)) dies at stage \(last)")
    }
  }

  /// Ten tanh in a row: each buffer lives two stages, so three slots serve all ten.
  @Test func aChainReusesMemory() throws {
    let b = GraphBuilder(name: "chain")
    var v = try b.input("x", .f32, [.sym("B"), 256])
    for _ in 0..<10 { v = try b.tanh(v) }
    try b.output("y", v)
    let plan = try compile(b.finish()).plan
    #expect(plan.stageCount == 10)
    let env = ["B": 16]
    try assertNoLiveOverlap(plan: plan, env: env)
    let layout = try plan.layout(env)
    #expect(layout.totalBytes == 10 * 16 * 256 * 4)
    #expect(layout.arenaBytes * 3 <= layout.totalBytes, "arena \(layout.arenaBytes) of \(layout.totalBytes)")
  }

  @Test func memoryReportSummarisesTheArena() throws {
    let plan = try compile(randomGraph(seed: 3, count: 40)).plan
    let report = try plan.memoryReport(["B": 8, "T": 17])
    #expect(report.contains("buffers -> 1 arena"))
    #expect(report.contains("largest buffers:"))
    #expect(report.contains("parameters "))
    #expect(report.split(separator: "\n").count <= 20)
    #expect(throws: DimError.self) { try plan.memoryReport(["B": 8]) }
  }
}
