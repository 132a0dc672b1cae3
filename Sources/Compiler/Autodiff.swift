import GraphIR

/// Appends the backward pass to a forward graph: for a scalar output `loss`, one output
/// `grad.<name>` per weight that the loss depends on, built from the op table's gradient rules.
///
/// Reverse mode over the nodes in reverse order; a value read several times sums its gradients,
/// and a weight used in several places (one BiLSTM for context and question, weights inside scan
/// bodies) gets one summed gradient. Only values that depend on a weight are differentiated: ids,
/// masks, lengths and the fixed embedding table never are.
///
/// A `scan` becomes a reverse scan (backpropagation through time): the forward scan also emits the
/// carries each step started from; the backward scan runs the other way over time, recomputes the
/// body's forward values from those saved carries, and applies the body's gradient rules. Carries
/// hold the gradient flowing back through time; accumulator carries (`nacc`) sum the gradients of
/// loop-invariant consts and of the body's weights over the steps. In a masked scan the steps past a
/// row's length contribute nothing: their seeds are multiplied by the length mask.
public struct Autodiff: GraphPass {
  public let name = "autodiff"
  public let loss: String
  public init(loss: String = "loss") { self.loss = loss }

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.differentiate(g, loss: loss) }
  }

  static func differentiate(_ g: Graph, loss: String) throws(GraphError) -> Graph {
    guard let out = g.outputs.first(where: { $0.name == loss }) else {
      throw .graph("graph \(g.name): no output named \"\(loss)\" to differentiate")
    }
    let lossType = g.type(of: out.value)
    guard lossType.shape.isEmpty, lossType.dtype == .f32 else {
      throw .graph("graph \(g.name): output \"\(loss)\" is \(lossType), not a scalar f32[]")
    }
    let dependent = paramDependence(g, inputs: [])
    guard dependent[out.value.node] else {
      throw .graph("graph \(g.name): \"\(loss)\" depends on no parameter (no param reachable from the loss)")
    }
    let b = GraphBuilder(graph: g)
    let one = try b.affine(b.zeros([]), alpha: 0, beta: 1)
    var paramGrads: [String: Value] = [:]
    _ = try backprop(g, in: b, value: { b.value($0) }, seeds: [out.value: one], dependent: dependent,
                     paramGrads: &paramGrads)
    for name in paramGrads.keys.sorted() {
      if let v = paramGrads[name] { try b.output("grad.\(name)", v) }
    }
    return b.finish()
  }

  /// Whether each node's value depends on a weight. `inputs[k]` says whether input node k does
  /// (scan bodies: whatever the scan feeds it may carry weights' influence).
  static func paramDependence(_ g: Graph, inputs: [Bool]) -> [Bool] {
    var dep = [Bool](repeating: false, count: g.nodes.count)
    var k = 0
    for (i, n) in g.nodes.enumerated() {
      switch n.op {
      case .param:
        dep[i] = true
      case .input:
        dep[i] = k < inputs.count ? inputs[k] : false
        k += 1
      case .scan:
        dep[i] = n.inputs.contains { dep[$0.node] } || (n.attrs.graph("body").map(containsParam) ?? false)
      default:
        let nonDiff = n.op.spec.nonDifferentiable
        dep[i] = n.inputs.enumerated().contains { !nonDiff.contains($0.offset) && dep[$0.element.node] }
      }
    }
    return dep
  }

  static func containsParam(_ g: Graph) -> Bool {
    g.nodes.contains { $0.op == .param || ($0.attrs.graph("body").map(containsParam) ?? false) }
  }

  /// Reverse-mode over `g`, whose values are `value(ref)` in the graph `b` builds. Returns every
  /// gradient computed (by `g`'s refs); weights' gradients are summed into `paramGrads` by name.
  static func backprop(_ g: Graph, in b: GraphBuilder, value: (ValueRef) -> Value, seeds: [ValueRef: Value],
                       dependent: [Bool], paramGrads: inout [String: Value]) throws(GraphError) -> [ValueRef: Value] {
    var grads = seeds
    func accumulate(_ r: ValueRef, _ v: Value) throws(GraphError) {
      if let old = grads[r] { grads[r] = try b.add(old, v) } else { grads[r] = v }
    }
    for i in g.nodes.indices.reversed() where dependent[i] {
      let n = g.nodes[i]
      let outGrads = (0..<n.types.count).map { grads[ValueRef(i, $0)] }
      if outGrads.allSatisfy({ $0 == nil }) { continue }
      switch n.op {
      case .input:
        continue
      case .param:
        guard let name = n.attrs.string("name"), let gv = outGrads[0] else { continue }
        if let old = paramGrads[name] { paramGrads[name] = try b.add(old, gv) } else { paramGrads[name] = gv }
      case .scan:
        let inGrads = try ScanGradient.backward(g, node: i, in: b, value: value, outputGradients: outGrads,
                                                dependent: dependent, paramGrads: &paramGrads)
        for (j, r) in n.inputs.enumerated() where dependent[r.node] {
          if let gv = inGrads[j] { try accumulate(r, gv) }
        }
      default:
        guard let rule = n.op.spec.gradient else {
          throw .graph("node %\(i) (\(n.op.rawValue)): no gradient rule in the op table")
        }
        let ctx = GradientContext(builder: b, node: n, index: i, inputs: n.inputs.map(value),
                                  outputs: (0..<n.types.count).map { value(ValueRef(i, $0)) }, outputGradients: outGrads)
        let inGrads = try rule(ctx)
        let nonDiff = n.op.spec.nonDifferentiable
        for (j, r) in n.inputs.enumerated() where j < inGrads.count && !nonDiff.contains(j) && dependent[r.node] {
          if let gv = inGrads[j] { try accumulate(r, gv) }
        }
      }
    }
    return grads
  }
}
