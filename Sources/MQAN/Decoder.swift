import Compiler
import Foundation
import GraphIR
import Runtime

/// MQAN's inference: the `encode` plan once per batch, then the `decode-step` plan once per output
/// token for all `B * K` hypotheses, with key/value caches and the pointer LSTM's state carried
/// between steps in fixed buffers (reordered by gather inside the plan, no allocation per step).
/// Greedy decoding is beam search with K = 1, on the same code path.
public final class MQANDecoder {
  public let config: ModelConfig
  public let mode: DecoderMode
  let encoder: Executor
  let step: Executor
  /// The decode-step plan takes a vocabulary shortlist.
  public let shortlisted: Bool

  /// - Parameters:
  ///   - fuse: run the fused plans (false: the unfused ones, for comparison).
  ///   - gemm: the GEMM the plans are compiled for (this CPU's best mqan path by default).
  ///   - precision: bf16 or int8 for the large linears (the output layer); nil: fp32.
  ///   - shortlist: the decode-step plan computes the output layer over a vocabulary shortlist
  ///     (`beamSearch(_:options:shortlist:)` gives it per batch; the whole vocabulary when not).
  public init(config: ModelConfig, params: [String: HostTensor], mode: DecoderMode = .consistent,
              threads: Int, fuse: Bool = true, profile: Bool = false, traceCapacity: Int = 0,
              gemm: GemmTarget = Gemm.best, precision: PrecisionTarget? = nil, shortlist: Bool = false,
              checkNumerics: Bool = false) throws {
    self.config = config
    self.mode = mode
    var options = CompileOptions()
    options.fuse = fuse
    options.gemm = gemm
    options.precision = precision
    let run = ExecutorOptions(profile: profile, traceCapacity: traceCapacity, checkNumerics: checkNumerics)
    var plans = MQANPlanOptions(decoder: mode)
    plans.shortlist = shortlist
    self.shortlisted = shortlist
    encoder = try Executor(plan: MQANPlans.compile(kind: .encode, config: config, options: plans,
                                                   compileOptions: options).plan,
                           params: params, threads: threads, options: run)
    step = try Executor(plan: MQANPlans.compile(kind: .decodeStep, config: config, options: plans,
                                                compileOptions: options).plan,
                        params: params, threads: threads, options: run)
  }

  /// One row's greedy output: limited ids up to and including `<eos>` (or `maxLength` ids), and
  /// the sum of their log-probabilities under the output mixture.
  public struct Output: Sendable, Equatable {
    public var tokens: [Int]
    public var score: Double
  }

  /// Greedy decoding of one batch (the forward graph's feed: embeddings, context/question full
  /// and limited ids, lengths, limited_to_full): each row's limited ids.
  public func decode(_ feed: [String: HostTensor], maxLength: Int) throws -> [[Int]] {
    try decodeScored(feed, maxLength: maxLength).map(\.tokens)
  }

  /// `decode(_:maxLength:)` with each answer's log-probability (beam search with K = 1).
  public func decodeScored(_ feed: [String: HostTensor], maxLength: Int, shortlist: [Int32]? = nil) throws -> [Output] {
    let options = BeamSearchOptions.greedy(maxLength: maxLength, eos: Int32(config.eos),
                                           initToken: Int32(config.initToken))
    return try beamSearch(feed, options: options, shortlist: shortlist).map { hyps in
      Output(tokens: hyps.first?.tokens.map(Int.init) ?? [], score: Double(hyps.first?.score ?? 0))
    }
  }

  /// The n-best hypotheses (limited ids) of each batch item; `shortlist` (ascending distinct
  /// generative ids, `Shortlist.ids`) when the decoder was built with one (nil: every word).
  /// `hooks` hear each item's answer as soon as it is final and may drop items (`BeamSearchHooks`).
  public func beamSearch(_ feed: [String: HostTensor], options: BeamSearchOptions,
                         shortlist: [Int32]? = nil, hooks: BeamSearchHooks = BeamSearchHooks()) throws -> [[BeamHypothesis]] {
    guard let l2f = feed["limited_to_full"], let cl = feed["context_limited"] else {
      throw ModelError.graph("decoding needs limited_to_full and context_limited")
    }
    let batch = cl.shape[0]
    let search = try BeamSearch(options)
    if batch == 0 { return [] }
    var stepFeed = feed
    if shortlisted {
      let ids = shortlist ?? (0..<Int32(config.generativeVocab)).map { $0 }
      stepFeed["shortlist"] = HostTensor(shape: [ids.count], int32s: ids)
    } else if shortlist != nil {
      throw ModelError.graph("a shortlist was given to a decoder built without one")
    }
    let enc = try encoder.run(Self.encoderFeed(stepFeed))
    var scorer = try StepScorer(step: step, config: config, feed: stepFeed, encoded: enc,
                                limitedToFull: l2f.asInt32(), beam: options.beamSize, slots: options.maxLength)
    return try search.search(batch: batch, scorer: &scorer, hooks: hooks)
  }

  /// Per-step wall time of the encode and decode-step plans (when built with `profile`).
  public var profiles: (encode: [StepProfile], step: [StepProfile]) { (encoder.profile, step.profile) }

  /// Wall time of the encode and decode-step plans' runs, ns (when built with `profile`).
  public var wallNanoseconds: (encode: UInt64, step: UInt64) { (encoder.wallNanoseconds, step.wallNanoseconds) }

  /// The kernel executions of both plans (when built with a `traceCapacity`).
  public var traces: (encode: [TraceEvent], step: [TraceEvent], dropped: Int) {
    let e = encoder.trace, s = step.trace
    return (e.events, s.events, e.dropped + s.dropped)
  }

  /// The two plans this decoder runs.
  public var plans: (encode: Plan, step: Plan) { (encoder.plan, step.plan) }

  public func resetProfiles() {
    encoder.resetProfile()
    step.resetProfile()
  }

  /// The inputs the encoder reads, out of a forward-graph feed.
  static func encoderFeed(_ feed: [String: HostTensor]) -> [String: HostTensor] {
    var out: [String: HostTensor] = [:]
    for k in ["embeddings", "context", "context_lengths", "context_limited", "question", "question_lengths",
              "question_limited", "shortlist"] {
      out[k] = feed[k]
    }
    return out
  }
}

/// Runs the `decode-step` plan for `BeamSearch`, with the per-row state of one batch in a
/// `DecodingState`.
final class StepScorer: BeamScorer {
  let step: Executor
  var feed: [String: HostTensor]
  let limitedToFull: [Int32]
  let beam: Int, rows: Int, slots: Int
  let dims: [String: Int]
  let state: DecodingState
  var position = 0

  init(step: Executor, config: ModelConfig, feed input: [String: HostTensor], encoded: [String: HostTensor],
       limitedToFull: [Int32], beam: Int, slots: Int) throws {
    self.step = step
    self.limitedToFull = limitedToFull
    let d = config.dimension
    guard let initH = encoded["decoder_init_h"], let initC = encoded["decoder_init_c"] else {
      throw ModelError.graph("the encode plan gave no decoder_init_h / decoder_init_c")
    }
    let batch = initH.shape[0]
    self.beam = beam
    rows = batch * beam
    self.slots = slots
    dims = ["K": beam, "X": limitedToFull.count].merging(input["shortlist"].map { ["N": $0.shape[0]] } ?? [:]) { a, _ in a }
    var f: [String: HostTensor] = [:]
    for k in ["embeddings", "context_limited", "question_limited", "shortlist"] { f[k] = input[k] }
    for (k, v) in encoded where k != "decoder_init_h" && k != "decoder_init_c" { f[k] = v }
    feed = f
    state = try DecodingState(rows: rows, beam: beam, slots: slots, config: config, what: "\(batch) x \(beam) hypotheses")
    // Rows 0 ..< B of the first state set hold the encoder's states; the first reorder points
    // every beam at its item's.
    for (j, t) in [initH, initC].enumerated() {
      let values = try t.floats
      values.withUnsafeBufferPointer { src in
        state.state(set: 0, j).update(from: src.baseAddress!, count: min(src.count, rows * d))
      }
    }
  }

  func candidates(tokens: [[Int32]], reorder: [Int], k: Int) throws -> BeamCandidates {
    guard position < slots else {
      throw BeamSearchError.scorer("step \(position) is past the \(slots) cache slots")
    }
    guard tokens.count == rows, reorder.count == rows else {
      throw BeamSearchError.scorer("\(tokens.count) prefixes and \(reorder.count) reorder rows, want \(rows)")
    }
    var ids = [Int32](repeating: 0, count: rows)
    for (r, prefix) in tokens.enumerated() {
      let last = Int(prefix.last ?? 0)
      ids[r] = last >= 0 && last < limitedToFull.count ? limitedToFull[last] : 0
    }
    var mask = [Float](repeating: 1, count: rows * slots)
    for r in 0..<rows { for j in 0...position { mask[r * slots + j] = 0 } }
    feed["token"] = HostTensor(shape: [rows], int32s: ids)
    feed["reorder"] = HostTensor(shape: [rows], int32s: reorder.map { Int32($0) })
    feed["step"] = HostTensor(shape: [rows], int32s: [Int32](repeating: Int32(position), count: rows))
    feed["self_mask"] = HostTensor(shape: [rows, slots], floats: mask)
    let out = try step.run(feed, external: state.external(rows: rows), dims: dims)
    state.advance()
    position += 1
    return try BeamCandidates(stepOutputs: out, beam: beam)
  }
}
