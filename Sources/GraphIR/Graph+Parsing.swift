/// Why IR text did not parse; every case names the file, line and column.
public enum IRParseError: Error, CustomStringConvertible, Equatable {
  /// The text does not follow the grammar: what was expected at that point and what was found.
  case syntax(file: String, line: Int, column: Int, expected: String, found: String)
  /// Well-formed text that means something invalid (unknown op or dtype, a reference to a
  /// missing node, a duplicate name, a number out of range).
  case invalid(file: String, line: Int, column: Int, message: String)
  /// A node's printed output types differ from what its op's shape rule infers.
  case typeMismatch(file: String, line: Int, column: Int, node: Int, op: String, printed: String, inferred: String)
  /// The op table or the verifier rejected the graph; `line` is the offending node's line.
  case graph(file: String, line: Int, column: Int, GraphError)

  public var file: String {
    switch self {
    case .syntax(let f, _, _, _, _), .invalid(let f, _, _, _), .typeMismatch(let f, _, _, _, _, _, _),
         .graph(let f, _, _, _): return f
    }
  }
  public var line: Int {
    switch self {
    case .syntax(_, let l, _, _, _), .invalid(_, let l, _, _), .typeMismatch(_, let l, _, _, _, _, _),
         .graph(_, let l, _, _): return l
    }
  }
  public var column: Int {
    switch self {
    case .syntax(_, _, let c, _, _), .invalid(_, _, let c, _), .typeMismatch(_, _, let c, _, _, _, _),
         .graph(_, _, let c, _): return c
    }
  }
  /// The message without the `file:line:column: ` prefix.
  public var message: String {
    switch self {
    case .syntax(_, _, _, let e, let f): return "expected \(e), found \(f)"
    case .invalid(_, _, _, let m): return m
    case .typeMismatch(_, _, _, let n, let op, let p, let i):
      return "node %\(n) (\(op)): printed type \(p) but shape inference gives \(i)"
    case .graph(_, _, _, let e): return e.description
    }
  }
  /// `model.mqir:12:18: expected ',' or ')' after an input, found '{'`
  public var description: String { "\(file):\(line):\(column): \(message)" }
}

extension Graph {
  /// Parses what `text()` prints (see `IR/README.md` for the grammar). Every node's types are
  /// re-inferred through the op table and must equal the printed ones; then the graph is
  /// verified. Errors carry `file:line:column`; malformed text throws, it never traps.
  public init(parsing text: String, file: String = "<text>") throws(IRParseError) {
    var p = IRParser(text: text, file: file)
    self = try p.parseFile()
  }
}
