import Compiler
import Foundation
import GraphIR
import Runtime

/// The reference twin of `MQANDecoder`: decoding with the `encode` plan and the teacher-forced
/// decoder re-run over each whole answer prefix (O(T²) decoder work, no state carried between
/// steps). Slow, simple and exact; tests check the `decode-step` plan against it.
public final class PrefixDecoder {
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

  /// The n-best hypotheses (limited ids) of each batch item.
  public func beamSearch(_ feed: [String: HostTensor], options: BeamSearchOptions) throws -> [[BeamHypothesis]] {
    guard let l2fTensor = feed["limited_to_full"], let cl = feed["context_limited"] else {
      throw ModelError.graph("beam search needs limited_to_full and context_limited")
    }
    let batch = cl.shape[0], k = options.beamSize
    var decFeed: [String: HostTensor] = [:]
    // Every per-example tensor repeated K times (row b*K + j is beam j of item b).
    for (name, t) in try encoder.run(MQANDecoder.encoderFeed(feed)) { decFeed[name] = try t.repeatingRows(k) }
    for name in ["context_limited", "question_limited"] { decFeed[name] = try feed[name].map { try $0.repeatingRows(k) } }
    decFeed["embeddings"] = feed["embeddings"]
    decFeed["limited_to_full"] = l2fTensor
    var scorer = Scorer(decoder: decoder, feed: decFeed, limitedToFull: try l2fTensor.asInt32(), pad: Int32(config.pad))
    return try BeamSearch(options).search(batch: batch, scorer: &scorer)
  }

  /// Scores prefixes with the teacher-forced decoder: each row's log P at its own last position.
  struct Scorer: DenseBeamScorer {
    let decoder: Executor
    var feed: [String: HostTensor]
    let limitedToFull: [Int32]
    let pad: Int32

    mutating func logProbabilities(tokens: [[Int32]], reorder: [Int]) throws -> (values: [Float], width: Int) {
      let rows = tokens.count
      let t = tokens.map(\.count).max() ?? 1
      // Shorter prefixes (finished or empty beams) are padded after their end; the decoder is
      // causal, so a row's last real position does not see the padding. One unused slot follows.
      var flat = [Int32](repeating: pad, count: rows * (t + 1))
      for (r, prefix) in tokens.enumerated() {
        for (j, id) in prefix.enumerated() {
          flat[r * (t + 1) + j] = Int(id) < limitedToFull.count ? limitedToFull[Int(id)] : 0
        }
      }
      feed["answer"] = HostTensor(shape: [rows, t + 1], int32s: flat)
      guard let probs = try decoder.run(feed)["probs"] else { throw ModelError.graph("the decoder gave no probs") }
      let p = try probs.floats
      let x = probs.shape[2]
      var values = [Float](repeating: -.infinity, count: rows * x)
      for (r, prefix) in tokens.enumerated() {
        let base = (r * t + max(prefix.count - 1, 0)) * x
        for j in 0..<x { values[r * x + j] = p[base + j] > 0 ? Foundation.log(p[base + j]) : -.infinity }
      }
      return (values, x)
    }
  }
}

extension HostTensor {
  /// This tensor with each leading-dim row repeated `k` times in place (row `r` becomes rows
  /// `r * k ..< (r + 1) * k`).
  public func repeatingRows(_ k: Int) throws -> HostTensor {
    let rows = shape.first ?? 1
    let width = rows == 0 ? 0 : count / rows
    var newShape = shape
    if !newShape.isEmpty { newShape[0] = rows * k }
    func rep<T>(_ a: [T]) -> [T] {
      var out: [T] = []
      out.reserveCapacity(a.count * k)
      for r in 0..<rows { for _ in 0..<k { out.append(contentsOf: a[(r * width)..<((r + 1) * width)]) } }
      return out
    }
    switch storage {
    case .f32(let a): return try HostTensor(.f32(rep(a)), shape: newShape)
    case .i32(let a): return try HostTensor(.i32(rep(a)), shape: newShape)
    case .i64(let a): return try HostTensor(.i64(rep(a)), shape: newShape)
    case .bf16(let a): return try HostTensor(.bf16(rep(a)), shape: newShape)
    case .i8(let a): return try HostTensor(.i8(rep(a)), shape: newShape)
    }
  }
}
