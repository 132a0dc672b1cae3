import Foundation
import Runtime

/// One example's answer: the detokenized text, its score (the sum of the chosen tokens'
/// log-probabilities) and how many tokens were generated (`<eos>` included).
public struct Prediction: Sendable, Equatable {
  public var answer: String
  public var score: Double
  public var tokens: Int

  public init(answer: String, score: Double, tokens: Int) {
    self.answer = answer
    self.score = score
    self.tokens = tokens
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
  /// Longest answer in tokens (`<eos>` included).
  public var maxOutput: Int
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

  /// Answers for `examples`, in their order. `progress` is called after every batch with the
  /// number of examples done so far.
  public func predict(_ examples: [Example], decoder: GreedyDecoder,
                      progress: ((_ done: Int) -> Void)? = nil) throws -> [Prediction] {
    let encoded = examples.map { EncodedExample($0, vocabulary: vocabulary) }
    var predictions = [Prediction](repeating: Prediction(answer: "", score: 0, tokens: 0), count: examples.count)
    // Sorted by context length (the answer is what is being predicted, so it does not count).
    let lengths = encoded.map { (context: max($0.context.count - 2, 0), answer: 0) }
    var done = 0
    for idx in Batching.fixedSize(lengths: lengths, batchSize: batchSize, sorted: true) {
      let batch = EncodedBatch(context: idx.map { encoded[$0].context }, question: idx.map { encoded[$0].question },
                               answer: idx.map { _ in [config.initToken, config.eos] })
      let limitedToFull = batch.limited(generativeVocab: config.generativeVocab).limitedToFull
      let out = try decoder.decodeScored(batch.feed(config: config, embeddings: embeddings), maxLength: maxOutput)
      for (k, row) in out.enumerated() {
        let full = row.tokens.map { $0 < limitedToFull.count ? limitedToFull[$0] : config.unk }
        predictions[idx[k]] = Prediction(answer: tokenizer.detokenize(vocabulary.answerTokens(full)),
                                         score: row.score, tokens: row.tokens.count)
      }
      done += idx.count
      progress?(done)
    }
    return predictions
  }
}
