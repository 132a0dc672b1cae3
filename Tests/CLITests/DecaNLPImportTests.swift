import Foundation
import Testing

/// `mqan predict` on a checkpoint that `tools/import_decanlp.py` converted from a tiny decaNLP run
/// (`Tests/MQANTests/Fixtures/decanlp`, made by `tools/test_import_decanlp.sh --write-fixture`):
/// the answers and scores of decaNLP's own predict.py path for the first 20 validation lines of
/// sst and multi30k.en.de (whose words are partly new to the run's vocabulary).
@Suite struct DecaNLPImportTests {
  static let dir = CLITests.fixtures.appendingPathComponent("decanlp")
  static let checkpoint = dir.appendingPathComponent("model.safetensors").path
  static let tasks = ["sst", "multi30k.en.de"]
  static let lines = 20

  /// DIR/TASK/validation.jsonl: the first 20 lines of the bundled samples.
  static func data() throws -> String {
    let root = try TrainResumeTests.tempDir("decanlp")
    for task in tasks {
      let text = try String(contentsOf: CLITests.fixtures.appendingPathComponent("data/\(task)/validation.jsonl"),
                            encoding: .utf8)
      let first = text.split(separator: "\n").prefix(lines).map { $0 + "\n" }.joined()
      let folder = root.appendingPathComponent(task)
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      try Data(first.utf8).write(to: folder.appendingPathComponent("validation.jsonl"))
    }
    return root.path
  }

  struct Answer {
    var task: String, answer: String, score: Double
  }

  static func expected() throws -> [Answer] {
    let text = try String(contentsOf: dir.appendingPathComponent("expected.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { line in
      let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      return Answer(task: try #require(o["task"] as? String), answer: try #require(o["answer"] as? String),
                    score: try #require((o["score"] as? NSNumber)?.doubleValue))
    }
  }

  @Test func answersAsDecaNLPsPredict() throws {
    let out = try TrainResumeTests.tempDir("decanlp-out").appendingPathComponent("answers.jsonl").path
    // No --batch-size or --max-output: the checkpoint's val_batch_size (16) and max_output_length (16).
    let r = try CLITests.run(["predict", "--checkpoint", Self.checkpoint, "--data", try Self.data(),
                              "--tasks", Self.tasks.joined(separator: ","), "--threads", "1",
                              "--vectors", Self.dir.appendingPathComponent("vectors.txt").path, "--out", out])
    #expect(r.status == 0, "mqan predict exited \(r.status): \(r.stderr)")
    #expect(!r.stderr.contains("warning"), "\(r.stderr)")
    let rows = try PredictTests.rows(try String(contentsOfFile: out, encoding: .utf8))
    let want = try Self.expected()
    try #require(rows.count == want.count && want.count == Self.lines * Self.tasks.count)
    for (i, (got, w)) in zip(rows, want).enumerated() {
      #expect(got.task == w.task, "line \(i + 1)")
      #expect(got.answer == w.answer, "line \(i + 1): mqan \(got.answer), decaNLP \(w.answer)")
      #expect(abs(got.score - w.score) <= 1e-4, "line \(i + 1): mqan \(got.score), decaNLP \(w.score)")
    }
  }

  @Test func withoutVectorsTheNewWordsGetZerosAndAWarning() throws {
    let r = try CLITests.run(["predict", "--checkpoint", Self.checkpoint, "--data", try Self.data(),
                              "--tasks", Self.tasks.joined(separator: ","), "--threads", "1"])
    #expect(r.status == 0, "\(r.stderr)")
    let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
    #expect(warnings.count == 1, "\(r.stderr)")
    #expect(warnings.first?.contains("320 words of --data are not in") == true, "\(r.stderr)")
    #expect(r.stdout.split(separator: "\n").count == Self.lines * Self.tasks.count)
  }

  @Test func vectorsOfTheWrongWidthAreOneLineErrors() throws {
    let vectors = try CLITests.tempFile("decanlp-vectors.txt", Array("the 1 2 3\n".utf8))
    try CLITests.expectOneLineError(["predict", "--checkpoint", Self.checkpoint, "--data", try Self.data(),
                                     "--tasks", Self.tasks.joined(separator: ","), "--vectors", vectors],
                                    mentions: "--vectors: the files give 3 values per word, the checkpoint's table has 8")
  }
}
