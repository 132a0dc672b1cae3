/// Recursive descent over Unicode scalars; columns count scalars from 1. This file holds the
/// scanner (positions, errors, characters, names, strings); the grammar is in
/// `IRParser+Graphs.swift` and `IRParser+Values.swift`.
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
}
