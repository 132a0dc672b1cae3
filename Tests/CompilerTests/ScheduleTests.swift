import Compiler
import GraphIR
import Testing

/// Stages are ASAP levels; lanes keep independent chains apart.
@Suite struct ScheduleTests {
  /// Two `linear + affine` chains from one input, joined by an `add` (affine does not fuse into
  /// the GEMM, so each chain stays two steps).
  func twoChains() throws -> Graph {
    let b = GraphBuilder(name: "chains")
    let x = try b.input("x", .f32, [.sym("B"), 8])
    let left = try b.affine(b.linear(x, b.param("left", [8, 8])), alpha: 2)
    let right = try b.affine(b.linear(x, b.param("right", [8, 8])), alpha: 2)
    try b.output("y", b.add(left, right))
    return b.finish()
  }

  func step(_ plan: Plan, _ label: String) throws -> Step {
    try #require(plan.steps.first { $0.label == label })
  }

  @Test func independentChainsShareStagesOnDifferentLanes() throws {
    let plan = try compile(twoChains()).plan
    // Nodes: x %0, left %1, linear %2, affine %3, right %4, linear %5, affine %6, add %7.
    let (l1, l2, r1, r2, join) = try (step(plan, "%2"), step(plan, "%3"), step(plan, "%5"), step(plan, "%6"),
                                      step(plan, "%7"))
    #expect([l1.stage, r1.stage] == [0, 0])
    #expect([l2.stage, r2.stage] == [1, 1])
    #expect(l1.lane != r1.lane)
    #expect(l2.lane == l1.lane, "a chain stays on its lane")
    #expect(r2.lane == r1.lane)
    #expect(join.stage == 2)
    #expect(plan.stageCount == 3)
    #expect(plan.laneCount == 2)
  }

  @Test func stepsAreOrderedByStageThenLane() throws {
    let plan = try compile(randomGraph(seed: 7, count: 40)).plan
    let keys = plan.steps.map { [$0.stage, $0.lane] }
    #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) })
    for stage in plan.stages {
      #expect(Set(stage.map { plan.steps[$0].lane }) == Set(0..<stage.count))
    }
    try verifyPlan(plan)
  }

  @Test func aViewDependsOnItsBasesProducer() throws {
    let b = GraphBuilder(name: "view")
    let x = try b.input("x", .f32, [.sym("B"), .sym("T"), 4])
    let t = try b.tanh(x)
    let r = try b.reshape(t, [.sym("B") * .sym("T"), 4])
    try b.output("y", b.sigmoid(r))
    let plan = try compile(b.finish()).plan
    #expect(try step(plan, "%1").stage == 0)
    #expect(try step(plan, "%3").stage == 1)
    let view = try #require(plan.buffers.firstIndex { $0.name == "%2" })
    #expect(plan.buffers[view].storage == .view(of: try step(plan, "%1").outputs[0]))
  }

  /// A 50,000-column linear beside a small one in the same ASAP stage: at the sample dims it is
  /// over 3/4 of the stage's FLOPs, so it gets a stage of its own right after; two equal linears
  /// stay together.
  @Test func aDominantStepGetsItsOwnStage() throws {
    func graph(bigColumns: Int) throws -> Graph {
      let b = GraphBuilder(name: "dominant")
      let x = try b.input("x", .f32, [.sym("B"), 200])
      let big = try b.affine(b.linear(x, b.param("big", [Dim(bigColumns), 200])), alpha: 2)
      let small = try b.affine(b.linear(x, b.param("small", [8, 200])), alpha: 2)
      try b.output("big", big)
      try b.output("small", small)
      return b.finish()
    }
    let plan = try compile(graph(bigColumns: 50_000)).plan
    // Nodes: x %0, big %1, linear %2, affine %3, small %4, linear %5, affine %6.
    let (big, small) = try (step(plan, "%2"), step(plan, "%5"))
    #expect(small.stage == 0 && big.stage == 1)
    #expect(plan.steps.filter { $0.stage == big.stage }.count == 1)
    #expect(try step(plan, "%3").stage > big.stage, "its readers move after it")

    let even = try compile(graph(bigColumns: 8)).plan
    #expect(try step(even, "%2").stage == step(even, "%5").stage)
  }
}
