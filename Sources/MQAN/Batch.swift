import Runtime

/// One batch in the form the forward graph takes: full ids, limited (decoder) ids with per-batch
/// OOV numbering, lengths, and the limited -> full map.
public struct EncodedBatch: Sendable {
  public var context: [[Int]], question: [[Int]], answer: [[Int]]

  /// Sequences are `<init> w1 .. wn <eos>` (ids in the full vocabulary); padded with `<pad>`.
  public init(context: [[Int]], question: [[Int]], answer: [[Int]]) {
    self.context = context
    self.question = question
    self.answer = answer
  }

  /// decaNLP's per-batch OOV ids: every token of context, question and answer (in that field
  /// order, row by row) whose id is not below V gets V + k, k its order of first appearance.
  public func limited(generativeVocab v: Int) -> (context: [[Int]], question: [[Int]], answer: [[Int]], limitedToFull: [Int]) {
    let l = limitedIds(generativeVocab: v)
    return (l.context, l.question, l.answer, l.toFull.array)
  }

  /// `limited`, with the limited -> full map kept as its out-of-vocabulary words only (the
  /// generative ids map to themselves): no table of the whole generative vocabulary per call.
  public func limitedIds(generativeVocab v: Int) -> (context: [[Int]], question: [[Int]], answer: [[Int]], toFull: LimitedToFull) {
    var oov: [Int: Int] = [:]
    var words: [Int] = []
    func map(_ rows: [[Int]]) -> [[Int]] {
      rows.map { row in
        row.map { id in
          if id < v { return id }
          if let k = oov[id] { return k }
          let k = v + oov.count
          oov[id] = k
          words.append(id)
          return k
        }
      }
    }
    // decaNLP numbers OOVs over the whole batch field by field: all contexts, then questions, then answers.
    let c = map(context), q = map(question), a = map(answer)
    return (c, q, a, LimitedToFull(generative: v, outOfVocabulary: words))
  }

  /// The feed dict of the forward graph, padded with `pad`.
  public func feed(config: ModelConfig, embeddings: HostTensor) -> [String: HostTensor] {
    let lim = limited(generativeVocab: config.generativeVocab)
    func padded(_ rows: [[Int]]) -> HostTensor {
      let width = rows.map(\.count).max() ?? 0
      var flat = [Int32](repeating: Int32(config.pad), count: rows.count * width)
      for (i, r) in rows.enumerated() { for (j, id) in r.enumerated() { flat[i * width + j] = Int32(id) } }
      return HostTensor(shape: [rows.count, width], int32s: flat)
    }
    func lengths(_ rows: [[Int]]) -> HostTensor {
      HostTensor(shape: [rows.count], int32s: rows.map { Int32($0.count) })
    }
    return [
      "embeddings": embeddings,
      "context": padded(context), "context_limited": padded(lim.context), "context_lengths": lengths(context),
      "question": padded(question), "question_limited": padded(lim.question), "question_lengths": lengths(question),
      "answer": padded(answer), "answer_limited": padded(lim.answer),
      "limited_to_full": HostTensor(shape: [lim.limitedToFull.count], int32s: lim.limitedToFull.map { Int32($0) }),
    ]
  }

  /// A batch of random words (uniform over the non-special ids of a `vocab`-word vocabulary),
  /// every sequence at full length, for timing.
  public static func synthetic(batch: Int, context: Int, question: Int, answer: Int, vocab: Int,
                               config: ModelConfig, seed: UInt64) -> EncodedBatch {
    var rng = SeededRandom(seed: seed)
    func seq(_ len: Int) -> [Int] {
      [config.initToken] + (0..<max(len - 2, 0)).map { _ in 4 + Int(rng.next() % UInt64(max(vocab - 4, 1))) }
        + [config.eos]
    }
    return EncodedBatch(context: (0..<batch).map { _ in seq(context) },
                        question: (0..<batch).map { _ in seq(question) },
                        answer: (0..<batch).map { _ in seq(answer) })
  }

  /// A random fixed embedding table `[vocab, E]`.
  public static func randomEmbeddings(vocab: Int, config: ModelConfig, seed: UInt64) -> HostTensor {
    var rng = SeededRandom(seed: seed)
    let n = vocab * config.embeddingDim
    return HostTensor(shape: [vocab, config.embeddingDim], floats: (0..<n).map { _ in rng.uniform(-0.5, 0.5) })
  }
}

/// Limited (decoder) ids -> full vocabulary ids: the first `generative` ids are the same in both,
/// the out-of-vocabulary words follow in order of first appearance (`EncodedBatch.limitedIds`).
public struct LimitedToFull: Sendable, Equatable {
  public var generative: Int
  /// Full ids of the limited ids `generative`, `generative + 1`, ...
  public var outOfVocabulary: [Int]

  public init(generative: Int, outOfVocabulary: [Int]) {
    self.generative = generative
    self.outOfVocabulary = outOfVocabulary
  }

  /// Limited ids mapped.
  public var count: Int { generative + outOfVocabulary.count }

  /// The full id of limited id `k`; nil outside `0..<count`.
  public subscript(k: Int) -> Int? {
    if k < 0 { return nil }
    if k < generative { return k }
    return k - generative < outOfVocabulary.count ? outOfVocabulary[k - generative] : nil
  }

  /// The whole map as a table (what `EncodedBatch.limited` returns).
  public var array: [Int] { Array(0..<generative) + outOfVocabulary }
}
