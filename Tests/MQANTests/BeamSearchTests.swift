import Foundation
import Testing
@testable import MQAN

// Toy scorers over a tiny vocabulary: the next-token log-probabilities are a fixed pseudo-random
// function of (batch item seed, prefix), log-softmaxed in Double and rounded once to Float.

private let initToken: Int32 = 99

/// Rolling hash of a token sequence, started from the item's seed.
private func hashStep(_ h: UInt64, _ token: Int32) -> UInt64 {
  (h ^ UInt64(UInt32(bitPattern: token))) &* 0x0000_0100_0000_01B3
}
private func hashStart(_ seed: UInt64) -> UInt64 { 0xCBF2_9CE4_8422_2325 ^ (seed &* 0x9E37_79B9_7F4A_7C15) }
private func hashPrefix(_ seed: UInt64, _ prefix: [Int32]) -> UInt64 {
  prefix.reduce(hashStart(seed), hashStep)
}

/// Log-probabilities for the state hash `h` over `vocab` tokens. `forbid`: a token given -inf
/// when the hash says so (about one state in three), so some expansions are impossible.
private func table(_ h: UInt64, vocab: Int, forbid: Int32?) -> [Float] {
  var z = h
  var logits = [Double]()
  for _ in 0..<vocab {
    z &+= 0x9E37_79B9_7F4A_7C15
    var x = z
    x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
    x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
    x ^= x >> 31
    logits.append(Double(x >> 11) / Double(1 << 53) * 4 - 2)
  }
  let m = logits.max()!
  let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
  var out = logits.map { Float($0 - lse) }
  if let f = forbid, h % 3 == 0 { out[Int(f)] = -.infinity }
  return out
}

/// Stateless: reads each row's whole prefix. Records every call.
private struct PrefixScorer: DenseBeamScorer {
  var seeds: [UInt64]
  var beam: Int
  var vocab: Int
  var forbid: Int32? = nil
  var calls: [(tokens: [[Int32]], reorder: [Int])] = []

  func logp(item: Int, prefix: [Int32]) -> [Float] {
    table(hashPrefix(seeds[item], prefix), vocab: vocab, forbid: forbid)
  }

  mutating func logProbabilities(tokens: [[Int32]], reorder: [Int]) throws -> (values: [Float], width: Int) {
    calls.append((tokens, reorder))
    var out = [Float]()
    out.reserveCapacity(tokens.count * vocab)
    for (r, prefix) in tokens.enumerated() { out += logp(item: r / beam, prefix: prefix) }
    return (out, vocab)
  }
}

/// Stateful, like a recurrent model: keeps one hash per row, gathers it by `reorder` into a second
/// buffer (no allocation after the first call), then feeds only the last token. Its scores equal
/// PrefixScorer's exactly when `reorder` is consistent with the prefixes.
private final class StatefulScorer: DenseBeamScorer {
  let seeds: [UInt64], beam: Int, vocab: Int
  var state: [UInt64] = [], scratch: [UInt64] = []
  var out: [Float] = []
  var first = true

  init(seeds: [UInt64], beam: Int, vocab: Int) { (self.seeds, self.beam, self.vocab) = (seeds, beam, vocab) }

  func logProbabilities(tokens: [[Int32]], reorder: [Int]) throws -> (values: [Float], width: Int) {
    if first {
      state = seeds.map(hashStart)  // the B "encoder" states
      scratch = [UInt64](repeating: 0, count: tokens.count)
      out = [Float](repeating: 0, count: tokens.count * vocab)
      first = false
    }
    for r in 0..<tokens.count { scratch[r] = state[reorder[r]] }
    swap(&state, &scratch)
    if scratch.count != tokens.count { scratch = [UInt64](repeating: 0, count: tokens.count) }
    for r in 0..<tokens.count {
      state[r] = hashStep(state[r], tokens[r].last!)
      let t = table(state[r], vocab: vocab, forbid: nil)
      for v in 0..<vocab { out[r * vocab + v] = t[v] }
    }
    return (out, vocab)
  }
}

/// Every hypothesis up to `maxLength` generated tokens: ended by eos, or unfinished at maxLength.
private func exhaustive(_ scorer: PrefixScorer, item: Int, maxLength: Int, eos: Int32, alpha: Double)
  -> [BeamHypothesis]
{
  var all: [BeamHypothesis] = []
  func walk(_ prefix: [Int32], _ score: Float) {
    let lp = scorer.logp(item: item, prefix: prefix)
    for v in 0..<Int32(lp.count) where lp[Int(v)] > -.infinity {
      let s = score + lp[Int(v)]
      let p = prefix + [v]
      let tokens = Array(p.dropFirst())
      if v == eos || tokens.count == maxLength {
        all.append(BeamHypothesis(tokens: tokens, score: s,
                                  normalizedScore: BeamSearch.normalize(s, length: tokens.count, alpha: alpha),
                                  finished: v == eos))
      } else {
        walk(p, s)
      }
    }
  }
  walk([initToken], 0)
  return all.sorted { $0.normalizedScore > $1.normalizedScore }
}

private func options(_ k: Int, maxLength: Int, alpha: Double = 0, nBest: Int = 1, eos: Int32)
  -> BeamSearchOptions
{
  BeamSearchOptions(beamSize: k, maxLength: maxLength, lengthPenalty: alpha, nBest: nBest, eos: eos,
                    initToken: initToken)
}

@Suite struct BeamSearchTests {
  @Test func beamOneIsGreedyArgmax() throws {
    let seeds: [UInt64] = [1, 2, 3, 4, 5, 6, 7]
    let (vocab, eos, maxLength) = (5, Int32(4), 12)
    var scorer = PrefixScorer(seeds: seeds, beam: 1, vocab: vocab)
    let got = try BeamSearch(.greedy(maxLength: maxLength, eos: eos, initToken: initToken))
      .search(batch: seeds.count, scorer: &scorer)
    for item in seeds.indices {
      var prefix = [initToken], score: Float = 0
      while prefix.count - 1 < maxLength, prefix.last != eos {
        let lp = scorer.logp(item: item, prefix: prefix)
        var best = 0
        for j in 1..<vocab where lp[j] > lp[best] { best = j }
        score += lp[best]
        prefix.append(Int32(best))
      }
      #expect(got[item].count == 1)
      #expect(got[item][0].tokens == Array(prefix.dropFirst()), "item \(item)")
      #expect(got[item][0].score == score)
      #expect(got[item][0].finished == (prefix.last == eos))
    }
    // Some item stops early, some runs to the limit (otherwise the test is weaker than it says).
    #expect(got.contains { $0[0].finished } && got.contains { !$0[0].finished || $0[0].tokens.count > 1 })
  }

  @Test(arguments: [(4, 3, 0.0), (4, 3, 0.6), (4, 4, 0.0), (4, 4, 1.0), (4, 4, 3.0), (5, 3, 0.6)])
  func wideBeamEqualsExhaustiveSearch(vocab: Int, maxLength: Int, alpha: Double) throws {
    // Hypotheses in the whole space: (V-1)^0 + ... + (V-1)^(L-1) finished, (V-1)^L unfinished.
    let k = (0...maxLength).reduce(0) { $0 + Int(pow(Double(vocab - 1), Double($1))) }
    let eos = Int32(vocab - 1)
    let seeds: [UInt64] = [11, 12, 13]
    for forbid: Int32? in [nil, 0] {
      var scorer = PrefixScorer(seeds: seeds, beam: k, vocab: vocab, forbid: forbid)
      let nBest = 12
      let got = try BeamSearch(options(k, maxLength: maxLength, alpha: alpha, nBest: nBest, eos: eos))
        .search(batch: seeds.count, scorer: &scorer)
      // The full list too (K ≥ the number of hypotheses).
      var all = PrefixScorer(seeds: seeds, beam: k, vocab: vocab, forbid: forbid)
      let full = try BeamSearch(options(k, maxLength: maxLength, alpha: alpha, nBest: k, eos: eos))
        .search(batch: seeds.count, scorer: &all)
      for item in seeds.indices {
        let want = exhaustive(scorer, item: item, maxLength: maxLength, eos: eos, alpha: alpha)
        #expect(got[item] == Array(want.prefix(nBest)), "item \(item) forbid \(String(describing: forbid))")
        #expect(full[item] == want)
      }
    }
  }

  @Test(arguments: [1, 2, 3, 5])
  func reorderIsConsistentWithPrefixes(k: Int) throws {
    let seeds: [UInt64] = [21, 22, 23]
    let (vocab, eos, maxLength) = (5, Int32(4), 8)
    var scorer = PrefixScorer(seeds: seeds, beam: k, vocab: vocab)
    let got = try BeamSearch(options(k, maxLength: maxLength, nBest: k, eos: eos))
      .search(batch: seeds.count, scorer: &scorer)
    let calls = scorer.calls
    #expect(!calls.isEmpty)
    // First call: every row is <init> and points at its batch item's initial state.
    #expect(calls[0].tokens.allSatisfy { $0 == [initToken] })
    #expect(calls[0].reorder == (0..<(seeds.count * k)).map { $0 / k })
    for c in calls.indices.dropFirst() {
      let (prev, now) = (calls[c - 1], calls[c])
      #expect(now.tokens.count == seeds.count * k)
      for r in now.tokens.indices {
        let p = now.reorder[r]
        #expect(p / k == r / k, "a row's parent is in its own batch item")
        let parent = prev.tokens[p]
        if now.tokens[r] == [initToken] { continue }  // empty slot
        if parent.last == eos {
          // Finished: kept in place, not extended.
          #expect(p == r && now.tokens[r] == parent)
        } else {
          #expect(now.tokens[r].count == c + 1 && Array(now.tokens[r].dropLast()) == parent)
        }
      }
    }
    // A stateful scorer that only gathers by `reorder` and feeds the last token gets the same
    // results, so the indices are exactly what a recurrent model needs.
    var stateful = StatefulScorer(seeds: seeds, beam: k, vocab: vocab)
    let viaState = try BeamSearch(options(k, maxLength: maxLength, nBest: k, eos: eos))
      .search(batch: seeds.count, scorer: &stateful)
    #expect(viaState == got)
  }

  @Test func finishedHypothesesAreNotExtended() throws {
    let seeds: [UInt64] = [31, 32, 33, 34]
    let (vocab, eos, maxLength, k) = (4, Int32(3), 10, 4)
    var scorer = PrefixScorer(seeds: seeds, beam: k, vocab: vocab)
    let got = try BeamSearch(options(k, maxLength: maxLength, nBest: k, eos: eos))
      .search(batch: seeds.count, scorer: &scorer)
    var sawFinishedCarry = false
    for c in scorer.calls.indices {
      for (r, t) in scorer.calls[c].tokens.enumerated() {
        // eos only ever at the end of a prefix.
        #expect(!t.dropLast().contains(eos))
        if c + 1 < scorer.calls.count, t.last == eos {
          #expect(scorer.calls[c + 1].tokens[r] == t && scorer.calls[c + 1].reorder[r] == r)
          sawFinishedCarry = true
        }
      }
    }
    #expect(sawFinishedCarry)
    for item in seeds.indices {
      #expect(!got[item].isEmpty)
      for h in got[item] {
        // eos ends exactly the finished ones; the score is the sum along its own tokens.
        #expect(h.finished == (h.tokens.last == eos) && !h.tokens.dropLast().contains(eos))
        #expect(h.finished || h.tokens.count == maxLength)
        var prefix = [initToken], s: Float = 0
        for t in h.tokens {
          s += scorer.logp(item: item, prefix: prefix)[Int(t)]
          prefix.append(t)
        }
        #expect(h.score == s)
      }
      // Best first, and no duplicate hypotheses (the first step expands <init> once).
      #expect(zip(got[item], got[item].dropFirst()).allSatisfy { $0.normalizedScore >= $1.normalizedScore })
      #expect(Set(got[item].map(\.tokens)).count == got[item].count)
    }
  }

  @Test func firstStepExpandsInitOnce() throws {
    // K larger than the vocabulary: the first step can fill only V slots, all distinct.
    var scorer = PrefixScorer(seeds: [41], beam: 8, vocab: 3)
    let got = try BeamSearch(options(8, maxLength: 1, nBest: 8, eos: 2)).search(batch: 1, scorer: &scorer)
    #expect(got[0].map(\.tokens).sorted { $0[0] < $1[0] } == [[0], [1], [2]])
    #expect(scorer.calls.count == 1)
  }

  @Test(arguments: [1, 3, 6])
  func batchItemsAreIndependent(k: Int) throws {
    let seeds: [UInt64] = [51, 52, 53]
    let (vocab, eos, maxLength) = (5, Int32(4), 7)
    for alpha in [0.0, 0.8] {
      let opts = options(k, maxLength: maxLength, alpha: alpha, nBest: k, eos: eos)
      var all = PrefixScorer(seeds: seeds, beam: k, vocab: vocab)
      let together = try BeamSearch(opts).search(batch: 3, scorer: &all)
      for (i, seed) in seeds.enumerated() {
        var one = PrefixScorer(seeds: [seed], beam: k, vocab: vocab)
        let alone = try BeamSearch(opts).search(batch: 1, scorer: &one)
        #expect(alone[0] == together[i], "item \(i) k \(k) alpha \(alpha)")
      }
    }
  }

  @Test func lengthPenaltyIsGNMT() {
    #expect(BeamSearch.lengthPenalty(length: 1, alpha: 0) == 1)
    #expect(BeamSearch.lengthPenalty(length: 1, alpha: 0.7) == 1)
    #expect(abs(BeamSearch.lengthPenalty(length: 7, alpha: 0.5) - 2.0.squareRoot()) < 1e-12)
    #expect(BeamSearch.normalize(-3, length: 7, alpha: 1) == -1.5)
  }

  @Test func badOptionsAndScorerOutputThrow() throws {
    #expect(throws: BeamSearchError.self) { try BeamSearch(options(0, maxLength: 3, eos: 1)) }
    #expect(throws: BeamSearchError.self) { try BeamSearch(options(2, maxLength: 0, eos: 1)) }
    #expect(throws: BeamSearchError.self) { try BeamSearch(options(2, maxLength: 3, nBest: 3, eos: 1)) }
    #expect(throws: BeamSearchError.self) { try BeamSearch(options(2, maxLength: 3, alpha: -1, eos: 1)) }
    struct Short: DenseBeamScorer {
      func logProbabilities(tokens: [[Int32]], reorder: [Int]) throws -> (values: [Float], width: Int) {
        ([0, 0, 0], 4)
      }
    }
    var s = Short()
    #expect(throws: BeamSearchError.self) {
      try BeamSearch(options(2, maxLength: 3, eos: 1)).search(batch: 1, scorer: &s)
    }
    var p = PrefixScorer(seeds: [], beam: 2, vocab: 3)
    #expect(try BeamSearch(options(2, maxLength: 3, eos: 1)).search(batch: 0, scorer: &p).isEmpty)
  }

  /// `hooks.finished` hears every item once, with its final result, as soon as it stops (greedy:
  /// in order of answer length).
  @Test(arguments: [1, 3])
  func hooksReportEachItemWhenItEnds(k: Int) throws {
    let seeds: [UInt64] = [61, 62, 63, 64, 65, 66, 67, 68]
    let (vocab, eos, maxLength) = (5, Int32(4), 9)
    let opts = options(k, maxLength: maxLength, nBest: k, eos: eos)
    var plain = PrefixScorer(seeds: seeds, beam: k, vocab: vocab)
    let expected = try BeamSearch(opts).search(batch: seeds.count, scorer: &plain)
    var reports: [(item: Int, hyps: [BeamHypothesis])] = []
    var hooked = PrefixScorer(seeds: seeds, beam: k, vocab: vocab)
    let got = try BeamSearch(opts).search(batch: seeds.count, scorer: &hooked,
                                          hooks: BeamSearchHooks(finished: { reports.append(($0, $1)) }))
    #expect(got == expected)
    #expect(reports.map(\.item).sorted() == Array(seeds.indices))
    for r in reports { #expect(r.hyps == expected[r.item]) }
    if k == 1 {
      let lengths = reports.map { $0.hyps[0].tokens.count }
      #expect(lengths == lengths.sorted(), "greedy items are reported as they end: \(lengths)")
      #expect(Set(lengths).count > 1, "the fixture has answers of different lengths")
    }
  }
}
