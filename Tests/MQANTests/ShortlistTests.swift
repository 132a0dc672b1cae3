import Foundation
import Runtime
import Testing
@testable import MQAN

/// The vocabulary shortlist: which words it holds, and decoding over it.
@Suite struct ShortlistTests {
  @Test func holdsFrequentBatchAndAnswerWordsPaddedToTheGranule() {
    let words = AnswerWords(tasks: ["sst": [900, 901], "other": [950]])
    let s = Shortlist(frequent: 10, answerWords: words)
    let ids = s.ids(generativeVocab: 1000, task: "sst", contexts: [[5, 700, 1200], [701]], questions: [[702, 3]])
    #expect(ids.count == 256)
    #expect(ids == ids.sorted() && Set(ids).count == ids.count)
    for must in [0, 9, 700, 701, 702, 900, 901] { #expect(ids.contains(Int32(must)), "\(must)") }
    #expect(!ids.contains(950) && !ids.contains(1200), "another task's words and OOV ids stay out")
    // The padding is the next most frequent words.
    #expect(ids.contains(10) && ids.contains(Int32(256 - 7)))
    // A shortlist as large as the vocabulary is the whole vocabulary.
    let all = Shortlist(frequent: 5000).ids(generativeVocab: 300, task: nil, contexts: [], questions: [])
    #expect(all == (0..<300).map(Int32.init))
    let small = Shortlist(frequent: 0).ids(generativeVocab: 100, task: nil, contexts: [[4]], questions: [])
    #expect(small == (0..<100).map(Int32.init), "capped at V when the granule is larger")
  }

  @Test func answerWordsLearnAndRoundTrip() throws {
    let w = AnswerWords.learn([("sst", [[2, 40, 3], [2, 41, 3, 999]]), ("sst", [[7]])], generativeVocab: 100)
    #expect(w.tasks["sst"] == [2, 3, 7, 40, 41])
    let back = try AnswerWords(json: w.json(), generativeVocab: 100)
    #expect(back == w)
    #expect(throws: ModelError.self) { _ = try AnswerWords(json: w.json(), generativeVocab: 10) }
    #expect(throws: ModelError.self) { _ = try AnswerWords(json: "[1]", generativeVocab: 10) }
  }

  static func decode(_ fx: ParityFixture, shortlist: Shortlist?, beam: Int) throws -> [[BeamHypothesis]] {
    let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2,
                                  shortlist: shortlist != nil)
    let feed = try fx.inputs()
    let ids = try shortlist.map { s -> [Int32] in
      let b = feed["context"]!, q = feed["question"]!
      func rows(_ t: HostTensor) throws -> [[Int]] {
        let flat = try t.asInt32().map(Int.init), w = t.shape[1]
        return stride(from: 0, to: flat.count, by: w).map { Array(flat[$0..<($0 + w)]) }
      }
      return s.ids(generativeVocab: fx.config.generativeVocab, task: nil, contexts: try rows(b), questions: try rows(q))
    }
    let options = BeamSearchOptions(beamSize: beam, maxLength: 8, nBest: beam, eos: Int32(fx.config.eos),
                                    initToken: Int32(fx.config.initToken))
    return try decoder.beamSearch(feed, options: options, shortlist: ids)
  }

  /// A shortlist of the whole vocabulary decodes to exactly the answers and scores without one.
  @Test(arguments: ["small", "d16-h3-l2-oovrep"])
  func theWholeVocabularyChangesNothing(name: String) throws {
    let fx = try ParityTests.fixture(name)
    for beam in [1, 3] {
      let plain = try Self.decode(fx, shortlist: nil, beam: beam)
      let full = try Self.decode(fx, shortlist: Shortlist(frequent: fx.config.generativeVocab), beam: beam)
      #expect(plain.map { $0.map(\.tokens) } == full.map { $0.map(\.tokens) })
      #expect(plain.map { $0.map(\.score) } == full.map { $0.map(\.score) })
    }
  }

  /// Copying is never cut: on the first decoding step, over every extended id (K = X), the
  /// smallest shortlist (the special words and the batch's words) leaves each OOV id's
  /// probability (1e-10 plus its copy mass) bit for bit as it was, raises each shortlisted word's
  /// (the softmax renormalized over fewer words) and leaves out the words outside it (none of
  /// which is in the context or question).
  @Test func copiesAreNeverCut() throws {
    let fx = try ParityTests.fixture("d16-h3-l2-oovrep")
    let v = fx.config.generativeVocab
    let feed = try fx.inputs()
    let l2f = try feed["limited_to_full"]!.asInt32()
    let x = l2f.count, batch = feed["context_limited"]!.shape[0]
    let contexts = try feed["context_limited"]!.asInt32(), questions = try feed["question_limited"]!.asInt32()
    let s = Shortlist(frequent: 4, granule: 1)
    func rows(_ flat: [Int32], _ w: Int) -> [[Int]] {
      stride(from: 0, to: flat.count, by: w).map { flat[$0..<($0 + w)].map(Int.init) }
    }
    let ids = s.ids(generativeVocab: v, task: nil, contexts: rows(contexts, feed["context_limited"]!.shape[1]),
                    questions: rows(questions, feed["question_limited"]!.shape[1]))
    #expect(ids.count + 8 <= v, "a shortlist of \(ids.count) of \(v) words")
    func firstStep(_ shortlist: [Int32]?) throws -> [[Int32: Float]] {
      let decoder = try MQANDecoder(config: fx.config, params: fx.params, mode: .decanlp, threads: 2,
                                    shortlist: shortlist != nil)
      var stepFeed = feed
      if let shortlist { stepFeed["shortlist"] = HostTensor(shape: [shortlist.count], int32s: shortlist) }
      let enc = try decoder.encoder.run(MQANDecoder.encoderFeed(stepFeed))
      let scorer = try StepScorer(step: decoder.step, config: fx.config, feed: stepFeed, encoded: enc,
                                  limitedToFull: l2f, beam: x, slots: 2)
      let n = batch * x
      let c = try scorer.candidates(tokens: Array(repeating: [Int32(fx.config.initToken)], count: n),
                                    reorder: (0..<n).map { $0 / x }, k: x)
      // Slots past the candidates hold -inf (index 0): only the candidates are kept.
      return (0..<batch).map { b in
        let r = b * x
        return Dictionary(uniqueKeysWithValues: (0..<x).filter { c.values[r * x + $0] > -.infinity }
          .map { (c.tokens[r * x + $0], c.values[r * x + $0]) })
      }
    }
    let plain = try firstStep(nil), short = try firstStep(ids)
    let inList = Set(ids)
    for b in 0..<batch {
      #expect(plain[b].count == x && short[b].count == x - (v - ids.count))
      for id in 0..<Int32(x) {
        let p = try #require(plain[b][id])
        if Int(id) >= v {
          #expect(p == short[b][id], "item \(b) OOV id \(id): \(p) vs \(String(describing: short[b][id]))")
        } else if inList.contains(id) {
          let q = try #require(short[b][id])
          #expect(q >= p, "item \(b) word \(id): \(q) < \(p)")
        } else {
          #expect(short[b][id] == nil, "item \(b) word \(id) outside the shortlist is a candidate")
        }
      }
    }
  }
}
