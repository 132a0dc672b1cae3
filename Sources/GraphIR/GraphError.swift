/// What can be wrong with a graph, each naming the node, op and the shapes involved.
public enum GraphError: Error, Equatable, CustomStringConvertible {
  /// A node's input does not have the shape or dtype its op needs.
  case shapeMismatch(node: Int, op: OpKind, what: String, expected: String, actual: String)
  /// A node has the wrong number of inputs for its op.
  case arity(node: Int, op: OpKind, expected: String, actual: Int)
  /// A required attribute is missing or has the wrong kind.
  case attribute(node: Int, op: OpKind, name: String, problem: String)
  /// An input refers to a node that does not come earlier, or an output index it lacks.
  case badReference(node: Int, ref: ValueRef, problem: String)
  /// The stored output types differ from what shape inference gives.
  case typeDrift(node: Int, op: OpKind, stored: String, inferred: String)
  /// A graph output or other whole-graph problem.
  case graph(String)
  /// An error inside a scan body, wrapped with the scan's node id.
  indirect case inBody(scanNode: Int, GraphError)

  public var description: String {
    switch self {
    case .shapeMismatch(let n, let op, let what, let e, let a):
      return "node %\(n) (\(op.rawValue)): \(what): expected \(e), got \(a)"
    case .arity(let n, let op, let e, let a):
      return "node %\(n) (\(op.rawValue)): expected \(e) inputs, got \(a)"
    case .attribute(let n, let op, let name, let p):
      return "node %\(n) (\(op.rawValue)): attribute \(name): \(p)"
    case .badReference(let n, let r, let p):
      return "node %\(n): input \(r): \(p)"
    case .typeDrift(let n, let op, let s, let i):
      return "node %\(n) (\(op.rawValue)): stored type \(s) but shape inference gives \(i)"
    case .graph(let s):
      return s
    case .inBody(let scan, let inner):
      return "in the body of scan %\(scan): \(inner)"
    }
  }
}
