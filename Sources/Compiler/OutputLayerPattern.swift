import GraphIR

/// MQAN's output layer as the fusion passes find it: `mixture(softmax(logits), ...)`, the softmax
/// maybe reshaped to the mixture's `[B, T, V]`, plain (no mask, scale 1, eps 0) and read by
/// nothing else, and the mixture read only by the op being fused (`FuseLoss`, `FuseOutputTopK`).
struct OutputLayerPattern {
  /// The softmax's input: the logits `[..., V]`.
  var logits: ValueRef
  /// The mixture node (its inputs 1...6 are gamma, lambda, ac, cids, aq, qids).
  var mixture: Node

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
  }

  /// The fused op's inputs: the logits, then the mixture's other six.
  var inputs: [ValueRef] { [logits] + Array(mixture.inputs.dropFirst()) }
}
