import Foundation

/// Corpus BLEU as decaNLP computes it: `sacrebleu.corpus_bleu(outputs, targets, lowercase=True).score`
/// (metrics.py `computeBLEU`), i.e. sacrebleu's defaults apart from lowercasing:
///
/// - tokenizer `13a` (mteval-v13a: unescape `&quot; &amp; &lt; &gt;`, drop `<skipped>`, split off
///   ASCII punctuation/symbols, periods and commas unless next to a digit, dashes after a digit);
/// - lowercase with Python's `str.lower` before tokenizing (after it, each line is `rstrip`-ped);
/// - n-grams up to 4, clipped counts against the per-n-gram maximum over the references;
/// - reference length: the closest reference length per sentence (ties → the shorter one);
/// - smoothing `exp` (mteval's: the k-th n-gram order with zero matches gets precision
///   100 / (2^k · total)), no effective order; brevity penalty exp(1 - ref/sys) when sys < ref.
///
/// These are identical in sacrebleu 1.x (which decaNLP's Dockerfile installed, unpinned, in 2018)
/// and 2.x (checked against sacrebleu 2.6.0). Reference streams follow decaNLP's transpose
/// `[[t[i] for t in targets] for i in range(len(targets[0]))]`: the number of references is that of
/// the first example and extra references of later examples are ignored. Where decaNLP would raise
/// (a later example with fewer references), this uses the references the example has.
///
/// Known difference: none in the algorithm; Unicode lowercasing uses the Unicode version of the
/// Swift runtime rather than Python's (differences only for characters added in newer versions).
public enum BLEU {
  public struct Statistics: Equatable, Sendable {
    public var correct = [Int](repeating: 0, count: 4)
    public var total = [Int](repeating: 0, count: 4)
    public var sysLen = 0
    public var refLen = 0
  }

  /// decaNLP's `computeBLEU` (0-100).
  public static func corpusScore(predictions: [String], references: [[String]]) -> Double {
    score(statistics(predictions: predictions, references: references))
  }

  /// sacrebleu's `compute_bleu` with `smooth='exp'`, `use_effective_order=False`.
  public static func score(_ s: Statistics) -> Double {
    if s.sysLen == 0 { return 0 }
    var precisions = [Double](repeating: 0, count: 4)
    var smoothMteval = 1.0
    for n in 0..<4 {
      if s.total[n] == 0 { break }
      if s.correct[n] == 0 {
        smoothMteval *= 2
        precisions[n] = 100.0 / (smoothMteval * Double(s.total[n]))
      } else {
        precisions[n] = 100.0 * Double(s.correct[n]) / Double(s.total[n])
      }
    }
    var bp = 1.0
    if s.sysLen < s.refLen {
      bp = exp(1 - Double(s.refLen) / Double(s.sysLen))
    }
    var sumLog = 0.0
    for p in precisions { sumLog += p == 0 ? -9_999_999_999 : log(p) }
    return bp * exp(sumLog / 4)
  }

  public static func statistics(predictions: [String], references: [[String]]) -> Statistics {
    var stats = Statistics()
    let streams = references.first?.count ?? 0
    var vocab: [TokenKey: Int] = [:]
    func ids(_ line: String) -> [Int] {
      tokenize13a(PyText.rstrip(PyText.lower(PyText.scalars(line)))).map { tok in
        let k = PyText.key(tok)
        if let id = vocab[k] { return id }
        let id = vocab.count
        vocab[k] = id
        return id
      }
    }
    for (i, prediction) in predictions.enumerated() {
      let refs = i < references.count ? Array(references[i].prefix(streams)) : []
      let hyp = ids(prediction)
      var maxRef: [[Int]: Int] = [:]
      var closestDiff: Int? = nil
      var closestLen = 0
      for r in refs {
        let ref = ids(r)
        let diff = abs(hyp.count - ref.count)
        if closestDiff == nil || diff < closestDiff! {
          closestDiff = diff
          closestLen = ref.count
        } else if diff == closestDiff!, ref.count < closestLen {
          closestLen = ref.count
        }
        for (g, c) in ngrams(ref) where c > maxRef[g, default: 0] { maxRef[g] = c }
      }
      stats.sysLen += hyp.count
      stats.refLen += closestLen
      for (g, c) in ngrams(hyp) {
        stats.correct[g.count - 1] += min(c, maxRef[g, default: 0])
        stats.total[g.count - 1] += c
      }
    }
    return stats
  }

  static func ngrams(_ t: [Int]) -> [[Int]: Int] {
    var out: [[Int]: Int] = [:]
    for n in 1...4 where t.count >= n {
      for i in 0...(t.count - n) { out[Array(t[i..<(i + n)]), default: 0] += 1 }
    }
    return out
  }

  /// sacrebleu's `tokenize_13a` / `Tokenizer13a`, returning the whitespace-split tokens.
  public static func tokenize13a(_ line: String) -> [String] {
    tokenize13a(PyText.scalars(line)).map { PyText.string($0) }
  }

  static func tokenize13a(_ line: PyText.Scalars) -> [PyText.Scalars] {
    func s(_ x: String) -> PyText.Scalars { PyText.scalars(x) }
    var norm = line
    norm = PyText.replace(norm, s("<skipped>"), [])
    norm = PyText.replace(norm, s("-\n"), [])
    norm = PyText.replace(norm, s("\n"), s(" "))
    norm = PyText.replace(norm, s("&quot;"), s("\""))
    norm = PyText.replace(norm, s("&amp;"), s("&"))
    norm = PyText.replace(norm, s("&lt;"), s("<"))
    norm = PyText.replace(norm, s("&gt;"), s(">"))
    norm = [" "] + norm + [" "]
    // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    var spaced: PyText.Scalars = []
    spaced.reserveCapacity(norm.count * 2)
    for u in norm {
      switch u.value {
      case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F:
        spaced.append(" "); spaced.append(u); spaced.append(" ")
      default:
        spaced.append(u)
      }
    }
    norm = spaced
    let isDigit: (Unicode.Scalar) -> Bool = { $0.value >= 0x30 && $0.value <= 0x39 }
    let isPeriodComma: (Unicode.Scalar) -> Bool = { $0 == "." || $0 == "," }
    // ([^0-9])([\.,]) -> '\1 \2 '
    norm = subPairs(norm, { !isDigit($0) }, isPeriodComma) { a, b in [a, " ", b, " "] }
    // ([\.,])([^0-9]) -> ' \1 \2'
    norm = subPairs(norm, isPeriodComma, { !isDigit($0) }) { a, b in [" ", a, " ", b] }
    // ([0-9])(-) -> '\1 \2 '
    norm = subPairs(norm, isDigit, { $0 == "-" }) { a, b in [a, " ", b, " "] }
    return PyText.split(norm)
  }

  /// `re.sub` for a two-character pattern `(X)(Y)`: leftmost non-overlapping matches, scanning
  /// resumes after each match.
  static func subPairs(_ s: PyText.Scalars, _ first: (Unicode.Scalar) -> Bool,
                       _ second: (Unicode.Scalar) -> Bool,
                       _ replacement: (Unicode.Scalar, Unicode.Scalar) -> PyText.Scalars) -> PyText.Scalars
  {
    var out: PyText.Scalars = []
    out.reserveCapacity(s.count + s.count / 2)
    var i = 0
    while i < s.count {
      if i + 1 < s.count, first(s[i]), second(s[i + 1]) {
        out.append(contentsOf: replacement(s[i], s[i + 1]))
        i += 2
      } else {
        out.append(s[i])
        i += 1
      }
    }
    return out
  }
}
