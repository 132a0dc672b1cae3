// Python 3 `str` semantics that decaNLP's metrics (and sacrebleu) rely on, over Unicode scalars.
//
// decaNLP's metrics.py works on Python strings: code-point sequences compared code point by code
// point, split on Python's notion of whitespace, lowercased with Python's full case mapping. Swift's
// `String` compares by canonical equivalence and has its own whitespace/lowercasing rules, so the
// metrics never compare or hash `String`s directly: they work on `[Unicode.Scalar]` and key tokens
// by their UTF-8 bytes (byte equality is code-point equality).

/// A token as a dictionary key: its UTF-8 bytes (Python compares code points; so do these).
typealias TokenKey = [UInt8]

enum PyText {
  typealias Scalars = [Unicode.Scalar]

  static func scalars(_ s: String) -> Scalars { Array(s.unicodeScalars) }

  static func string<S: Sequence>(_ s: S) -> String where S.Element == Unicode.Scalar {
    var v = String.UnicodeScalarView()
    v.append(contentsOf: s)
    return String(v)
  }

  static func key<S: Sequence>(_ s: S) -> TokenKey where S.Element == Unicode.Scalar {
    var bytes: [UInt8] = []
    for u in s { bytes.append(contentsOf: UTF8.encode(u)!) }
    return bytes
  }

  /// `str.isspace()` for one code point (Py_UNICODE_ISSPACE): bidi classes WS, B, S and category Zs.
  static func isSpace(_ u: Unicode.Scalar) -> Bool {
    switch u.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
         0x205F, 0x3000:
      return true
    default:
      return false
    }
  }

  /// `s.split()`: maximal runs of non-whitespace.
  static func split(_ s: Scalars) -> [Scalars] {
    var out: [Scalars] = []
    var cur: Scalars = []
    for u in s {
      if isSpace(u) {
        if !cur.isEmpty { out.append(cur); cur.removeAll(keepingCapacity: true) }
      } else {
        cur.append(u)
      }
    }
    if !cur.isEmpty { out.append(cur) }
    return out
  }

  /// `s.split(sep)` for a one-character separator (keeps empty pieces, as Python does).
  static func split(_ s: Scalars, on sep: Unicode.Scalar) -> [Scalars] {
    var out: [Scalars] = []
    var cur: Scalars = []
    for u in s {
      if u == sep { out.append(cur); cur = [] } else { cur.append(u) }
    }
    out.append(cur)
    return out
  }

  /// `' '.join(s.split())`.
  static func collapseWhitespace(_ s: Scalars) -> Scalars {
    joined(split(s), separator: " ")
  }

  static func joined(_ parts: [Scalars], separator: Unicode.Scalar) -> Scalars {
    var out: Scalars = []
    for (i, p) in parts.enumerated() {
      if i > 0 { out.append(separator) }
      out.append(contentsOf: p)
    }
    return out
  }

  static func strip(_ s: Scalars) -> Scalars {
    guard let first = s.firstIndex(where: { !isSpace($0) }) else { return [] }
    let last = s.lastIndex(where: { !isSpace($0) })!
    return Array(s[first...last])
  }

  static func rstrip(_ s: Scalars) -> Scalars {
    guard let last = s.lastIndex(where: { !isSpace($0) }) else { return [] }
    return Array(s[...last])
  }

  /// `s.replace(old, new)`: non-overlapping, left to right.
  static func replace(_ s: Scalars, _ old: Scalars, _ new: Scalars) -> Scalars {
    guard !old.isEmpty, s.count >= old.count else { return s }
    var out: Scalars = []
    out.reserveCapacity(s.count)
    var i = 0
    while i < s.count {
      if i + old.count <= s.count, s[i] == old[0], s[i..<(i + old.count)].elementsEqual(old) {
        out.append(contentsOf: new)
        i += old.count
      } else {
        out.append(s[i])
        i += 1
      }
    }
    return out
  }

  static func contains(_ s: Scalars, _ needle: Scalars) -> Bool { find(s, needle) != nil }

  /// Index of the first occurrence of `needle` (`str.find`), or nil.
  static func find(_ s: Scalars, _ needle: Scalars, from start: Int = 0) -> Int? {
    if needle.isEmpty { return start <= s.count ? start : nil }
    guard s.count >= needle.count else { return nil }
    var i = start
    while i + needle.count <= s.count {
      if s[i] == needle[0], s[i..<(i + needle.count)].elementsEqual(needle) { return i }
      i += 1
    }
    return nil
  }

  /// `str.lower()`: full lowercase mapping per code point, with Python's Final_Sigma rule for U+03A3.
  static func lower(_ s: Scalars) -> Scalars {
    var out: Scalars = []
    out.reserveCapacity(s.count)
    for (i, u) in s.enumerated() {
      if u.isASCII {
        if u.value >= 0x41 && u.value <= 0x5A {
          out.append(Unicode.Scalar(u.value + 32)!)
        } else {
          out.append(u)
        }
      } else if u.value == 0x3A3 {
        out.append(finalSigma(s, i) ? "\u{3C2}" : "\u{3C3}")
      } else {
        out.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars)
      }
    }
    return out
  }

  private static func finalSigma(_ s: Scalars, _ i: Int) -> Bool {
    var j = i - 1
    while j >= 0, s[j].properties.isCaseIgnorable { j -= 1 }
    var isFinal = j >= 0 && s[j].properties.isCased
    if isFinal && i + 1 < s.count {
      var k = i + 1
      while k < s.count, s[k].properties.isCaseIgnorable { k += 1 }
      isFinal = k == s.count || !s[k].properties.isCased
    }
    return isFinal
  }

  /// `string.punctuation`: the 32 ASCII punctuation characters.
  static func isASCIIPunctuation(_ u: Unicode.Scalar) -> Bool {
    switch u.value {
    case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
    default: return false
    }
  }

  /// A `\w` character in a Python 3 `str` regex: alphabetic (L*), numeric, or `_`.
  static func isWord(_ u: Unicode.Scalar) -> Bool {
    if u.isASCII {
      let v = u.value
      return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
    }
    switch u.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
      return true
    default:
      return u.properties.numericType != nil
    }
  }

  /// `\d` in a Python 3 `str` regex: a Unicode decimal digit (category Nd).
  static func isDecimalDigit(_ u: Unicode.Scalar) -> Bool {
    u.properties.numericType == .decimal
  }

  /// `int(s)` for a `str`: optional surrounding whitespace, optional sign, decimal digits (any
  /// script) with single underscores between digits. Nil where Python raises ValueError.
  static func int(_ s: Scalars) -> Int? {
    var t = strip(s)[...]
    var negative = false
    if let f = t.first, f == "+" || f == "-" {
      negative = f == "-"
      t = t.dropFirst()
    }
    guard let first = t.first, first != "_", t.last != "_" else { return nil }
    var value = 0
    var previousUnderscore = false
    for u in t {
      if u == "_" {
        if previousUnderscore { return nil }
        previousUnderscore = true
        continue
      }
      previousUnderscore = false
      guard u.properties.numericType == .decimal, let d = u.properties.numericValue else { return nil }
      let (m, o1) = value.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(Int(d))
      if o1 || o2 { return nil }
      value = a
    }
    return negative ? -value : value
  }
}
