extension Graph {
  /// Runs `node`'s shape rule against the types of its inputs in this graph.
  public func inferTypes(of node: Node, at index: Int) throws(GraphError) -> [TensorType] {
    let spec = node.op.spec
    guard spec.arity.contains(node.inputs.count) else {
      throw .arity(node: index, op: node.op, expected: "\(spec.arity.lowerBound)...\(spec.arity.upperBound)",
                   actual: node.inputs.count)
    }
    var inputTypes: [TensorType] = []
    for r in node.inputs {
      guard r.node >= 0, r.node < index else {
        throw .badReference(node: index, ref: r, problem: "does not refer to an earlier node")
      }
      guard r.index >= 0, r.index < nodes[r.node].types.count else {
        throw .badReference(node: index, ref: r, problem: "node %\(r.node) has \(nodes[r.node].types.count) outputs")
      }
      inputTypes.append(nodes[r.node].types[r.index])
    }
    if node.op == .scan, let body = node.attrs.graph("body") {
      do { try body.verify() } catch { throw .inBody(scanNode: index, error) }
    }
    return try spec.infer(InferContext(node: index, op: node.op, inputs: inputTypes, attrs: node.attrs))
  }

  /// Checks every reference, re-runs shape inference on every node (and scan body) and compares
  /// with the stored types; checks outputs. Errors name the node, its op and both shapes.
  public func verify() throws(GraphError) {
    for (i, n) in nodes.enumerated() {
      let inferred = try inferTypes(of: n, at: i)
      if inferred != n.types {
        throw .typeDrift(node: i, op: n.op, stored: n.types.map(\.description).joined(separator: ", "),
                         inferred: inferred.map(\.description).joined(separator: ", "))
      }
    }
    var seen = Set<String>()
    for o in outputs {
      guard o.value.node >= 0, o.value.node < nodes.count, o.value.index < nodes[o.value.node].types.count else {
        throw .graph("graph \(name): output \"\(o.name)\" refers to missing value \(o.value)")
      }
      guard seen.insert(o.name).inserted else { throw .graph("graph \(name): duplicate output name \"\(o.name)\"") }
    }
  }

  /// FLOPs and bytes of one execution, as formulas of the dims (scans count T x their body).
  public func cost() -> Cost {
    var total = Cost.zero
    for (i, n) in nodes.enumerated() { total = total + nodeCost(n, at: i) }
    return total
  }

  public func nodeCost(_ n: Node, at i: Int) -> Cost {
    let ctx = InferContext(node: i, op: n.op, inputs: n.inputs.map { type(of: $0) }, attrs: n.attrs)
    let flops = n.op.spec.flops(ctx, n.types)
    var bytes = Dim(0)
    if n.op == .scan, let body = n.attrs.graph("body"), let t = ctx.inputs.first?.shape.dropFirst().first {
      bytes = body.cost().bytes * t
    } else if !n.op.spec.isView, ![.input, .param].contains(n.op) {
      for t in ctx.inputs { bytes += t.byteCount }
      for t in n.types { bytes += t.byteCount }
    }
    return Cost(flops: flops, bytes: bytes)
  }
}
