import Foundation
import Runtime

/// The full vocabulary: decaNLP's `field.vocab` (torchtext `Vocab`).
///
/// Ids 0-3 are the specials `<unk> <pad> <init> <eos>` (the ids `ModelConfig` expects), then the
/// counted tokens by decreasing frequency; tokens of equal frequency are in ascending code-point
/// order (torchtext sorts by the token, then stably by frequency; UTF-8 byte order is code-point
/// order). Tokens are revtok tokens as `Tokenizer` makes them, half spaces included, compared byte
/// for byte (Swift's `String ==` would merge canonically equivalent spellings that Python keeps
/// apart). The decoder's generative vocabulary is the first `generativeSize(limit:)` entries.
///
/// decaNLP's `ReversibleField` names its unknown token `" UNK "`; a vocabulary read from decaNLP
/// may carry that at id 0 and is accepted. Ours is `"<unk>"`.
///
/// Saved as JSON (`{"format": "mqan-vocab-1", "itos": [...], "counts": [...]}`) for checkpoint
/// metadata.
public struct Vocabulary: Sendable, Equatable {
  /// The special tokens at ids 0-3.
  public static let specials = ["<unk>", "<pad>", "<init>", "<eos>"]
  public static let unk = 0, pad = 1, initToken = 2, eos = 3
  /// The unknown token of a decaNLP `ReversibleField`, accepted at id 0 when loading.
  public static let decaNLPUnk = " UNK "
  static let format = "mqan-vocab-1"

  /// Id -> token.
  public let itos: [String]
  /// Id -> how often the token was counted (0 for the specials).
  public let counts: [Int]
  private let stoi: [VocabKey: Int]

  /// Number of entries, specials included.
  public var count: Int { itos.count }

  /// A vocabulary with exactly these entries; `source` names it in errors.
  /// - Throws: `.vocabulary` when the specials are not at ids 0-3, a token repeats, or `counts`
  ///   has the wrong length.
  public init(itos: [String], counts: [Int]? = nil, source: String = "vocabulary") throws(DataError) {
    guard itos.count >= 4, itos[0] == Self.specials[0] || itos[0] == Self.decaNLPUnk,
          Array(itos[1..<4]) == Array(Self.specials[1...]) else {
      throw .vocabulary(path: source, problem: "the first entries must be \(Self.specials), got \(Array(itos.prefix(4)))")
    }
    let counts = counts ?? Array(repeating: 0, count: itos.count)
    guard counts.count == itos.count else {
      throw .vocabulary(path: source, problem: "\(itos.count) tokens but \(counts.count) counts")
    }
    var stoi: [VocabKey: Int] = [:]
    stoi.reserveCapacity(itos.count)
    for (i, t) in itos.enumerated() {
      if let j = stoi.updateValue(i, forKey: VocabKey(t)) {
        throw .vocabulary(path: source, problem: "token \(Self.quoted(t)) appears twice (ids \(j) and \(i))")
      }
    }
    self.itos = itos
    self.counts = counts
    self.stoi = stoi
  }

  /// torchtext's `Vocab(counter, max_size:, min_freq:, specials:)`: specials, then every token
  /// counted at least `minFrequency` times by decreasing count, ties in code-point order, at most
  /// `maxSize` of them (specials not included, as torchtext; decaNLP passes 1,000,000).
  public init(counter: TokenCounter, maxSize: Int? = nil, minFrequency: Int = 1) {
    let special = Set(Self.specials.map(VocabKey.init))
    var words = counter.counts.filter { !special.contains($0.key) && $0.value >= max(minFrequency, 1) }
      .map { (token: $0.key.string, count: $0.value) }
    words.sort { a, b in
      a.count != b.count ? a.count > b.count : a.token.utf8.lexicographicallyPrecedes(b.token.utf8)
    }
    if let maxSize, words.count > maxSize { words.removeSubrange(max(maxSize, 0)...) }
    do throws(DataError) {
      try self.init(itos: Self.specials + words.map(\.token), counts: [0, 0, 0, 0] + words.map(\.count))
    } catch {
      preconditionFailure("Vocabulary: counted tokens are unique and exclude the specials: \(error)")
    }
  }

  /// The id of `token`, or `<unk>`'s id 0 when it is not in the vocabulary.
  public func id(of token: String) -> Int { stoi[VocabKey(token)] ?? Self.unk }

  /// Whether `token` has an entry.
  public func contains(_ token: String) -> Bool { stoi[VocabKey(token)] != nil }

  /// `<init> w1 .. wn <eos>` as full-vocabulary ids.
  public func encode(_ tokens: [String]) -> [Int] {
    var ids = [Self.initToken]
    ids.reserveCapacity(tokens.count + 2)
    for t in tokens { ids.append(id(of: t)) }
    ids.append(Self.eos)
    return ids
  }

  /// The size of the generative (decoder) vocabulary for a model limit V: `min(count, V)`; the
  /// generative vocabulary is the first that many entries, so a generative id is its full id.
  public func generativeSize(limit: Int) -> Int { min(count, limit) }

  /// decaNLP's `ReversibleField.reverse` before detokenizing: the tokens of full-vocabulary `ids`
  /// up to the first `<eos>`, without `<init>` and `<pad>`. `<unk>` becomes `" <unk> "` so that
  /// `Tokenizer.detokenize` spaces it as decaNLP spaces its `" UNK "`.
  public func answerTokens(_ ids: [Int]) -> [String] {
    var out: [String] = []
    for id in ids {
      if id == Self.eos { break }
      if id == Self.initToken || id == Self.pad { continue }
      if id == Self.unk || id < 0 || id >= count {
        out.append(itos[Self.unk] == Self.specials[0] ? " <unk> " : itos[Self.unk])
      } else {
        out.append(itos[id])
      }
    }
    return out
  }

  // MARK: JSON

  private struct File: Codable {
    var format: String
    var itos: [String]
    var counts: [Int]?
  }

  /// The vocabulary as JSON.
  public func jsonData() -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    do {
      return try encoder.encode(File(format: Self.format, itos: itos, counts: counts))
    } catch {
      preconditionFailure("Vocabulary: encoding strings and ints as JSON cannot fail: \(error)")
    }
  }

  /// Reads a vocabulary written by `jsonData()`; `source` names it in errors.
  public init(jsonData: Data, source: String) throws(DataError) {
    let file: File
    do {
      file = try JSONDecoder().decode(File.self, from: jsonData)
    } catch {
      throw .vocabulary(path: source, problem: ModelError.describe(decoding: error))
    }
    guard file.format == Self.format else {
      throw .vocabulary(path: source, problem: "format is \"\(file.format)\", expected \"\(Self.format)\"")
    }
    try self.init(itos: file.itos, counts: file.counts, source: source)
  }

  /// Writes the JSON form to `path` atomically.
  public func save(to path: String) throws(DataError) {
    do {
      try AtomicFile.write(Array(jsonData()), to: path)
    } catch {
      throw .io(path: path, problem: error.description)
    }
  }

  /// Reads a vocabulary file written by `save(to:)`.
  public static func load(from path: String) throws(DataError) -> Vocabulary {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw .io(path: path, problem: "cannot read: \(error.localizedDescription)")
    }
    return try Vocabulary(jsonData: data, source: path)
  }

  /// `t` in quotes with its half spaces visible, for messages.
  static func quoted(_ t: String) -> String { "\"\(t)\"" }
}

/// Token counts for building a `Vocabulary` (torchtext's `Counter` in `Field.build_vocab`).
public struct TokenCounter: Sendable, Equatable {
  /// Which token lists of an example are counted.
  public enum Fields: String, Sendable, Codable, CaseIterable {
    /// The context, question and answer tokens, once each.
    case contextQuestionAnswer
    /// decaNLP's six fields of one shared `FIELD`: context, question, answer, `"Context:"`,
    /// `"Question:"`, and `"Context: <context> Question: <question>"` tokenized as one string. So
    /// context and question words count about twice, and `" context "`, `" question "`, `": "`
    /// enter the vocabulary. Reproduces decaNLP's vocabulary order.
    case decaNLP
  }

  var counts: [VocabKey: Int] = [:]

  public init() {}

  /// Number of distinct tokens.
  public var distinct: Int { counts.count }

  /// How often `token` was counted.
  public func count(of token: String) -> Int { counts[VocabKey(token)] ?? 0 }

  /// Counts each token of `tokens` once.
  public mutating func add<S: Sequence>(_ tokens: S) where S.Element == String {
    for t in tokens { counts[VocabKey(t), default: 0] += 1 }
  }

  /// Counts `example`'s tokens as `fields` says (its tokens as loaded, before any truncation:
  /// decaNLP builds its vocabulary before it filters or truncates examples).
  public mutating func add(_ example: Example, fields: Fields = .contextQuestionAnswer, tokenizer: Tokenizer = Tokenizer()) {
    add(example.context)
    add(example.question)
    add(example.answer)
    guard fields == .decaNLP else { return }
    add(tokenizer.tokenize("Context:"))
    add(tokenizer.tokenize("Question:"))
    add(tokenizer.tokenize("Context: " + example.raw.context + " Question: " + example.raw.question))
  }
}

/// A token compared and hashed byte for byte (Python `str` semantics), not by Unicode canonical
/// equivalence as Swift's `String` is. Unlike the metrics' `TokenKey` (`[UInt8]`) it keeps the
/// `String`, so counting and looking up millions of tokens allocates nothing per token.
struct VocabKey: Hashable, Sendable {
  let string: String

  init(_ string: String) { self.string = string }

  static func == (a: VocabKey, b: VocabKey) -> Bool {
    a.string.utf8.count == b.string.utf8.count && a.string.utf8.elementsEqual(b.string.utf8)
  }

  func hash(into hasher: inout Hasher) {
    // Same bytes, same hash, whether or not the string's UTF-8 is stored contiguously.
    let done: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    if done == nil { Array(string.utf8).withUnsafeBytes { hasher.combine(bytes: $0) } }
  }
}
