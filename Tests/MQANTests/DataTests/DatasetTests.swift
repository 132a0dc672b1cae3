import Foundation
import Testing
@testable import MQAN

extension DataTests {
  @Suite struct DatasetTests {
    @Test(arguments: [("sst", "train", 200), ("sst", "validation", 50), ("squad", "train", 80),
                      ("squad", "validation", 30), ("multi30k.en.de", "train", 200), ("multi30k.en.de", "validation", 50)])
    func readsTheSamples(task: String, split: String, count: Int) throws {
      let data = try DataFixtures.load(task, split)
      #expect(data.task == task)
      #expect(data.path.hasSuffix("\(task)/\(split).jsonl"))
      #expect(data.examples.count == count)
      #expect(data.examples.map(\.line) == Array(1...count))
      #expect(data.examples.allSatisfy { !$0.context.isEmpty && !$0.question.isEmpty && !$0.answer.isEmpty })
    }

    @Test func examplesKeepTheirText() throws {
      let sst = try DataFixtures.load("sst", "train").examples[1]
      #expect(sst.raw.context == "Apparently reassembled from the cutting-room floor of any given daytime soap.")
      #expect(sst.raw.question == "Is this review negative or positive?")
      #expect(sst.answer == [" negative "])
      #expect(sst.context.prefix(4) == [" apparently ", " reassembled ", " from ", " the "])
    }

    static func problem(_ text: String) -> String {
      DataFixtures.dataError { _ = try JSONLReader.parse(Data(text.utf8), path: "task/train.jsonl") }?.description ?? "no error"
    }

    @Test func invalidJSONNamesTheLine() {
      let ok = #"{"context": "a", "question": "b", "answer": "c"}"#
      #expect(Self.problem("\(ok)\n{\"context\": \n").hasPrefix("task/train.jsonl:2: invalid JSON: "))
      #expect(Self.problem("\(ok)\n\(ok)\n[1, 2]\n")
        == "task/train.jsonl:3: invalid JSON: expected an object with context, question, answer, got [1,2]")
      #expect(Self.problem("\(ok)\n\"just a string\"\n").hasPrefix("task/train.jsonl:2: invalid JSON: expected an object"))
    }

    @Test func missingOrNonStringFieldsNameFieldAndLine() {
      #expect(Self.problem(#"{"context": "a", "answer": "c"}"#) == "task/train.jsonl:1: field \"question\": missing")
      let good = #"{"context": "a", "question": "b", "answer": "c"}"#
      #expect(Self.problem("\(good)\n\(good)\n" + #"{"context": "a", "question": "b", "answer": 5}"#)
        == "task/train.jsonl:3: field \"answer\": expected a string, got 5")
      #expect(Self.problem(#"{"context": null, "question": "b", "answer": "c"}"#)
        == "task/train.jsonl:1: field \"context\": expected a string, got null")
      #expect(Self.problem(#"{"context": ["x"], "question": "b", "answer": "c"}"#)
        == "task/train.jsonl:1: field \"context\": expected a string, got [\"x\"]")
    }

    @Test func blankLinesCRLFAndExtraKeys() throws {
      let text = "\n" + #"{"context": "A b.", "question": "Q?", "answer": "Yes", "id": 7}"# + "\r\n  \n"
        + #"{"context": "", "question": "Q?", "answer": ""}"#
      let examples = try JSONLReader.parse(Data(text.utf8), path: "x.jsonl")
      #expect(examples.map(\.line) == [2, 4])
      #expect(examples[0].context == [" a ", " b ", ". "])
      #expect(examples[0].answer == [" yes "])
      #expect(examples[1].context == [])
    }

    @Test func missingFileIsAnIOError() {
      let e = DataFixtures.dataError { _ = try TaskData.load(root: "/nonexistent", task: "sst", split: "train") }
      #expect(e?.description.hasPrefix("/nonexistent/sst/train.jsonl: cannot read") == true)
    }

    @Test func encodesAsInitWordsEos() throws {
      let vocab = try Vocabulary(itos: Vocabulary.specials + [" a ", " b ", ". ", " q ", "? ", " yes "])
      let ex = Example(context: "A b.", question: "Q?", answer: "yes")
      let enc = EncodedExample(ex, vocabulary: vocab)
      #expect(enc.context == [2, 4, 5, 6, 3])
      #expect(enc.question == [2, 7, 8, 3])
      #expect(enc.answer == [2, 9, 3])
      let empty = EncodedExample(Example(context: "", question: "Q?", answer: "no"), vocabulary: vocab)
      #expect(empty.context == [2, 3])  // an empty context stays <init> <eos>
      #expect(empty.answer == [2, 0, 3])  // a word outside the vocabulary is <unk>
    }

    static func task(_ name: String, contexts: [Int], answers: [Int]) -> TaskData {
      let examples = zip(contexts, answers).enumerated().map { i, la in
        Example(context: Array(repeating: "w", count: la.0).joined(separator: " "), question: "q?",
                answer: Array(repeating: "a", count: la.1).joined(separator: " "), line: i + 1)
      }
      return TaskData(task: name, path: "\(name)/train.jsonl", examples: examples)
    }

    @Test func truncatePolicyKeepsEveryExample() {
      let data = Self.task("squad", contexts: [3, 10, 0], answers: [1, 4, 0])
      let (out, report) = data.prepared(limits: LengthLimits(maxContextLength: 5, maxAnswerLength: 2), policy: .truncate)
      #expect(out.examples.map(\.context.count) == [3, 5, 0])
      #expect(out.examples.map(\.answer.count) == [1, 2, 0])
      #expect(report == PrepareReport(kept: 3, droppedTooLong: 0, droppedEmpty: 0, truncatedContexts: 1, truncatedAnswers: 1))
      #expect(out.examples[1].raw.context == data.examples[1].raw.context)  // the text stays whole
    }

    @Test func decaNLPPolicyDropsLongAndEmptyExamples() {
      let limits = LengthLimits(maxContextLength: 5, maxAnswerLength: 2)
      let data = Self.task("squad", contexts: [3, 10, 0, 4, 5], answers: [1, 1, 1, 3, 0])
      let (out, report) = data.prepared(limits: limits, policy: .dropLikeDecaNLP)
      #expect(out.examples.map(\.line) == [1])
      #expect(report == PrepareReport(kept: 1, droppedTooLong: 2, droppedEmpty: 2, truncatedContexts: 0, truncatedAnswers: 0))
      // cnn / dailymail contexts are cut first, then filtered (decaNLP's preprocess_examples).
      let cnn = Self.task("cnn_dailymail", contexts: [3, 10], answers: [1, 1]).prepared(limits: limits, policy: .dropLikeDecaNLP)
      #expect(cnn.data.examples.map(\.context.count) == [3, 5])
      #expect(cnn.report.truncatedContexts == 1)
    }

    @Test func decaNLPDefaults() {
      #expect(LengthLimits.decaNLP == LengthLimits(maxContextLength: 400, maxAnswerLength: 50))
      #expect(Batching.defaultBatchTokens == 9000)
    }
  }
}
