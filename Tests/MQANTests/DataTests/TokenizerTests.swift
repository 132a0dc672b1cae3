import Foundation
import Testing
@testable import MQAN

extension DataTests {
  /// The tokenizer against decaNLP's own (revtok 0.0.3 + lower-casing, `golden.json`).
  @Suite struct TokenizerTests {
    let tokenizer = Tokenizer()

    @Test(arguments: ["sst/validation.jsonl", "multi30k.en.de/validation.jsonl", "squad/validation.jsonl"])
    func tokensMatchDecaNLP(file: String) throws {
      let golden = try DataFixtures.golden()
      let expected = try #require(golden.tokens[file])
      let parts = file.split(separator: "/")
      let examples = try DataFixtures.load(String(parts[0]), String(parts[1].dropLast(".jsonl".count))).examples
      #expect(examples.count == expected.count)
      for (ex, want) in zip(examples, expected) {
        #expect(ex.context == want[0], "line \(ex.line) context")
        #expect(ex.question == want[1], "line \(ex.line) question")
        #expect(ex.answer == want[2], "line \(ex.line) answer")
      }
    }

    @Test func detokenizeMatchesDecaNLP() throws {
      let golden = try DataFixtures.golden()
      for (file, rows) in golden.tokens {
        let want = try #require(golden.detokenized[file])
        for (tokens, text) in zip(rows, want) {
          #expect(tokens.map { tokenizer.detokenize($0) } == text, "\(file)")
        }
      }
    }

    @Test func edgeCasesMatchDecaNLP() throws {
      let golden = try DataFixtures.golden()
      let expected = try #require(golden.tokens["extra"])
      for (text, want) in zip(golden.extra, expected) {
        #expect([tokenizer.tokenize(text)] == want, "\(text.debugDescription)")
      }
    }

    /// Reversible: every real training line comes back as its lower-cased text.
    @Test(arguments: DataFixtures.tasks)
    func roundTripsRealLines(task: String) throws {
      for ex in try DataFixtures.load(task, "train").examples {
        for text in [ex.raw.context, ex.raw.question, ex.raw.answer] {
          let tokens = tokenizer.tokenize(text)
          #expect(tokenizer.detokenize(tokens) == PyText.string(PyText.lower(PyText.scalars(text))), "\(task) line \(ex.line)")
        }
      }
    }

    @Test func punctuationSplitsAndHalfSpaces() {
      #expect(tokenizer.tokenize("Hello, world.") == [" hello ", ", ", " world ", ". "])
      #expect(tokenizer.tokenize("...") == [" . ", ". ", ". "])
      #expect(tokenizer.tokenize("") == [])
      #expect(tokenizer.detokenize([" two ", " young ", ", ", " white ", " males ", ". "]) == "two young, white males.")
    }

    @Test func preservesCaseWhenAsked() {
      let cased = Tokenizer(lower: false)
      #expect(cased.tokenize("Two White Males") == [" Two ", " White ", " Males "])
      #expect(cased.detokenize(cased.tokenize("Two  White Males!")) == "Two  White Males!")
    }

    @Test func strippedIsPythonStrip() {
      #expect(Tokenizer.stripped(" the ") == "the")
      #expect(Tokenizer.stripped("\u{A0}x\u{3000}") == "x")
      #expect(Tokenizer.stripped("  ") == "")
    }

    @Test func capMarkerUppercasesTheNextCharacter() {
      // revtok's decap form, which decaNLP never produces but detokenize still reads.
      // Expected strings from revtok.detokenize.
      #expect(tokenizer.detokenize(["\u{E302} hello ", " world "]) == "Hello world")
      #expect(tokenizer.detokenize(["a", "\u{E302}", "  ", "b"]) == "aB")
      #expect(tokenizer.detokenize(["\u{E302}\u{E302}x"]) == "\u{E302}x")
      #expect(tokenizer.detokenize(["x\u{E302}"]) == "x\u{E302}")
      #expect(tokenizer.detokenize(["\u{E302}  ", " y"]) == " y")
    }
  }
}
