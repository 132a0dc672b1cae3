import Compiler
import GraphIR
import Testing

/// Graph passes: dead nodes, common subexpressions, shape inference, and the pipeline around them.
@Suite struct PassTests {
  /// `x -> tanh -> out`, plus an unused input and an unused chain.
  func graphWithDeadNodes() throws -> Graph {
    let b = GraphBuilder(name: "dead")
    let x = try b.input("x", .f32, [.sym("B"), 4])
    _ = try b.input("unused", .f32, [.sym("B"), 4])
    let w = try b.param("w", [4, 4])
    _ = try b.relu(b.linear(x, w))
    try b.output("out", b.tanh(x))
    return b.finish()
  }

  /// A scan whose body has a dead node and an input (a const) it never reads.
  func scanWithDeadBodyNodes() throws -> Graph {
    let b = GraphBuilder(name: "scan")
    let xs = try b.input("xs", .f32, [.sym("B"), .sym("T"), 3])
    let h0 = try b.zeros([.sym("B"), 3])
    let k = try b.input("k", .f32, [.sym("B"), 3])
    let (carries, _) = try b.scan(name: "body", seqs: [xs], carries: [h0], consts: [k]) { (s, v) throws(GraphError) in
      _ = try s.sigmoid(v.seqs[0])  // dead
      let h = try s.tanh(s.add(v.seqs[0], v.carries[0]))
      return ([h], [])
    }
    try b.output("h", carries[0])
    return b.finish()
  }

  @Test func deadNodesGoButInputsStay() throws {
    let g = try EliminateDeadNodes().run(graphWithDeadNodes())
    #expect(g.nodes.map(\.op) == [.input, .input, .tanh])
    #expect(g.inputNodes.count == 2)
    #expect(g.outputs == [GraphOutput("out", ValueRef(2))])
    #expect(g.nodes[2].inputs == [ValueRef(0)])
    try g.verify()
  }

  @Test func deadNodesGoInsideScanBodies() throws {
    let before = try scanWithDeadBodyNodes()
    let g = try EliminateDeadNodes().run(before)
    let body = try #require(g.nodes.first { $0.op == .scan }?.attrs.graph("body"))
    #expect(!body.nodes.contains { $0.op == .sigmoid })
    #expect(body.inputNodes.count == 3, "seq, carry and the unread const all stay")
    #expect(g.totalNodeCount == before.totalNodeCount - 1)
    try g.verify()
  }

  @Test func cseMergesParamsByNameAndPureNodes() throws {
    let b = GraphBuilder(name: "shared")
    let x = try b.input("x", .f32, [.sym("B"), 4])
    // Two uses of one module: the weight is declared twice under one name.
    let a = try b.tanh(b.linear(x, b.param("enc.weight", [4, 4])))
    let c = try b.tanh(b.linear(x, b.param("enc.weight", [4, 4])))
    try b.output("sum", b.add(a, c))
    let g = try EliminateDeadNodes().run(EliminateCommonSubexpressions().run(b.finish()))
    #expect(g.nodes.map(\.op) == [.input, .param, .linear, .tanh, .add])
    #expect(g.nodes[4].inputs == [ValueRef(3), ValueRef(3)])
    try g.verify()
  }

  @Test func cseNeverMergesInputs() throws {
    let b = GraphBuilder(name: "inputs")
    let x1 = try b.input("x", .f32, [.sym("B"), 4])
    let x2 = try b.input("x", .f32, [.sym("B"), 4])
    try b.output("sum", b.add(b.tanh(x1), b.tanh(x2)))
    let g = try EliminateDeadNodes().run(EliminateCommonSubexpressions().run(b.finish()))
    #expect(g.nodes.map(\.op) == [.input, .input, .tanh, .tanh, .add])
  }

  @Test func cseLeavesDuplicatesForDCE() throws {
    let b = GraphBuilder(name: "dup")
    let x = try b.input("x", .f32, [.sym("B"), 4])
    try b.output("a", b.tanh(x))
    try b.output("b", b.tanh(x))
    let g = try EliminateCommonSubexpressions().run(b.finish())
    #expect(g.nodes.count == 3)
    #expect(g.outputs.map(\.value) == [ValueRef(1), ValueRef(1)])
  }

  @Test func cseMergesEqualScans() throws {
    let b = GraphBuilder(name: "twoScans")
    let xs = try b.input("xs", .f32, [.sym("B"), .sym("T"), 3])
    let h0 = try b.zeros([.sym("B"), 3])
    var finals: [Value] = []
    for _ in 0..<2 {
      let (c, _) = try b.scan(name: "cell", seqs: [xs], carries: [h0]) { (s, v) throws(GraphError) in
        ([try s.tanh(s.add(v.seqs[0], s.mul(v.carries[0], s.param("u", [3]))))], [])
      }
      finals.append(c[0])
    }
    try b.output("h", b.add(finals[0], finals[1]))
    let g = try compile(b.finish()).graph
    #expect(g.nodes.filter { $0.op == .scan }.count == 1)
  }

  @Test func cseRejectsOneParamNameWithTwoShapes() throws {
    let b = GraphBuilder(name: "conflict")
    let x = try b.input("x", .f32, [.sym("B"), 4])
    try b.output("a", b.linear(x, b.param("w", [4, 4])))
    try b.output("b", b.linear(x, b.param("w", [2, 4])))
    #expect {
      try EliminateCommonSubexpressions().run(b.finish())
    } throws: { e in
      guard case .inPass("cse", .shapeMismatch(node: 3, op: .param, _, _, _))? = e as? CompileError else {
        return false
      }
      return true
    }
  }

  @Test func inferShapesFillsMissingTypesAndRejectsDrift() throws {
    var g = try graphWithDeadNodes()
    g.nodes[5].types = []
    #expect(try InferShapes().run(g) == graphWithDeadNodes())
    g.nodes[5].types = [.f32([.sym("B"), 5])]
    #expect(throws: CompileError.inPass(pass: "infer-shapes", .typeDrift(
      node: 5, op: .tanh, stored: "f32[B, 5]", inferred: "f32[B, 4]"))) {
      try InferShapes().run(g)
    }
  }

  @Test func compiledGraphVerifiesAndCountsNodes() throws {
    let g = try scanWithDeadBodyNodes()
    let c = try compile(g)
    try c.graph.verify()
    try verifyPlan(c.plan)
    #expect(c.plan.stats.nodesBefore == g.totalNodeCount)
    #expect(c.plan.stats.nodesAfter == c.graph.totalNodeCount)
    #expect(c.plan.stats.nodesAfter < c.plan.stats.nodesBefore)
    #expect(c.plan.stats.flops == c.graph.cost().flops)
    #expect(c.passTimings.map(\.pass) == Pipeline.passNames)
  }

  @Test func parameterCountCountsEachNameOnce() throws {
    let b = GraphBuilder(name: "params")
    let x = try b.input("x", .f32, [.sym("B"), 4])
    let w = try b.param("w", [3, 4])
    try b.output("a", b.linear(x, w, b.param("b", [3])))
    try b.output("c", b.linear(x, b.param("w", [3, 4])))
    #expect(try compile(b.finish()).plan.stats.parameterCount == 15)
  }

  @Test func dumpAndStopAfter() throws {
    let g = try graphWithDeadNodes()
    let c = try compile(g, options: CompileOptions(dumpAfter: "cse"))
    #expect(c.dumps.map(\.pass) == ["cse"])
    #expect(c.dumps.first?.text.hasPrefix("graph @dead") == true)
    let stopped = try compile(g, options: CompileOptions(stopAfter: "infer-shapes"))
    #expect(stopped.graph == g, "no pass after infer-shapes ran")
    #expect(stopped.passTimings.map(\.pass) == ["infer-shapes", "lower", "schedule", "plan-memory"])
    let planDump = try compile(g, options: CompileOptions(dumpAfter: "plan-memory"))
    #expect(planDump.dumps.first?.text == planDump.plan.text())
    #expect(throws: CompileError.unknownPass("fusion", known: Pipeline.passNames)) {
      try compile(g, options: CompileOptions(dumpAfter: "fusion"))
    }
  }

  @Test func errorsNameThePass() {
    let e = CompileError.afterPass(pass: "cse", .shapeMismatch(node: 12, op: .linear, what: "x", expected: "a",
                                                                actual: "b"))
    #expect(e.description == "after pass cse: node %12 (linear): x: expected a, got b")
  }
}
