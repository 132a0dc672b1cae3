import Foundation
import Testing
@testable import MQAN

extension DataTests {
  @Suite struct VocabularyTests {
    static func counter(_ fields: TokenCounter.Fields) throws -> TokenCounter {
      var c = TokenCounter()
      for ex in try DataFixtures.trainingExamples() { c.add(ex, fields: fields) }
      return c
    }

    /// The order torchtext's `Vocab` gives for the same counts (golden.json), for both countings.
    @Test(arguments: TokenCounter.Fields.allCases)
    func orderMatchesDecaNLP(fields: TokenCounter.Fields) throws {
      let golden = try DataFixtures.golden()
      let vocab = Vocabulary(counter: try Self.counter(fields))
      #expect(vocab.itos == golden.vocab[fields.rawValue])
    }

    @Test func specialsComeFirst() throws {
      let vocab = Vocabulary(counter: try Self.counter(.contextQuestionAnswer))
      #expect(Array(vocab.itos.prefix(4)) == ["<unk>", "<pad>", "<init>", "<eos>"])
      #expect(vocab.id(of: "<unk>") == 0 && vocab.id(of: "<pad>") == 1 && vocab.id(of: "<init>") == 2 && vocab.id(of: "<eos>") == 3)
      #expect(ModelConfig.default.unk == Vocabulary.unk && ModelConfig.default.pad == Vocabulary.pad)
      #expect(ModelConfig.default.initToken == Vocabulary.initToken && ModelConfig.default.eos == Vocabulary.eos)
      #expect(vocab.counts.prefix(4).allSatisfy { $0 == 0 })
      // decreasing counts after the specials
      #expect(zip(vocab.counts.dropFirst(4), vocab.counts.dropFirst(5)).allSatisfy { $0 >= $1 })
    }

    @Test func tiesAreInCodePointOrderAndSizeIsCapped() {
      var c = TokenCounter()
      c.add([" b ", " a ", " c ", " a ", "Z", " b ", "<pad>", "é", "e\u{301}"])
      let v = Vocabulary(counter: c)
      // " a " and " b " twice; then once each: " c ", "<pad>" is a special, "Z" (U+005A), "e\u{301}", "é" (U+00E9).
      #expect(v.itos == Vocabulary.specials + [" a ", " b ", " c ", "Z", "e\u{301}", "é"])
      // Canonically equivalent spellings stay apart, as in Python.
      #expect(v.id(of: "é") != v.id(of: "e\u{301}"))
      #expect(Vocabulary(counter: c, maxSize: 2).itos == Vocabulary.specials + [" a ", " b "])
      #expect(Vocabulary(counter: c, minFrequency: 2).itos == Vocabulary.specials + [" a ", " b "])
      #expect(v.generativeSize(limit: 50_000) == v.count)
      #expect(v.generativeSize(limit: 5) == 5)
    }

    @Test func encodesWithInitAndEos() throws {
      let vocab = try Vocabulary(itos: Vocabulary.specials + [" the ", " cat "])
      #expect(vocab.encode([" the ", " dog ", " cat "]) == [2, 4, 0, 5, 3])
      #expect(vocab.encode([]) == [2, 3])
      #expect(vocab.answerTokens([2, 4, 1, 0, 5, 3, 4, 4]) == [" the ", " <unk> ", " cat "])
      #expect(Tokenizer().detokenize(vocab.answerTokens([2, 4, 0, 5, 3])) == "the <unk> cat")
    }

    @Test func jsonRoundTrips() throws {
      let vocab = Vocabulary(counter: try Self.counter(.decaNLP))
      let path = try DataFixtures.temporaryFile("", name: "vocab.json")
      try vocab.save(to: path)
      let back = try Vocabulary.load(from: path)
      #expect(back == vocab)
      #expect(back.id(of: " the ") == vocab.id(of: " the "))
    }

    @Test func acceptsDecaNLPsUnknownToken() throws {
      let v = try Vocabulary(itos: [" UNK ", "<pad>", "<init>", "<eos>", " x "])
      #expect(v.answerTokens([0, 4]) == [" UNK ", " x "])
    }

    @Test func badVocabulariesNameTheProblem() throws {
      func problem(_ json: String) -> String {
        DataFixtures.dataError { _ = try Vocabulary(jsonData: Data(json.utf8), source: "ck/vocab.json") }?.description ?? "no error"
      }
      #expect(problem(#"{"format":"other","itos":[]}"#).contains("ck/vocab.json: vocabulary: format is \"other\""))
      #expect(problem(#"{"format":"mqan-vocab-1","itos":["<pad>","<unk>","<init>","<eos>"]}"#).contains("first entries"))
      #expect(problem(#"{"format":"mqan-vocab-1","itos":["<unk>","<pad>","<init>","<eos>","a","a"]}"#).contains("\"a\" appears twice (ids 4 and 5)"))
      #expect(problem(#"{"format":"mqan-vocab-1","itos":["<unk>","<pad>","<init>","<eos>"],"counts":[1]}"#).contains("4 tokens but 1 counts"))
      #expect(problem(#"{"format":"mqan-vocab-1"}"#).contains("missing key \"itos\""))
      let missing = DataFixtures.dataError { _ = try Vocabulary.load(from: "/nonexistent/vocab.json") }
      #expect(missing?.description.hasPrefix("/nonexistent/vocab.json: cannot read") == true)
    }
  }
}
