/// A symbolic tensor dimension: a polynomial with integer coefficients over dim symbols.
///
/// Dims that vary per batch (`B`, `Tc`, `Tq`, `Ta`, `N`, `Nv`) stay symbolic in graphs and plans;
/// model constants are plain integers. Polynomials are kept in a canonical form, so two dims are
/// equal exactly when they are the same expression (`Tc+1 == 1+Tc`, `B*Tc == Tc*B`).
/// FLOP and byte counts are dims too, which is how costs print as formulas of the batch shape.
public struct Dim: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
  /// Monomial (sorted symbol multiset; `[]` is the constant term) -> coefficient, zeros dropped.
  public private(set) var terms: [[String]: Int]

  public init(integerLiteral value: Int) { self.init(value) }
  public init(_ value: Int) { terms = value == 0 ? [:] : [[]: value] }
  public init(symbol: String) { terms = [[symbol]: 1] }
  public static func sym(_ s: String) -> Dim { Dim(symbol: s) }
  init(terms: [[String]: Int]) { self.terms = terms.filter { $0.value != 0 } }

  /// The integer value when the dim has no symbols.
  public var constant: Int? {
    if terms.isEmpty { return 0 }
    if terms.count == 1, let c = terms[[]] { return c }
    return nil
  }
  /// The symbol when the dim is exactly one symbol (`B`, `Tc`).
  public var symbol: String? {
    if terms.count == 1, let (m, c) = terms.first, c == 1, m.count == 1 { return m[0] }
    return nil
  }
  public var symbols: Set<String> { Set(terms.keys.flatMap { $0 }) }

  /// Coefficients saturate at `Int.max` / `Int.min` instead of trapping on overflow; such a
  /// coefficient marks the dim as overflowed, and `evaluate` throws `DimError.overflow` for it.
  public static func + (a: Dim, b: Dim) -> Dim {
    var t = a.terms
    for (m, c) in b.terms { t[m] = saturatingAdd(t[m] ?? 0, c) }
    return Dim(terms: t)
  }
  public static func - (a: Dim, b: Dim) -> Dim { a + b * Dim(-1) }
  public static func * (a: Dim, b: Dim) -> Dim {
    var t: [[String]: Int] = [:]
    for (ma, ca) in a.terms {
      for (mb, cb) in b.terms {
        let m = (ma + mb).sorted()
        t[m] = saturatingAdd(t[m] ?? 0, saturatingMultiply(ca, cb))
      }
    }
    return Dim(terms: t)
  }
  public static func += (a: inout Dim, b: Dim) { a = a + b }

  static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
    if isSaturated(a) { return a }
    if isSaturated(b) { return b }
    let (r, o) = a.addingReportingOverflow(b)
    return o ? (a > 0 ? Int.max : Int.min) : r
  }
  static func saturatingMultiply(_ a: Int, _ b: Int) -> Int {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    if o || ((isSaturated(a) || isSaturated(b)) && a != 0 && b != 0) { return (a < 0) != (b < 0) ? Int.min : Int.max }
    return r
  }
  static func isSaturated(_ c: Int) -> Bool { c == Int.max || c == Int.min }

  /// Whether a coefficient overflowed while the dim was built.
  public var overflowed: Bool { terms.values.contains(where: Dim.isSaturated) }

  /// The product of dims (1 for an empty list).
  public static func product<S: Sequence>(_ dims: S) -> Dim where S.Element == Dim {
    dims.reduce(Dim(1), *)
  }

  /// Evaluates with every symbol bound; throws the first unbound symbol, or `.overflow` when the
  /// value (or a term of it) does not fit in an `Int`.
  public func evaluate(_ env: [String: Int]) throws(DimError) -> Int {
    var total = 0
    for (m, c) in terms {
      guard !Dim.isSaturated(c) else { throw overflow(env) }
      var v = c
      for s in m {
        guard let x = env[s] else { throw DimError.unbound(symbol: s, in: description) }
        let (p, o) = v.multipliedReportingOverflow(by: x)
        if o { throw overflow(env) }
        v = p
      }
      let (t, o) = total.addingReportingOverflow(v)
      if o { throw overflow(env) }
      total = t
    }
    return total
  }

  private func overflow(_ env: [String: Int]) -> DimError {
    let text = description
    let short = text.count > 80 ? String(text.prefix(77)) + "..." : text
    let binding = symbols.sorted().compactMap { s in env[s].map { "\(s)=\($0)" } }.joined(separator: ", ")
    return .overflow(expression: short, binding: binding)
  }

  /// Monomials in print order: higher degree first, then by name, constant last.
  var orderedTerms: [([String], Int)] {
    terms.sorted { a, b in
      if a.key.count != b.key.count { return a.key.count > b.key.count }
      return a.key.lexicographicallyPrecedes(b.key)
    }.map { ($0.key, $0.value) }
  }

  /// `B*Tc*200+B`, `Ta-1`, `0`.
  public var description: String {
    if terms.isEmpty { return "0" }
    var out = ""
    for (i, (m, c)) in orderedTerms.enumerated() {
      let mag = c.magnitude
      let body: String
      if m.isEmpty { body = String(mag) } else {
        let syms = m.joined(separator: "*")
        body = mag == 1 ? syms : "\(syms)*\(mag)"
      }
      if i == 0 { out = c < 0 ? "-" + body : body } else { out += (c < 0 ? "-" : "+") + body }
    }
    return out
  }

  public static func < (a: Dim, b: Dim) -> Bool { a.description < b.description }

  /// Parses what `description` prints: sums and differences of products of symbols and integers.
  public init(parsing text: String) throws(DimError) {
    var result = Dim(0)
    var sign = 1
    var term = Dim(1)
    var haveTerm = false
    var i = text.startIndex
    func flush() { if haveTerm { result = result + term * Dim(sign) } }
    while i < text.endIndex {
      let ch = text[i]
      if ch == " " { i = text.index(after: i); continue }
      if ch == "+" || ch == "-" {
        if haveTerm { flush(); term = Dim(1); haveTerm = false; sign = ch == "-" ? -1 : 1 }
        else { sign *= ch == "-" ? -1 : 1 }
        i = text.index(after: i); continue
      }
      if ch == "*" { i = text.index(after: i); continue }
      var j = i
      if ch.isNumber {
        while j < text.endIndex, text[j].isNumber { j = text.index(after: j) }
        guard let v = Int(text[i..<j]) else { throw DimError.malformed(text) }
        term = term * Dim(v)
      } else if ch.isLetter || ch == "_" {
        while j < text.endIndex, text[j].isLetter || text[j].isNumber || text[j] == "_" {
          j = text.index(after: j)
        }
        term = term * Dim(symbol: String(text[i..<j]))
      } else {
        throw DimError.malformed(text)
      }
      haveTerm = true
      i = j
    }
    guard haveTerm || result != Dim(0) || text.contains("0") else { throw DimError.malformed(text) }
    flush()
    self = result
  }
}

extension Dim: Codable {
  public init(from decoder: Decoder) throws {
    let s = try decoder.singleValueContainer().decode(String.self)
    self = try Dim(parsing: s)
  }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }
}

public enum DimError: Error, Equatable, CustomStringConvertible {
  case unbound(symbol: String, in: String)
  case malformed(String)
  /// The value does not fit in a 64-bit integer at this binding (or a constant of it overflowed).
  case overflow(expression: String, binding: String)
  public var description: String {
    switch self {
    case .overflow(let e, let b):
      return "size \(e) overflows 64-bit integers" + (b.isEmpty ? "" : " at \(b)")
    case .unbound(let s, let e): return "dim symbol \(s) in \(e) is not bound"
    case .malformed(let t): return "malformed dim expression \"\(t)\""
    }
  }
}
