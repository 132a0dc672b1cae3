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

/// Recursive descent over Unicode scalars; columns count scalars from 1.
struct IRParser {
  let s: [Unicode.Scalar]
  let file: String
  var p = 0
  var depth = 0

  /// Nested graph blocks deeper than this are rejected (keeps recursion bounded).
  static let maxDepth = 32
  /// Integer attributes and dim coefficients are bounded so that shape rules' arithmetic
  /// (sums, products, element counts) cannot overflow.
  static let maxInt = 1 << 53
  static let maxCoefficient = 1 << 40

  init(text: String, file: String) {
    s = Array(text.unicodeScalars)
    self.file = file
  }

  // MARK: positions and errors

  func location(_ pos: Int) -> (line: Int, column: Int) {
    var line = 1, col = 1
    var i = 0
    let end = min(pos, s.count)
    while i < end {
      if s[i] == "\n" { line += 1; col = 1 } else { col += 1 }
      i += 1
    }
    return (line, col)
  }

  /// The token at `pos`, quoted, for "found ..." (`'{'`, `'frobnicate'`, `end of input`).
  func found(_ pos: Int) -> String {
    guard pos < s.count else { return "end of input" }
    let c = s[pos]
    var j = pos
    if IRSyntax.isNameContinue(c) || c == "%" || c == "-" {
      j += 1
      while j < s.count, IRSyntax.isNameContinue(s[j]) || s[j] == "+" && j > pos && (s[j - 1] == "e" || s[j - 1] == "E") {
        j += 1
      }
    } else if c == "\"" {
      j += 1
      while j < s.count, s[j] != "\"", s[j] != "\n" { j += 1 }
      if j < s.count, s[j] == "\"" { j += 1 }
    } else if c == "\n" {
      return "end of line"
    } else {
      j = pos + 1
    }
    var tok = String(String.UnicodeScalarView(s[pos..<min(j, pos + 40)]))
    if j > pos + 40 { tok += "..." }
    return "'\(tok)'"
  }

  func syntax(_ expected: String, at pos: Int? = nil) -> IRParseError {
    let at = pos ?? p
    let (l, c) = location(at)
    return .syntax(file: file, line: l, column: c, expected: expected, found: found(at))
  }
  func invalid(_ message: String, at pos: Int) -> IRParseError {
    let (l, c) = location(pos)
    return .invalid(file: file, line: l, column: c, message: message)
  }

  // MARK: characters

  var atEnd: Bool { p >= s.count }
  func peek(_ offset: Int = 0) -> Unicode.Scalar? { p + offset < s.count ? s[p + offset] : nil }

  /// Skips spaces, tabs, newlines and `//` comments.
  mutating func skip() {
    while p < s.count {
      let c = s[p]
      if c == " " || c == "\t" || c == "\n" || c == "\r" {
        p += 1
      } else if c == "/", p + 1 < s.count, s[p + 1] == "/" {
        while p < s.count, s[p] != "\n" { p += 1 }
      } else {
        return
      }
    }
  }

  /// Skips whitespace, then consumes `c` if it is next.
  mutating func accept(_ c: Unicode.Scalar) -> Bool {
    skip()
    if peek() == c { p += 1; return true }
    return false
  }
  mutating func expect(_ c: Unicode.Scalar, _ what: String) throws(IRParseError) {
    guard accept(c) else { throw syntax(what) }
  }

  /// An identifier (`[A-Za-z_][A-Za-z0-9_.]*`) at the current position, without skipping.
  mutating func word() -> String? {
    guard let c = peek(), IRSyntax.isNameStart(c) else { return nil }
    let start = p
    while let c = peek(), IRSyntax.isNameContinue(c) { p += 1 }
    return String(String.UnicodeScalarView(s[start..<p]))
  }

  /// A name: an identifier or a quoted string.
  mutating func name(_ what: String) throws(IRParseError) -> String {
    skip()
    if peek() == "\"" { return try string() }
    guard let w = word() else { throw syntax(what) }
    return w
  }

  /// A quoted string with the escapes `quote` writes.
  mutating func string() throws(IRParseError) -> String {
    let start = p
    guard peek() == "\"" else { throw syntax("'\"'") }
    p += 1
    var out = String.UnicodeScalarView()
    while true {
      guard let c = peek(), c != "\n" else {
        throw invalid("unterminated string (missing closing '\"')", at: start)
      }
      p += 1
      if c == "\"" { break }
      if c != "\\" { out.append(c); continue }
      let escAt = p - 1
      guard let e = peek() else { throw invalid("unterminated string (missing closing '\"')", at: start) }
      p += 1
      switch e {
      case "\"": out.append("\"")
      case "\\": out.append("\\")
      case "n": out.append("\n")
      case "t": out.append("\t")
      case "r": out.append("\r")
      case "u":
        guard peek() == "{" else { throw invalid("malformed escape: expected '\\u{hex}'", at: escAt) }
        p += 1
        let hexStart = p
        while let h = peek(), h.properties.isASCIIHexDigit { p += 1 }
        let hex = String(String.UnicodeScalarView(s[hexStart..<p]))
        guard peek() == "}", hex.count >= 1, hex.count <= 8, let v = UInt32(hex, radix: 16),
              let scalar = Unicode.Scalar(v)
        else { throw invalid("malformed escape: expected '\\u{hex}' with a valid code point", at: escAt) }
        p += 1
        out.append(scalar)
      default:
        throw invalid("unknown escape '\\\(e)' in string", at: escAt)
      }
    }
    return String(out)
  }

  // MARK: graphs

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

  // MARK: types, dims, attribute values

  /// `f32[B, Tc, 200]`
  mutating func tensorType() throws(IRParseError) -> TensorType {
    skip()
    let start = p
    guard let w = word() else { throw syntax("a type like 'f32[B, 4]'") }
    guard let dtype = DType(rawValue: w) else {
      throw invalid("unknown dtype '\(w)' (expected \(DType.allCases.map(\.rawValue).joined(separator: " or ")))",
                    at: start)
    }
    guard peek() == "[" else { throw syntax("'[' and the shape after \(w)") }
    let shape = try dimList(start: start)
    return TensorType(dtype, shape)
  }

  /// `[d0, d1, ...]`; its element count must be representable.
  mutating func dimList(start: Int) throws(IRParseError) -> [Dim] {
    try expect("[", "'[' to open a dim list")
    var dims: [Dim] = []
    if !accept("]") {
      while true {
        dims.append(try dim())
        if accept(",") { continue }
        if accept("]") { break }
        throw syntax("',' or ']' in a dim list")
      }
    }
    guard IRParser.productFits(dims) else {
      throw invalid("shape \(IRSyntax.dims(dims)) is too large (its element count overflows)", at: start)
    }
    return dims
  }

  /// A dim polynomial as `Dim.description` prints it: `B*Tc*200+B`, `Ta-1`, `-3`, `0`.
  mutating func dim() throws(IRParseError) -> Dim {
    skip()
    let start = p
    var terms: [[String]: Int] = [:]
    var sign = 1
    if peek() == "-" { sign = -1; p += 1 }
    while true {
      var coef = sign
      var syms: [String] = []
      while true {
        skip()
        let fpos = p
        if let c = peek(), c >= "0", c <= "9" {
          while let d = peek(), d >= "0", d <= "9" { p += 1 }
          let digits = String(String.UnicodeScalarView(s[fpos..<p]))
          guard let v = Int(digits), v <= Self.maxCoefficient else {
            throw invalid("dim constant \(digits) is out of range", at: fpos)
          }
          let (m, o) = coef.multipliedReportingOverflow(by: v)
          guard !o, abs(m) <= Self.maxCoefficient else { throw invalid("dim coefficient is out of range", at: fpos) }
          coef = m
        } else if let c = peek(), IRSyntax.isNameStart(c) || (!c.isASCII && c.properties.isAlphabetic) {
          while let d = peek(), d != ".", IRSyntax.isNameContinue(d)
                  || (!d.isASCII && (d.properties.isAlphabetic || d.properties.numericType != nil)) { p += 1 }
          syms.append(String(String.UnicodeScalarView(s[fpos..<p])))
        } else {
          throw syntax("a dim symbol or integer in a dim expression", at: fpos)
        }
        skip()
        if peek() == "*" { p += 1; continue }
        break
      }
      let key = syms.sorted()
      let (sum, o) = terms[key, default: 0].addingReportingOverflow(coef)
      guard !o, abs(sum) <= Self.maxCoefficient else { throw invalid("dim coefficient is out of range", at: start) }
      terms[key] = sum
      skip()
      if peek() == "+" { sign = 1; p += 1; continue }
      if peek() == "-" { sign = -1; p += 1; continue }
      break
    }
    return Dim(terms: terms)
  }

  /// Whether the product of `dims` (a shape's element count) can be computed without overflow,
  /// with coefficients small enough that a few more sums and products stay in range.
  static func productFits(_ dims: [Dim]) -> Bool {
    var acc: [[String]: Int] = [[]: 1]
    for d in dims {
      var next: [[String]: Int] = [:]
      for (ma, ca) in acc {
        for (mb, cb) in d.terms {
          let (m, o1) = ca.multipliedReportingOverflow(by: cb)
          guard !o1 else { return false }
          let k = (ma + mb).sorted()
          let (sum, o2) = next[k, default: 0].addingReportingOverflow(m)
          guard !o2, sum.magnitude <= UInt(maxInt) else { return false }
          next[k] = sum
        }
      }
      acc = next.filter { $0.value != 0 }
      if acc.isEmpty { return true }
    }
    return true
  }

  /// An inline attribute value: `7`, `-1e+10`, `inf`, `nan`, `true`, `"text"`, `[B, 4]`, `dim(Ta-1)`.
  mutating func attrValue(key: String) throws(IRParseError) -> Attr {
    skip()
    let start = p
    let expected = "a value for attribute \(IRSyntax.name(key)) (an integer, a float, true/false, a \"string\", [dims] or dim(...))"
    guard let c = peek() else { throw syntax(expected) }
    if c == "\"" { return .string(try string()) }
    if c == "[" { return .dims(try dimList(start: start)) }
    if c == "-" || (c >= "0" && c <= "9") { return try number(key: key) }
    if let w = word() {
      switch w {
      case "true": return .bool(true)
      case "false": return .bool(false)
      case "inf": return .float(.infinity)
      case "nan":
        p = start
        return try number(key: key)
      case "dim":
        guard peek() == "(" else { break }
        p += 1
        let d = try dim()
        try expect(")", "')' closing dim(...)")
        return .dim(d)
      default: break
      }
      throw invalid("unknown attribute value syntax '\(w)' for \(IRSyntax.name(key)): expected an integer, a float, "
                      + "true/false, a \"string\", [dims] or dim(...)", at: start)
    }
    if c == "@" {
      throw invalid("graph attribute \(IRSyntax.name(key)) must be written as a block after the node line "
                      + "('\(IRSyntax.name(key)) @name { ... }')", at: start)
    }
    throw syntax(expected)
  }

  /// `-?digits` (an int), `-?digits(.digits)?([eE][+-]?digits)?` (a float), `-?inf`, `-?nan`,
  /// `nan(0xBITS)`.
  mutating func number(key: String) throws(IRParseError) -> Attr {
    let start = p
    var negative = false
    if peek() == "-" { negative = true; p += 1 }
    if let c = peek(), IRSyntax.isNameStart(c) {
      let wpos = p
      let w = word() ?? ""
      if w == "inf" { return .float(negative ? -.infinity : .infinity) }
      if w == "nan" {
        if peek() == "(" {
          p += 1
          guard peek() == "0", peek(1) == "x" || peek(1) == "X" else { throw syntax("'0x' and the NaN's bits in nan(...)") }
          p += 2
          let hs = p
          while let h = peek(), h.properties.isASCIIHexDigit { p += 1 }
          let hex = String(String.UnicodeScalarView(s[hs..<p]))
          guard let bits = UInt32(hex, radix: 16), Float(bitPattern: bits).isNaN else {
            throw invalid("nan(0x\(hex)) is not the bit pattern of a NaN", at: start)
          }
          try expect(")", "')' closing nan(0x...)")
          var f = Float(bitPattern: bits)
          if negative { f = -f }
          return .float(f)
        }
        return .float(negative ? -Float.nan : .nan)
      }
      throw invalid("unknown attribute value syntax '\(negative ? "-" : "")\(w)' for \(IRSyntax.name(key))", at: wpos)
    }
    let digitsStart = p
    while let d = peek(), d >= "0", d <= "9" { p += 1 }
    guard p > digitsStart else { throw syntax("digits after '-'") }
    var isFloat = false
    if peek() == "." {
      isFloat = true
      p += 1
      let fs = p
      while let d = peek(), d >= "0", d <= "9" { p += 1 }
      guard p > fs else { throw syntax("digits after the decimal point") }
    }
    if peek() == "e" || peek() == "E" {
      isFloat = true
      p += 1
      if peek() == "+" || peek() == "-" { p += 1 }
      let es = p
      while let d = peek(), d >= "0", d <= "9" { p += 1 }
      guard p > es else { throw syntax("exponent digits in a float") }
    }
    let text = String(String.UnicodeScalarView(s[start..<p]))
    if isFloat {
      guard let f = Float(text) else { throw invalid("malformed float \(text)", at: start) }
      return .float(f)
    }
    guard let v = Int(text), v.magnitude <= UInt(Self.maxInt) else {
      throw invalid("integer \(text) is out of range (at most 2^53 in magnitude)", at: start)
    }
    return .int(v)
  }
}
