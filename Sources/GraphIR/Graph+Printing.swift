/// The textual IR: one node per line, attributes sorted by key, scan bodies as nested blocks.
///
/// ```
/// graph @train {
///   %0 = input {dtype="i32", name="context", shape=[B, Tc]} : i32[B, Tc]
///   %5 = linear(%3, %1, %2) : f32[B, Tc, 200]
///   %12 = scan(%4, %10, %11, %0) {masked=true, ncarry=2, nseq=1, reverse=true} : f32[B, 100], f32[B, 100], f32[B, Tc, 100]
///     body @lstm_bwd {
///       %0 = input {dtype="f32", name="x0", shape=[B, 400]} : f32[B, 400]
///       ...
///       output carry0 = %5
///     }
///   output loss = %40
/// }
/// ```
///
/// `Graph(parsing: g.text()) == g` for every graph that verifies, and printing is deterministic,
/// so `.mqir` files diff cleanly. The grammar is in `IR/README.md`.
extension Graph: CustomStringConvertible {
  public var description: String { text() }

  /// The graph as IR text (ends with a newline).
  public func text() -> String {
    var out = ""
    out += "graph @\(IRSyntax.name(name)) "
    IRSyntax.printBlock(self, indent: "", into: &out)
    out += "\n"
    return out
  }
}

/// Spelling rules shared by the printer, the parser and the DOT writer.
enum IRSyntax {
  /// A name is printed bare when it is an identifier: a letter or `_`, then letters, digits, `_`
  /// or `.` (so `encoder.weight` stays bare); anything else is a quoted string.
  static func isBareName(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, isNameStart(first) else { return false }
    return s.unicodeScalars.allSatisfy(isNameContinue)
  }
  static func isNameStart(_ c: Unicode.Scalar) -> Bool {
    (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_"
  }
  static func isNameContinue(_ c: Unicode.Scalar) -> Bool {
    isNameStart(c) || (c >= "0" && c <= "9") || c == "."
  }

  static func name(_ s: String) -> String { isBareName(s) ? s : quote(s) }

  /// `"..."` with `\"`, `\\`, `\n`, `\t`, `\r` and `\u{XX}` for other control characters.
  static func quote(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
      switch c {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default:
        if c.value < 0x20 || c.value == 0x7f {
          out += "\\u{\(String(c.value, radix: 16))}"
        } else {
          out.unicodeScalars.append(c)
        }
      }
    }
    return out + "\""
  }

  /// Shortest round-trip decimal (`0.5`, `-1e+10`, `1e-10`, `inf`, `-inf`, `nan`); NaNs other
  /// than the canonical quiet NaN print their bits, `nan(0x7fc00001)`, so every float is exact.
  static func float(_ f: Float) -> String {
    if f.isNaN {
      if f.bitPattern == Float.nan.bitPattern { return "nan" }
      let hex = String(f.bitPattern, radix: 16)
      return "nan(0x" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex + ")"
    }
    return f.description
  }

  static func dims(_ ds: [Dim]) -> String { "[" + ds.map(\.description).joined(separator: ", ") + "]" }

  /// An inline attribute value; `graph` values are printed as blocks instead (see `printBlock`).
  static func attr(_ a: Attr) -> String {
    switch a {
    case .int(let v): return String(v)
    case .float(let v): return float(v)
    case .bool(let v): return v ? "true" : "false"
    case .string(let v): return quote(v)
    case .dims(let v): return dims(v)
    case .dim(let v): return "dim(\(v.description))"
    case .graph(let g): return "@" + name(g.name)
    }
  }

  static func types(_ ts: [TensorType]) -> String {
    ts.isEmpty ? "()" : ts.map(\.description).joined(separator: ", ")
  }

  /// `%n = op(%a, %b.1) {k=v} : t0, t1`, without graph attributes.
  static func nodeLine(_ n: Node, at i: Int) -> String {
    var line = "%\(i) = \(n.op.rawValue)"
    if !n.inputs.isEmpty { line += "(" + n.inputs.map(\.description).joined(separator: ", ") + ")" }
    let inline = n.attrs.filter { if case .graph = $0.value { return false }; return true }
    if !inline.isEmpty {
      line += " {" + inline.keys.sorted().map { "\(name($0))=\(attr(inline[$0]!))" }.joined(separator: ", ") + "}"
    }
    return line + " : " + types(n.types)
  }

  /// `{`, the nodes (each followed by its graph attributes as `key @name { ... }` blocks), the
  /// outputs, `}` at `indent`.
  static func printBlock(_ g: Graph, indent: String, into out: inout String) {
    out += "{\n"
    let inner = indent + "  "
    for (i, n) in g.nodes.enumerated() {
      out += inner + nodeLine(n, at: i) + "\n"
      for key in n.attrs.keys.sorted() {
        guard case .graph(let body)? = n.attrs[key] else { continue }
        out += inner + "  " + name(key) + " @" + name(body.name) + " "
        printBlock(body, indent: inner + "  ", into: &out)
        out += "\n"
      }
    }
    for o in g.outputs { out += inner + "output \(name(o.name)) = \(o.value)\n" }
    out += indent + "}"
  }
}
