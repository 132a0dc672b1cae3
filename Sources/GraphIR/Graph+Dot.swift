/// Graphviz rendering: `mqan compile --emit dot | dot -Tsvg > g.svg`.
///
/// One box per node labelled `%n op` and its output types (inputs and params also show their
/// name); inputs are `invhouse`, params grey `box`es, zeros and positional tables `octagon`s,
/// compute nodes `ellipse`s, graph outputs `doubleoctagon`s. Edges from output i > 0 are
/// labelled `i`. A scan's body is a `subgraph cluster_...` next to the scan, joined to it by a
/// dashed `body` edge.
extension Graph {
  public func dot() -> String {
    var out = "digraph \(DotWriter.quote(name)) {\n"
    out += "  compound=true;\n"
    out += "  rankdir=TB;\n"
    out += "  node [fontname=\"Helvetica\", fontsize=10];\n"
    out += "  edge [fontname=\"Helvetica\", fontsize=9];\n"
    DotWriter.emit(self, prefix: "", indent: "  ", into: &out)
    out += "}\n"
    return out
  }
}

enum DotWriter {
  /// A DOT double-quoted string: `\` and `"` escaped, newlines as `\n` (centered line breaks).
  static func quote(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      case "\r": break
      default: out.unicodeScalars.append(c)
      }
    }
    return out + "\""
  }

  /// Node ids in DOT: `n5` at top level, `n12_body_n3` inside the body of scan %12.
  static func id(_ prefix: String, _ node: Int) -> String { quote("\(prefix)n\(node)") }

  /// A name safe inside a DOT id (letters, digits and `_`).
  static func sanitize(_ s: String) -> String {
    String(String.UnicodeScalarView(s.unicodeScalars.map { c in
      (c.isASCII && (c.properties.isAlphabetic || (c >= "0" && c <= "9"))) || c == "_" ? c : "_"
    }))
  }

  static func emit(_ g: Graph, prefix: String, indent: String, into out: inout String) {
    for (i, n) in g.nodes.enumerated() {
      var label = "%\(i) \(n.op.rawValue)"
      if let nm = n.attrs.string("name"), n.op == .input || n.op == .param { label += " \(nm)" }
      label += "\n" + IRSyntax.types(n.types)
      let style: String
      switch n.op {
      case .input: style = "shape=invhouse, style=filled, fillcolor=\"#cfe2ff\""
      case .param: style = "shape=box, style=filled, fillcolor=\"#e0e0e0\""
      case .zeros, .positionalEncoding: style = "shape=octagon"
      case .scan: style = "shape=box3d"
      default: style = "shape=ellipse"
      }
      out += "\(indent)\(id(prefix, i)) [label=\(quote(label)), \(style)];\n"
      for r in n.inputs {
        let lbl = r.index > 0 ? " [label=\"\(r.index)\"]" : ""
        out += "\(indent)\(id(prefix, r.node)) -> \(id(prefix, i))\(lbl);\n"
      }
      for key in n.attrs.keys.sorted() {
        guard case .graph(let body)? = n.attrs[key] else { continue }
        let inner = "\(prefix)n\(i)_\(sanitize(key))_"
        out += "\(indent)subgraph \(quote("cluster_\(inner)")) {\n"
        out += "\(indent)  label=\(quote("%\(i) \(n.op.rawValue) \(key) @\(body.name)"));\n"
        out += "\(indent)  style=rounded;\n"
        emit(body, prefix: inner, indent: indent + "  ", into: &out)
        out += "\(indent)}\n"
        if !body.nodes.isEmpty {
          out += "\(indent)\(id(prefix, i)) -> \(id(inner, 0)) [style=dashed, arrowhead=none, "
            + "lhead=\(quote("cluster_\(inner)")), label=\(quote(key))];\n"
        }
      }
    }
    for (k, o) in g.outputs.enumerated() {
      let oid = quote("\(prefix)out\(k)")
      out += "\(indent)\(oid) [label=\(quote(o.name)), shape=doubleoctagon];\n"
      let lbl = o.value.index > 0 ? " [label=\"\(o.value.index)\"]" : ""
      out += "\(indent)\(id(prefix, o.value.node)) -> \(oid)\(lbl);\n"
    }
  }
}
