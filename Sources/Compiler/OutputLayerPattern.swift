import GraphIR

/// MQAN's output layer as the fusion passes find it: `mixture(softmax(logits), ...)`, the softmax
/// maybe reshaped to the mixture's `[B, T, V]`, plain (no mask, scale 1, eps 0) and read by
/// nothing else, and the mixture read only by the op being fused (`FuseLoss`, `FuseOutputTopK`).
struct OutputLayerPattern {
  /// The softmax's input: the logits `[..., V]`.
  var logits: ValueRef
  /// The mixture node (its inputs 1...6 are gamma, lambda, ac, cids, aq, qids).
  var mixture: Node
  /// Decoding over a vocabulary shortlist: the softmax reads `scatter_columns {columns: V, fill:
  /// -inf}(logits [..., N], shortlist [N])`, read by nothing else; then `logits` is the scatter's
  /// input and these are its ids and V.
  var shortlist: (ids: ValueRef, vocab: Dim)?

  /// Matches the mixture that `probs` (an input of the op being fused) refers to.
  init?(probs: ValueRef, in g: Graph, uses: [ValueRef: Int]) {
    func only(_ v: ValueRef) -> Bool { uses[v] == 1 }
    guard probs.index == 0, only(probs) else { return nil }
    let mixture = g.nodes[probs.node]
    guard mixture.op == .mixture, mixture.inputs.count == 7 else { return nil }
    var p = mixture.inputs[0]
    guard only(p) else { return nil }
    if g.nodes[p.node].op == .reshape {
      p = g.nodes[p.node].inputs[0]
      guard only(p) else { return nil }
    }
    let softmax = g.nodes[p.node]
    guard softmax.op == .softmax, softmax.inputs.count == 1, p.index == 0,
          (softmax.attrs.float("scale") ?? 1) == 1, (softmax.attrs.float("eps") ?? 0) == 0,
          softmax.attrs.bool("causal") != true else { return nil }
    logits = softmax.inputs[0]
    self.mixture = mixture
    let scatter = g.nodes[logits.node]
    if scatter.op == .scatterColumns, logits.index == 0, only(logits), scatter.inputs.count == 2,
       scatter.attrs.float("fill") == -.infinity, let v = scatter.attrs.dim("columns") {
      shortlist = (scatter.inputs[1], v)
      logits = scatter.inputs[0]
    }
  }

  /// The fused op's inputs: the logits, then the mixture's other six.
  var inputs: [ValueRef] { [logits] + Array(mixture.inputs.dropFirst()) }
}
