import CKernels

/// The hypotheses of beam search, K rows per item (item `b`'s are rows `b * K ..< (b + 1) * K`),
/// and the step that grows them. `BeamSearch.search` runs it over a fixed batch;
/// `ContinuousDecoder` over a batch whose items join and leave between steps.
///
/// Per step, for each item:
/// - finished hypotheses (ended in `eos`) keep their slot and score, stop growing and do not
///   compete for expansion slots;
/// - the other `K - finished` slots take the best `score + logp` expansions of the live
///   hypotheses (`mq_topk` over each live row's best K tokens, which hold the best K of all
///   `live × vocabulary` expansions; ties to the lower beam, then lower token); an expansion
///   ending in `eos` finishes; a slot with no finite candidate is empty.
/// An item starts from the single `<init>` hypothesis (no K duplicates).
struct BeamRows {
  enum Slot { case empty, live, finished }

  let options: BeamSearchOptions
  let K: Int
  private(set) var state: [Slot]
  private(set) var scores: [Float]
  /// Each row's tokens, `<init>` first.
  private(set) var prefixes: [[Int32]]
  /// The row of the previous step (or of the initial states) each row continues.
  private(set) var reorder: [Int]
  // The next step's rows, and the step's buffers: candidates (live × width), the top (K - finished).
  private var nextState: [Slot], nextScores: [Float], nextPrefixes: [[Int32]], nextReorder: [Int]
  private var cand: [Float] = []
  private var topValues: [Float], topIndices: [Int32]
  private var liveSlots: [Int] = []

  /// `items` items, every row empty.
  init(options: BeamSearchOptions, items: Int) {
    self.options = options
    K = options.beamSize
    let rows = items * K
    state = [Slot](repeating: .empty, count: rows)
    scores = [Float](repeating: 0, count: rows)
    prefixes = [[Int32]](repeating: [options.initToken], count: rows)
    reorder = Array(0..<rows)
    (nextState, nextScores, nextPrefixes, nextReorder) = (state, scores, prefixes, reorder)
    topValues = [Float](repeating: 0, count: K)
    topIndices = [Int32](repeating: 0, count: K)
    liveSlots.reserveCapacity(K)
  }

  /// Item `b` starts afresh: one live `<init>` hypothesis, every row continuing row `from` (the
  /// row that holds its initial state).
  mutating func start(_ b: Int, from row: Int) {
    for k in 0..<K {
      let r = b * K + k
      state[r] = k == 0 ? .live : .empty
      scores[r] = 0
      prefixes[r] = [options.initToken]
      reorder[r] = row
    }
  }

  /// Item `from`'s rows copied to item `to`'s (a batch closing a gap); the reorder follows them.
  mutating func move(_ from: Int, to: Int) {
    for k in 0..<K {
      let (s, d) = (from * K + k, to * K + k)
      state[d] = state[s]
      scores[d] = scores[s]
      prefixes[d] = prefixes[s]
      reorder[d] = reorder[s] - from * K + to * K
    }
  }

  func isLive(_ b: Int) -> Bool { (0..<K).contains { state[b * K + $0] == .live } }

  /// The step's candidates for rows `0 ..< rows`, checked against what `expand` reads.
  func check(_ found: BeamCandidates, rows: Int) throws {
    let width = found.perRow
    guard width >= K, found.values.count == rows * width, found.tokens.count == rows * width else {
      throw BeamSearchError.scorer("returned \(found.values.count) values and \(found.tokens.count) tokens, "
                                   + "\(width) per row; want \(rows) rows × at least \(K)")
    }
  }

  /// Item `b`'s next rows from this step's candidates (`check`ed); `advance` makes them current.
  mutating func expand(_ b: Int, _ found: BeamCandidates) {
    let width = found.perRow, base = b * K
    liveSlots.removeAll(keepingCapacity: true)
    var free = 0
    for k in 0..<K {
      let r = base + k
      // Finished and empty rows carry over unchanged (and point at themselves).
      nextState[r] = state[r]
      nextScores[r] = scores[r]
      nextReorder[r] = r
      if state[r] != .finished { free += 1 }
      if state[r] == .live { liveSlots.append(k) }
    }
    if liveSlots.isEmpty {
      for k in 0..<K { nextPrefixes[base + k] = prefixes[base + k] }
      return
    }
    // Candidates in beam order, then token order: ties go to the lower beam, lower token.
    let n = liveSlots.count * width
    if cand.count < n { cand = [Float](repeating: 0, count: K * width) }
    found.values.withUnsafeBufferPointer { lp in
      cand.withUnsafeMutableBufferPointer { c in
        for (i, k) in liveSlots.enumerated() {
          let s = scores[base + k], row = (base + k) * width, o = i * width
          for v in 0..<width { c[o + v] = s + lp[row + v] }
        }
      }
    }
    let take = min(free, n)
    cand.withUnsafeBufferPointer { c in
      mq_topk(c.baseAddress!, Int64(n), Int64(take), &topValues, &topIndices)
    }
    // Fill the non-finished slots in slot order with the candidates, best first.
    var next = 0
    for k in 0..<K {
      let r = base + k
      if state[r] == .finished {
        nextPrefixes[r] = prefixes[r]
        continue
      }
      if next < take, topValues[next] > -.infinity {  // false for -inf and NaN
        let flat = Int(topIndices[next])
        let parent = base + liveSlots[flat / width]
        let token = found.tokens[parent * width + flat % width]
        nextReorder[r] = parent
        nextScores[r] = topValues[next]
        nextState[r] = token == options.eos ? .finished : .live
        nextPrefixes[r] = prefixes[parent]
        nextPrefixes[r].append(token)
        next += 1
      } else {
        nextState[r] = .empty
        nextScores[r] = -.infinity
        nextPrefixes[r] = [options.initToken]
      }
    }
  }

  /// The expanded rows become current (rows no `expand` wrote hold stale values until `start`).
  mutating func advance() {
    swap(&state, &nextState)
    swap(&scores, &nextScores)
    swap(&prefixes, &nextPrefixes)
    swap(&reorder, &nextReorder)
  }

  /// Item `b`'s finished and live hypotheses ranked by normalized score (ties: lower slot), the
  /// best `nBest`.
  func result(_ b: Int) -> [BeamHypothesis] {
    var hyps: [(slot: Int, hyp: BeamHypothesis)] = []
    for k in 0..<K {
      let r = b * K + k
      guard state[r] != .empty else { continue }
      let tokens = Array(prefixes[r].dropFirst())
      hyps.append((k, BeamHypothesis(
        tokens: tokens, score: scores[r],
        normalizedScore: BeamSearch.normalize(scores[r], length: tokens.count, alpha: options.lengthPenalty),
        finished: state[r] == .finished)))
    }
    hyps.sort {
      $0.hyp.normalizedScore != $1.hyp.normalizedScore
        ? $0.hyp.normalizedScore > $1.hyp.normalizedScore : $0.slot < $1.slot
    }
    return hyps.prefix(options.nBest).map(\.hyp)
  }
}
