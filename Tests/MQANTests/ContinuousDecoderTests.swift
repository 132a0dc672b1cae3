import Foundation
@testable import MQAN
import Runtime
import Testing

/// Continuous batching (`ContinuousDecoder`): items that join a running batch at different steps,
/// leave it as they finish and move slots, each decode as they do alone (`MQANDecoder.beamSearch`
/// with the consistent decoder).
@Suite struct ContinuousDecoderTests {
  /// Random examples of varied lengths, with words past the generative vocabulary (copies).
  static func examples(_ config: ModelConfig, count: Int, seed: UInt64) -> [EncodedExample] {
    var rng = SeededRandom(seed: seed)
    let words = config.generativeVocab + 12
    func seq(_ n: Int) -> [Int] {
      [config.initToken] + (0..<n).map { _ in 4 + Int(rng.next() % UInt64(words - 4)) } + [config.eos]
    }
    return (0..<count).map { i in
      EncodedExample(context: seq(1 + (i * 7 + 3) % 23), question: seq(1 + (i * 3) % 5), answer: [])
    }
  }

  static func alone(_ e: EncodedExample, _ decoder: MQANDecoder, _ embeddings: HostTensor,
                    _ options: BeamSearchOptions) throws -> (hyps: [BeamHypothesis], limitedToFull: [Int]) {
    let batch = EncodedBatch(context: [e.context], question: [e.question], answer: [[decoder.config.initToken, decoder.config.eos]])
    let hyps = try decoder.beamSearch(batch.feed(config: decoder.config, embeddings: embeddings), options: options)[0]
    return (hyps, batch.limited(generativeVocab: decoder.config.generativeVocab).limitedToFull)
  }

  @Test(arguments: [1, 3])
  func itemsJoiningAndLeavingDecodeAsAlone(beam: Int) throws {
    let fx = try ParityTests.fixture("small")
    let config = fx.config
    let decoder = try MQANDecoder(config: config, params: fx.params, mode: .consistent, threads: 2)
    let embeddings = EncodedBatch.randomEmbeddings(vocab: config.generativeVocab + 12, config: config, seed: 3)
    let options = BeamSearchOptions(beamSize: beam, maxLength: 7, nBest: min(2, beam), eos: Int32(config.eos),
                                    initToken: Int32(config.initToken))
    let examples = Self.examples(config, count: 11, seed: 5)
    let running = try ContinuousDecoder(decoder: decoder, embeddings: embeddings, options: options, capacity: 4,
                                        maxContext: 32, maxQuestion: 8)
    var owner: [Int: Int] = [:], got: [Int: ContinuousDecoder.Finished] = [:]
    var next = 0, steps = 0, dropped: Int?
    // One or two items join whenever there is room, so they sit at different positions.
    while next < examples.count || running.active > 0 {
      let take = min(running.free, examples.count - next, steps % 3 == 0 ? 2 : 1)
      for (i, h) in try running.admit(Array(examples[next..<(next + take)])).enumerated() { owner[h] = next + i }
      next += take
      if steps == 2, let h = running.handles.first {
        #expect(running.drop(h))
        dropped = owner[h]
      }
      for f in try running.step() {
        #expect(got[owner[f.handle]!] == nil)
        got[owner[f.handle]!] = f
      }
      steps += 1
      #expect(steps < 200)
      if steps >= 200 { break }
    }
    #expect(got.count == examples.count - 1 && dropped != nil && got[dropped!] == nil)
    for (i, e) in examples.enumerated() where i != dropped {
      let want = try Self.alone(e, decoder, embeddings, options)
      let f = try #require(got[i])
      #expect(f.hypotheses.map(\.tokens) == want.hyps.map(\.tokens), "example \(i)")
      #expect(f.toFull.array == want.limitedToFull, "example \(i)")
      for (a, b) in zip(f.hypotheses, want.hyps) {
        #expect(abs(a.score - b.score) <= 1e-4 * max(1, abs(b.score)), "example \(i): \(a.score) vs \(b.score)")
      }
    }
  }

  @Test func refusesWhatDoesNotFit() throws {
    let fx = try ParityTests.fixture("small")
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .consistent, threads: 1)
    let embeddings = EncodedBatch.randomEmbeddings(vocab: fx.config.generativeVocab + 12, config: fx.config, seed: 3)
    let options = BeamSearchOptions.greedy(maxLength: 4, eos: Int32(fx.config.eos), initToken: Int32(fx.config.initToken))
    let running = try ContinuousDecoder(decoder: decoder, embeddings: embeddings, options: options, capacity: 2,
                                        maxContext: 10, maxQuestion: 8)
    let short = Self.examples(fx.config, count: 3, seed: 1).map {
      EncodedExample(context: Array($0.context.prefix(5)), question: $0.question, answer: [])
    }
    #expect(throws: ModelError.self) { try running.admit(short) }
    #expect(running.active == 0)
    let long = EncodedExample(context: Array(repeating: 5, count: 11), question: [2, 3], answer: [])
    #expect(throws: ModelError.self) { try running.admit([long]) }
    #expect(try running.admit(Array(short.prefix(2))).count == 2)
    #expect(running.free == 0)
    #expect(try running.step().count <= 2)
  }

  /// Joining items are encoded in groups of similar lengths: equal lengths stay one call, far
  /// apart lengths split, every item once, each group ascending.
  @Test func joiningItemsAreEncodedInGroupsOfSimilarLength() {
    #expect(ContinuousDecoder.encodingGroups([]).isEmpty)
    #expect(ContinuousDecoder.encodingGroups(Array(repeating: (30, 10), count: 5)) == [[0, 1, 2, 3, 4]])
    let sizes = [(100, 8), (5, 8), (6, 8), (102, 9), (5, 7), (101, 8)]
    let groups = ContinuousDecoder.encodingGroups(sizes)
    #expect(groups == [[4, 1, 2], [0, 5, 3]])
    // Two items close in length are not worth a second call.
    #expect(ContinuousDecoder.encodingGroups([(20, 5), (22, 5)]).count == 1)
    var rng = SeededRandom(seed: 9)
    let random = (0..<40).map { _ in (Int(rng.next() % 300) + 3, Int(rng.next() % 20) + 3) }
    let split = ContinuousDecoder.encodingGroups(random)
    #expect(split.flatMap { $0 }.sorted() == Array(0..<40))
    let padded = split.reduce(0) { acc, g in
      acc + g.count * (g.map { random[$0].0 }.max()! + g.map { random[$0].1 }.max()!) + ContinuousDecoder.encoderCallCost
    }
    let whole = 40 * (random.map(\.0).max()! + random.map(\.1).max()!) + ContinuousDecoder.encoderCallCost
    #expect(split.count > 1 && padded < whole)
  }
}
