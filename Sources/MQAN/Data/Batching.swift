/// decaNLP's batching: dynamic batches under a token budget for training (torchtext's
/// `BucketIterator` with decaNLP's `batch_fn`), fixed-size batches for validation and prediction.
///
/// **Token counting** (decaNLP `util.py`):
/// `batch_fn(new, i, sofar) = max(len(new.context), 5 * len(new.answer), sofar / (i - 1)) * i`,
/// a running maximum, so a batch of n examples "costs"
/// `n * max(longest context, 5 * longest answer)`, lengths in tokens without `<init>`/`<eos>`,
/// the question not counted. torchtext's `batch()` closes a batch when the cost equals the budget,
/// or, when an example pushes it over, closes it without that example (an example over the
/// budget on its own becomes a batch of one). `Batching.split` is that loop.
///
/// **Epoch order** (torchtext `BucketIterator.create_batches` / `pool` with `shuffle=True`):
/// shuffle all examples; cut the shuffled list into pools with the same rule at 100 x the
/// budget; sort each pool stably by `sortKey` (decaNLP's `interleave_keys(len(context),
/// len(answer))`, not the context length alone); cut it into batches; shuffle the pool's batches.
/// Batches are not re-sorted inside (`sort_within_batch` is off in training). The random source
/// is `SeededRandom` (xoshiro256**), not Python's Mersenne Twister, so orders differ from
/// decaNLP's draw for draw, but the procedure is the same; the iterator repeats epochs forever,
/// one random stream across epochs, as decaNLP's `repeat=True` iterator does.
public enum Batching {
  /// decaNLP's default `--train_batch_tokens`.
  public static let defaultBatchTokens = 9000
  /// torchtext's `pool` sorts within chunks of 100 x the batch budget.
  public static let poolFactor = 100

  /// The budget cost of a batch of `count` examples (decaNLP's `batch_fn`).
  public static func cost(count: Int, longestContext: Int, longestAnswer: Int) -> Int {
    count * max(longestContext, 5 * longestAnswer)
  }

  /// torchtext's `batch(data, budget, batch_fn)`: `order` cut into consecutive batches.
  /// `lengths[i]` are example i's context and answer lengths without `<init>`/`<eos>`.
  public static func split(_ order: [Int], lengths: [(context: Int, answer: Int)], budget: Int) -> [[Int]] {
    var out: [[Int]] = []
    var batch: [Int] = []
    var longest = 0  // max(context, 5 * answer) over the batch
    for i in order {
      let own = max(lengths[i].context, 5 * lengths[i].answer)
      batch.append(i)
      longest = max(longest, own)
      let size = longest * batch.count
      if size == budget {
        out.append(batch)
        batch = []
        longest = 0
      } else if size > budget {
        if batch.count == 1 {
          out.append(batch)
          batch = []
          longest = 0
        } else {
          out.append(Array(batch.dropLast()))
          batch = [i]
          longest = own
          if own > budget {
            out.append(batch)
            batch = []
            longest = 0
          }
        }
      }
    }
    if !batch.isEmpty { out.append(batch) }
    return out
  }

  /// decaNLP's bucket key `interleave_keys(len(context), len(answer))`: the bits of both lengths
  /// interleaved, the context's bit first, from 16-bit binary strings (for lengths of 2^16 or
  /// more, Python's `zip` keeps the leading bits of the shorter string's length, as here).
  public static func sortKey(context: Int, answer: Int) -> Int {
    func bits(_ x: Int) -> Int { max(16, Int.bitWidth - max(x, 0).leadingZeroBitCount) }
    let n = min(bits(context), bits(answer), 31)
    let a = max(context, 0) >> (bits(context) - n), b = max(answer, 0) >> (bits(answer) - n)
    var key = 0
    for i in 0..<n {
      key |= ((a >> i) & 1) << (2 * i + 1) | ((b >> i) & 1) << (2 * i)
    }
    return key
  }

  /// One training epoch over examples of these `lengths`, as decaNLP's `BucketIterator` draws it.
  public static func epoch(lengths: [(context: Int, answer: Int)], budget: Int,
                           rng: inout SeededRandom) -> [[Int]] {
    var order = Array(lengths.indices)
    shuffle(&order, rng: &rng)
    var out: [[Int]] = []
    for pool in split(order, lengths: lengths, budget: budget * poolFactor) {
      let keyed = pool.enumerated().map { (key: sortKey(context: lengths[$0.element].context,
                                                       answer: lengths[$0.element].answer),
                                           at: $0.offset, index: $0.element) }
      // Python's sorted() is stable: equal keys keep their shuffled order.
      let sorted = keyed.sorted { ($0.key, $0.at) < ($1.key, $1.at) }.map(\.index)
      var batches = split(sorted, lengths: lengths, budget: budget)
      shuffle(&batches, rng: &rng)
      out += batches
    }
    return out
  }

  /// Validation and prediction batches (torchtext's plain `Iterator`, decaNLP's
  /// `--val_batch_size`, default 256 examples): `batchSize` examples each. With `sorted`, as
  /// decaNLP's validation and `predict.py` iterators do: examples ordered stably by `sortKey`,
  /// cut into batches, and each batch reversed (longest first). Without, file order.
  public static func fixedSize(lengths: [(context: Int, answer: Int)], batchSize: Int, sorted: Bool) -> [[Int]] {
    precondition(batchSize >= 1, "Batching.fixedSize: batchSize must be >= 1, got \(batchSize)")
    var order = Array(lengths.indices)
    if sorted {
      order = order.map { (key: sortKey(context: lengths[$0].context, answer: lengths[$0].answer), index: $0) }
        .sorted { ($0.key, $0.index) < ($1.key, $1.index) }.map(\.index)
    }
    return stride(from: 0, to: order.count, by: batchSize).map { start in
      let batch = Array(order[start..<min(start + batchSize, order.count)])
      return sorted ? batch.reversed() : batch
    }
  }

  /// Prediction batches over length-sorted inputs by a token budget: consecutive examples (by
  /// `lengths`, the padded tokens an example puts into a batch: context + question) while the
  /// padded batch, count x longest, stays within `tokens` and the count within `maxCount`. An
  /// example longer than the budget gets a batch of its own. Each batch lists indices into
  /// `lengths`, longest first.
  public static func tokenBudget(lengths: [Int], tokens: Int, maxCount: Int) -> [[Int]] {
    precondition(tokens >= 1 && maxCount >= 1, "Batching.tokenBudget: tokens and maxCount must be >= 1")
    let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
    var batches: [[Int]] = []
    var current: [Int] = []
    var longest = 0
    for i in order {
      let l = max(lengths[i], 1)
      if !current.isEmpty, current.count + 1 > maxCount || (current.count + 1) * max(longest, l) > tokens {
        batches.append(current.reversed())
        current = []
        longest = 0
      }
      current.append(i)
      longest = max(longest, l)
    }
    if !current.isEmpty { batches.append(current.reversed()) }
    return batches
  }

  /// Context and answer lengths without `<init>`/`<eos>`, as decaNLP counts them.
  public static func lengths(of examples: [EncodedExample]) -> [(context: Int, answer: Int)] {
    examples.map { (max($0.context.count - 2, 0), max($0.answer.count - 2, 0)) }
  }

  /// Fisher-Yates with an unbiased bounded draw (Lemire), so the order depends only on the seed.
  static func shuffle<T>(_ a: inout [T], rng: inout SeededRandom) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
      a.swapAt(i, below(i + 1, rng: &rng))
    }
  }

  /// A uniform draw from `0..<n`.
  static func below(_ n: Int, rng: inout SeededRandom) -> Int {
    let bound = UInt64(n)
    var m = rng.next().multipliedFullWidth(by: bound)
    if m.low < bound {
      let threshold = (0 &- bound) % bound
      while m.low < threshold { m = rng.next().multipliedFullWidth(by: bound) }
    }
    return Int(m.high)
  }
}

/// A batch and the positions of its examples in the iterator's example list.
public struct IndexedBatch: Sendable {
  public var indices: [Int]
  public var batch: EncodedBatch

  /// The batch of `examples[indices]`, rows in that order.
  public init(indices: [Int], examples: [EncodedExample]) {
    self.indices = indices
    batch = EncodedBatch(context: indices.map { examples[$0].context },
                         question: indices.map { examples[$0].question },
                         answer: indices.map { examples[$0].answer })
  }
}

/// Where a `BucketBatchIterator` stands, to save in a checkpoint and restore on resume. The epoch
/// is redrawn from the random state it started with and `position` batches are skipped, as
/// torchtext's `Iterator.load_state_dict` does.
public struct BatchIteratorState: Codable, Equatable, Sendable {
  /// Epochs started so far (0 before the first batch).
  public var epoch: Int
  /// Batches of the current epoch already returned.
  public var position: Int
  /// The generator state the current epoch was drawn from, four 64-bit words in hex.
  public var epochRandomState: [String]
  public var batchTokens: Int
  /// The example list it belongs to: its size and a hash of every id (FNV-1a, hex).
  public var examples: Int
  public var fingerprint: String
}

/// The training iterator: endless token-budget batches of one task's examples, epoch after epoch.
///
/// ```swift
/// var it = try BucketBatchIterator(examples: task.encoded(with: vocab), seed: 123)
/// let b = it.next()!                    // never nil
/// let saved = it.state                  // into the checkpoint
/// var resumed = try BucketBatchIterator(examples: same, restoring: saved)   // same batches from here on
/// ```
public struct BucketBatchIterator: IteratorProtocol, Sendable {
  public let examples: [EncodedExample]
  public let batchTokens: Int
  private let lengths: [(context: Int, answer: Int)]
  private let fingerprint: String
  private var rng: SeededRandom
  private var epochStart: SeededRandom
  private var batches: [[Int]] = []
  /// Epochs started so far (0 before the first batch).
  public private(set) var epoch = 0
  /// Batches of the current epoch already returned.
  public private(set) var position = 0

  /// A fresh iterator; nothing is drawn until the first `next()`.
  /// - Throws: `.batching` for an empty example list or a budget below 1.
  public init(examples: [EncodedExample], batchTokens: Int = Batching.defaultBatchTokens, seed: UInt64) throws(DataError) {
    guard !examples.isEmpty else { throw .batching(problem: "no examples to batch") }
    guard batchTokens >= 1 else { throw .batching(problem: "batch tokens must be >= 1, got \(batchTokens)") }
    self.examples = examples
    self.batchTokens = batchTokens
    lengths = Batching.lengths(of: examples)
    fingerprint = Self.fingerprint(examples)
    rng = SeededRandom(seed: seed)
    epochStart = rng
  }

  /// An iterator that continues where `state` was saved.
  /// - Throws: `.batching` when the state belongs to other examples or another budget.
  public init(examples: [EncodedExample], restoring state: BatchIteratorState) throws(DataError) {
    try self.init(examples: examples, batchTokens: state.batchTokens, seed: 0)
    try restore(state)
  }

  /// Batches in the current epoch (0 before the first batch).
  public var batchesInEpoch: Int { batches.count }

  /// The next batch; a new epoch starts after the last batch of the previous one.
  public mutating func next() -> IndexedBatch? {
    if position == batches.count {
      epoch += 1
      epochStart = rng
      batches = Batching.epoch(lengths: lengths, budget: batchTokens, rng: &rng)
      position = 0
    }
    position += 1
    return IndexedBatch(indices: batches[position - 1], examples: examples)
  }

  /// The state to save.
  public var state: BatchIteratorState {
    let s = epochStart.s
    return BatchIteratorState(epoch: epoch, position: position,
                              epochRandomState: [s.0, s.1, s.2, s.3].map { Self.hex($0) },
                              batchTokens: batchTokens, examples: examples.count, fingerprint: fingerprint)
  }

  /// Continues from `state`.
  public mutating func restore(_ state: BatchIteratorState) throws(DataError) {
    guard state.examples == examples.count, state.fingerprint == fingerprint else {
      throw .batching(problem: "the saved iterator state is for \(state.examples) examples (fingerprint \(state.fingerprint)), "
        + "these are \(examples.count) (fingerprint \(fingerprint)): the data or vocabulary changed")
    }
    guard state.batchTokens == batchTokens else {
      throw .batching(problem: "the saved iterator state has batch tokens \(state.batchTokens), this iterator \(batchTokens)")
    }
    let words = state.epochRandomState.compactMap { UInt64($0, radix: 16) }
    // xoshiro's all-zero state is a fixed point no seed produces; `next()` counts the epoch on.
    guard words.count == 4, words.contains(where: { $0 != 0 }), state.epoch >= 0, state.epoch < Int.max,
          state.position >= 0 else {
      throw .batching(problem: "the saved iterator state is malformed (epoch \(state.epoch), position \(state.position), "
        + "random state \(state.epochRandomState))")
    }
    var start = SeededRandom(seed: 0)
    start.s = (words[0], words[1], words[2], words[3])
    var after = start
    let redrawn = state.epoch == 0 ? [] : Batching.epoch(lengths: lengths, budget: batchTokens, rng: &after)
    guard state.position <= redrawn.count else {
      throw .batching(problem: "the saved position \(state.position) is past the epoch's \(redrawn.count) batches")
    }
    (epochStart, rng, batches, epoch, position) = (start, after, redrawn, state.epoch, state.position)
  }

  static func hex(_ x: UInt64) -> String {
    let h = String(x, radix: 16)
    return String(repeating: "0", count: 16 - h.count) + h
  }

  /// FNV-1a over every sequence's length and ids.
  static func fingerprint(_ examples: [EncodedExample]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ v: Int) {
      h ^= UInt64(bitPattern: Int64(v))
      h = h &* 0x0000_0100_0000_01B3
    }
    for e in examples {
      for seq in [e.context, e.question, e.answer] {
        mix(seq.count)
        for id in seq { mix(id) }
      }
    }
    return hex(h)
  }
}
