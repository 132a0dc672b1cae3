import GraphIR

/// Drops every node that no graph output reads, directly or indirectly, and renumbers the rest.
///
/// `input` nodes always stay: they are the graph's positional interface (a scan body's inputs
/// must match the scan's sequences, carries and consts one to one, and a top-level input is
/// something the caller feeds whether or not this plan reads it). Scan bodies are cleaned the
/// same way; their outputs are the body's interface and all stay.
public struct EliminateDeadNodes: GraphPass {
  public let name = "dce"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.eliminate(g) }
  }

  static func eliminate(_ g: Graph) throws(GraphError) -> Graph {
    try g.checkOutputs()
    var live = [Bool](repeating: false, count: g.nodes.count)
    var work: [Int] = []
    for o in g.outputs where !live[o.value.node] {
      live[o.value.node] = true
      work.append(o.value.node)
    }
    for i in g.inputNodes where !live[i] {
      live[i] = true
      work.append(i)
    }
    while let n = work.popLast() {
      try g.checkReferences(of: n)
      for r in g.nodes[n].inputs where !live[r.node] {
        live[r.node] = true
        work.append(r.node)
      }
    }

    // Old index -> new index; every input of a live node is live, so lookups below hit.
    var newIndex = [Int](repeating: -1, count: g.nodes.count)
    var out = Graph(name: g.name)
    for (i, n) in g.nodes.enumerated() where live[i] {
      var node = try n.mappingBody(at: i, eliminate)
      node.inputs = node.inputs.map { ValueRef(newIndex[$0.node], $0.index) }
      newIndex[i] = out.nodes.count
      out.nodes.append(node)
    }
    out.outputs = g.outputs.map { GraphOutput($0.name, ValueRef(newIndex[$0.value.node], $0.value.index)) }
    return out
  }
}
