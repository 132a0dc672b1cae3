/// A reference to one output of one node: `%7` is output 0 of node 7, `%7.1` its output 1.
public struct ValueRef: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
  public var node: Int
  public var index: Int
  public init(_ node: Int, _ index: Int = 0) {
    self.node = node
    self.index = index
  }
  public var description: String { index == 0 ? "%\(node)" : "%\(node).\(index)" }
  public static func < (a: ValueRef, b: ValueRef) -> Bool { (a.node, a.index) < (b.node, b.index) }
}

/// One operation in a graph. Nodes are values; passes build new graphs rather than mutate nodes.
public struct Node: Hashable, Sendable {
  public var op: OpKind
  public var inputs: [ValueRef]
  public var attrs: Attrs
  /// One type per output, as shape inference gave them.
  public var types: [TensorType]
  public init(op: OpKind, inputs: [ValueRef], attrs: Attrs = [:], types: [TensorType]) {
    self.op = op
    self.inputs = inputs
    self.attrs = attrs
    self.types = types
  }
}

/// A named graph result.
public struct GraphOutput: Hashable, Sendable {
  public var name: String
  public var value: ValueRef
  public init(_ name: String, _ value: ValueRef) {
    self.name = name
    self.value = value
  }
}

/// A dataflow graph: nodes in topological order (every input refers to an earlier node), plus
/// named outputs. Graph inputs are the `input` nodes in node order; `param` nodes name weights.
public struct Graph: Hashable, Sendable {
  public var name: String
  public var nodes: [Node]
  public var outputs: [GraphOutput]
  public init(name: String, nodes: [Node] = [], outputs: [GraphOutput] = []) {
    self.name = name
    self.nodes = nodes
    self.outputs = outputs
  }

  public func type(of v: ValueRef) -> TensorType { nodes[v.node].types[v.index] }
  /// Indices of the `input` nodes, in order: the graph's (or scan body's) parameters.
  public var inputNodes: [Int] { nodes.indices.filter { nodes[$0].op == .input } }
  public var paramNodes: [Int] { nodes.indices.filter { nodes[$0].op == .param } }

  /// Nodes counted recursively through scan bodies.
  public var totalNodeCount: Int {
    nodes.reduce(0) { n, node in n + 1 + (node.attrs.graph("body")?.totalNodeCount ?? 0) }
  }

  /// How many times each value is read (by nodes or as an output).
  public func useCounts() -> [ValueRef: Int] {
    var uses: [ValueRef: Int] = [:]
    for n in nodes { for i in n.inputs { uses[i, default: 0] += 1 } }
    for o in outputs { uses[o.value, default: 0] += 1 }
    return uses
  }
}
