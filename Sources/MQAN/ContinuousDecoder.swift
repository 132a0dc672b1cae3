import Foundation
import GraphIR
import Runtime

/// Continuous batching: a running batch of decoded items that new items join and finished items
/// leave between any two decoding steps (a server's requests, as they arrive).
///
/// Each item holds K hypothesis rows (greedy: one). `admit` runs the `encode` plan over the new
/// items and places their encoder outputs, initial states and `<init>` hypotheses in free slots;
/// `step` runs the `decode-step` plan once for every row, each at its own position (its item's
/// step count), and returns the items that finished (no live hypothesis left, or `maxLength`
/// tokens), whose slots the last items move into so the batch stays contiguous. Everything
/// per item lives in memory allocated once, for `capacity` items at the longest context and
/// question: the batch never allocates as traffic changes.
///
/// The per-batch extended vocabulary is per item here: an item's out-of-vocabulary words get the
/// ids after the generative vocabulary in its own order, so an item's answer does not depend on
/// who it shares the batch with. With the `consistent` decoder (padding masked everywhere) an
/// item's answer is the one `MQANDecoder.beamSearch` gives it in any batch; scores may differ in
/// the last bits, as between any two batches.
public final class ContinuousDecoder {
  /// An item that left the batch: its n-best (limited ids) and the map from its limited ids to
  /// full ids.
  public struct Finished: Sendable {
    public var handle: Int
    public var hypotheses: [BeamHypothesis]
    public var toFull: LimitedToFull
  }

  struct Item {
    var handle: Int
    var contextLimited: [Int32], questionLimited: [Int32]
    var toFull: LimitedToFull
    var position = 0
  }

  public let decoder: MQANDecoder
  public let options: BeamSearchOptions
  /// Items decoded together at most.
  public let capacity: Int
  /// Longest context and question in tokens (`<init>`, `<eos>` included) an item may have.
  public let maxContext: Int, maxQuestion: Int
  let config: ModelConfig
  let embeddings: HostTensor
  private var items: [Item] = []
  private var rows: BeamRows
  private var nextHandle = 0
  /// Per item: 0 `final_context`, then per layer l the cross-attention keys (1 + 2l) and values.
  private let context: ItemSlabs
  /// Per item: `final_question`.
  private let question: ItemSlabs
  /// The caches and states of `capacity * K` rows.
  private let state: DecodingState
  private let layers: Int, width: Int, slots: Int

  /// Items in the batch.
  public var active: Int { items.count }
  /// Items that can still join.
  public var free: Int { capacity - items.count }
  /// Handles of the items in the batch, in slot order.
  public var handles: [Int] { items.map(\.handle) }

  /// - Parameters:
  ///   - options: the search (beam size, n-best, `maxLength` = the key/value cache slots).
  ///   - capacity: items decoded together at most.
  ///   - maxContext, maxQuestion: the longest context and question an item may have, in tokens.
  public init(decoder: MQANDecoder, embeddings: HostTensor, options: BeamSearchOptions, capacity: Int,
              maxContext: Int, maxQuestion: Int) throws {
    _ = try BeamSearch(options)
    guard !decoder.shortlisted else {
      throw ModelError.decoding("continuous batching decodes over the whole vocabulary; the decoder was built with a shortlist")
    }
    guard capacity >= 1, maxContext >= 1, maxQuestion >= 1 else {
      throw ModelError.decoding("capacity \(capacity), max context \(maxContext), max question \(maxQuestion): each must be >= 1")
    }
    self.decoder = decoder
    self.options = options
    self.capacity = capacity
    self.maxContext = maxContext
    self.maxQuestion = maxQuestion
    config = decoder.config
    self.embeddings = embeddings
    rows = BeamRows(options: options, items: capacity)
    layers = config.transformerLayers
    width = config.dimension
    slots = options.maxLength
    context = try ItemSlabs(tensors: 1 + 2 * layers, capacity: capacity, maxLength: maxContext, width: width,
                            what: "the encoder outputs of \(capacity) contexts of \(maxContext) tokens")
    question = try ItemSlabs(tensors: 1, capacity: capacity, maxLength: maxQuestion, width: width,
                             what: "the encoder outputs of \(capacity) questions of \(maxQuestion) tokens")
    state = try DecodingState(rows: capacity * options.beamSize, beam: options.beamSize, slots: slots, config: config,
                              what: "\(capacity) x \(options.beamSize) hypotheses")
    // The decode-step plan's arena for the largest batch, now rather than as traffic grows.
    try decoder.step.reserve(["B": capacity, "K": options.beamSize, "S": slots, "Tc": maxContext, "Tq": maxQuestion,
                              "X": Self.extended(config, outOfVocabulary: maxContext + maxQuestion),
                              "Nv": embeddings.shape[0]])
  }

  /// The extended vocabulary of a step: the generative words and the most out-of-vocabulary
  /// words of any item, rounded up to 16 (fewer distinct shapes, so fewer bound buckets).
  static func extended(_ config: ModelConfig, outOfVocabulary oov: Int) -> Int {
    config.generativeVocab + (oov + 15) / 16 * 16
  }

  /// A length for the plan's dims: rounded up to 8 (fewer distinct shapes, so fewer bound buckets).
  private static func rounded(_ n: Int, cap: Int) -> Int { min((n + 7) / 8 * 8, cap) }

  /// Encodes `examples` and adds them to the batch (at most `free`); their handles, in order.
  public func admit(_ examples: [EncodedExample]) throws -> [Int] {
    if examples.isEmpty { return [] }
    guard examples.count <= free else {
      throw ModelError.decoding("\(examples.count) items do not fit: \(free) of \(capacity) slots are free")
    }
    for e in examples where e.context.count > maxContext || e.question.count > maxQuestion || e.context.isEmpty
      || e.question.isEmpty {
      throw ModelError.decoding("an item of \(e.context.count) context and \(e.question.count) question tokens: "
                                + "each must be in 1...\(maxContext) and 1...\(maxQuestion)")
    }
    var handles = [Int](repeating: 0, count: examples.count)
    for group in Self.encodingGroups(examples.map { ($0.context.count, $0.question.count) }) {
      for (i, h) in try encode(group.map { examples[$0] }).enumerated() { handles[group[i]] = h }
    }
    return handles
  }

  /// One more encoder call is worth it only when it saves more than this many rows x tokens of
  /// padding. Encoding costs the same per row-token at any batch size, about 0.075 ms on a 2-core
  /// AVX2 machine at d200 (`mqan profile decode --batch 4...64 --context 16,32 --question 9`), and a
  /// call adds about 0.5 ms, plus about 1 ms to bind its shape when that shape is not bound yet:
  /// about 20 row-tokens. On sst at 64 clients this cut the encoded padding from 12% to 4-6% of
  /// the tokens (100, the value before binding got cheaper, left 12%).
  static let encoderCallCost = 20

  /// The items to encode split into groups of similar lengths (indices, each group ascending in
  /// context length): the split into runs of the length-sorted items that minimizes the padded
  /// rows x (longest context + longest question) plus `encoderCallCost` per group.
  static func encodingGroups(_ sizes: [(context: Int, question: Int)]) -> [[Int]] {
    let order = sizes.indices.sorted { (sizes[$0].context, sizes[$0].question, $0) < (sizes[$1].context, sizes[$1].question, $1) }
    let n = order.count
    if n == 0 { return [] }
    // best[j]: the cheapest split of the first j sorted items; cut[j]: where its last group starts.
    var best = [Int](repeating: .max, count: n + 1), cut = [Int](repeating: 0, count: n + 1)
    best[0] = 0
    for j in 1...n {
      var question = 0
      for i in stride(from: j, through: 1, by: -1) {
        question = max(question, sizes[order[i - 1]].question)
        let cost = best[i - 1] + (j - i + 1) * (sizes[order[j - 1]].context + question) + encoderCallCost
        if cost < best[j] { (best[j], cut[j]) = (cost, i - 1) }
      }
    }
    var groups: [[Int]] = [], j = n
    while j > 0 {
      groups.append(Array(order[cut[j]..<j]))
      j = cut[j]
    }
    return groups.reversed()
  }

  /// Encodes `examples` as one batch into the next free slots; their handles.
  private func encode(_ examples: [EncodedExample]) throws -> [Int] {
    let batch = EncodedBatch(context: examples.map(\.context), question: examples.map(\.question),
                             answer: examples.map { _ in [config.initToken, config.eos] })
    let enc = try decoder.encoder.run(MQANDecoder.encoderFeed(batch.feed(config: config, embeddings: embeddings)))
    let tc = batch.context.map(\.count).max()!, tq = batch.question.map(\.count).max()!
    let grownTc = max(context.length, Self.rounded(tc, cap: maxContext))
    if grownTc > context.length { context.relayout(items: items.count, length: grownTc) }
    let grownTq = max(question.length, Self.rounded(tq, cap: maxQuestion))
    if grownTq > question.length { question.relayout(items: items.count, length: grownTq) }
    func output(_ name: String) throws -> [Float] {
      guard let t = enc[name] else { throw ModelError.graph("the encode plan gave no \(name)") }
      return try t.floats
    }
    var contextOutputs = [try output("final_context")]
    for l in 0..<layers {
      contextOutputs.append(try output(MQANGraph.Step.crossKeys(l)))
      contextOutputs.append(try output(MQANGraph.Step.crossValues(l)))
    }
    let finalQuestion = try output("final_question"), initH = try output("decoder_init_h"),
        initC = try output("decoder_init_c")
    let K = options.beamSize, d = width
    var handles: [Int] = []
    for (i, e) in examples.enumerated() {
      let b = items.count
      for (t, values) in contextOutputs.enumerated() {
        values.withUnsafeBufferPointer { context.write(t, b, from: $0.baseAddress! + i * tc * d, positions: e.context.count) }
      }
      finalQuestion.withUnsafeBufferPointer {
        question.write(0, b, from: $0.baseAddress! + i * tq * d, positions: e.question.count)
      }
      // The item's first row starts from the encoder's states; o starts at zero.
      for (j, values) in [initH, initC].enumerated() {
        values.withUnsafeBufferPointer {
          state.state(set: state.currentState, j).advanced(by: b * K * d).update(from: $0.baseAddress! + i * d, count: d)
        }
      }
      state.state(set: state.currentState, 2).advanced(by: b * K * d).update(repeating: 0, count: d)
      rows.start(b, from: b * K)
      let lim = EncodedBatch(context: [e.context], question: [e.question], answer: [[config.initToken, config.eos]])
        .limitedIds(generativeVocab: config.generativeVocab)
      items.append(Item(handle: nextHandle, contextLimited: lim.context[0].map { Int32($0) },
                        questionLimited: lim.question[0].map { Int32($0) }, toFull: lim.toFull))
      handles.append(nextHandle)
      nextHandle += 1
    }
    return handles
  }

  /// Takes item `handle` out of the batch (no result); false when it is not in it.
  @discardableResult
  public func drop(_ handle: Int) -> Bool {
    guard let b = items.firstIndex(where: { $0.handle == handle }) else { return false }
    remove(b)
    shrink()
    return true
  }

  /// One decoding step of every item in the batch; the items that finished with it (they have left).
  public func step() throws -> [Finished] {
    let B = items.count
    if B == 0 { return [] }
    let K = options.beamSize, R = B * K, pad = Int32(config.pad)
    var ids = [Int32](repeating: 0, count: R), steps = [Int32](repeating: 0, count: R)
    var mask = [Float](repeating: 1, count: R * slots)
    let tc = context.length, tq = question.length
    var cl = [Int32](repeating: pad, count: B * tc), ql = [Int32](repeating: pad, count: B * tq)
    var oov = 0
    for (b, item) in items.enumerated() {
      for k in 0..<K {
        let r = b * K + k, last = Int(rows.prefixes[r].last ?? 0)
        ids[r] = Int32(item.toFull[last] ?? 0)
        steps[r] = Int32(item.position)
        for j in 0...item.position { mask[r * slots + j] = 0 }
      }
      for (j, id) in item.contextLimited.enumerated() { cl[b * tc + j] = id }
      for (j, id) in item.questionLimited.enumerated() { ql[b * tq + j] = id }
      oov = max(oov, item.toFull.outOfVocabulary.count)
    }
    let feed: [String: HostTensor] = [
      "embeddings": embeddings,
      "context_limited": HostTensor(shape: [B, tc], int32s: cl),
      "question_limited": HostTensor(shape: [B, tq], int32s: ql),
      "token": HostTensor(shape: [R], int32s: ids),
      "step": HostTensor(shape: [R], int32s: steps),
      "self_mask": HostTensor(shape: [R, slots], floats: mask),
      "reorder": HostTensor(shape: [R], int32s: rows.reorder[0..<R].map { Int32($0) }),
    ]
    var external = state.external(rows: R)
    external["final_context"] = context.tensor(0, items: B)
    external["final_question"] = question.tensor(0, items: B)
    for l in 0..<layers {
      external[MQANGraph.Step.crossKeys(l)] = context.tensor(1 + 2 * l, items: B)
      external[MQANGraph.Step.crossValues(l)] = context.tensor(2 + 2 * l, items: B)
    }
    let out = try decoder.step.run(feed, external: external,
                                   dims: ["K": K, "X": Self.extended(config, outOfVocabulary: oov)])
    state.advance()
    let found = try BeamCandidates(stepOutputs: out, beam: K)
    try rows.check(found, rows: R)
    for b in 0..<B { rows.expand(b, found) }
    rows.advance()
    var finished: [Finished] = []
    for b in (0..<B).reversed() {
      items[b].position += 1
      guard !rows.isLive(b) || items[b].position >= options.maxLength else { continue }
      finished.append(Finished(handle: items[b].handle, hypotheses: rows.result(b),
                               toFull: items[b].toFull))
      remove(b)
    }
    shrink()
    return finished.reversed()
  }

  /// Item `b` leaves: the last item moves into its slot (rows, states, caches, encoder outputs).
  private func remove(_ b: Int) {
    let last = items.count - 1, K = options.beamSize, d = width
    if b != last {
      rows.move(last, to: b)
      context.move(last, to: b)
      question.move(last, to: b)
      for j in 0..<3 {
        let s = state.state(set: state.currentState, j)
        (s + b * K * d).update(from: s + last * K * d, count: K * d)
      }
      for j in 0..<(2 * layers) {
        let c = state.cache(set: state.current, j), n = K * slots * d
        (c + b * n).update(from: c + last * n, count: n)
      }
      items[b] = items[last]
    }
    items.removeLast()
  }

  /// Shorter layouts once the longest remaining context or question is at most 3/4 of the
  /// current length (not at every change: each re-layout moves every item).
  private func shrink() {
    let tc = Self.rounded(items.map(\.contextLimited.count).max() ?? 1, cap: maxContext)
    if tc * 4 <= context.length * 3 { context.relayout(items: items.count, length: tc) }
    let tq = Self.rounded(items.map(\.questionLimited.count).max() ?? 1, cap: maxQuestion)
    if tq * 4 <= question.length * 3 { question.relayout(items: items.count, length: tq) }
  }
}
