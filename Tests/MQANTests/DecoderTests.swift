import Foundation
import Runtime
import Testing
@testable import MQAN

/// Real greedy decoding (encoder once, decoder over a growing prefix) reproduces decaNLP's greedy
/// output on the fixtures in decanlp mode.
@Suite struct MQANDecoderTests {
  @Test(arguments: ["tiny", "small"])
  func greedyMatchesDecaNLP(name: String) throws {
    let fx = try ParityTests.fixture(name)
    let expected = try fx.file.tensor("expected.greedy_decanlp")
    let (b, t) = (expected.shape[0], expected.shape[1])
    let want = try expected.int64s
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2)
    let feed = try fx.inputs()
    let out = try decoder.decode(feed, maxLength: t)
    let l2f = try fx.file.tensor("input.limited_to_full").int64s
    for row in 0..<b {
      // decaNLP keeps decoding a finished row until every row is done; compare up to its <eos>.
      let got = out[row].map { l2f[$0] }
      let ref = Array(want[(row * t)..<(row * t + t)])
      // A row ends at its <eos> or runs the full length; an empty answer matches nothing.
      #expect(!got.isEmpty && got.count <= t, "row \(row): \(got)")
      #expect(got.last == Int64(fx.config.eos) || got.count == t, "row \(row) stopped early: \(got)")
      #expect(Array(ref.prefix(got.count)) == got, "row \(row): \(got) vs \(ref)")
    }
  }
}

/// Beam search with MQAN as the scorer: beam 1 is greedy, wider beams return sorted n-best lists.
@Suite struct ModelBeamSearchTests {
  // d24-h2-l2-b5 and d16-h3-l2-oovrep decode OOV words copied from the context (ids >= V).
  @Test(arguments: ["tiny", "small", "d24-h2-l2-b5", "d16-h3-l2-oovrep"])
  func beamOneIsGreedy(name: String) throws {
    let fx = try ParityTests.fixture(name)
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2)
    let feed = try fx.inputs()
    let maxLength = 8
    let want = try Self.argmaxGreedy(fx, feed, maxLength: maxLength)
    let greedy = try decoder.decodeScored(feed, maxLength: maxLength)
    let beam = try decoder.beamSearch(feed, options: .greedy(maxLength: maxLength, eos: Int32(fx.config.eos),
                                                              initToken: Int32(fx.config.initToken)))
    #expect(greedy.count == want.count && beam.count == want.count)
    for (row, w) in want.enumerated() where row < greedy.count && row < beam.count {
      // Every row generates at least one token and stops at <eos> or after maxLength tokens.
      #expect(!w.tokens.isEmpty && w.tokens.count <= maxLength)
      #expect(w.tokens.last == fx.config.eos || w.tokens.count == maxLength, "row \(row): \(w.tokens)")
      #expect(greedy[row].tokens == w.tokens, "row \(row): \(greedy[row].tokens) vs argmax \(w.tokens)")
      #expect(abs(greedy[row].score - w.score) < 1e-3 * max(1, abs(w.score)), "row \(row)")
      let b = try #require(beam[row].first)
      #expect(b.tokens.map(Int.init) == w.tokens, "row \(row)")
      #expect(abs(Double(b.score) - w.score) < 1e-3 * max(1, abs(w.score)), "row \(row)")
    }
  }

  /// Greedy decoding written out independently of `BeamSearch` and of the `decode-step` plan: the
  /// `encode` plan once, then the teacher-forced decoder over each whole prefix, the argmax of its
  /// last position (ties to the lower id), until `<eos>` or `maxLength` tokens.
  static func argmaxGreedy(_ fx: ParityFixture, _ feed: [String: HostTensor], maxLength: Int) throws
    -> [(tokens: [Int], score: Double)]
  {
    let reference = try PrefixDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 1)
    var decFeed = try reference.encoder.run(MQANDecoder.encoderFeed(feed))
    for name in ["context_limited", "question_limited", "embeddings", "limited_to_full"] { decFeed[name] = feed[name] }
    var scorer = PrefixDecoder.Scorer(decoder: reference.decoder, feed: decFeed,
                                      limitedToFull: try feed["limited_to_full"]!.asInt32(), pad: Int32(fx.config.pad))
    let rows = feed["context_limited"]!.shape[0]
    var prefixes = [[Int32]](repeating: [Int32(fx.config.initToken)], count: rows)
    var out = [(tokens: [Int], score: Double)](repeating: ([], 0), count: rows)
    var done = [Bool](repeating: false, count: rows)
    for _ in 0..<maxLength where done.contains(false) {
      let (logp, width) = try scorer.logProbabilities(tokens: prefixes, reorder: Array(0..<rows))
      for r in 0..<rows where !done[r] {
        var best = 0
        for j in 1..<width where logp[r * width + j] > logp[r * width + best] { best = j }
        out[r].tokens.append(best)
        out[r].score += Double(logp[r * width + best])
        prefixes[r].append(Int32(best))
        if best == fx.config.eos || out[r].tokens.count == maxLength { done[r] = true }
      }
    }
    return out
  }

  /// Consistent mode masks every padded position, so an example decodes the same alone as inside
  /// a padded batch (decanlp mode does not: its cross-attention has no context mask).
  @Test func consistentModeIsBatchInvariant() throws {
    let fx = try ParityTests.fixture("d24-h2-l2-b5")
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .consistent, threads: 1)
    let feed = try fx.inputs()
    let together = try decoder.decodeScored(feed, maxLength: 8)
    let batch = feed["context"]!.shape[0]
    for row in 0..<batch {
      var alone: [String: HostTensor] = [:]
      for (name, t) in feed {
        // Row `row` alone, cut to its own lengths (no padding at all).
        switch name {
        case "embeddings", "limited_to_full": alone[name] = t
        case "context_lengths", "question_lengths":
          alone[name] = HostTensor(shape: [1], int64s: [try t.int64s[row]])
        default:
          let lenName = name.hasPrefix("context") ? "context_lengths" : name.hasPrefix("question") ? "question_lengths" : nil
          let width = t.shape[1]
          let len = try lenName.map { Int(try feed[$0]!.int64s[row]) } ?? width
          let values = try t.int64s
          alone[name] = HostTensor(shape: [1, len], int64s: Array(values[(row * width)..<(row * width + len)]))
        }
      }
      let single = try decoder.decodeScored(alone, maxLength: 8)[0]
      #expect(single.tokens == together[row].tokens, "row \(row)")
      #expect(abs(single.score - together[row].score) < 1e-3 * max(1, abs(single.score)), "row \(row)")
    }
  }

  @Test func wideBeamReturnsSortedNBest() throws {
    let fx = try ParityTests.fixture("small")
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .consistent, threads: 2)
    var options = BeamSearchOptions.greedy(maxLength: 6, eos: Int32(fx.config.eos), initToken: Int32(fx.config.initToken))
    options.beamSize = 4
    options.nBest = 3
    let result = try decoder.beamSearch(try fx.inputs(), options: options)
    #expect(result.count == 4)
    for hyps in result {
      #expect(hyps.count == 3)
      #expect(zip(hyps, hyps.dropFirst()).allSatisfy { $0.normalizedScore >= $1.normalizedScore })
      #expect(Set(hyps.map(\.tokens)).count == hyps.count, "n-best entries differ")
    }
  }
}

/// The `decode-step` plan (key/value caches, state carried and reordered between steps) against
/// its reference twin, the teacher-forced decoder re-run over every prefix.
@Suite struct DecodeStepTests {
  @Test(arguments: ["tiny", "small", "d24-h2-l2-b5", "d16-h3-l2-oovrep"], DecoderMode.allCases)
  func stepPlanMatchesPrefixRecompute(name: String, mode: DecoderMode) throws {
    let fx = try ParityTests.fixture(name)
    let feed = try fx.inputs()
    let step = try MQANDecoder(config: fx.config, params: fx.params, mode: mode, threads: 2)
    let reference = try PrefixDecoder(config: fx.config, params: fx.params, mode: mode, threads: 2)
    for k in [1, 3] {
      let options = BeamSearchOptions(beamSize: k, maxLength: 7, lengthPenalty: 0.6, nBest: k,
                                      eos: Int32(fx.config.eos), initToken: Int32(fx.config.initToken))
      let got = try step.beamSearch(feed, options: options)
      let want = try reference.beamSearch(feed, options: options)
      #expect(got.count == want.count)
      for (item, (g, w)) in zip(got, want).enumerated() {
        #expect(g.map(\.tokens) == w.map(\.tokens), "\(name) \(mode) beam \(k) item \(item)")
        for (a, b) in zip(g, w) {
          #expect(abs(a.score - b.score) <= 1e-4 * max(1, abs(b.score)), "\(a.score) vs \(b.score)")
          #expect(a.finished == b.finished)
        }
      }
    }
  }

  /// A beam of K = 3 keeps every item's hypotheses apart: an item decodes the same alone.
  @Test func beamItemsAreIndependentInConsistentMode() throws {
    let fx = try ParityTests.fixture("small")
    let feed = try fx.inputs()
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .consistent, threads: 2)
    let options = BeamSearchOptions(beamSize: 3, maxLength: 6, nBest: 2, eos: Int32(fx.config.eos),
                                    initToken: Int32(fx.config.initToken))
    let together = try decoder.beamSearch(feed, options: options)
    let batch = feed["context"]!.shape[0]
    for row in 0..<batch {
      var alone: [String: HostTensor] = [:]
      for (name, t) in feed {
        alone[name] = ["embeddings", "limited_to_full"].contains(name) ? t : try t.rows(row)
      }
      let single = try decoder.beamSearch(alone, options: options)[0]
      #expect(single.map(\.tokens) == together[row].map(\.tokens), "row \(row)")
    }
  }
}

extension HostTensor {
  /// Row `r` of the leading dim, as a batch of one.
  fileprivate func rows(_ r: Int) throws -> HostTensor {
    let width = count / shape[0]
    var s = shape
    s[0] = 1
    switch storage {
    case .f32(let a): return try HostTensor(.f32(Array(a[(r * width)..<((r + 1) * width)])), shape: s)
    case .i32(let a): return try HostTensor(.i32(Array(a[(r * width)..<((r + 1) * width)])), shape: s)
    case .i64(let a): return try HostTensor(.i64(Array(a[(r * width)..<((r + 1) * width)])), shape: s)
    case .bf16, .i8: throw HostTensorError.dtypeMismatch(expected: .f32, found: dtype)
    }
  }
}
