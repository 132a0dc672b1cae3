import Compiler
import Foundation
import GraphIR
import Runtime
import Testing

/// Autodiff and backpropagation through time against central differences: small graphs, one per
/// differentiable op and attribute combination its gradient rule handles, compiled with the
/// compiler's autodiff (`differentiate: "loss"`) and run by the runtime's executor. Every weight's
/// gradient `grad.<name>` is compared, at seeded sample elements, with
/// `(loss(w + eps) - loss(w - eps)) / (2 eps)`.
///
/// Tolerance: |analytic - numeric| <= 2e-3 + 2e-2 |numeric|. With eps = 1e-2 the truncation error of
/// a central difference is about eps² |f'''| (1e-4 for these O(1) graphs) and float rounding of an
/// O(1) loss adds about 1e-7 / eps = 1e-5; a wrong rule (a missing transpose, a dropped term, a
/// wrong sign) is off by O(1). Checked: flipping one rule's sign or transpose fails these tests.
@Suite struct GradientCheckTests {
  static let eps: Float = 1e-2
  static let atol: Double = 2e-3, rtol: Double = 2e-2

  /// A graph to differentiate: `build` returns the value whose weighted sum is the loss (or the
  /// scalar loss itself); `inputs` feeds the graph's i32 inputs (f32 inputs get seeded values).
  struct Case: CustomStringConvertible, Sendable {
    var name: String
    var inputs: [String: HostTensor] = [:]
    var build: @Sendable (GraphBuilder) throws(GraphError) -> Value
    var description: String { name }
  }

  static func ids(_ name: String, _ shape: [Int], _ values: [Int32]) -> (String, HostTensor) {
    (name, HostTensor(shape: shape, int32s: values))
  }

  static func d(_ xs: Int...) -> [Dim] { xs.map { Dim($0) } }

  static let cases: [Case] = elementwise + linearAlgebra + shapes + attention + recurrence + output

  static let elementwise: [Case] = [
    Case(name: "add, sub, mul (equal shapes)") { b throws(GraphError) in
      let x = try b.param("x", d(2, 3)), y = try b.param("y", d(2, 3))
      return try b.mul(b.add(x, y), b.sub(x, b.tanh(y)))
    },
    Case(name: "add, sub, mul (suffix broadcast)") { b throws(GraphError) in
      let x = try b.param("x", d(2, 3, 4)), r = try b.param("row", d(4)), m = try b.param("mat", d(3, 4))
      return try b.sub(b.mul(b.add(x, r), m), r)
    },
    Case(name: "add_n, affine") { b throws(GraphError) in
      let x = try b.param("x", d(3, 2)), y = try b.param("y", d(3, 2)), z = try b.param("z", d(3, 2))
      let s = try b.node(.addN, [x, b.mul(y, y), z])[0]
      return try b.affine(s, alpha: -1.5, beta: 0.25)
    },
    Case(name: "tanh, sigmoid, relu") { b throws(GraphError) in
      let x = try b.param("x", d(4, 3))
      return try b.add(b.mul(b.tanh(x), b.sigmoid(x)), b.relu(b.affine(x, alpha: 2, beta: 0.05)))
    },
  ]

  static let linearAlgebra: [Case] =
    [Case(name: "linear without bias") { b throws(GraphError) in
      try b.linear(b.param("x", d(2, 3, 4)), b.param("w", d(5, 4)))
    },
     Case(name: "linear with bias") { b throws(GraphError) in
      try b.linear(b.param("x", d(3, 4)), b.param("w", d(5, 4)), b.param("b", d(5)))
    },
     Case(name: "linear residual, with and without bias") { b throws(GraphError) in
      let x = try b.param("x", d(3, 4)), w = try b.param("w", d(5, 4)), bias = try b.param("b", d(5))
      let r = try b.param("r", d(3, 5))
      let withBias = try b.node(.linear, [x, w, bias, r], ["residual": .bool(true)])[0]
      let without = try b.node(.linear, [x, w, r], ["residual": .bool(true)])[0]
      return try b.mul(withBias, without)
    }]
    + ["relu", "tanh", "sigmoid"].map { act in
      Case(name: "linear with a \(act) epilogue") { b throws(GraphError) in
        try b.node(.linear, [b.param("x", d(3, 4)), b.param("w", d(5, 4)), b.param("b", d(5))],
                   ["activation": .string(act)])[0]
      }
    }
    + [(false, false), (false, true), (true, false), (true, true)].map { (tA, tB) in
      Case(name: "matmul transA=\(tA) transB=\(tB)") { b throws(GraphError) in
        let a = try b.param("a", tA ? d(2, 4, 3) : d(2, 3, 4)), c = try b.param("b", tB ? d(2, 5, 4) : d(2, 4, 5))
        return try b.matmul(a, c, transA: tA, transB: tB)
      }
    }

  static let shapes: [Case] = [
    Case(name: "concat (first and last axis), slice") { b throws(GraphError) in
      let x = try b.param("x", d(2, 3)), y = try b.param("y", d(2, 2))
      let c = try b.concat([x, y, x], axis: 1)
      let rows = try b.concat([c, b.affine(c, alpha: 0.5)], axis: 0)
      return try b.slice(rows, axis: 1, start: 1, length: Dim(5))
    },
    Case(name: "reshape, transpose, broadcast") { b throws(GraphError) in
      // The broadcast rule handles suffix broadcasts, with or without leading 1s.
      let x = try b.param("x", d(2, 3, 4)), r = try b.param("r", d(1, 4)), v = try b.param("v", d(3, 4))
      let t = try b.transpose(b.reshape(x, d(6, 4)))
      let br = try b.broadcast(r, to: d(2, 3, 4))
      let bv = try b.broadcast(v, to: d(2, 3, 4))
      return try b.add(b.mul(b.reshape(t, d(2, 3, 4)), br), bv)
    },
    Case(name: "embedding (a trained table)", inputs: Dictionary(uniqueKeysWithValues: [
      ids("ids", [2, 3], [0, 4, 2, 4, 1, 0]),
    ])) { b throws(GraphError) in
      let table = try b.param("table", d(5, 3))
      return try b.tanh(b.embedding(table, b.input("ids", .i32, d(2, 3))))
    },
  ]

  static let attention: [Case] =
    [(false, false), (true, false), (false, true), (true, true)].map { (masked, causal) in
      Case(name: "softmax mask=\(masked) causal=\(causal)", inputs: Dictionary(uniqueKeysWithValues: [
        ids("ids", [2, 4], [5, 6, 1, 1, 7, 1, 1, 1]),
      ])) { b throws(GraphError) in
        let x = try b.param("x", d(2, 4, 4))
        let mask = masked ? try b.padMask(b.input("ids", .i32, d(2, 4)), pad: 1) : nil
        let p = try b.softmax(x, mask: mask, scale: 0.7, eps: causal ? 1e-10 : 0, causal: causal)
        return try b.mul(p, b.param("w", d(4, 4)))
      }
    }
    + [(false, false, 1), (true, false, 2), (false, true, 3), (true, true, 2)].map { (padded, causal, heads) in
      Case(name: "attention heads=\(heads) keypad=\(padded) causal=\(causal)", inputs: Dictionary(uniqueKeysWithValues: [
        ids("ids", [2, 4], [5, 6, 1, 1, 7, 8, 9, 1]),
      ])) { b throws(GraphError) in
        let q = try b.param("q", d(2, 4, 6)), k = try b.param("k", d(2, 4, 6)), v = try b.param("v", d(2, 4, 6))
        let pad = padded ? try b.padMask(b.input("ids", .i32, d(2, 4)), pad: 1) : nil
        return try b.attention(q: q, k: k, v: v, keyPadding: pad, heads: heads, scale: 0.6, causal: causal)
      }
    }
    + [Case(name: "layer_norm") { b throws(GraphError) in
      try b.layerNorm(b.param("x", d(3, 5)), gamma: b.param("gamma", d(5)), beta: b.param("beta", d(5)), eps: 1e-6)
    }]

  static let recurrence: [Case] = [
    Case(name: "lstm_cell, both outputs") { b throws(GraphError) in
      let cell = try b.lstmCell(gates: b.param("gates", d(2, 12)), c: b.param("c", d(2, 3)))
      return try b.concat([cell.h, b.affine(cell.c, alpha: 0.5)], axis: 1)
    },
    Case(name: "lstm_cell, h only") { b throws(GraphError) in
      try b.lstmCell(gates: b.param("gates", d(2, 12)), c: b.param("c", d(2, 3))).h
    },
  ] + [false, true].flatMap { reverse in [false, true].map { masked in
    Case(name: "scan (LSTM) reverse=\(reverse) masked=\(masked)", inputs: Dictionary(uniqueKeysWithValues: [
      ids("lengths", [3], [4, 2, 3]),
    ])) { b throws(GraphError) in
      // Backpropagation through time: the sequence comes from a weight, W_hh is a const of the
      // scan, W_ih and the bias are weights inside its body.
      let x = try b.tanh(b.param("x", d(3, 4, 2)))
      let h0 = try b.param("h0", d(3, 3)), c0 = try b.zeros(d(3, 3))
      let whh = try b.param("rnn.weight_hh", d(12, 3))
      let lengths = masked ? try b.input("lengths", .i32, d(3)) : nil
      let out = try b.scan(name: "lstm", seqs: [x], carries: [h0, c0], consts: [whh], lengths: lengths,
                           reverse: reverse) { body, s throws(GraphError) in
        let gates = try body.add(body.linear(s.seqs[0], body.param("rnn.weight_ih", d(12, 2)), body.param("rnn.bias", d(12))),
                                 body.linear(s.carries[0], s.consts[0]))
        let cell = try body.lstmCell(gates: gates, c: s.carries[1])
        return ([cell.h, cell.c], [cell.h])
      }
      return try b.concat([b.reshape(out.outputs[0], d(3, 12)), out.carries[0], out.carries[1]], axis: 1)
    }
  } }

  /// The output layer: softmax, the pointer mixture and nll_loss, and their fused form.
  static let outputInputs = Dictionary(uniqueKeysWithValues: [
    ids("cids", [2, 3], [0, 6, 2, 5, 6, 1]), ids("qids", [2, 2], [3, 6, 6, 0]),
    ids("targets", [2, 3], [2, 6, 1, 5, 1, 0]),
  ])

  static func outputLayer(_ b: GraphBuilder, fused: Bool) throws(GraphError) -> Value {
    let logits = try b.param("logits", d(2, 3, 5))
    let gamma = try b.sigmoid(b.param("gamma", d(2, 3, 1))), lambda = try b.sigmoid(b.param("lambda", d(2, 3, 1)))
    let ac = try b.softmax(b.param("ac", d(2, 3, 3))), aq = try b.softmax(b.param("aq", d(2, 3, 2)))
    let cids = try b.input("cids", .i32, d(2, 3)), qids = try b.input("qids", .i32, d(2, 2))
    let targets = try b.input("targets", .i32, d(2, 3))
    if fused {
      return try b.node(.mixtureNll, [logits, gamma, lambda, ac, cids, aq, qids, targets],
                        ["extended": .dim(Dim(7)), "ignore": .int(1)])[0]
    }
    let p = try b.node(.mixture, [b.softmax(logits), gamma, lambda, ac, cids, aq, qids], ["extended": .dim(Dim(7))])[0]
    return try b.node(.nllLoss, [p, targets], ["ignore": .int(1)])[0]
  }

  static let output: [Case] = [
    Case(name: "mixture, nll_loss", inputs: outputInputs) { b throws(GraphError) in try outputLayer(b, fused: false) },
    Case(name: "mixture_nll", inputs: outputInputs) { b throws(GraphError) in try outputLayer(b, fused: true) },
    Case(name: "mixture (weighted sum)", inputs: outputInputs) { b throws(GraphError) in
      let gamma = try b.sigmoid(b.param("gamma", d(2, 3, 1)))
      let ac = try b.softmax(b.param("ac", d(2, 3, 3))), aq = try b.softmax(b.param("aq", d(2, 3, 2)))
      return try b.node(.mixture, [b.softmax(b.param("logits", d(2, 3, 5))), gamma, b.affine(gamma, alpha: -1, beta: 1),
                                   ac, b.input("cids", .i32, d(2, 3)), aq, b.input("qids", .i32, d(2, 2))],
                        ["extended": .dim(Dim(7))])[0]
    },
  ]

  /// The case's graph with a scalar `loss`: the built value itself, or its sum weighted by the
  /// input `loss_weights`.
  static func graph(_ c: Case) throws -> Graph {
    let b = GraphBuilder(name: "check")
    let y = try c.build(b)
    var loss = y
    if !y.shape.isEmpty {
      let n = y.shape.map { $0.constant! }.reduce(1, *)
      let flat = try b.reshape(y, d(1, n))
      loss = try b.reshape(b.linear(flat, b.input("loss_weights", .f32, d(1, n))), [])
    }
    try b.output("loss", loss)
    return b.finish()
  }

  /// Seeded values for every weight and f32 input of `g` (scan bodies included).
  static func values(_ g: Graph, seed: UInt64) -> (params: [String: HostTensor], inputs: [String: HostTensor]) {
    var rng = LCG(state: seed)
    func fill(_ shape: [Dim]) -> HostTensor {
      let dims = shape.map { $0.constant! }
      let n = dims.reduce(1, *)
      // Values in [-1, 1] away from 0 by at least 0.05 (relu's kink).
      return HostTensor(shape: dims, floats: (0..<n).map { _ in
        let v = Float(rng.next(1900)) / 1000 + 0.05
        return rng.next(2) == 0 ? v / 2 : -v / 2
      })
    }
    var params: [String: HostTensor] = [:], inputs: [String: HostTensor] = [:]
    func visit(_ g: Graph, top: Bool) {
      for n in g.nodes {
        if n.op == .param, let name = n.attrs.string("name"), case .dims(let s)? = n.attrs["shape"] { params[name] = fill(s) }
        // A body's inputs are the scan's slices, carries and consts, not fed.
        if top, n.op == .input, n.attrs.string("dtype") != "i32", let name = n.attrs.string("name"),
           case .dims(let s)? = n.attrs["shape"] {
          inputs[name] = fill(s)
        }
        if let body = n.attrs.graph("body") { visit(body, top: false) }
      }
    }
    visit(g, top: true)
    return (params, inputs)
  }

  @Test(arguments: cases)
  func gradientsMatchCentralDifferences(_ c: Case) throws {
    let graph = try Self.graph(c)
    var options = CompileOptions()
    options.differentiate = "loss"
    let plan = try Compiler.compile(graph, options: options).plan
    let (params, f32Inputs) = Self.values(graph, seed: UInt64(c.name.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
    let planInputs = Set(plan.inputs.map { plan.buffers[$0].name })
    let feed = f32Inputs.merging(c.inputs) { $1 }.filter { planInputs.contains($0.key) }
    let exec = try Executor(plan: plan, params: params, threads: 2)
    let out = try exec.run(feed)
    let gradNames = out.keys.filter { $0.hasPrefix("grad.") }.sorted()
    #expect(Set(gradNames) == Set(params.keys.map { "grad.\($0)" }), "every weight gets a gradient")
    func loss(_ p: [String: HostTensor]) throws -> Double {
      try exec.setParameters(p)
      return Double(try exec.run(feed)["loss"]!.floats[0])
    }
    var rng = LCG(state: 99)
    var checked = 0
    for name in params.keys.sorted() {
      let analytic = try #require(out["grad.\(name)"]).floats
      let base = try params[name]!.floats
      #expect(analytic.count == base.count)
      // Every element of a small weight, a seeded sample of a larger one.
      let sample = base.count <= 12 ? Array(base.indices) : (0..<12).map { _ in rng.next(base.count) }
      for i in sample {
        var plus = params, minus = params
        var vp = base, vm = base
        vp[i] += Self.eps
        vm[i] -= Self.eps
        plus[name] = HostTensor(shape: params[name]!.shape, floats: vp)
        minus[name] = HostTensor(shape: params[name]!.shape, floats: vm)
        let numeric = (try loss(plus) - loss(minus)) / Double(vp[i] - vm[i])
        let a = Double(analytic[i])
        #expect(abs(a - numeric) <= Self.atol + Self.rtol * abs(numeric),
                "\(c.name): d loss / d \(name)[\(i)] autodiff \(a), central difference \(numeric)")
        checked += 1
      }
    }
    #expect(checked > 0)
  }

  /// Every op with a gradient rule, and `scan`, appears in some case above.
  @Test func everyDifferentiableOpIsChecked() throws {
    var seen = Set<OpKind>()
    func visit(_ g: Graph) {
      for n in g.nodes {
        seen.insert(n.op)
        if let body = n.attrs.graph("body") { visit(body) }
      }
    }
    for c in Self.cases { visit(try Self.graph(c)) }
    let differentiable = OpKind.allCases.filter { $0.spec.gradient != nil || $0 == .scan }
    let missing = differentiable.filter { !seen.contains($0) }
    #expect(missing.isEmpty, "no finite-difference check for \(missing.map(\.rawValue))")
  }
}
