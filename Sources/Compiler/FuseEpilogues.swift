import GraphIR

/// Folds an activation into the `linear` that feeds it: `relu(linear(x, w, b))` becomes
/// `linear {activation="relu"}(x, w, b)`, one GEMM step whose epilogue applies the activation to
/// the rows it just wrote, instead of a GEMM and a second pass over memory. Then folds a sum into
/// the linear it adds to: `add(r, linear(x, w, b))` becomes `linear {residual=true}(x, w, b, r)`
/// (the transformer's residual connections, and an LSTM step's gates: the input projection of
/// that step plus the recurrent GEMM, so a step is one GEMM and one `lstm_cell`). Then a chain of
/// same-shape adds becomes one `add_n` (the sums in order, one pass). Last, a layer
/// norm takes in the residual sum it normalizes: `layer_norm(add(x, r))` becomes
/// `layer_norm {residual=true}(x, r, gamma, beta)`.
///
/// Only a linear whose result has no other reader (and is no graph output) is folded, so no value
/// disappears that something still needs. The fused node takes the activation's place; the old
/// linear is left unread for the next `dce`. Scan bodies are fused the same way.
public struct FuseEpilogues: GraphPass {
  public let name = "fuse-epilogues"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.fuse(g) }
  }

  static func fuse(_ g: Graph) throws(GraphError) -> Graph {
    // Activations first, so a residual is only folded into a linear without one.
    let activated = try g.rewritingNodes { g, _, n, uses in
      guard let activation = LinearOps.epilogues.first(where: { $0.value == n.op })?.key,
            let source = n.inputs.first, source.index == 0 else { return nil }
      let producer = g.nodes[source.node]
      guard producer.op == .linear, producer.attrs["activation"] == nil, producer.attrs["residual"] == nil,
            uses[source] == 1 else { return nil }
      var attrs = producer.attrs
      attrs["activation"] = .string(activation)
      return Node(op: .linear, inputs: producer.inputs, attrs: attrs, types: n.types)
    }
    // `add(r, linear(...))` (either order, same shapes): the residual and LSTM gate sums.
    let residuals = try activated.rewritingNodes { g, _, n, uses in
      guard n.op == .add, n.inputs.count == 2 else { return nil }
      for (k, source) in n.inputs.enumerated() where source.index == 0 {
        let producer = g.nodes[source.node]
        let other = n.inputs[1 - k]
        guard producer.op == .linear, producer.attrs["activation"] == nil, producer.attrs["residual"] == nil,
              uses[source] == 1, g.type(of: other) == n.types[0], g.type(of: source) == n.types[0] else { continue }
        var attrs = producer.attrs
        attrs["residual"] = .bool(true)
        return Node(op: .linear, inputs: producer.inputs + [other], attrs: attrs, types: n.types)
      }
      return nil
    }
    // Then the chains of same-shape adds left, ((a + b) + c) + d, as one `add_n` pass over memory
    // (in MQAN's plans: the gradient sums of weights used more than once).
    let summed = try residuals.rewritingNodes { g, _, n, uses in
      guard n.op == .add, n.inputs.count == 2 else { return nil }
      func operands(_ v: ValueRef) -> [ValueRef] {
        let node = g.nodes[v.node]
        guard v.index == 0, uses[v] == 1, node.op == .add, node.inputs.count == 2, g.type(of: v) == n.types[0],
              g.type(of: node.inputs[1]) == n.types[0] else { return [v] }
        return operands(node.inputs[0]) + [node.inputs[1]]
      }
      guard g.type(of: n.inputs[1]) == n.types[0] else { return nil }
      let all = operands(n.inputs[0]) + [n.inputs[1]]
      guard all.count > 2, g.type(of: all[0]) == n.types[0] else { return nil }
      return Node(op: .addN, inputs: all, attrs: [:], types: n.types)
    }
    // `layer_norm(add(x, r))` where nothing else reads the sum (inference: training keeps it for
    // the norm's gradient): the sum is formed in the norm's rows.
    return try summed.rewritingNodes { g, _, n, uses in
      guard n.op == .layerNorm, n.attrs["residual"] == nil, n.inputs.count == 3, let sum = n.inputs.first,
            sum.index == 0, uses[sum] == 1 else { return nil }
      let add = g.nodes[sum.node]
      guard add.op == .add, add.inputs.count == 2, g.type(of: add.inputs[0]) == n.types[0],
            g.type(of: add.inputs[1]) == n.types[0] else { return nil }
      var attrs = n.attrs
      attrs["residual"] = .bool(true)
      return Node(op: .layerNorm, inputs: add.inputs + Array(n.inputs.dropFirst()), attrs: attrs, types: n.types)
    }
  }
}
