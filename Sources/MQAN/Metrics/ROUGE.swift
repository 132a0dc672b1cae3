import Foundation

/// ROUGE-1, ROUGE-2 and ROUGE-L F-scores as decaNLP computes them for CNN/DailyMail.
///
/// decaNLP's metrics.py (`computeROUGE` → `compute_rouge_scores`) runs, per example, the Perl
/// ROUGE-1.5.5 script through pyrouge (github.com/andersjo/pyrouge, `Rouge155.score_summary`) with
/// options `-a -c 95 -m -n 2 -w 1.3` and the data directory built by decaNLP's Dockerfile. This is a
/// port of that whole pipeline:
///
/// 1. decaNLP's `split_sentences`: `text.strip().split('.')`, each piece `.split()` on whitespace,
///    empty pieces dropped; one sentence per reference summary (references are models A, B, ...).
/// 2. pyrouge writes each sentence as an HTML ("SEE") line; ROUGE reads it back with
///    `id=[0-9]+>([^<]+)`, so a sentence is cut at its first `<`, and dropped if it starts with one.
/// 3. ROUGE's tokenization (bytes of the UTF-8 text): `tr/A-Z/a-z/`, `-` → ` - `, every byte outside
///    `[A-Za-z0-9-]` (all non-ASCII bytes included) → space; tokens not starting with `[a-z0-9]`
///    (i.e. `-`) are dropped; no stopword removal (without `-s` ROUGE-1.5.5 clears its stopword
///    list); `-m`: tokens longer than 3 characters are stemmed with ROUGE's Porter stemmer. The
///    WordNet exception table is empty: decaNLP's Dockerfile rebuilds `WordNet-2.0.exc.db` with
///    `buildExeptionDB.pl ./WordNet-2.0-Exceptions ./smart_common_words.txt ...`, whose second
///    argument is taken as a file extension and matches no file, so the rebuilt database has 0 keys
///    (reproduced with the same commands); the stemmer alone decides.
/// 4. ROUGE-N (`computeNGramScore`, scoring formula A): n-grams over the summary's tokens (across
///    sentence boundaries); hits clipped per reference and summed over references, as are reference
///    and (once per reference) summary n-gram counts. ROUGE-L (`computeLCSScore`): summary-level
///    union LCS of every reference sentence against all summary sentences (ROUGE's DP and
///    backtrace tie-breaking), hits clipped by the unigram counts of reference and summary;
///    the recall base is the reference token count, the precision base the summary token count.
/// 5. Recall and precision are rounded to 5 decimals (`sprintf "%7.5f"`), F = P·R/(0.5·P + 0.5·R)
///    from the rounded values, rounded again; pyrouge parses those 5-decimal strings. (ROUGE's
///    bootstrap average over one instance is that same value.)
/// 6. decaNLP averages each F over examples and multiplies by 100; `avg_rouge` is the mean of the
///    three.
///
/// Validated against the Perl script run through pyrouge and decaNLP's own `compute_rouge_scores`.
public enum ROUGE {
  public struct Scores: Equatable, Sendable {
    /// decaNLP's `rouge1`, `rouge2`, `rougeL` (percent) and `avg_rouge` = their mean.
    public var rouge1: Double
    public var rouge2: Double
    public var rougeL: Double
    public var average: Double { (rouge1 + rouge2 + rougeL) / 3 }
  }

  /// decaNLP's `computeROUGE`: per-example ROUGE-1.5.5 F-scores averaged over examples (percent).
  public static func corpusScores(predictions: [String], references: [[String]]) -> Scores {
    guard !predictions.isEmpty else { return Scores(rouge1: 0, rouge2: 0, rougeL: 0) }
    var scorer = Scorer()
    var s1 = 0.0, s2 = 0.0, sl = 0.0
    for (i, p) in predictions.enumerated() {
      let f = scorer.example(prediction: p, references: i < references.count ? references[i] : [])
      s1 += f.rouge1
      s2 += f.rouge2
      sl += f.rougeL
    }
    let n = Double(predictions.count)
    return Scores(rouge1: s1 / n * 100, rouge2: s2 / n * 100, rougeL: sl / n * 100)
  }

  /// One example's F-scores as ROUGE-1.5.5 prints them (fractions with 5 decimals, not percent).
  public static func exampleScores(prediction: String, references: [String]) -> Scores {
    var scorer = Scorer()
    return scorer.example(prediction: prediction, references: references)
  }

  /// decaNLP's `split_sentences` followed by ROUGE's SEE-format read (`([^<]+)`, `tr/A-Z/a-z/`).
  static func seeSentences(_ text: String) -> [[UInt8]] {
    var out: [[UInt8]] = []
    for piece in PyText.split(PyText.strip(PyText.scalars(text)), on: ".") where !piece.isEmpty {
      let words = PyText.split(piece)
      if words.isEmpty { continue }
      let line = Array(PyText.string(PyText.joined(words, separator: " ")).utf8)
      let captured = line.prefix { $0 != UInt8(ascii: "<") }
      if captured.isEmpty { continue }
      out.append(captured.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 })
    }
    return out
  }

  /// ROUGE's `readText` clean-up plus the token filter of `createNGram`/`tokenizeText_LCS`:
  /// alphanumeric runs (hyphens are tokens of their own and are then dropped).
  static func rawTokens(_ sentence: [UInt8]) -> [String] {
    var out: [String] = []
    var cur: [UInt8] = []
    func flush() {
      if !cur.isEmpty { out.append(String(decoding: cur, as: UTF8.self)); cur.removeAll() }
    }
    for b in sentence {
      let isAlnum = (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A)
      if isAlnum { cur.append(b) } else { flush() }
    }
    flush()
    return out
  }

  /// `sprintf("%7.5f", x)` read back as a number.
  static func round5(_ x: Double) -> Double {
    Double(String(format: "%.5f", x))!
  }

  static func fScore(hit: Int, modelCount: Int, peerCount: Int) -> Double {
    let r = modelCount != 0 ? round5(Double(hit) / Double(modelCount)) : 0
    let p = peerCount != 0 ? round5(Double(hit) / Double(peerCount)) : 0
    let alpha = 0.5
    let denominator = (1 - alpha) * p + alpha * r
    return denominator > 0 ? round5((p * r) / denominator) : 0
  }

  struct Scorer {
    var stemmer = RougePorterStemmer()
    var vocab: [String: Int] = [:]

    /// Sentences as stemmed token ids.
    mutating func document(_ text: String) -> [[Int]] {
      seeSentences(text).map { sentence in
        rawTokens(sentence).map { raw in
          let t = raw.utf8.count > 3 ? stemmer.stem(raw) : raw
          if let id = vocab[t] { return id }
          let id = vocab.count
          vocab[t] = id
          return id
        }
      }
    }

    mutating func example(prediction: String, references: [String]) -> Scores {
      let peer = document(prediction)
      let models = references.map { document($0) }
      let peerFlat = peer.flatMap { $0 }
      var f = [Double]()
      for n in 1...2 {
        let peerGrams = ngramCounts(peerFlat, n)
        let peerCount = max(peerFlat.count - n + 1, 0)
        var hit = 0, modelCount = 0, peerTotal = 0
        for m in models {
          let flat = m.flatMap { $0 }
          for (g, c) in ngramCounts(flat, n) { hit += min(c, peerGrams[g] ?? 0) }
          modelCount += max(flat.count - n + 1, 0)
          peerTotal += peerCount
        }
        f.append(fScore(hit: hit, modelCount: modelCount, peerCount: peerTotal))
      }
      var peerUnigrams: [Int: Int] = [:]
      for t in peerFlat { peerUnigrams[t, default: 0] += 1 }
      var hit = 0, base = 0, peerTotal = 0
      for m in models {
        var modelUnigrams: [Int: Int] = [:]
        for s in m { for t in s { modelUnigrams[t, default: 0] += 1 } }
        var peerLeft = peerUnigrams
        for s in m {
          var mask = [Bool](repeating: false, count: s.count)
          base += s.count
          for p in peer { markUnionLCS(s, p, &mask) }
          for (j, t) in s.enumerated() where mask[j] {
            if let mc = modelUnigrams[t], mc > 0, let pc = peerLeft[t], pc > 0 {
              hit += 1
              modelUnigrams[t] = mc - 1
              peerLeft[t] = pc - 1
            }
          }
        }
        peerTotal += peerFlat.count
      }
      f.append(fScore(hit: hit, modelCount: base, peerCount: peerTotal))
      return Scores(rouge1: f[0], rouge2: f[1], rougeL: f[2])
    }
  }

  static func ngramCounts(_ t: [Int], _ n: Int) -> [[Int]: Int] {
    var out: [[Int]: Int] = [:]
    if t.count >= n {
      for i in 0...(t.count - n) { out[Array(t[i..<(i + n)]), default: 0] += 1 }
    }
    return out
  }

  /// ROUGE-1.5.5's `lcs_inner` + `markLCS`: the LCS DP (diagonal on a match, else up when
  /// c[i-1][j] >= c[i][j-1], else left) and its backtrace, marking matched model positions.
  static func markUnionLCS(_ model: [Int], _ peer: [Int], _ mask: inout [Bool]) {
    let m = model.count, n = peer.count
    if m == 0 { return }
    let w = n + 1
    var c = [Int](repeating: 0, count: (m + 1) * w)
    // 0: none, 1: diagonal, 2: up, 3: left
    var b = [UInt8](repeating: 0, count: (m + 1) * w)
    if n > 0 {
      for i in 1...m {
        for j in 1...n {
          if model[i - 1] == peer[j - 1] {
            c[i * w + j] = c[(i - 1) * w + j - 1] + 1
            b[i * w + j] = 1
          } else if c[(i - 1) * w + j] >= c[i * w + j - 1] {
            c[i * w + j] = c[(i - 1) * w + j]
            b[i * w + j] = 2
          } else {
            c[i * w + j] = c[i * w + j - 1]
            b[i * w + j] = 3
          }
        }
      }
    }
    var i = m, j = n
    while i != 0 && j != 0 {
      switch b[i * w + j] {
      case 1: i -= 1; j -= 1; mask[i] = true
      case 2: i -= 1
      default: j -= 1
      }
    }
  }
}
