import Compiler
import Foundation
import GraphIR
import Testing

/// Graph -> plan: buffers, steps, scan bodies, and the plan as data and text.
@Suite struct LoweringTests {
  /// A masked RNN: `h' = tanh(x_t W^T + h * m)`, emitting `sigmoid(h')` per step.
  func rnn() throws -> Graph {
    let b = GraphBuilder(name: "rnn")
    let xs = try b.input("xs", .f32, [.sym("B"), .sym("T"), 4])
    let m = try b.input("m", .f32, [.sym("B"), 3])
    let lengths = try b.input("lengths", .i32, [.sym("B")])
    let h0 = try b.zeros([.sym("B"), 3])
    let (carries, outputs) = try b.scan(name: "cell", seqs: [xs], carries: [h0], consts: [m], lengths: lengths) {
      (s, v) throws(GraphError) in
      let h = try s.tanh(s.add(s.linear(v.seqs[0], s.param("cell.weight", [3, 4])), s.mul(v.carries[0], v.consts[0])))
      return ([h], [try s.sigmoid(h)])
    }
    try b.output("h", carries[0])
    try b.output("ys", b.reshape(outputs[0], [.sym("B") * .sym("T"), 3]))
    return b.finish()
  }

  @Test func sourcesAndViewsBecomeBuffersWithoutSteps() throws {
    let plan = try compile(rnn()).plan
    #expect(plan.buffers.contains { $0.storage == .input("xs") && $0.name == "xs" })
    #expect(plan.buffers.contains { $0.storage == .input("lengths") && $0.type == .i32([.sym("B")]) })
    #expect(plan.steps.map(\.op) == [.zeros, .scan])
    let view = try #require(plan.outputs.first { $0.name == "ys" })
    let scan = plan.steps[1]
    #expect(plan.buffers[view.buffer].storage == .view(of: scan.outputs[1]))
    #expect(scan.outputs.map { plan.buffers[$0].name } == ["%4", "%4.1"])
    #expect(scan.attrs.int("nseq") == 1 && scan.attrs.bool("masked"))
  }

  @Test func scanBodiesPinTheirSlicesAndCarriesAndReadConstsOutside() throws {
    let plan = try compile(rnn()).plan
    let index = try #require(plan.steps.firstIndex { $0.op == .scan })
    let scan = plan.steps[index]
    let body = try #require(scan.body.first)
    #expect(scan.body.count == 1)
    let last = body.stageCount - 1
    #expect(last >= 2)
    let byName = Dictionary(uniqueKeysWithValues: body.buffers.map { ($0.name, $0.storage) })
    #expect(byName["x0"] == .arena(first: 0, last: last))
    #expect(byName["carry0"] == .arena(first: 0, last: last))
    #expect(byName["const0"] == .outer(2))
    #expect(byName["cell.weight"] == .param("cell.weight"))
    for o in body.outputs {
      guard case .arena(_, let l) = body.buffers[o.buffer].storage else { Issue.record("\(o.name)"); continue }
      #expect(l == last)
    }
    let workspace = try #require(scan.workspace)
    #expect(plan.buffers[workspace].storage == .workspace(step: index, first: scan.stage, last: scan.stage))
    let env = ["B": 4, "T": 9]
    let bodyArena = try body.layout(env).arenaBytes
    #expect(bodyArena > 0)
    #expect(try plan.layout(env).sizes[workspace] == bodyArena)
    try assertNoLiveOverlap(plan: plan, env: env)
    try verifyPlan(plan)
  }

  @Test func stepsCarryAttrsAndLabels() throws {
    let b = GraphBuilder(name: "attrs")
    let x = try b.input("x", .f32, [.sym("B"), 8])
    try b.output("y", b.slice(b.affine(x, alpha: 2, beta: 1), axis: 1, start: 2, length: 4))
    let plan = try compile(b.finish()).plan
    #expect(plan.steps.map(\.label) == ["%1", "%2"])
    #expect(plan.steps[0].attrs.float("alpha") == 2)
    #expect(plan.steps[1].attrs.dim("length") == Dim(4))
  }

  @Test func duplicateInputNamesAreRejected() throws {
    let b = GraphBuilder(name: "dupInputs")
    let x1 = try b.input("x", .f32, [4])
    let x2 = try b.input("x", .f32, [4])
    try b.output("y", b.add(x1, x2))
    #expect(throws: CompileError.lowering(graph: "dupInputs", node: 1, problem: "a second input named \"x\"")) {
      try compile(b.finish())
    }
  }

  @Test(arguments: [0, 1] as [UInt64])
  func plansRoundTripThroughJSON(seed: UInt64) throws {
    let plan = try compile(seed == 0 ? rnn() : randomGraph(seed: 5, count: 40)).plan
    let data = try JSONEncoder().encode(plan)
    let decoded = try JSONDecoder().decode(Plan.self, from: data)
    #expect(decoded == plan)
  }

  @Test func textListsEveryStep() throws {
    for g in [try rnn(), try randomGraph(seed: 9, count: 40)] {
      let plan = try compile(g).plan
      let text = plan.text()
      #expect(text.hasPrefix("plan @\(g.name): \(plan.steps.count) steps in \(plan.stageCount) stages"))
      for label in allLabels(plan) {
        #expect(text.contains(" \(label) "), "missing \(label)")
      }
      #expect(text.contains("outputs: "))
    }
    let text = try compile(rnn()).plan.text()
    #expect(text.contains("      plan @cell: "), "the body plan is nested under its step")
    #expect(text.contains("outer 2"))
  }
}
