import Foundation
import Runtime
import Testing
@testable import MQAN

/// Real greedy decoding (encoder once, decoder over a growing prefix) reproduces decaNLP's greedy
/// output on the fixtures in decanlp mode.
@Suite struct GreedyDecoderTests {
  @Test(arguments: ["tiny", "small"])
  func greedyMatchesDecaNLP(name: String) throws {
    let fx = try ParityTests.fixture(name)
    let expected = try fx.file.tensor("expected.greedy_decanlp")
    let (b, t) = (expected.shape[0], expected.shape[1])
    let want = try expected.int64s
    let decoder = try GreedyDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2)
    let feed = try fx.inputs()
    let out = try decoder.decode(feed, maxLength: t)
    let l2f = try fx.file.tensor("input.limited_to_full").int64s
    for row in 0..<b {
      // decaNLP keeps decoding a finished row until every row is done; compare up to its <eos>.
      let got = out[row].map { l2f[$0] }
      let ref = Array(want[(row * t)..<(row * t + t)])
      #expect(Array(ref.prefix(got.count)) == got, "row \(row): \(got) vs \(ref)")
    }
  }
}

/// Beam search with MQAN as the scorer: beam 1 is greedy, wider beams return sorted n-best lists.
@Suite struct ModelBeamSearchTests {
  @Test(arguments: ["tiny", "small"])
  func beamOneIsGreedy(name: String) throws {
    let fx = try ParityTests.fixture(name)
    let decoder = try GreedyDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2)
    let feed = try fx.inputs()
    let greedy = try decoder.decodeScored(feed, maxLength: 8)
    let beam = try decoder.beamSearch(feed, options: .greedy(maxLength: 8, eos: Int32(fx.config.eos),
                                                              initToken: Int32(fx.config.initToken)))
    for (row, g) in greedy.enumerated() {
      #expect(beam[row][0].tokens.map(Int.init) == g.tokens, "row \(row)")
      #expect(abs(Double(beam[row][0].score) - g.score) < 1e-3 * max(1, abs(g.score)))
    }
  }

  @Test func wideBeamReturnsSortedNBest() throws {
    let fx = try ParityTests.fixture("small")
    let decoder = try GreedyDecoder(config: fx.config, params: fx.params, mode: .consistent, threads: 2)
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
