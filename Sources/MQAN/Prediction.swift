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
      let batch = EncodedBatch(context: idx.map { encoded[$0].context }, question: idx.map { encoded[$0].question },
                               answer: idx.map { _ in [config.initToken, config.eos] })
      let limitedToFull = batch.limited(generativeVocab: config.generativeVocab).limitedToFull
      let feed = batch.feed(config: config, embeddings: embeddings)
      let ids = shortlist.map {
        $0.ids(generativeVocab: config.generativeVocab, task: task, contexts: batch.context, questions: batch.question)
      }
      if let ids { shortlistSize?(ids.count) }
      func text(_ tokens: [Int]) -> String {
        let full = tokens.map { $0 < limitedToFull.count ? limitedToFull[$0] : config.unk }
        return tokenizer.detokenize(vocabulary.answerTokens(full))
      }
      if let beam {
        let options = BeamSearchOptions(beamSize: beam.size, maxLength: maxOutput, lengthPenalty: beam.lengthPenalty,
                                        nBest: beam.nBest, eos: Int32(config.eos), initToken: Int32(config.initToken))
        for (k, hyps) in try decoder.beamSearch(feed, options: options, shortlist: ids).enumerated() {
          let best = hyps.map { (answer: text($0.tokens.map(Int.init)), score: Double($0.normalizedScore)) }
          predictions[idx[k]] = Prediction(answer: best.first?.answer ?? "", score: best.first?.score ?? 0,
                                           tokens: hyps.first?.tokens.count ?? 0, nBest: best)
        }
      } else {
        let out = try decoder.decodeScored(feed, maxLength: maxOutput, shortlist: ids)
        for (k, row) in out.enumerated() {
          predictions[idx[k]] = Prediction(answer: text(row.tokens), score: row.score, tokens: row.tokens.count)
        }
      }
      done += idx.count
      owned += idx
      progress?(done)
    }
    return (predictions, owned.sorted())
  }
}
