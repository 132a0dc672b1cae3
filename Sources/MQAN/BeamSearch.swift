import CKernels
import Foundation

/// The model side of beam search: the best next tokens of every hypothesis row.
///
/// Rows are `B * K` (batch item `b`'s beams are rows `b * K ..< (b + 1) * K`), on every call,
/// so a scorer can keep its per-row state (LSTM state, key/value caches) in fixed-size buffers.
///
/// `reorder[r]` is the row whose state row `r` continues: before scoring, the scorer gathers
/// `state[r] = previous[reorder[r]]` (double-buffered: no allocation per step), then feeds each row
/// the last token of `tokens[r]`.
/// - On the first call, `reorder` indexes the caller's `B` initial states (e.g. the encoder's
///   output): `reorder[b * K + k] == b`, and every row's prefix is `[initToken]`.
/// - On later calls it indexes the previous call's `B * K` rows, and `tokens[r]` is
///   `tokens_prev[reorder[r]]` plus the chosen token, for every live row.
///
/// Rows that are not live are ignored (their candidates are never read): a finished hypothesis
/// keeps its row (`reorder[r] == r`, prefix unchanged, ending in `eos`); an empty slot (fewer than
/// `K` hypotheses exist, e.g. the other `K - 1` slots on the first step) has prefix `[initToken]`
/// and points at a valid row.
public protocol BeamScorer {
  /// At least `k` best next tokens of every row (`k` ≤ K): `BeamCandidates` with `perRow ≥ k`.
  mutating func candidates(tokens: [[Int32]], reorder: [Int], k: Int) throws -> BeamCandidates
}

/// Each row's best next tokens: row `r`'s `perRow` entries at `r * perRow`, best first (equal
/// values: lower token first), as log-probabilities (`-inf`: not a candidate) and token ids (for
/// MQAN, ids of the batch's extended vocabulary).
public struct BeamCandidates: Sendable {
  public var values: [Float]
  public var tokens: [Int32]
  public var perRow: Int
  public init(values: [Float], tokens: [Int32], perRow: Int) {
    self.values = values
    self.tokens = tokens
    self.perRow = perRow
  }
}

/// A scorer that returns every token's log-probability; its best `k` per row are picked with
/// `mq_topk` (no full sort). Ties rank by lower token id, as `BeamSearch` expects.
public protocol DenseBeamScorer: BeamScorer {
  /// `values`: `rows * width` log-probabilities, row `r` at `r * width`; token ids are columns.
  mutating func logProbabilities(tokens: [[Int32]], reorder: [Int]) throws -> (values: [Float], width: Int)
}

extension DenseBeamScorer {
  public mutating func candidates(tokens: [[Int32]], reorder: [Int], k: Int) throws -> BeamCandidates {
    let (values, width) = try logProbabilities(tokens: tokens, reorder: reorder)
    let rows = tokens.count
    guard width >= 1, width <= Int(Int32.max), values.count == rows * width else {
      throw BeamSearchError.scorer("returned \(values.count) values of width \(width), want \(rows) rows × width ≥ 1")
    }
    let m = min(k, width)
    var out = BeamCandidates(values: [Float](repeating: -.infinity, count: rows * k),
                             tokens: [Int32](repeating: 0, count: rows * k), perRow: k)
    values.withUnsafeBufferPointer { x in
      out.values.withUnsafeMutableBufferPointer { v in
        out.tokens.withUnsafeMutableBufferPointer { t in
          for r in 0..<rows {
            mq_topk(x.baseAddress! + r * width, Int64(width), Int64(m), v.baseAddress! + r * k, t.baseAddress! + r * k)
          }
        }
      }
    }
    return out
  }
}

/// Beam search settings.
public struct BeamSearchOptions: Sendable, Equatable {
  /// K: hypotheses kept per batch item. 1 is greedy decoding (argmax, ties to the lower id).
  public var beamSize: Int
  /// Most tokens generated per hypothesis, `eos` included.
  public var maxLength: Int
  /// GNMT's length-penalty exponent α (Wu et al., 2016): the final ranking divides a hypothesis'
  /// summed log-probability by `((5 + len) / 6)^α`, `len` = its generated tokens (`eos`
  /// included). α = 0 is no penalty. The search itself keeps the best raw scores.
  public var lengthPenalty: Double
  /// N ≤ K: hypotheses returned per batch item, best normalized score first.
  public var nBest: Int
  public var eos: Int32
  /// The token every hypothesis starts from (decaNLP's `<init>`); not part of the output.
  public var initToken: Int32

  public init(beamSize: Int, maxLength: Int, lengthPenalty: Double = 0, nBest: Int = 1, eos: Int32,
              initToken: Int32) {
    self.beamSize = beamSize
    self.maxLength = maxLength
    self.lengthPenalty = lengthPenalty
    self.nBest = nBest
    self.eos = eos
    self.initToken = initToken
  }

  /// Greedy decoding: beam search with K = N = 1, on the same code path.
  public static func greedy(maxLength: Int, eos: Int32, initToken: Int32) -> BeamSearchOptions {
    BeamSearchOptions(beamSize: 1, maxLength: maxLength, eos: eos, initToken: initToken)
  }
}

/// One returned hypothesis.
public struct BeamHypothesis: Sendable, Equatable {
  /// Generated tokens (no `<init>`), ending in `eos` when `finished`.
  public var tokens: [Int32]
  /// Summed log-probability of `tokens` (Float, added left to right).
  public var score: Float
  /// `score / BeamSearch.lengthPenalty(length: tokens.count, alpha:)`.
  public var normalizedScore: Float
  /// Ended in `eos` (otherwise it stopped at `maxLength`).
  public var finished: Bool
}

public enum BeamSearchError: Error, CustomStringConvertible, Equatable {
  case options(String)
  case scorer(String)

  public var description: String {
    switch self {
    case .options(let m): return "beam search: \(m)"
    case .scorer(let m): return "beam search scorer: \(m)"
    }
  }
}

/// Batched beam search over `B × K` hypotheses, independent of the model (see `BeamScorer`).
///
/// Each step scores every row once, then grows each batch item's hypotheses (`BeamRows.expand`:
/// finished ones keep their slot, the other slots take the best expansions of the live ones).
/// The first step expands only the single `<init>` hypothesis (no K duplicates). The search stops
/// when no batch item has a live hypothesis, or after `maxLength` steps. The n-best are the kept
/// finished and live-at-`maxLength` hypotheses ranked by normalized score (ties: lower slot).
public struct BeamSearch: Sendable {
  public let options: BeamSearchOptions

  public init(_ options: BeamSearchOptions) throws {
    guard options.beamSize >= 1 else { throw BeamSearchError.options("beam size \(options.beamSize) < 1") }
    guard options.maxLength >= 1 else { throw BeamSearchError.options("max length \(options.maxLength) < 1") }
    guard (1...options.beamSize).contains(options.nBest) else {
      throw BeamSearchError.options("n-best \(options.nBest) not in 1...\(options.beamSize) (the beam size)")
    }
    guard options.lengthPenalty.isFinite, options.lengthPenalty >= 0 else {
      throw BeamSearchError.options("length penalty \(options.lengthPenalty) is not a finite α ≥ 0")
    }
    self.options = options
  }

  /// GNMT's length penalty ((5 + length) / 6)^α; 1 when α = 0.
  public static func lengthPenalty(length: Int, alpha: Double) -> Double {
    alpha == 0 ? 1 : pow((5 + Double(length)) / 6, alpha)
  }

  /// `score` divided by the length penalty (rounded once to Float).
  public static func normalize(_ score: Float, length: Int, alpha: Double) -> Float {
    alpha == 0 ? score : Float(Double(score) / lengthPenalty(length: length, alpha: alpha))
  }

  /// Decodes `batch` items; returns, per item, up to `nBest` hypotheses, best first.
  ///
  /// `hooks.finished` hears each item's n-best as soon as the item has no live hypothesis (its
  /// result cannot change after that), so a caller can use it before the whole batch ends.
  public func search<S: BeamScorer>(batch: Int, scorer: inout S, hooks: BeamSearchHooks = BeamSearchHooks())
    throws -> [[BeamHypothesis]] {
    guard batch >= 0 else { throw BeamSearchError.options("batch \(batch) < 0") }
    if batch == 0 { return [] }
    var rows = BeamRows(options: options, items: batch)
    for b in 0..<batch { rows.start(b, from: b) }
    // Items already reported to `hooks.finished`.
    var settled = [Bool](repeating: false, count: batch)
    for _ in 0..<options.maxLength {
      if !(0..<batch).contains(where: rows.isLive) { break }
      let found = try scorer.candidates(tokens: rows.prefixes, reorder: rows.reorder, k: options.beamSize)
      try rows.check(found, rows: batch * options.beamSize)
      for b in 0..<batch { rows.expand(b, found) }
      rows.advance()
      if let finished = hooks.finished {
        for b in 0..<batch where !settled[b] && !rows.isLive(b) {
          settled[b] = true
          finished(b, rows.result(b))
        }
      }
    }
    let results = (0..<batch).map(rows.result)
    // Items still live after `maxLength` steps end here.
    if let finished = hooks.finished {
      for b in 0..<batch where !settled[b] { finished(b, results[b]) }
    }
    return results
  }
}

/// Callbacks of `BeamSearch.search(batch:scorer:hooks:)`, called on the searching thread.
public struct BeamSearchHooks {
  /// Item `b`'s n-best, once, as soon as it has no live hypothesis (or the search ends).
  public var finished: ((_ item: Int, _ hypotheses: [BeamHypothesis]) -> Void)?

  public init(finished: ((Int, [BeamHypothesis]) -> Void)? = nil) {
    self.finished = finished
  }
}
