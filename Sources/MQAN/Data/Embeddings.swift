import Foundation
import GraphIR
import Runtime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pre-trained word vectors in GloVe text format: one `word v1 v2 ... vD` per line.
///
/// Read as torchtext's `Vectors.cache` reads them (decaNLP's `vocab.py`): each line is stripped of
/// trailing whitespace and split on single spaces only (a word may hold other whitespace, such as
/// a no-break space); the dimension is the number of values on the first line; a word that
/// appears twice keeps its last vector. Differences, each one a choice: a line whose value count
/// differs from the first line's is an error naming file and line (torchtext also raises), but
/// only the first line may be a one-value header (word2vec's `count dim`; torchtext skips such a
/// line anywhere); blank lines are skipped; a value must be a finite decimal number (Python's
/// `float` also takes `nan`, `inf`); a word that is not valid UTF-8 is skipped and counted, as
/// torchtext's byte-mode fallback does.
///
/// The file is mapped (or read) once and parsed in place, no `String` per value: each value is
/// read correctly rounded to `Double` (Clinger's exact fast path for short decimals such as
/// GloVe's, `strtod` otherwise) and then rounded to `Float`, as Python's `float` then
/// `torch.Tensor` do. About 280 MB/s in release builds (86 MB, 10.1M values in 0.31 s).
public struct WordVectors: Sendable {
  /// The file the vectors came from.
  public let path: String
  /// D, the number of values per word.
  public let dimension: Int
  /// The words in file order (duplicates included).
  public let words: [String]
  /// `words.count * dimension` values, row-major.
  public let values: [Float]
  /// Words skipped because they were not valid UTF-8.
  public let skippedInvalidUTF8: Int
  private let index: [VocabKey: Int]

  /// Reads the file at `path` (memory-mapped where the system allows).
  /// - Throws: `.io` when it cannot be read, `.vectors` (file and line) for a malformed line.
  public static func load(path: String) throws(DataError) -> WordVectors {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    } catch {
      throw .io(path: path, problem: "cannot read: \(error.localizedDescription)")
    }
    return try WordVectors(parsing: data, path: path)
  }

  /// Parses GloVe text; `path` names it in errors.
  public init(parsing data: Data, path: String) throws(DataError) {
    // Every value must be followed by a byte that stops strtod inside the buffer; a last line
    // without a newline gets one in a copy.
    let terminated = data.last.map(Self.isSpace) ?? true
    let bytes = terminated ? data : data + [0x0A]
    let result: Result<Parsed, DataError> = bytes.withUnsafeBytes { raw in
      do throws(DataError) {
        return .success(try Self.parse(raw.bindMemory(to: UInt8.self), path: path))
      } catch {
        return .failure(error)
      }
    }
    let parsed = try result.get()
    self.path = path
    dimension = parsed.dimension
    words = parsed.words
    values = parsed.values
    skippedInvalidUTF8 = parsed.skipped
    var index: [VocabKey: Int] = [:]
    index.reserveCapacity(words.count)
    for (i, w) in words.enumerated() { index[VocabKey(w)] = i }  // the last duplicate wins
    self.index = index
  }

  /// Number of rows (words in the file, duplicates included).
  public var count: Int { words.count }

  /// The vector of `word`, compared byte for byte, or nil.
  public func vector(for word: String) -> ArraySlice<Float>? {
    guard let i = index[VocabKey(word)] else { return nil }
    return values[(i * dimension)..<((i + 1) * dimension)]
  }

  /// decaNLP's embedding table for `vocabulary`: `[vocabulary.count, dimension]`, row i the vector
  /// of `Tokenizer.stripped(itos[i])` (decaNLP looks up `token.strip()`), zeros where the file
  /// has no such word (torchtext's `unk_init` default, `zero_`).
  public func table(for vocabulary: Vocabulary) -> HostTensor {
    Self.table(for: vocabulary, concatenating: [self])
  }

  /// Several vector sets side by side, decaNLP's `load_vectors(cat=True)`: row i is the
  /// concatenation of each set's row (decaNLP: `[CharNGram 100 ; GloVe 300]`).
  public static func table(for vocabulary: Vocabulary, concatenating sets: [WordVectors]) -> HostTensor {
    let width = sets.reduce(0) { $0 + $1.dimension }
    var out = [Float](repeating: 0, count: vocabulary.count * width)
    for (row, token) in vocabulary.itos.enumerated() {
      let word = Tokenizer.stripped(token)
      var offset = row * width
      for set in sets {
        if let v = set.vector(for: word) {
          out.replaceSubrange(offset..<(offset + set.dimension), with: v)
        }
        offset += set.dimension
      }
    }
    return HostTensor(shape: [vocabulary.count, width], floats: out)
  }

  /// How much of `vocabulary` these vectors cover.
  public func coverage(of vocabulary: Vocabulary, listing limit: Int = 20) -> EmbeddingCoverage {
    var c = EmbeddingCoverage()
    for (id, token) in vocabulary.itos.enumerated() where id >= Vocabulary.specials.count {
      let word = Tokenizer.stripped(token)
      c.words += 1
      c.occurrences += vocabulary.counts[id]
      if vector(for: word) != nil {
        c.found += 1
        c.occurrencesFound += vocabulary.counts[id]
      } else if c.mostFrequentMissing.count < limit {
        c.mostFrequentMissing.append(word)  // itos is in decreasing-count order
      }
    }
    return c
  }

  private struct Parsed {
    var dimension = 0
    var words: [String] = []
    var values: [Float] = []
    var skipped = 0
  }

  /// The decimal number at `buf[p...]` as Python's `float` reads it (correctly rounded to
  /// `Double`) and the bytes it takes, or nil when it is not finite or not decimal (hex, `inf`).
  /// Numbers of at most 19 significant digits and a power of ten within 10^±22 take Clinger's
  /// exact fast path (one correctly rounded multiply or divide), as GloVe's values all do;
  /// others go through `strtod`.
  static func number(_ buf: UnsafeBufferPointer<UInt8>, at p: Int) -> (Double, Int)? {
    var i = p
    let negative = buf[i] == 0x2D
    if buf[i] == 0x2D || buf[i] == 0x2B { i += 1 }
    var mantissa: UInt64 = 0, significant = 0, exponent = 0, digits = 0
    func digit(_ b: UInt8) -> UInt64? { b >= 0x30 && b <= 0x39 ? UInt64(b - 0x30) : nil }
    while let d = digit(buf[i]) {
      if mantissa > 0 || d > 0 { significant += 1 }
      if significant <= 19 { mantissa = mantissa * 10 + d } else { exponent += 1 }
      digits += 1
      i += 1
    }
    if buf[i] == 0x2E {
      i += 1
      while let d = digit(buf[i]) {
        if mantissa > 0 || d > 0 { significant += 1 }
        if significant <= 19 { mantissa = mantissa * 10 + d; exponent -= 1 }
        digits += 1
        i += 1
      }
    }
    guard digits > 0 else { return nil }
    if buf[i] == 0x65 || buf[i] == 0x45 {  // e, E
      i += 1
      let negativeExponent = buf[i] == 0x2D
      if buf[i] == 0x2D || buf[i] == 0x2B { i += 1 }
      var e = 0, expDigits = 0
      while let d = digit(buf[i]) {
        e = min(e * 10 + Int(d), 100_000)
        expDigits += 1
        i += 1
      }
      guard expDigits > 0 else { return nil }
      exponent += negativeExponent ? -e : e
    }
    if significant <= 19 && mantissa <= 1 << 53 && abs(exponent) <= 22 {
      let m = Double(mantissa)
      let v = exponent < 0 ? m / powersOfTen[-exponent] : m * powersOfTen[exponent]
      return (negative ? -v : v, i - p)
    }
    var stop: UnsafeMutablePointer<CChar>?
    let base = UnsafeMutableRawPointer(mutating: buf.baseAddress! + p)
    let v = strtod(base.assumingMemoryBound(to: CChar.self), &stop)
    guard let stop, UnsafeMutableRawPointer(stop) - base == i - p, v.isFinite else { return nil }
    return (v, i - p)
  }

  private static let powersOfTen: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

  static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) || (0x1C...0x1F).contains(b) }

  /// The parser over the whole file, which ends in a whitespace byte.
  private static func parse(_ buf: UnsafeBufferPointer<UInt8>, path: String) throws(DataError) -> Parsed {
    let n = buf.count
    var out = Parsed()
    var lineNumber = 0
    var start = 0
    var firstVectorLine = 0
    var scratch: [Float] = []
    while start < n {
      lineNumber += 1
      var newline = start
      while newline < n && buf[newline] != 0x0A { newline += 1 }
      var end = newline
      while end > start && isSpace(buf[end - 1]) { end -= 1 }  // Python's line.rstrip()
      defer { start = newline + 1 }
      if end == start { continue }
      var wordEnd = start
      while wordEnd < end && buf[wordEnd] != 0x20 { wordEnd += 1 }
      // The values, split on single spaces; each must end exactly at a space or the line's end.
      scratch.removeAll(keepingCapacity: true)
      var p = wordEnd
      while p < end {
        p += 1  // the separating space
        let first = buf[p]
        guard first == 0x2B || first == 0x2D || first == 0x2E || (0x30...0x39).contains(first) else {
          let what = first == 0x20 ? "empty (two spaces in a row)" : "not a number"
          throw .vectors(path: path, line: lineNumber, problem: "value \(scratch.count + 1) is \(what)")
        }
        guard let (v, used) = number(buf, at: p), p + used == end || buf[p + used] == 0x20 else {
          throw .vectors(path: path, line: lineNumber, problem: "value \(scratch.count + 1) is not a finite decimal number")
        }
        guard Float(v).isFinite else {
          throw .vectors(path: path, line: lineNumber,
                         problem: "value \(scratch.count + 1) is \(v), outside the range of 32-bit floats")
        }
        scratch.append(Float(v))
        p += used
      }
      if out.words.isEmpty && out.dimension == 0 && scratch.count == 1 { continue }  // a `count dim` header
      if out.dimension == 0 {
        guard scratch.count <= Limits.width else {
          throw .vectors(path: path, line: lineNumber, problem: "\(scratch.count) values, more than mqan's limit of \(Limits.width)")
        }
        guard scratch.count >= 1 else {
          throw .vectors(path: path, line: lineNumber, problem: "a word without values")
        }
        out.dimension = scratch.count
        firstVectorLine = lineNumber
      } else if scratch.count != out.dimension {
        throw .vectors(path: path, line: lineNumber, problem: "\(scratch.count) values, but line \(firstVectorLine) has \(out.dimension)")
      }
      guard let word = String(validating: UnsafeBufferPointer(rebasing: buf[start..<wordEnd]), as: UTF8.self) else {
        out.skipped += 1
        continue
      }
      out.words.append(word)
      out.values.append(contentsOf: scratch)
    }
    return out
  }
}

/// How many vocabulary words (specials excluded) a set of word vectors covers, by entry and by
/// counted occurrence.
public struct EmbeddingCoverage: Sendable, Equatable, CustomStringConvertible {
  public var words = 0, found = 0
  public var occurrences = 0, occurrencesFound = 0
  /// The most frequent words without a vector, stripped of their half spaces.
  public var mostFrequentMissing: [String] = []

  public var description: String {
    func pct(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : String(format: "%.1f%%", 100 * Double(a) / Double(b)) }
    return "\(found)/\(words) words (\(pct(found, words))), \(occurrencesFound)/\(occurrences) occurrences "
      + "(\(pct(occurrencesFound, occurrences))) have vectors"
  }
}
