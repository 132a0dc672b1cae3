/// One attribute value of a node. Attributes are typed, named, and checked by the op table.
public enum Attr: Hashable, Sendable {
  case int(Int)
  case float(Float)
  case bool(Bool)
  case string(String)
  case dims([Dim])
  case dim(Dim)
  /// The body of a `scan`.
  case graph(Graph)
}

/// A node's attributes, by name. Printed sorted by name, so text output is stable.
public typealias Attrs = [String: Attr]

extension Dictionary where Key == String, Value == Attr {
  public func int(_ k: String) -> Int? { if case .int(let v)? = self[k] { return v }; return nil }
  public func float(_ k: String) -> Float? {
    switch self[k] {
    case .float(let v)?: return v
    case .int(let v)?: return Float(v)
    default: return nil
    }
  }
  public func bool(_ k: String) -> Bool? { if case .bool(let v)? = self[k] { return v }; return nil }
  public func string(_ k: String) -> String? { if case .string(let v)? = self[k] { return v }; return nil }
  public func dims(_ k: String) -> [Dim]? { if case .dims(let v)? = self[k] { return v }; return nil }
  public func dim(_ k: String) -> Dim? {
    switch self[k] {
    case .dim(let v)?: return v
    case .int(let v)?: return Dim(v)
    default: return nil
    }
  }
  public func graph(_ k: String) -> Graph? { if case .graph(let v)? = self[k] { return v }; return nil }
}
