import Compiler
import GraphIR
import Runtime
import Testing

/// `fuse-epilogues`: activations folded into the GEMM that feeds them, and only where safe.
@Suite struct FusionTests {
  let B = Dim.sym("B")

  @Test func foldsSingleUseLinearsOnly() throws {
    let b = GraphBuilder(name: "fuse")
    let x = try b.input("x", .f32, [B, 5])
    let w = try b.param("w", [4, 5]), bias = try b.param("b", [4])
    let single = try b.relu(b.linear(x, w, bias))           // folded
    let shared = try b.linear(x, try b.param("w2", [4, 5]))  // read twice: stays
    let t = try b.tanh(shared)
    let u = try b.add(shared, t)
    let exposed = try b.linear(x, try b.param("w3", [4, 5])) // a graph output: stays
    try b.output("a", single)
    try b.output("b", u)
    try b.output("c", exposed)
    try b.output("d", b.sigmoid(exposed))
    let c = try compile(b.finish())
    let linears = c.graph.nodes.filter { $0.op == .linear }
    #expect(linears.count == 3)
    #expect(linears.filter { $0.attrs.string("activation") == "relu" }.count == 1)
    #expect(!c.graph.nodes.contains { $0.op == .relu })
    #expect(c.graph.nodes.contains { $0.op == .tanh })
    #expect(c.graph.nodes.contains { $0.op == .sigmoid })
  }

  @Test func fusedInsideScanBodies() throws {
    let b = GraphBuilder(name: "scan")
    let xs = try b.input("xs", .f32, [B, .sym("T"), 3])
    let h0 = try b.zeros([B, 3])
    let r = try b.scan(name: "body", seqs: [xs], carries: [h0]) { s, v throws(GraphError) in
      let h = try s.tanh(s.linear(s.add(v.seqs[0], v.carries[0]), s.param("w", [3, 3])))
      return ([h], [h])
    }
    try b.output("h", r.outputs[0])
    let c = try compile(b.finish())
    let body = try #require(c.graph.nodes.first { $0.op == .scan }?.attrs.graph("body"))
    #expect(body.nodes.contains { $0.op == .linear && $0.attrs.string("activation") == "tanh" })
    #expect(!body.nodes.contains { $0.op == .tanh })
  }

  /// The fused kernel computes what the two unfused steps computed, for each activation.
  @Test(arguments: ["relu", "tanh", "sigmoid"])
  func fusedEqualsUnfused(activation: String) throws {
    let b = GraphBuilder(name: "act")
    let x = try b.input("x", .f32, [B, 7])
    let y = try b.linear(x, b.param("w", [5, 7]), b.param("b", [5]))
    let act = try b.node(try #require(LinearOps.epilogues[activation]), [y])[0]
    try b.output("y", act)
    let g = b.finish()
    let fused = try compile(g).plan
    let unfused = try lower(g)
    #expect(fused.steps.count == 1)
    #expect(unfused.steps.count == 2)
    var rng = SeededGenerator(seed: 101)
    let params = ["w": HostTensor(shape: [5, 7], floats: (0..<35).map { _ in Float.random(in: -1...1, using: &rng) }),
                  "b": HostTensor(shape: [5], floats: (0..<5).map { _ in Float.random(in: -1...1, using: &rng) })]
    let feed = ["x": HostTensor(shape: [3, 7], floats: (0..<21).map { _ in Float.random(in: -2...2, using: &rng) })]
    let a = try Executor(plan: fused, params: params, threads: 2).run(feed)["y"]?.floats
    let u = try Executor(plan: unfused, params: params, threads: 2).run(feed)["y"]?.floats
    #expect(a == u)
  }
}

/// The residual epilogue: `add(r, linear(...))` folded into the GEMM, bit for bit, and the
/// gradient rule of a linear that carries a residual.
@Suite struct ResidualFusionTests {
  let B = Dim.sym("B")

  func graph(residualNode: Bool) throws -> Graph {
    let b = GraphBuilder(name: "residual")
    let x = try b.input("x", .f32, [B, 5])
    let r = try b.tanh(b.linear(x, b.param("r.weight", [4, 5])))
    let w = try b.param("w", [4, 5]), bias = try b.param("b", [4])
    let y = residualNode ? try b.node(.linear, [x, w, bias, r], ["residual": .bool(true)])[0] : try b.add(r, b.linear(x, w, bias))
    let wide = try b.add(y, b.linear(x, b.param("v", [4, 5])))          // folds too (either order)
    let broadcast = try b.add(b.linear(x, b.param("u", [4, 5])), bias)  // [B, 4] + [4]: stays an add
    try b.output("loss", b.node(.nllLoss, [b.reshape(b.softmax(b.add(wide, broadcast)), [B, 1, 4]),
                                           b.input("t", .i32, [B, 1])], ["ignore": .int(-1)])[0])
    return b.finish()
  }

  @Test func foldsSameShapeSumsAndKeepsTheBits() throws {
    let c = try compile(graph(residualNode: false))
    #expect(c.graph.nodes.filter { $0.op == .linear && $0.attrs.bool("residual") == true }.count == 2)
    #expect(c.graph.nodes.filter { $0.op == .add }.count == 2, "the broadcast add and the final add stay")
    var off = CompileOptions()
    off.fuse = false
    let plain = try compile(graph(residualNode: false), options: off)
    var rng = SeededGenerator(seed: 202)
    var params: [String: HostTensor] = [:]
    for (name, shape) in [("r.weight", [4, 5]), ("w", [4, 5]), ("b", [4]), ("v", [4, 5]), ("u", [4, 5])] {
      params[name] = HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
    }
    let feed = ["x": HostTensor(shape: [6, 5], floats: (0..<30).map { _ in Float.random(in: -1...1, using: &rng) }),
                "t": HostTensor(shape: [6, 1], int32s: [0, 1, 2, 3, 0, 1])]
    for threads in [1, 2] {
      let a = try Executor(plan: c.plan, params: params, threads: threads).run(feed)
      let b = try Executor(plan: plain.plan, params: params, threads: threads).run(feed)
      #expect(a["loss"] == b["loss"])
    }
  }

  /// Differentiating a graph that already holds `linear {residual}` gives the gradients of the
  /// same graph written with an add.
  @Test func residualLinearDifferentiates() throws {
    var options = CompileOptions()
    options.differentiate = "loss"
    options.fuse = false
    let explicit = try compile(graph(residualNode: true), options: options)
    let plain = try compile(graph(residualNode: false), options: options)
    var params: [String: HostTensor] = [:]
    var rng = SeededGenerator(seed: 303)
    for (name, shape) in [("r.weight", [4, 5]), ("w", [4, 5]), ("b", [4]), ("v", [4, 5]), ("u", [4, 5])] {
      params[name] = HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
    }
    let feed = ["x": HostTensor(shape: [3, 5], floats: (0..<15).map { _ in Float.random(in: -1...1, using: &rng) }),
                "t": HostTensor(shape: [3, 1], int32s: [0, 2, 3])]
    let a = try Executor(plan: explicit.plan, params: params, threads: 1).run(feed)
    let b = try Executor(plan: plain.plan, params: params, threads: 1).run(feed)
    for name in ["grad.r.weight", "grad.w", "grad.b", "grad.v"] {
      let x = try #require(a[name]).floats, y = try #require(b[name]).floats
      #expect(zip(x, y).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }, "\(name)")
    }
  }

  /// `layer_norm(add(x, r))` takes the sum in (an inference graph: nothing else reads it).
  @Test func layerNormTakesTheResidualSum() throws {
    let b = GraphBuilder(name: "norm")
    let x = try b.input("x", .f32, [B, 6])
    let a = try b.tanh(x)
    let attended = try b.sigmoid(x)
    let y = try b.layerNorm(b.add(a, attended), gamma: b.param("g", [6]), beta: b.param("beta", [6]), eps: 1e-6)
    try b.output("y", y)
    let graph = b.finish()
    let fused = try compile(graph)
    #expect(fused.graph.nodes.contains { $0.op == .layerNorm && $0.attrs.bool("residual") == true })
    #expect(!fused.graph.nodes.contains { $0.op == .add })
    var off = CompileOptions()
    off.fuse = false
    let params = ["g": HostTensor(shape: [6], floats: [1, 2, 0.5, 1, 1, 3]),
                  "beta": HostTensor(shape: [6], floats: [0, 0.1, 0, -0.2, 0, 1])]
    let feed = ["x": HostTensor(shape: [3, 6], floats: (0..<18).map { Float($0) / 7 - 1 })]
    for threads in [1, 2] {
      let a = try Executor(plan: fused.plan, params: params, threads: threads).run(feed)
      let r = try Executor(plan: fused.plan, params: params, threads: threads, options: ExecutorOptions(useReference: true))
        .run(feed)
      let u = try Executor(plan: compile(graph, options: off).plan, params: params, threads: threads).run(feed)
      #expect(a["y"] == u["y"])
      let got = try #require(a["y"]).floats, want = try #require(r["y"]).floats
      #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 })
    }
  }

  /// `((a + b) + c) + d` becomes one `add_n` with the same floats; a right-nested sum does not.
  @Test func addChainsBecomeOneSum() throws {
    let b = GraphBuilder(name: "sums")
    let x = try b.input("x", .f32, [B, 5000])
    let (t, s, r) = (try b.tanh(x), try b.sigmoid(x), try b.relu(x))
    let left = try b.add(b.add(b.add(x, t), s), r)
    let right = try b.add(t, b.add(s, r))  // t + (s + r): another order, stays two adds
    try b.output("left", left)
    try b.output("right", right)
    let graph = b.finish()
    let fused = try compile(graph)
    let sums = fused.graph.nodes.filter { $0.op == .addN }
    #expect(sums.count == 1 && sums.first?.inputs.count == 4)
    var off = CompileOptions()
    off.fuse = false
    let feed = ["x": HostTensor(shape: [3, 5000], floats: (0..<15000).map { Float($0 % 97) / 13 - 3 })]
    for threads in [1, 2] {
      let a = try Executor(plan: fused.plan, params: [:], threads: threads).run(feed)
      let u = try Executor(plan: compile(graph, options: off).plan, params: [:], threads: threads).run(feed)
      #expect(a["left"] == u["left"])
      #expect(a["right"] == u["right"])
    }
  }
}
