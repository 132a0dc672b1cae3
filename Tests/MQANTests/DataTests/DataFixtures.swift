import Foundation
import Testing
@testable import MQAN

/// The data layer's tests (`swift test --filter DataTests`): tokenizer, vocabulary, word vectors,
/// JSONL tasks, batching.
@Suite enum DataTests {}

/// The data samples under `Fixtures/data` (see `Fixtures/data/SOURCES.md`) and `golden.json`,
/// decaNLP's own tokenization and vocabulary order for them (`Fixtures/data/make_golden.py`).
enum DataFixtures {
  static let tasks = ["sst", "squad", "multi30k.en.de"]

  /// The bundled `Fixtures/data/<task>/<split>.jsonl`.
  static func path(_ task: String, _ split: String) throws -> String {
    try #require(Bundle.module.url(forResource: split, withExtension: "jsonl", subdirectory: "Fixtures/data/\(task)")).path
  }

  static func load(_ task: String, _ split: String) throws -> TaskData {
    let url = URL(fileURLWithPath: try path(task, split))
    return try TaskData.load(root: url.deletingLastPathComponent().deletingLastPathComponent().path, task: task, split: split)
  }

  /// The three training samples, in `tasks` order.
  static func trainingExamples() throws -> [Example] {
    try tasks.flatMap { try load($0, "train").examples }
  }

  struct Golden: Decodable {
    /// File (`sst/validation.jsonl`, ...) or `extra` -> per example [context, question, answer] tokens.
    var tokens: [String: [[[String]]]]
    var detokenized: [String: [[String]]]
    var extra: [String]
    /// Counting mode (`contextQuestionAnswer`, `decaNLP`) -> itos over the three training samples.
    var vocab: [String: [String]]
  }

  static func golden() throws -> Golden {
    let url = try #require(Bundle.module.url(forResource: "golden", withExtension: "json", subdirectory: "Fixtures/data"))
    return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
  }

  /// A 5,050-word, 50-dimensional GloVe subset (`glove.6B.50d.5k.txt`, too large to check in):
  /// the file `MQAN_GLOVE_SUBSET` names, else the project's data folder next to the checkout
  /// (`shared/data/vectors/`), if it is there; the test that reads it is skipped otherwise.
  static let realGloVe: String = ProcessInfo.processInfo.environment["MQAN_GLOVE_SUBSET"]
    ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("shared/data/vectors/glove.6B.50d.5k.txt").path

  static var hasRealGloVe: Bool { FileManager.default.fileExists(atPath: realGloVe) }

  /// A fresh temporary file holding `text`.
  static func temporaryFile(_ text: String, name: String = "data") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-data-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
  }

  /// The thrown `DataError`, or nil.
  static func dataError(_ body: () throws -> Void) -> DataError? {
    do {
      try body()
      return nil
    } catch let e as DataError {
      return e
    } catch {
      Issue.record("expected a DataError, got \(error)")
      return nil
    }
  }
}
