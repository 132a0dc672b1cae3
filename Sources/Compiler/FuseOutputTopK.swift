import GraphIR

/// Fuses decoding's output layer: `top_k(mixture(softmax(logits), ...))` (the softmax maybe
/// reshaped to the mixture's `[B, T, V]`) becomes one `mixture_top_k(logits, ...)` step that
/// never writes the `[B, T, V]` probabilities nor the `[B, T, X]` mixture: per row it keeps the
/// exps in a scratch row, builds only the copied ids' mixture values and selects the k best.
///
/// Over a vocabulary shortlist (the softmax reads a `scatter_columns` of N logits among -inf), the
/// fused node takes the N logits and the shortlist ids instead, and never writes the scattered row.
///
/// Only when the softmax is plain (no mask, scale 1, eps 0) and neither it, its reshape nor the
/// mixture has another reader (or is a graph output). The fused node takes the top_k's place;
/// the rest is left unread for the next `dce`.
public struct FuseOutputTopK: GraphPass {
  public let name = "fuse-output"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.fuse(g) }
  }

  static func fuse(_ g: Graph) throws(GraphError) -> Graph {
    try g.rewritingNodes { g, _, n, uses in
      guard n.op == .topK, let probs = n.inputs.first,
            let layer = OutputLayerPattern(probs: probs, in: g, uses: uses) else { return nil }
      var attrs = n.attrs
      attrs["extended"] = layer.mixture.attrs["extended"]
      guard let shortlist = layer.shortlist else {
        return Node(op: .mixtureTopK, inputs: layer.inputs, attrs: attrs, types: n.types)
      }
      attrs["vocab"] = .dim(shortlist.vocab)
      return Node(op: .mixtureTopK, inputs: layer.inputs + [shortlist.ids], attrs: attrs, types: n.types)
    }
  }
}
