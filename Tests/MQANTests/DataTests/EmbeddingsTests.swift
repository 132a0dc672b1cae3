import Foundation
import Runtime
import Testing
@testable import MQAN

extension DataTests {
  @Suite struct EmbeddingsTests {
    static let tiny = """
      the 0.5 -1 2e-1
      cat 1.25 0 -0.000001
      dog 3 3 3
      cat 9 8 7
      \u{A0}x 1 2 3

      """

    @Test func parsesTinyFile() throws {
      let path = try DataFixtures.temporaryFile(Self.tiny, name: "tiny.txt")
      let v = try WordVectors.load(path: path)
      #expect(v.dimension == 3)
      #expect(v.count == 5)
      #expect(v.words == ["the", "cat", "dog", "cat", "\u{A0}x"])
      #expect(v.vector(for: "the").map(Array.init) == [0.5, -1, 0.2])
      #expect(v.vector(for: "cat").map(Array.init) == [9, 8, 7])  // the last duplicate wins, as in torchtext
      #expect(v.vector(for: "\u{A0}x") != nil)  // split on single spaces only
      #expect(v.vector(for: "bird") == nil)
    }

    @Test func tableHasZerosForMissingWords() throws {
      let v = try WordVectors(parsing: Data(Self.tiny.utf8), path: "tiny.txt")
      let vocab = try Vocabulary(itos: Vocabulary.specials + [" the ", " bird ", "dog", " cat "], counts: [0, 0, 0, 0, 5, 3, 1, 1])
      let table = v.table(for: vocab)
      #expect(table.shape == [8, 3])
      let f = try table.floats
      #expect(Array(f[0..<12]) == Array(repeating: 0, count: 12))  // the specials have no vectors
      #expect(Array(f[12..<15]) == [0.5, -1, 0.2])  // " the " looked up as "the"
      #expect(Array(f[15..<18]) == [0, 0, 0])  // " bird " missing
      #expect(Array(f[18..<21]) == [3, 3, 3])
      #expect(Array(f[21..<24]) == [9, 8, 7])
      let c = v.coverage(of: vocab)
      #expect(c.words == 4 && c.found == 3 && c.occurrences == 10 && c.occurrencesFound == 7)
      #expect(c.mostFrequentMissing == ["bird"])
      #expect(c.description == "3/4 words (75.0%), 7/10 occurrences (70.0%) have vectors")

      let both = WordVectors.table(for: vocab, concatenating: [v, v])
      #expect(both.shape == [8, 6])
      #expect(Array(try both.floats[24..<30]) == [0.5, -1, 0.2, 0.5, -1, 0.2])
    }

    @Test func skipsAHeaderLine() throws {
      let v = try WordVectors(parsing: Data("2 3\na 1 2 3\nb 4 5 6\n".utf8), path: "w2v.txt")
      #expect(v.words == ["a", "b"] && v.dimension == 3)
    }

    @Test func parsesFloatsExactlyAsPython() throws {
      // float(x) rounded to float32, as torch.Tensor(array('d', ...)) stores it.
      let text = "w 0.1 -0.33333334 1e-45 3.4028235e38 -0 .5 +2\n"
      let v = try WordVectors(parsing: Data(text.utf8), path: "f.txt")
      let want: [Float] = [0.1, -0.33333334, Float(bitPattern: 1), 3.4028235e38, -0.0, 0.5, 2]
      #expect(v.vector(for: "w").map(Array.init) == want)
    }

    /// The fast path gives strtod's (correctly rounded) double on random decimal spellings.
    @Test func numberParserAgreesWithStrtod() {
      var rng = SeededRandom(seed: 11)
      func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(rng.next() % 10)) }) }
      for _ in 0..<20_000 {
        var text = rng.next() % 3 == 0 ? "-" : ""
        text += digits(Int(rng.next() % 4)) + "." + digits(1 + Int(rng.next() % 24))
        if rng.next() % 3 == 0 { text += "e" + (rng.next() % 2 == 0 ? "-" : "+") + String(rng.next() % 60) }
        let bytes = Array(text.utf8) + [0x20]
        let mine = bytes.withUnsafeBufferPointer { WordVectors.number($0, at: 0) }
        let want = strtod(text, nil)
        #expect(mine.map { $0.0.bitPattern } == want.bitPattern, "\(text)")
        #expect(mine?.1 == text.utf8.count, "\(text)")
      }
    }

    @Test func malformedLinesNameFileAndLine() {
      func problem(_ text: String) -> String {
        DataFixtures.dataError { _ = try WordVectors(parsing: Data(text.utf8), path: "vec.txt") }?.description ?? "no error"
      }
      #expect(problem("a 1 2 3\nb 1 2\n") == "vec.txt:2: 2 values, but line 1 has 3")
      #expect(problem("a 1 2 3\n\nb 1 2 3 4\n") == "vec.txt:3: 4 values, but line 1 has 3")
      #expect(problem("a 1 2\nb 1 x\n") == "vec.txt:2: value 2 is not a number")
      #expect(problem("a 1 2\nb 1  2\n") == "vec.txt:2: value 2 is empty (two spaces in a row)")
      #expect(problem("a 1 2\nb 1 2x\n") == "vec.txt:2: value 2 is not a finite decimal number")
      #expect(problem("a 1 2\nb 1 nan\n") == "vec.txt:2: value 2 is not a number")
      #expect(problem("a 1 2\nb 1 -inf\n") == "vec.txt:2: value 2 is not a finite decimal number")
      #expect(problem("a 1 2\nb 0x10 2\n") == "vec.txt:2: value 1 is not a finite decimal number")
      #expect(problem("a\n") == "vec.txt:1: a word without values")
      #expect(problem("a 1 2\nb 1e999 2\n") == "vec.txt:2: value 1 is not a finite decimal number")
    }

    @Test func skipsWordsThatAreNotUTF8() throws {
      var bytes = Array("a 1 2\n".utf8)
      bytes += [0xFF, 0xFE, 0x20] + Array("3 4\nb 5 6\n".utf8)
      let v = try WordVectors(parsing: Data(bytes), path: "bad.txt")
      #expect(v.words == ["a", "b"] && v.skippedInvalidUTF8 == 1)
    }

    @Test func missingFileIsAnIOError() {
      let e = DataFixtures.dataError { _ = try WordVectors.load(path: "/nonexistent/glove.txt") }
      #expect(e?.description.hasPrefix("/nonexistent/glove.txt: cannot read") == true)
    }

    /// The GloVe subset (`DataFixtures.realGloVe`): 5,050 words of 50 values, read as decaNLP would.
    @Test(.enabled(if: DataFixtures.hasRealGloVe, "needs the GloVe subset (MQAN_GLOVE_SUBSET)"))
    func readsTheRealGloVeSubset() throws {
      let v = try WordVectors.load(path: DataFixtures.realGloVe)
      #expect(v.count == 5_050)
      #expect(v.dimension == 50)
      #expect(v.words.first == "the" && v.words.last == "madam")
      #expect(Array(try #require(v.vector(for: "the")).prefix(3)) == [0.418, 0.24968, -0.41242])
      #expect(Set(v.words).count == 5_050)

      let vocab = Vocabulary(counter: try DataTests.VocabularyTests.counter(.contextQuestionAnswer))
      let table = v.table(for: vocab)
      #expect(table.shape == [vocab.count, 50])
      let floats = try table.floats
      let theRow = vocab.id(of: " the ")
      #expect(Array(floats[(theRow * 50)..<(theRow * 50 + 3)]) == [0.418, 0.24968, -0.41242])
      let c = v.coverage(of: vocab)
      // Frequent words are in the 5k subset; rare ones (names, German words) are not.
      #expect(c.found > c.words / 3 && c.found < c.words)
      #expect(Double(c.occurrencesFound) / Double(c.occurrences) > 0.7)
    }
  }
}
