import GraphIR

/// Folds an activation into the `linear` that feeds it: `relu(linear(x, w, b))` becomes
/// `linear {activation="relu"}(x, w, b)`, one GEMM step whose epilogue applies the activation to
/// the rows it just wrote, instead of a GEMM and a second pass over memory.
///
/// Only a linear whose result has no other reader (and is no graph output) is folded, so no value
/// disappears that something still needs. The fused node takes the activation's place; the old
/// linear is left unread for the next `dce`. Scan bodies are fused the same way.
public struct FuseEpilogues: GraphPass {
  public let name = "fuse-epilogues"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    do {
      return try Self.fuse(g)
    } catch {
      throw .inPass(pass: name, error)
    }
  }

  static func fuse(_ g: Graph) throws(GraphError) -> Graph {
    try g.rewritingNodes { g, _, n, uses in
      guard let activation = LinearOps.epilogues.first(where: { $0.value == n.op })?.key,
            let source = n.inputs.first, source.index == 0 else { return nil }
      let producer = g.nodes[source.node]
      guard producer.op == .linear, producer.attrs["activation"] == nil, uses[source] == 1 else { return nil }
      var attrs = producer.attrs
      attrs["activation"] = .string(activation)
      return Node(op: .linear, inputs: producer.inputs, attrs: attrs, types: n.types)
    }
  }
}
