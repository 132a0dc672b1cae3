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
