import Compiler
import GraphIR
import Runtime
import Testing

/// `ExecutorOptions.checkNumerics`: the first NaN or infinity a run produces is an error naming
/// its plan step, IR node, output and index; off, the run returns what it computed.
@Suite struct NumericsCheckTests {
  /// z = tanh(x wᵀ) + 1 (three steps after fusion at most), y = x * 2.
  func plan() throws -> Plan {
    let b = GraphBuilder(name: "numerics")
    let x = try b.input("x", .f32, [.sym("B"), 3])
    try b.output("z", b.affine(b.tanh(b.linear(x, b.param("w", [4, 3]))), alpha: 1, beta: 1))
    try b.output("y", b.affine(x, alpha: 2))
    return try compile(b.finish()).plan
  }

  let w = HostTensor(shape: [4, 3], floats: [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1])

  func feed(_ bad: Float?, at i: Int) -> [String: HostTensor] {
    var x: [Float] = [0.5, -1, 2, 0.25, 0.75, -0.5]
    if let bad { x[i] = bad }
    return ["x": HostTensor(shape: [2, 3], floats: x)]
  }

  @Test func aNaNInAnOutputNamesTheFirstStepThatWroteIt() throws {
    let p = try plan()
    for threads in [1, 2] {
      let ex = try Executor(plan: p, params: ["w": w], threads: threads, options: ExecutorOptions(checkNumerics: true))
      #expect(try ex.run(feed(nil, at: 0))["z"] != nil, "finite inputs pass")
      do {
        _ = try ex.run(feed(.nan, at: 4))
        Issue.record("a NaN input passed the check")
      } catch {
        let e = error
        guard case .nonFinite(let text) = e else { Issue.record("wrong error \(e)"); continue }
        // x[1, 1]: both stage-0 steps read it (y = 2x at [1, 1], the linear at row 1).
        #expect(text.contains("nan"), "\(text)")
        #expect(text.contains("of plan numerics"), "\(text)")
        #expect(text.contains("at index [1, "), "\(text)")
        #expect(p.steps.contains { text.contains("\"\($0.label)\"") }, "names an IR node: \(text)")
      }
      // The executor is usable again afterwards, and an infinity is caught too.
      #expect(throws: RuntimeError.self) { try ex.run(feed(.infinity, at: 0)) }
      #expect(try ex.run(feed(nil, at: 0))["y"] != nil)
    }
  }

  @Test func offTheRunReturnsTheNaN() throws {
    let ex = try Executor(plan: try plan(), params: ["w": w], threads: 2)
    let out = try ex.run(feed(.nan, at: 4))
    #expect(try out["y"]!.floats[4].isNaN)
  }

  /// A plan (as a hand-edited plan file would carry it) with a NaN attribute is refused by the
  /// plan verifier that `PlanFile.read` runs, naming the step and the attribute.
  @Test func aNaNAttributeIsRefused() throws {
    var p = try plan()
    let i = try #require(p.steps.firstIndex { $0.attrs.values["alpha"] != nil })
    p.steps[i].attrs.values["alpha"] = .float(.nan)
    #expect { try p.verify() } throws: { e in "\(e)".contains("attribute \"alpha\" is NaN") && "\(e)".contains(p.steps[i].label) }
  }
}
