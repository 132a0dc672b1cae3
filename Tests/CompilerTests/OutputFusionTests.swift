import Compiler
import GraphIR
import Runtime
import Testing

/// `fuse-output`: decoding's softmax + mixture + top_k become one `mixture_top_k`, only where
/// nothing else reads the probabilities, and the fused plan computes what the unfused one does.
@Suite struct OutputFusionTests {
  let B = Dim.sym("B"), K = Dim.sym("K"), X = Dim.sym("X")

  /// logits [B*K, V] -> softmax -> reshape [B, K, V] -> mixture -> top_k; `exposeProbs` also
  /// outputs the mixture (so it must not be fused away).
  func graph(exposeProbs: Bool) throws -> Graph {
    let v = 6, lc = 4, lq = 3
    let b = GraphBuilder(name: "out")
    let h = try b.input("h", .f32, [B * K, 5])
    let logits = try b.linear(h, b.param("out.weight", [Dim(v), 5]))
    let gamma = try b.sigmoid(b.linear(h, b.param("g.weight", [1, 5])))
    let lambda = try b.sigmoid(b.linear(h, b.param("l.weight", [1, 5])))
    let ac = try b.softmax(b.linear(h, b.param("c.weight", [Dim(lc), 5])))
    let aq = try b.softmax(b.linear(h, b.param("q.weight", [Dim(lq), 5])))
    func items(_ x: Value) throws(GraphError) -> Value { try b.reshape(x, [B, K, x.shape[1]]) }
    let cids = try b.input("cids", .i32, [B, Dim(lc)]), qids = try b.input("qids", .i32, [B, Dim(lq)])
    let probs = try b.node(.mixture, [items(b.softmax(logits)), items(gamma), items(lambda), items(ac), cids, items(aq),
                                      qids], ["extended": .dim(X)])[0]
    let top = try b.node(.topK, [probs], ["k": .dim(K), "log": .bool(true)])
    try b.output("top_logp", top[0])
    try b.output("top_ids", top[1])
    if exposeProbs { try b.output("probs", probs) }
    return b.finish()
  }

  @Test func fusesOnlyWhenTheMixtureIsUnread() throws {
    let fused = try compile(graph(exposeProbs: false)).graph
    #expect(fused.nodes.contains { $0.op == .mixtureTopK })
    #expect(!fused.nodes.contains { $0.op == .mixture || $0.op == .topK })
    let kept = try compile(graph(exposeProbs: true)).graph
    #expect(!kept.nodes.contains { $0.op == .mixtureTopK })
    var off = CompileOptions()
    off.fuse = false
    #expect(!(try compile(graph(exposeProbs: false), options: off).graph.nodes.contains { $0.op == .mixtureTopK }))
  }

  @Test(arguments: [1, 2])
  func fusedPlanEqualsUnfused(threads: Int) throws {
    var off = CompileOptions()
    off.fuse = false
    let g = try graph(exposeProbs: false)
    var rng = SeededGenerator(seed: 404)
    var params: [String: HostTensor] = [:]
    for (name, shape) in [("out.weight", [6, 5]), ("g.weight", [1, 5]), ("l.weight", [1, 5]), ("c.weight", [4, 5]),
                          ("q.weight", [3, 5])] {
      params[name] = HostTensor(shape: shape, floats: (0..<(shape[0] * 5)).map { _ in Float.random(in: -1...1, using: &rng) })
    }
    let (items, k, x) = (3, 2, 9)
    let feed: [String: HostTensor] = [
      "h": HostTensor(shape: [items * k, 5], floats: (0..<(items * k * 5)).map { _ in Float.random(in: -2...2, using: &rng) }),
      "cids": HostTensor(shape: [items, 4], int32s: (0..<(items * 4)).map { _ in Int32.random(in: 0..<Int32(x), using: &rng) }),
      "qids": HostTensor(shape: [items, 3], int32s: (0..<(items * 3)).map { _ in Int32.random(in: 0..<Int32(x), using: &rng) }),
    ]
    let dims = ["K": k, "X": x]
    let a = try Executor(plan: compile(g).plan, params: params, threads: threads).run(feed, dims: dims)
    let b = try Executor(plan: compile(g, options: off).plan, params: params, threads: threads).run(feed, dims: dims)
    #expect(a["top_ids"] == b["top_ids"])
    #expect(a["top_logp"] == b["top_logp"])
    let r = try Executor(plan: compile(g).plan, params: params, threads: threads,
                         options: ExecutorOptions(useReference: true)).run(feed, dims: dims)
    #expect(r["top_ids"] == a["top_ids"])
  }

  /// The training side (`fuse-loss`): logits [B, T, V] -> softmax -> mixture -> nll_loss.
  func lossGraph(exposeProbs: Bool) throws -> Graph {
    let T = Dim.sym("T")
    let b = GraphBuilder(name: "train")
    let h = try b.input("h", .f32, [B, T, 5])
    let logits = try b.linear(h, b.param("out.weight", [6, 5]))
    let gamma = try b.sigmoid(b.linear(h, b.param("g.weight", [1, 5])))
    let lambda = try b.sigmoid(b.linear(h, b.param("l.weight", [1, 5])))
    let ac = try b.softmax(b.linear(h, b.param("c.weight", [4, 5])))
    let aq = try b.softmax(b.linear(h, b.param("q.weight", [3, 5])))
    let cids = try b.input("cids", .i32, [B, 4]), qids = try b.input("qids", .i32, [B, 3])
    let targets = try b.input("targets", .i32, [B, T])
    let probs = try b.node(.mixture, [b.softmax(logits), gamma, lambda, ac, cids, aq, qids], ["extended": .dim(X)])[0]
    try b.output("loss", b.node(.nllLoss, [probs, targets], ["ignore": .int(1)])[0])
    if exposeProbs { try b.output("probs", probs) }
    return b.finish()
  }

  @Test func lossFusionKeepsLossAndGradientsBitForBit() throws {
    var on = CompileOptions(), off = CompileOptions()
    on.differentiate = "loss"
    off.differentiate = "loss"
    off.fuse = false
    let fused = try compile(lossGraph(exposeProbs: false), options: on)
    #expect(fused.graph.nodes.contains { $0.op == .mixtureNll })
    #expect(fused.graph.nodes.contains { $0.op == .mixtureNllGrad })
    #expect(!fused.graph.nodes.contains { $0.op == .mixture || $0.op == .mixtureGrad || $0.op == .nllLoss })
    #expect(!(try compile(lossGraph(exposeProbs: true), options: on).graph.nodes.contains { $0.op == .mixtureNll }))
    let unfused = try compile(lossGraph(exposeProbs: false), options: off)
    var rng = SeededGenerator(seed: 505)
    var params: [String: HostTensor] = [:]
    for (name, rows) in [("out.weight", 6), ("g.weight", 1), ("l.weight", 1), ("c.weight", 4), ("q.weight", 3)] {
      params[name] = HostTensor(shape: [rows, 5], floats: (0..<(rows * 5)).map { _ in Float.random(in: -1...1, using: &rng) })
    }
    let (items, t, x) = (3, 4, 9)
    let feed: [String: HostTensor] = [
      "h": HostTensor(shape: [items, t, 5], floats: (0..<(items * t * 5)).map { _ in Float.random(in: -2...2, using: &rng) }),
      "cids": HostTensor(shape: [items, 4], int32s: (0..<(items * 4)).map { _ in Int32.random(in: 0..<Int32(x), using: &rng) }),
      "qids": HostTensor(shape: [items, 3], int32s: (0..<(items * 3)).map { _ in Int32.random(in: 0..<Int32(x), using: &rng) }),
      "targets": HostTensor(shape: [items, t], int32s: (0..<(items * t)).map { _ in Int32.random(in: 0..<Int32(x), using: &rng) }),
    ]
    for threads in [1, 2] {
      let a = try Executor(plan: fused.plan, params: params, threads: threads).run(feed, dims: ["X": x])
      let b = try Executor(plan: unfused.plan, params: params, threads: threads).run(feed, dims: ["X": x])
      #expect(Set(a.keys) == Set(b.keys))
      for (name, value) in b { #expect(a[name] == value, "\(name), \(threads) threads") }
      let r = try Executor(plan: fused.plan, params: params, threads: threads,
                           options: ExecutorOptions(useReference: true)).run(feed, dims: ["X": x])
      let l = try #require(try r["loss"]?.floats.first), want = try #require(try b["loss"]?.floats.first)
      #expect(abs(l - want) <= 1e-5 * max(1, abs(want)))
    }
  }
}
