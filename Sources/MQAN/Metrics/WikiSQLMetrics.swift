/// WikiSQL logical-form exact match: a port of decaNLP's `computeLFEM` and `to_lf`.
///
/// decaNLP parses each predicted query string (`select <agg> <column> from table where <column>
/// <op> <value> and ...`, as produced by its `Query.__repr__`, lowercased) back into a logical
/// form `{sel, agg, conds}` using the example's table header, and counts it correct when it equals
/// the gold `sql` dict with condition values lowercased (`str(value).lower()`). A prediction that
/// makes `to_lf` raise (unknown aggregation word, malformed condition, ...) is simply wrong.
public enum WikiSQLMetrics {
  public struct Condition: Equatable, Sendable {
    public var column: Int
    public var op: Int
    /// Python's `str()` of the gold value (WikiSQL stores strings and numbers: `3.0` → "3.0").
    public var value: String
    public init(column: Int, op: Int, value: String) {
      self.column = column; self.op = op; self.value = value
    }
  }

  public struct Query: Equatable, Sendable {
    public var sel: Int
    public var agg: Int
    public var conds: [Condition]
    public init(sel: Int, agg: Int, conds: [Condition]) {
      self.sel = sel; self.agg = agg; self.conds = conds
    }
  }

  public struct Example: Sendable {
    /// The table's column names, `table['header']`.
    public var header: [String]
    /// The gold query, `entry['sql']`.
    public var sql: Query
    public init(header: [String], sql: Query) { self.header = header; self.sql = sql }
  }

  /// WikiSQL's `Query.agg_ops` and `Query.cond_ops`, lowercased as `to_lf` uses them.
  static let aggOps = ["", "max", "min", "count", "sum", "avg"]
  static let condOps = ["=", ">", "<", "op"]

  /// decaNLP's `lfem` (percent).
  public static func logicalFormExactMatch(predictions: [String], examples: [Example]) -> Double {
    let n = min(predictions.count, examples.count)
    guard n > 0 else { return 0 }
    var correct = 0
    for i in 0..<n {
      guard let lf = logicalForm(predictions[i], header: examples[i].header) else { continue }
      let gt = examples[i].sql
      let gold = LogicalForm(
        sel: gt.sel, agg: gt.agg,
        conds: gt.conds.map {
          LogicalForm.Cond(column: $0.column, op: $0.op,
                           value: PyText.key(PyText.lower(PyText.scalars($0.value))))
        })
      if lf == gold { correct += 1 }
    }
    return Double(correct) / Double(n) * 100
  }

  struct LogicalForm: Equatable {
    struct Cond: Equatable {
      var column: Int
      var op: Int
      /// Nil when the predicted condition has no value (a 2-element list in Python).
      var value: TokenKey?
    }
    var sel: Int?
    var agg: Int
    var conds: [Cond]
  }

  /// `to_lf(s, table)`; nil where Python raises.
  static func logicalForm(_ query: String, header: [String]) -> LogicalForm? {
    typealias S = PyText.Scalars
    func sc(_ x: String) -> S { PyText.scalars(x) }
    let aggs = aggOps.map(sc)
    let conditionals = condOps.map(sc)
    let headersUnsorted: [(S, Int)] = header.enumerated().map { (PyText.lower(sc($0.element)), $0.offset) }
    // `sort(reverse=True, key=len)`: stable, longest first.
    let headers = headersUnsorted.enumerated()
      .sorted { $0.element.0.count != $1.element.0.count ? $0.element.0.count > $1.element.0.count : $0.offset < $1.offset }
      .map(\.element)

    var s = sc(query)
    var conditionS: S? = nil
    if let w = PyText.find(s, sc("where")) {
      conditionS = Array(s[(w + 5)...])
      s = Array(s[..<w])
    }
    let words = PyText.split(s)
    s = words.count > 3 ? PyText.joined(Array(words[1..<(words.count - 2)]), separator: " ") : []
    var sel: Int? = nil
    var agg = 0
    for (col, idx) in headers where col == s { sel = idx }
    if sel == nil {
      let parts = PyText.split(s)
      guard let first = parts.first, let a = aggs.firstIndex(of: first) else { return nil }
      agg = a
      s = PyText.joined(Array(parts.dropFirst()), separator: " ")
      for (col, idx) in headers where col == s { sel = idx }
    }

    var fullConditions: [LogicalForm.Cond] = []
    if var c = conditionS {
      c = [" "] + c + [" "]
      for (col, idx) in headers {
        c = PyText.replace(c, [" "] + col + [" "], sc(" Col\(idx) "))
      }
      c = PyText.strip(c)
      for (idx, op) in conditionals.enumerated() {
        c = PyText.joined(PyText.split(c).map { $0 == op ? sc("Cond\(idx)") : $0 }, separator: " ")
      }
      let pieces = splitColCond(c).filter { !PyText.strip($0).isEmpty }
      for (i, piece) in pieces.enumerated() {
        if i % 2 == 0 {
          let x = PyText.split(piece)
          guard x.count >= 2,
                let col = PyText.int(PyText.replace(x[0], sc("Col"), [])),
                let op = PyText.int(PyText.replace(x[1], sc("Cond"), []))
          else { return nil }
          fullConditions.append(.init(column: col, op: op, value: nil))
        } else {
          var x = PyText.split(piece)
          if x.last == sc("and") { x.removeLast() }
          var v = PyText.joined(x, separator: " ")
          if PyText.contains(v, sc("Col")) {
            var out: [S] = []
            for t in PyText.split(v) {
              if PyText.contains(t, sc("Col")) {
                guard let idx = PyText.int(PyText.replace(t, sc("Col"), [])),
                      let h = pyIndex(headersUnsorted, idx) else { return nil }
                out.append(h.0)
              } else {
                out.append(t)
              }
            }
            v = PyText.joined(out, separator: " ")
          }
          if PyText.contains(v, sc("Cond")) {
            var out: [S] = []
            for t in PyText.split(v) {
              if PyText.contains(t, sc("Cond")) {
                guard let idx = PyText.int(PyText.replace(t, sc("Cond"), [])),
                      let op = pyIndex(conditionals, idx) else { return nil }
                out.append(op)
              } else {
                out.append(t)
              }
            }
            v = PyText.joined(out, separator: " ")
          }
          // Odd pieces always follow an even one, so there is a condition to extend.
          if fullConditions[fullConditions.count - 1].value != nil { return nil }
          fullConditions[fullConditions.count - 1].value = PyText.key(v)
        }
      }
    }
    return LogicalForm(sel: sel, agg: agg, conds: fullConditions)
  }

  /// Python list indexing, negative indices included; nil for IndexError.
  static func pyIndex<T>(_ a: [T], _ i: Int) -> T? {
    let j = i < 0 ? a.count + i : i
    return j >= 0 && j < a.count ? a[j] : nil
  }

  /// `re.split('(Col\d+ Cond\d+)', s)`: the text between matches, with the matches kept.
  static func splitColCond(_ s: PyText.Scalars) -> [PyText.Scalars] {
    func lit(_ at: Int, _ word: String) -> Int? {
      let w = Array(word.unicodeScalars)
      guard at + w.count <= s.count, s[at..<(at + w.count)].elementsEqual(w) else { return nil }
      return at + w.count
    }
    func digits(_ at: Int) -> Int? {
      var j = at
      while j < s.count, PyText.isDecimalDigit(s[j]) { j += 1 }
      return j > at ? j : nil
    }
    func match(_ i: Int) -> Int? {
      guard let a = lit(i, "Col"), let b = digits(a), let c = lit(b, " "), let d = lit(c, "Cond"),
            let e = digits(d) else { return nil }
      return e
    }
    var out: [PyText.Scalars] = []
    var start = 0
    var i = 0
    while i < s.count {
      if let end = match(i) {
        out.append(Array(s[start..<i]))
        out.append(Array(s[i..<end]))
        start = end
        i = end
      } else {
        i += 1
      }
    }
    out.append(Array(s[start...]))
    return out
  }
}
