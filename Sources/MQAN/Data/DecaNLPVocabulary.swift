import Foundation
import GraphIR
import Runtime

/// What a checkpoint imported from decaNLP (`tools/import_decanlp.py`) holds besides mqan's own
/// metadata, under the `__metadata__` key `decanlp`: what decaNLP's `predict.py` reads from the
/// run's config.json and Field to prepare its input.
public struct DecaNLPImport: Codable, Sendable, Equatable {
  public static let metadataKey = "decanlp"

  /// One set of word vectors in the table's columns, in order (`charngram` or `glove`).
  public struct VectorSet: Codable, Sendable, Equatable {
    public var name: String
    public var dim: Int

    public init(name: String, dim: Int) {
      self.name = name
      self.dim = dim
    }
  }

  /// The Field lower-cases tokens (config.json `lower`; `--preserve_case` turns it off).
  public var lower: Bool
  /// predict.py's batch size (config.json `val_batch_size`).
  public var valBatchSize: Int
  /// predict.py's longest answer (config.json `max_output_length`).
  public var maxOutputLength: Int
  /// The table's vector sets, in column order; empty when unknown (then each `--vectors` file is
  /// plain word vectors).
  public var vectors: [VectorSet]
  /// Words decaNLP's `stoi` maps to the unknown token without an `itos` entry (a lookup in its
  /// defaultdict added them): predict.py never appends them to the vocabulary.
  public var unkWords: [String]

  enum CodingKeys: String, CodingKey {
    case lower, valBatchSize = "val_batch_size", maxOutputLength = "max_output_length", vectors
    case unkWords = "unk_words"
  }

  public init(lower: Bool = true, valBatchSize: Int = 256, maxOutputLength: Int = 100, vectors: [VectorSet] = [],
              unkWords: [String] = []) {
    self.lower = lower
    self.valBatchSize = valBatchSize
    self.maxOutputLength = maxOutputLength
    self.vectors = vectors
    self.unkWords = unkWords
  }

  /// Reads the metadata value; `source` names it in errors (one line naming the field).
  public init(json: String, source: String) throws(DataError) {
    do {
      self = try JSONDecoder().decode(DecaNLPImport.self, from: Data(json.utf8))
    } catch {
      throw .io(path: source, problem: ModelError.describe(decoding: error))
    }
    func check(_ ok: Bool, _ field: String, _ why: String) throws(DataError) {
      if !ok { throw .io(path: source, problem: "field \"\(field)\": \(why)") }
    }
    try check((1...Limits.batch).contains(valBatchSize), "val_batch_size", "must be in 1...\(Limits.batch), got \(valBatchSize)")
    try check((1...Limits.maxOutput).contains(maxOutputLength), "max_output_length",
              "must be in 1...\(Limits.maxOutput), got \(maxOutputLength)")
    for v in vectors {
      try check(["glove", "charngram"].contains(v.name), "vectors", "unknown set \"\(v.name)\" (glove or charngram)")
      try check((1...Limits.width).contains(v.dim), "vectors", "\(v.name) width must be in 1...\(Limits.width), got \(v.dim)")
    }
  }
}

/// decaNLP's `predict.py` vocabulary: before answering, it builds a Field over the data to answer
/// (`new_vocab.build_vocab(*splits)`, over the six fields of each example), appends every word the
/// trained vocabulary lacks (`FIELD.append_vocab`, in the new Field's order) and loads word vectors
/// for the whole vocabulary again. So a word the training data never had still gets its own id
/// (the decoder copies it as an out-of-vocabulary word) and its own word vector, never `<unk>`.
public enum DecaNLPVocabulary {
  /// predict.py's counter over `examples` (one task's data, contexts cut as `predict.py` cuts them):
  /// context, question, answer, `"Context:"`, `"Question:"` and their concatenation
  /// `Context: + context + Question: + question` (util.py `get_context_question`, token lists).
  public static func count(_ examples: [Example], tokenizer: Tokenizer, into counter: inout TokenCounter) {
    let contextSpecial = tokenizer.tokenize("Context:"), questionSpecial = tokenizer.tokenize("Question:")
    for ex in examples {
      for _ in 0..<2 {
        counter.add(ex.context)
        counter.add(ex.question)
        counter.add(contextSpecial)
        counter.add(questionSpecial)
      }
      counter.add(ex.answer)
    }
  }

  /// The words to append to `vocabulary`, in predict.py's order: the new Field's words
  /// (`Vocabulary(counter:)`: by count, then code points; its specials are the Field's own, which
  /// `vocabulary` has under decaNLP's names) without the words `vocabulary` has or `unkWords` holds.
  public static func newWords(_ counter: TokenCounter, vocabulary: Vocabulary, unkWords: [String]) -> [String] {
    let unk = Set(unkWords.map(VocabKey.init))
    return Vocabulary(counter: counter).itos.dropFirst(Vocabulary.specials.count)
      .filter { !vocabulary.contains($0) && !unk.contains(VocabKey($0)) }
  }

  /// `vocabulary` with `words` appended (counts 0).
  public static func appending(_ words: [String], to vocabulary: Vocabulary, source: String) throws(DataError) -> Vocabulary {
    try Vocabulary(itos: vocabulary.itos + words, counts: vocabulary.counts + Array(repeating: 0, count: words.count),
                   source: source)
  }

  /// `table` with one row per word of `words` appended: the concatenation of each vector set's
  /// vector for the word (`token.strip()`, as `Vocab.load_vectors`), zeros where a set has none.
  /// - Throws: `.dtypeMismatch` when `table` is not F32 (checkpoints hold F32 only).
  public static func appendingRows(for words: [String], to table: HostTensor,
                                   sets: [VectorLookup]) throws(HostTensorError) -> HostTensor {
    let width = table.shape[1]
    var values = try table.floats
    values.reserveCapacity(values.count + words.count * width)
    for token in words {
      let word = Tokenizer.stripped(token)
      var row = [Float](repeating: 0, count: width)
      var offset = 0
      for set in sets {
        if let v = set.vector(for: word), offset + v.count <= width {
          row.replaceSubrange(offset..<(offset + v.count), with: v)
        }
        offset += set.dimension
      }
      values += row
    }
    return HostTensor(shape: [table.shape[0] + words.count, width], floats: values)
  }
}

/// One set of word vectors as torchtext looks a word up in it.
public enum VectorLookup: Sendable {
  /// `Vectors.__getitem__` (GloVe): the word's own vector.
  case words(WordVectors)
  /// `CharNGram.__getitem__`: the mean of the vectors of the word's 2-, 3- and 4-grams over
  /// `#BEGIN# c1 ... cn #END#` (keys `2gram-...`) that the file has; none: no vector.
  case charNGrams(WordVectors)

  public var dimension: Int {
    switch self {
    case .words(let v), .charNGrams(let v): v.dimension
    }
  }

  /// The vector torchtext gives `word`, or nil for its zeros (`unk_init`).
  public func vector(for word: String) -> [Float]? {
    switch self {
    case .words(let v):
      return v.vector(for: word).map(Array.init)
    case .charNGrams(let v):
      if word == "<unk>" { return nil }
      let chars = ["#BEGIN#"] + word.unicodeScalars.map { String($0) } + ["#END#"]
      var sum = [Float](repeating: 0, count: v.dimension)
      var found = 0
      for n in 2...4 where chars.count >= n {
        for i in 0...(chars.count - n) {
          guard let g = v.vector(for: "\(n)gram-" + chars[i..<(i + n)].joined()) else { continue }
          for (k, x) in zip(g.indices, g) { sum[k - g.startIndex] += x }
          found += 1
        }
      }
      guard found > 0 else { return nil }
      let n = Float(found)
      return sum.map { $0 / n }
    }
  }
}
