/// Types, dims and attribute values.
extension IRParser {
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
