import Compiler
import Foundation
import GraphIR
import Runtime

/// Greedy decoding with the `encode` plan and the teacher-forced decoder over a growing answer
/// prefix: the encoder runs once per batch, the decoder once per output step.
///
/// Each step re-runs the decoder over the whole prefix (O(T²) decoder work). That is exact and
/// simple; the `decode-step` plan with key/value caches (the inference issue) makes it linear.
public final class GreedyDecoder {
  public let config: ModelConfig
  public let mode: DecoderMode
  let encoder: Executor
  let decoder: Executor

  public init(config: ModelConfig, params: [String: HostTensor], mode: DecoderMode = .consistent,
              threads: Int) throws {
    self.config = config
    self.mode = mode
    encoder = try Executor(plan: Compiler.compile(MQANGraph.encoder(config)).plan, params: params, threads: threads)
    decoder = try Executor(plan: Compiler.compile(MQANGraph.decoder(config, mode: mode)).plan, params: params,
                           threads: threads)
  }

  /// One row's greedy output: the chosen limited ids, up to and including `<eos>` (or
  /// `maxLength` ids), and the natural log of each chosen token's probability (the output
  /// mixture's), so their sum is the answer's log-probability.
  public struct Output: Sendable, Equatable {
    public var tokens: [Int]
    public var logProbabilities: [Double]
    /// The sum of `logProbabilities`.
    public var score: Double { logProbabilities.reduce(0, +) }
  }

  /// Decodes one batch (the forward graph's feed: embeddings, context/question full and limited
  /// ids, lengths, limited_to_full). Returns each row's output as limited ids, up to and
  /// including `<eos>` (or `maxLength` ids).
  public func decode(_ feed: [String: HostTensor], maxLength: Int) throws -> [[Int]] {
    try decodeScored(feed, maxLength: maxLength).map(\.tokens)
  }

  /// `decode(_:maxLength:)` with each chosen token's log-probability. With `allSteps` it runs
  /// every one of the `maxLength` steps even when all rows are finished (profiling runs
  /// comparable work).
  public func decodeScored(_ feed: [String: HostTensor], maxLength: Int, allSteps: Bool = false) throws -> [Output] {
    var encFeed: [String: HostTensor] = [:]
    for k in ["embeddings", "context", "context_lengths", "context_limited", "question", "question_lengths",
              "question_limited"] {
      encFeed[k] = feed[k]
    }
    let enc = try encoder.run(encFeed)
    guard let l2fTensor = feed["limited_to_full"], let cl = feed["context_limited"] else {
      throw ModelError.graph("greedy decoding needs limited_to_full and context_limited")
    }
    let limitedToFull = try l2fTensor.asInt32()
    let batch = cl.shape[0]
    var decFeed = enc
    for k in ["embeddings", "context_limited", "question_limited", "limited_to_full"] { decFeed[k] = feed[k] }
    var prefix = [[Int32]](repeating: [Int32(config.initToken)], count: batch)
    var outputs = [Output](repeating: Output(tokens: [], logProbabilities: []), count: batch)
    var finished = [Bool](repeating: false, count: batch)
    for _ in 0..<maxLength {
      let t = prefix[0].count
      // The decoder reads answer[:, :-1]: one unused slot after the prefix.
      var flat = [Int32](repeating: Int32(config.pad), count: batch * (t + 1))
      for b in 0..<batch { for j in 0..<t { flat[b * (t + 1) + j] = prefix[b][j] } }
      decFeed["answer"] = HostTensor(shape: [batch, t + 1], int32s: flat)
      guard let probs = try decoder.run(decFeed)["probs"] else { break }
      let p = try probs.floats
      let x = probs.shape[2]
      for b in 0..<batch {
        let row = (b * t + (t - 1)) * x
        var best = 0
        for j in 1..<x where p[row + j] > p[row + best] { best = j }
        if !finished[b] {
          outputs[b].tokens.append(best)
          // A probability of 0 (underflow) scores as the smallest float's log, not -inf.
          outputs[b].logProbabilities.append(Foundation.log(Double(max(p[row + best], Float.leastNonzeroMagnitude))))
          if best == config.eos { finished[b] = true }
        }
        prefix[b].append(best < limitedToFull.count ? limitedToFull[best] : Int32(config.unk))
      }
      if !allSteps && finished.allSatisfy({ $0 }) { break }
    }
    return outputs
  }
}
