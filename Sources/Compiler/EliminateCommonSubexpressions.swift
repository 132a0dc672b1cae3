import GraphIR

/// Points every use of a duplicate node at the first equal node (same op, inputs and attrs).
///
/// `param` nodes with the same name are one weight, whatever else differs in their attrs: that
/// is how a module used twice (one BiLSTM over both context and question) ends up as one buffer;
/// two params with one name and different types are an error. `input` nodes never merge: they
/// are positional. Scan bodies are processed first, so two scans with equal inputs and bodies
/// that become equal merge too. Every op in the table is pure (no randomness, no state), which
/// is what makes merging safe.
///
/// Duplicates are not removed here, only left unread: `EliminateDeadNodes` owns removal and
/// renumbering, and the pipeline runs it right after.
public struct EliminateCommonSubexpressions: GraphPass {
  public let name = "cse"
  public init() {}

  public func run(_ g: Graph) throws(CompileError) -> Graph {
    try reporting { () throws(GraphError) in try Self.merge(g) }
  }

  /// What makes two nodes interchangeable (inputs already redirected to their representatives).
  struct Key: Hashable {
    var op: OpKind
    var inputs: [ValueRef]
    var attrs: Attrs
  }

  static func merge(_ g: Graph) throws(GraphError) -> Graph {
    try g.checkOutputs()
    // Node index -> index of the node that stands for it (itself unless merged).
    var representative: [Int] = []
    representative.reserveCapacity(g.nodes.count)
    var seen: [Key: Int] = [:]
    var paramByName: [String: Int] = [:]
    var out = Graph(name: g.name)
    for (i, n) in g.nodes.enumerated() {
      try g.checkReferences(of: i)
      var node = try n.mappingBody(at: i, merge)
      node.inputs = node.inputs.map { ValueRef(representative[$0.node], $0.index) }
      switch node.op {
      case .input:
        representative.append(i)
      case .param:
        guard let name = node.attrs.string("name") else {
          throw .attribute(node: i, op: .param, name: "name", problem: "missing")
        }
        if let first = paramByName[name] {
          guard out.nodes[first].types == node.types else {
            throw .shapeMismatch(node: i, op: .param, what: "type of param \"\(name)\" (also declared by %\(first))",
                                 expected: out.nodes[first].types.map(\.description).joined(separator: ", "),
                                 actual: node.types.map(\.description).joined(separator: ", "))
          }
          representative.append(first)
        } else {
          paramByName[name] = i
          representative.append(i)
        }
      default:
        let key = Key(op: node.op, inputs: node.inputs, attrs: node.attrs)
        if let first = seen[key] {
          representative.append(first)
        } else {
          seen[key] = i
          representative.append(i)
        }
      }
      out.nodes.append(node)
    }
    out.outputs = g.outputs.map { GraphOutput($0.name, ValueRef(representative[$0.value.node], $0.value.index)) }
    return out
  }
}
