import GraphIR

/// Fuses training's output layer before autodiff: `nll_loss(mixture(softmax(logits), ...))`
/// (the softmax maybe reshaped to the mixture's `[B, T, V]`) becomes one `mixture_nll(logits,
/// ..., targets)` whose gradient rule emits `mixture_nll_grad`. Neither pass then materializes the
/// `[B, T, 50k]` probabilities, the `[B, T, X]` mixture or their gradients (decaNLP spends about
/// 40% of a step there): only the target's probability is built, and the backward writes the
/// logits' gradient straight from the saved row statistics.
///
/// Only when the softmax is plain (no mask, scale 1, eps 0) and neither it, its reshape nor the
/// mixture has another reader (or is a graph output: a graph that returns the probabilities keeps
/// them). Runs before autodiff, so the fused op's own gradient rule is used.
public struct FuseLoss: GraphPass {
  public let name = "fuse-loss"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.fuse(g) }
  }

  static func fuse(_ g: Graph) throws(GraphError) -> Graph {
    try g.rewritingNodes { g, j, n, uses throws(GraphError) in
      guard n.op == .nllLoss, n.inputs.count == 2,
            let layer = OutputLayerPattern(probs: n.inputs[0], in: g, uses: uses), layer.shortlist == nil
      else { return nil }
      var attrs = n.attrs
      attrs["extended"] = layer.mixture.attrs["extended"]
      let inputs = layer.inputs + [n.inputs[1]]
      let ctx = InferContext(node: j, op: .mixtureNll, inputs: inputs.map { g.type(of: $0) }, attrs: attrs)
      return Node(op: .mixtureNll, inputs: inputs, attrs: attrs, types: try OpKind.mixtureNll.spec.infer(ctx))
    }
  }
}
