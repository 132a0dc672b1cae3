// Exact match, normalized F1 and ZRE's corpus F1: ports of decaNLP's metrics.py (`normalize_text`,
// `f1_score`, `exact_match`, `metric_max_over_ground_truths`, `computeEM`, `computeF1`, `score`,
// `simplify`, `computeCF1`), which in turn follow the SQuAD v1.1 evaluation script and the QA-ZRE
// evaluation script (http://nlp.cs.washington.edu/zeroshot/evaluate.py).

public enum MatchMetrics {
  /// decaNLP's `normalize_text` (SQuAD's `normalize_answer`): lowercase (Python's `str.lower`), drop
  /// the ASCII punctuation characters of `string.punctuation`, replace the words `a`, `an`, `the`
  /// (`\b(a|an|the)\b`, Unicode word boundaries) by a space, and collapse whitespace.
  public static func normalize(_ s: String) -> String {
    PyText.string(normalizeScalars(PyText.scalars(s)))
  }

  static func normalizeScalars(_ s: PyText.Scalars) -> PyText.Scalars {
    let lowered = PyText.lower(s)
    let unpunctuated = lowered.filter { !PyText.isASCIIPunctuation($0) }
    return PyText.collapseWhitespace(removeArticles(unpunctuated))
  }

  /// `re.sub(r'\b(a|an|the)\b', ' ', text)`: a match is a whole `\w+` run equal to a, an or the.
  static func removeArticles(_ s: PyText.Scalars) -> PyText.Scalars {
    var out: PyText.Scalars = []
    out.reserveCapacity(s.count)
    var i = 0
    while i < s.count {
      guard PyText.isWord(s[i]) else { out.append(s[i]); i += 1; continue }
      var j = i
      while j < s.count, PyText.isWord(s[j]) { j += 1 }
      let run = s[i..<j]
      if run.elementsEqual(["a"]) || run.elementsEqual(["a", "n"]) || run.elementsEqual(["t", "h", "e"]) {
        out.append(" ")
      } else {
        out.append(contentsOf: run)
      }
      i = j
    }
    return out
  }

  /// decaNLP's `computeEM`: percentage of predictions equal (code point for code point, no
  /// normalization) to at least one of their references. An example without references scores 0
  /// (Python raises there). Empty input gives 0.
  public static func exactMatch(predictions: [String], references: [[String]]) -> Double {
    guard !predictions.isEmpty else { return 0 }
    var hits = 0
    for (p, refs) in zip(predictions, references) {
      let pk = Array(p.utf8)
      if refs.contains(where: { Array($0.utf8) == pk }) { hits += 1 }
    }
    return Double(hits) / Double(predictions.count) * 100
  }

  /// decaNLP's `nem`: `computeEM` over `normalize_text`-ed predictions and references.
  public static func normalizedExactMatch(predictions: [String], references: [[String]]) -> Double {
    exactMatch(predictions: predictions.map(normalize), references: references.map { $0.map(normalize) })
  }

  /// decaNLP's `nf1`: mean over examples of the best token-level F1 (bag of whitespace tokens,
  /// `collections.Counter` intersection) against any reference, after `normalize_text`; percent.
  public static func normalizedF1(predictions: [String], references: [[String]]) -> Double {
    guard !predictions.isEmpty else { return 0 }
    var total = 0.0
    for (p, refs) in zip(predictions, references) {
      let pt = tokens(normalizeScalars(PyText.scalars(p)))
      var best = 0.0
      for (i, r) in refs.enumerated() {
        let f = f1(pt, tokens(normalizeScalars(PyText.scalars(r))))
        best = i == 0 ? f : max(best, f)
      }
      total += best
    }
    return total / Double(predictions.count) * 100
  }

  static func tokens(_ s: PyText.Scalars) -> [TokenKey] { PyText.split(s).map { PyText.key($0) } }

  /// `f1_score` on pre-split tokens.
  static func f1(_ prediction: [TokenKey], _ reference: [TokenKey]) -> Double {
    var counts: [TokenKey: Int] = [:]
    for t in reference { counts[t, default: 0] += 1 }
    var same = 0
    for t in prediction {
      if let c = counts[t], c > 0 { same += 1; counts[t] = c - 1 }
    }
    if same == 0 { return 0 }
    let precision = 1.0 * Double(same) / Double(prediction.count)
    let recall = 1.0 * Double(same) / Double(reference.count)
    return (2 * precision * recall) / (precision + recall)
  }

  /// decaNLP's `computeCF1` (QA-ZRE's corpus-level F1), applied as decaNLP applies it: to the
  /// `normalize_text`-ed predictions and references. Each answer becomes the set of its lowercased,
  /// punctuation-stripped whitespace tokens minus {the, a, an, and, ""}; the reference set is the
  /// union over an example's references. A prediction is a true positive when its set equals the
  /// reference set and that set is not exactly {unanswerable}; it counts as a system positive unless
  /// its own set is exactly {unanswerable}. Returns (F1, precision, recall) in percent.
  public static func corpusF1(predictions: [String], references: [[String]])
    -> (f1: Double, precision: Double, recall: Double)
  {
    let unanswerable = PyText.key("unanswerable".unicodeScalars)
    var tp = 0.0, sysPos = 0.0, realPos = 0.0
    for (p, refs) in zip(predictions, references) {
      let answer = simplify(normalizeScalars(PyText.scalars(p)))
      // With no references decaNLP compares the answer set with an empty *list*: never equal.
      let gold: Set<TokenKey>? = refs.isEmpty
        ? nil
        : refs.reduce(into: Set<TokenKey>()) { $0.formUnion(simplify(normalizeScalars(PyText.scalars($1)))) }
      let goldIsUnanswerable = gold.map { $0.count == 1 && $0.contains(unanswerable) } ?? false
      if let gold, answer == gold, !goldIsUnanswerable { tp += 1 }
      if !(answer.count == 1 && answer.contains(unanswerable)) { sysPos += 1 }
      if !goldIsUnanswerable { realPos += 1 }
    }
    if tp == 0 { return (0, 0, 0) }
    let p = tp / sysPos
    let r = tp / realPos
    let f = 2 * p * r / (p + r)
    return (f * 100, p * 100, r * 100)
  }

  /// `simplify`: `set(strip-punctuation(t) for t in answer.strip().lower().split()) - {the, a, an, and, ''}`.
  static func simplify(_ s: PyText.Scalars) -> Set<TokenKey> {
    let stop: Set<TokenKey> = Set(["the", "a", "an", "and", ""].map { Array($0.utf8) })
    var out = Set<TokenKey>()
    for t in PyText.split(PyText.lower(PyText.strip(s))) {
      let k = PyText.key(t.filter { !PyText.isASCIIPunctuation($0) })
      if !stop.contains(k) { out.insert(k) }
    }
    return out
  }
}
