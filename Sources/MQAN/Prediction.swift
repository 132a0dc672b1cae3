import Foundation
import Runtime

/// One example's answer: the detokenized text, its score (the sum of the chosen tokens'
/// log-probabilities) and how many tokens were generated (`<eos>` included).
public struct Prediction: Sendable, Equatable {
  public var answer: String
  public var score: Double
  public var tokens: Int
  /// The n-best answers with their scores, best first (the answer itself alone with greedy).
  public var nBest: [(answer: String, score: Double)]

  public init(answer: String, score: Double, tokens: Int, nBest: [(answer: String, score: Double)]? = nil) {
    self.answer = answer
    self.score = score
    self.tokens = tokens
    self.nBest = nBest ?? [(answer, score)]
  }

  public static func == (a: Prediction, b: Prediction) -> Bool {
    a.answer == b.answer && a.score == b.score && a.tokens == b.tokens
      && a.nBest.map(\.answer) == b.nBest.map(\.answer) && a.nBest.map(\.score) == b.nBest.map(\.score)
  }
}

/// Examples to detokenized answers: the shared step of validation (`Trainer`) and `mqan predict`.
///
/// Examples are encoded with the vocabulary, sorted by length and cut into fixed-size batches
/// (`Batching.fixedSize`, as decaNLP's validation and prediction iterators), every batch is
/// greedy-decoded, and the answers come back in the examples' order: limited ids mapped to the
/// full vocabulary, then `Vocabulary.answerTokens` and `Tokenizer.detokenize`.
public struct Predictor {
  public let config: ModelConfig
  public let vocabulary: Vocabulary
  /// The word-vector table the batches are fed with.
  public var embeddings: HostTensor
  /// Examples per batch.
  public var batchSize: Int
  /// Token budget of a batch (count x longest context + question, padded); nil: `batchSize`
  /// examples per batch.
  public var batchTokens: Int?
  /// Longest answer in tokens (`<eos>` included).
  public var maxOutput: Int
  /// Beam search instead of greedy (beam, n-best, length penalty); nil: greedy.
  public var beam: (size: Int, nBest: Int, lengthPenalty: Double)?
  /// Decode over a vocabulary shortlist per batch (the decoder must be built with `shortlist`).
  public var shortlist: Shortlist?
  /// Sort by context, then gold answer length, as decaNLP's `predict.py` iterator does (its
  /// batches then hold the same examples); otherwise by context length only.
  public var sortsByAnswer = false
  /// This process's share of the batches in a job of several ranks (`PredictionShards.owners`):
  /// only the batches it owns are decoded, the other examples' answers are left empty.
  public var shard: (rank: Int, size: Int) = (0, 1)
  let tokenizer = Tokenizer()

  public init(config: ModelConfig, vocabulary: Vocabulary, embeddings: HostTensor, batchSize: Int = 64,
              maxOutput: Int = 50) {
    precondition(batchSize >= 1 && maxOutput >= 1, "Predictor: batchSize and maxOutput must be >= 1")
    self.config = config
    self.vocabulary = vocabulary
    self.embeddings = embeddings
    self.batchSize = batchSize
    self.maxOutput = maxOutput
  }

  /// Answers for `examples` (of `task`, which picks the shortlist's answer words), in their
  /// order (with a `shard`, those of this rank's batches: `PredictionShards.owned`). `progress` is called after every batch with the number of examples done so far, and
  /// the batch's shortlist size when there is one.
  public func predict(_ examples: [Example], task: String? = nil, decoder: MQANDecoder,
                      shortlistSize: ((Int) -> Void)? = nil,
                      progress: ((_ done: Int) -> Void)? = nil) throws -> [Prediction] {
    try predictShare(examples, task: task, decoder: decoder, shortlistSize: shortlistSize, progress: progress).predictions
  }

  /// `predict`, and the positions of the examples this rank answered (all of them without a `shard`).
  public func predictShare(_ examples: [Example], task: String? = nil, decoder: MQANDecoder,
                           shortlistSize: ((Int) -> Void)? = nil,
                           progress: ((_ done: Int) -> Void)? = nil) throws -> (predictions: [Prediction], owned: [Int]) {
    let encoded = examples.map { EncodedExample($0, vocabulary: vocabulary) }
    var predictions = [Prediction](repeating: Prediction(answer: "", score: 0, tokens: 0), count: examples.count)
    // Sorted by length (the answer is what is being predicted, so it does not count).
    let lengths = encoded.map {
      (context: max($0.context.count - 2, 0), answer: sortsByAnswer ? max($0.answer.count - 2, 0) : 0)
    }
    let batches = batchTokens.map { budget in
      Batching.tokenBudget(lengths: encoded.map { $0.context.count + $0.question.count }, tokens: budget,
                           maxCount: batchSize)
    } ?? Batching.fixedSize(lengths: lengths, batchSize: batchSize, sorted: true)
    let owners = PredictionShards.owners(batches: batches.map { idx in
      idx.count * (idx.map { encoded[$0].context.count + encoded[$0].question.count }.max() ?? 0)
    }, ranks: shard.size)
    var done = 0
    var owned: [Int] = []
    for (b, idx) in batches.enumerated() where owners[b] == shard.rank {
      try decodeBatch(idx.map { encoded[$0] }, task: task, decoder: decoder, shortlistSize: shortlistSize) { k, p in
        predictions[idx[k]] = p
      }
      done += idx.count
      owned += idx
      progress?(done)
    }
    return (predictions, owned.sorted())
  }

  /// Decodes one batch of encoded examples (in this order, as one batch): `finished(k, answer)`
  /// hears example `k`'s answer as soon as it is final (`BeamSearchHooks`), once per example.
  /// Greedy unless `beam`.
  public func decodeBatch(_ examples: [EncodedExample], task: String? = nil, decoder: MQANDecoder,
                          shortlistSize: ((Int) -> Void)? = nil,
                          finished: @escaping (Int, Prediction) -> Void) throws {
    let batch = EncodedBatch(context: examples.map(\.context), question: examples.map(\.question),
                             answer: examples.map { _ in [config.initToken, config.eos] })
    let limitedToFull = batch.limited(generativeVocab: config.generativeVocab).limitedToFull
    let feed = batch.feed(config: config, embeddings: embeddings)
    let ids = shortlist.map {
      $0.ids(generativeVocab: config.generativeVocab, task: task, contexts: batch.context, questions: batch.question)
    }
    if let ids { shortlistSize?(ids.count) }
    let hooks = BeamSearchHooks(finished: { k, hyps in finished(k, prediction(hyps, limitedToFull: limitedToFull)) })
    _ = try decoder.beamSearch(feed, options: searchOptions, shortlist: ids, hooks: hooks)
  }

  /// The search `decodeBatch` runs: greedy, or `beam`.
  public var searchOptions: BeamSearchOptions {
    beam.map {
      BeamSearchOptions(beamSize: $0.size, maxLength: maxOutput, lengthPenalty: $0.lengthPenalty, nBest: $0.nBest,
                        eos: Int32(config.eos), initToken: Int32(config.initToken))
    } ?? BeamSearchOptions.greedy(maxLength: maxOutput, eos: Int32(config.eos), initToken: Int32(config.initToken))
  }

  /// An example's answer from its n-best (limited ids, `searchOptions`) and its limited -> full
  /// map: greedy scores are the raw sum of log-probabilities (as `decodeScored`), beam scores the
  /// length-normalized ones, with the n-best.
  public func prediction(_ hyps: [BeamHypothesis], limitedToFull: [Int]) -> Prediction {
    prediction(hyps) { k in k >= 0 && k < limitedToFull.count ? limitedToFull[k] : nil }
  }

  /// `prediction(_:limitedToFull:)` with the map as its out-of-vocabulary words.
  public func prediction(_ hyps: [BeamHypothesis], toFull map: LimitedToFull) -> Prediction {
    prediction(hyps) { map[$0] }
  }

  private func prediction(_ hyps: [BeamHypothesis], full: (Int) -> Int?) -> Prediction {
    func text(_ tokens: [Int32]) -> String {
      tokenizer.detokenize(vocabulary.answerTokens(tokens.map { full(Int($0)) ?? config.unk }))
    }
    if beam == nil {
      let best = hyps.first
      return Prediction(answer: text(best?.tokens ?? []), score: Double(best?.score ?? 0), tokens: best?.tokens.count ?? 0)
    }
    let best = hyps.map { (answer: text($0.tokens), score: Double($0.normalizedScore)) }
    return Prediction(answer: best.first?.answer ?? "", score: best.first?.score ?? 0,
                      tokens: hyps.first?.tokens.count ?? 0, nBest: best)
  }
}
