import GraphIR

/// Re-runs every node's shape rule (scan bodies first) and rebuilds the stored types.
///
/// Later passes and the lowering trust the stored types, so this runs first. A node whose
/// `types` is empty (a graph assembled by hand or by a parser that left inference to the
/// compiler) gets the inferred types; a node whose stored types differ from the inferred ones is
/// an error (`GraphError.typeDrift`), since something upstream then computed shapes differently
/// from the op table.
public struct InferShapes: GraphPass {
  public let name = "infer-shapes"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.infer(g) }
  }

  static func infer(_ g: Graph) throws(GraphError) -> Graph {
    var out = Graph(name: g.name, nodes: [], outputs: g.outputs)
    out.nodes.reserveCapacity(g.nodes.count)
    for (i, n) in g.nodes.enumerated() {
      var node = try n.mappingBody(at: i, infer)
      // `out` holds exactly the nodes before i, so inference sees only rebuilt types.
      let inferred = try out.inferTypes(of: node, at: i)
      if !node.types.isEmpty, node.types != inferred {
        throw .typeDrift(node: i, op: node.op, stored: node.types.map(\.description).joined(separator: ", "),
                         inferred: inferred.map(\.description).joined(separator: ", "))
      }
      node.types = inferred
      out.nodes.append(node)
    }
    try out.checkOutputs()
    return out
  }
}
