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

  public static func + (a: Dim, b: Dim) -> Dim {
    var t = a.terms
    for (m, c) in b.terms { t[m, default: 0] += c }
    return Dim(terms: t)
  }
  public static func - (a: Dim, b: Dim) -> Dim { a + b * Dim(-1) }
  public static func * (a: Dim, b: Dim) -> Dim {
    var t: [[String]: Int] = [:]
    for (ma, ca) in a.terms {
      for (mb, cb) in b.terms { t[(ma + mb).sorted(), default: 0] += ca * cb }
    }
    return Dim(terms: t)
  }
  public static func += (a: inout Dim, b: Dim) { a = a + b }

  /// The product of dims (1 for an empty list).
  public static func product<S: Sequence>(_ dims: S) -> Dim where S.Element == Dim {
    dims.reduce(Dim(1), *)
  }

  /// Evaluates with every symbol bound; throws the first unbound symbol.
  public func evaluate(_ env: [String: Int]) throws(DimError) -> Int {
    var total = 0
    for (m, c) in terms {
      var v = c
      for s in m {
        guard let x = env[s] else { throw DimError.unbound(symbol: s, in: description) }
        v *= x
      }
      total += v
    }
    return total
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
      let mag = abs(c)
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
  public var description: String {
    switch self {
    case .unbound(let s, let e): return "dim symbol \(s) in \(e) is not bound"
    case .malformed(let t): return "malformed dim expression \"\(t)\""
    }
  }
}
