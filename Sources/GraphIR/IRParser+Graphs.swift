/// The graph grammar: files, graph blocks, nodes, outputs and references.
extension IRParser {
  mutating func parseFile() throws(IRParseError) -> Graph {
    skip()
    let start = p
    guard word() == "graph" else { p = start; throw syntax("'graph' to start the file") }
    let g = try graphAfterKeyword()
    skip()
    guard atEnd else { throw syntax("end of input after the graph's closing '}'") }
    return g
  }

  /// `@name { ... }` after `graph` or a graph attribute's key.
  mutating func graphAfterKeyword() throws(IRParseError) -> Graph {
    try expect("@", "'@' and the graph name")
    let headerPos = p - 1
    let gname = try name("a graph name after '@'")
    return try block(name: gname, headerPos: headerPos)
  }

  /// A graph body: nodes and outputs, then `}`; then the whole graph is verified.
  mutating func block(name gname: String, headerPos: Int) throws(IRParseError) -> Graph {
    try expect("{", "'{' to open graph @\(IRSyntax.name(gname))")
    depth += 1
    defer { depth -= 1 }
    guard depth <= Self.maxDepth else { throw invalid("graphs nest deeper than \(Self.maxDepth) levels", at: p - 1) }
    var g = Graph(name: gname)
    var nodePos: [Int] = []
    while true {
      skip()
      let itemPos = p
      if accept("}") { break }
      if peek() == "%" {
        try node(into: &g)
        nodePos.append(itemPos)
        continue
      }
      if word() == "output" {
        try output(into: &g, at: itemPos)
        continue
      }
      p = itemPos
      throw syntax("a node '%\(g.nodes.count) = ...', 'output' or '}' closing graph @\(IRSyntax.name(gname))")
    }
    do {
      try g.verify()
    } catch {
      let pos: Int
      switch error {
      case .shapeMismatch(let n, _, _, _, _), .arity(let n, _, _, _), .attribute(let n, _, _, _),
           .badReference(let n, _, _), .typeDrift(let n, _, _, _), .inBody(let n, _):
        pos = n >= 0 && n < nodePos.count ? nodePos[n] : headerPos
      case .graph:
        pos = headerPos
      }
      let (l, c) = location(pos)
      throw .graph(file: file, line: l, column: c, error)
    }
    return g
  }

  /// `output name = %n`
  mutating func output(into g: inout Graph, at pos: Int) throws(IRParseError) {
    skip()
    let namePos = p
    let oname = try name("an output name after 'output'")
    if g.outputs.contains(where: { $0.name == oname }) {
      throw invalid("duplicate output name \"\(oname)\" in graph @\(IRSyntax.name(g.name))", at: namePos)
    }
    try expect("=", "'=' after output \(IRSyntax.name(oname))")
    let v = try ref(in: g, limit: g.nodes.count, what: "a value '%n' after 'output \(IRSyntax.name(oname)) ='")
    g.outputs.append(GraphOutput(oname, v))
  }

  /// `%n` or `%n.i`, checked against the nodes before `limit`.
  mutating func ref(in g: Graph, limit: Int, what: String) throws(IRParseError) -> ValueRef {
    skip()
    let start = p
    guard peek() == "%" else { throw syntax(what) }
    p += 1
    guard let n = try integer() else { throw syntax("a node number after '%'") }
    var index = 0
    if peek() == ".", let d = peek(1), d.properties.numericType != nil, d.isASCII {
      p += 1
      guard let i = try integer() else { throw syntax("an output index after '.'") }
      index = i
    }
    let r = ValueRef(n, index)
    guard n < limit else {
      let defined = limit == 0 ? "no nodes are defined before it" : "only %0...%\(limit - 1) are defined before it"
      throw invalid("\(r) does not refer to an earlier node (\(defined))", at: start)
    }
    let count = g.nodes[n].types.count
    guard index < count else {
      throw invalid("\(r) does not exist: node %\(n) (\(g.nodes[n].op.rawValue)) has \(count) output\(count == 1 ? "" : "s")",
                    at: start)
    }
    return r
  }

  /// Unsigned decimal digits at the current position (no skipping); nil if there are none.
  mutating func integer() throws(IRParseError) -> Int? {
    let start = p
    while let c = peek(), c >= "0", c <= "9" { p += 1 }
    guard p > start else { return nil }
    guard let v = Int(String(String.UnicodeScalarView(s[start..<p]))), v <= Self.maxInt else {
      throw invalid("integer \(String(String.UnicodeScalarView(s[start..<p]))) is out of range", at: start)
    }
    return v
  }

  /// `%n = op(inputs) {attrs} : types`, then its graph attributes as `key @name { ... }` blocks.
  mutating func node(into g: inout Graph) throws(IRParseError) {
    let index = g.nodes.count
    let start = p
    p += 1  // '%'
    let n = try integer()
    if n != index || peek() == "." {
      throw syntax("node id '%\(index)' (nodes are numbered in order)", at: start)
    }
    try expect("=", "'=' after %\(index)")
    skip()
    let opPos = p
    guard let opName = word() else { throw syntax("an op name after '%\(index) ='") }
    guard let op = OpKind(rawValue: opName) else { throw invalid("unknown op '\(opName)'", at: opPos) }

    var inputs: [ValueRef] = []
    if accept("(") {
      if !accept(")") {
        while true {
          inputs.append(try ref(in: g, limit: index, what: "an input '%n' of \(opName)"))
          if accept(",") { continue }
          if accept(")") { break }
          throw syntax("',' or ')' after input \(inputs[inputs.count - 1]) of \(opName)")
        }
      }
    }

    var attrs: Attrs = [:]
    if accept("{") {
      if !accept("}") {
        while true {
          skip()
          let keyPos = p
          let key = try name("an attribute name")
          if attrs[key] != nil { throw invalid("duplicate attribute '\(key)' on %\(index)", at: keyPos) }
          try expect("=", "'=' after attribute \(IRSyntax.name(key))")
          attrs[key] = try attrValue(key: key)
          if accept(",") { continue }
          if accept("}") { break }
          throw syntax("',' or '}' after attribute \(IRSyntax.name(key))")
        }
      }
    }

    try expect(":", "':' and the output types of %\(index) (\(opName))")
    skip()
    let typesPos = p
    var types: [TensorType] = []
    if accept("(") {
      try expect(")", "')' closing the empty type list '()'")
    } else {
      while true {
        types.append(try tensorType())
        if accept(",") { continue }
        break
      }
    }

    // Graph attributes: `key @name { ... }` lines after the node.
    while true {
      skip()
      let save = p
      let keyName: String?
      if peek() == "\"" { keyName = try? string() } else { keyName = word() }
      guard let key = keyName, accept("@") else { p = save; break }
      p -= 1
      if attrs[key] != nil { throw invalid("duplicate attribute '\(key)' on %\(index)", at: save) }
      attrs[key] = .graph(try graphAfterKeyword())
    }

    let node = Node(op: op, inputs: inputs, attrs: attrs, types: types)
    let inferred: [TensorType]
    do {
      inferred = try g.inferTypes(of: node, at: index)
    } catch {
      let (l, c) = location(start)
      throw .graph(file: file, line: l, column: c, error)
    }
    if inferred != types {
      let (l, c) = location(typesPos)
      throw .typeMismatch(file: file, line: l, column: c, node: index, op: opName,
                          printed: IRSyntax.types(types), inferred: IRSyntax.types(inferred))
    }
    g.nodes.append(node)
  }
}
