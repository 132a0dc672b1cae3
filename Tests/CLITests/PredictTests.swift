import Foundation
import MQAN
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `mqan predict` end to end on a tiny model trained for a few steps: one JSON line per input
/// line, in input order, metrics and the decaScore, and one-line errors for bad input.
@Suite struct PredictTests {
  static let data = TrainResumeTests.data

  /// A tiny model trained 4 steps on sst and multi30k.en.de (once for the whole suite).
  static let trained: Result<(dir: URL, checkpoint: String), Error> = Result {
    let dir = try TrainResumeTests.tempDir("predict")
    let vectors = try TrainResumeTests.writeVectors(in: dir)
    let save = dir.appendingPathComponent("run").path
    let r = try CLITests.run(TrainResumeTests.trainArgs(tasks: "sst,multi30k.en.de", vectors: vectors, save: save,
                                                        ["--steps", "4", "--save-every", "4", "--val-every", "4"]))
    guard r.status == 0 else { throw CLIError(description: "mqan train exited \(r.status): \(r.stderr)") }
    return (dir, (save as NSString).appendingPathComponent("latest.safetensors"))
  }

  struct CLIError: Error, CustomStringConvertible {
    var description: String
  }

  static func checkpoint() throws -> String { try trained.get().checkpoint }

  static func predict(_ args: [String]) throws -> CLITests.Result {
    let r = try CLITests.run(["predict", "--checkpoint", try checkpoint(), "--threads", "1", "--max-output", "6"] + args)
    #expect(r.status == 0, "mqan predict \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
    return r
  }

  /// One output line: task, answer, and n_best with one candidate (the answer, a finite log-probability).
  struct Row: Equatable {
    var task: String
    var answer: String
    var score: Double
  }

  static func rows(_ text: String) throws -> [Row] {
    try text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line in
      let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                             "not a JSON object: \(line)")
      let task = try #require(obj["task"] as? String, "no task: \(line)")
      let answer = try #require(obj["answer"] as? String, "no answer: \(line)")
      let nBest = try #require(obj["n_best"] as? [[String: Any]], "no n_best: \(line)")
      try #require(nBest.count == 1, "greedy n_best has one entry: \(line)")
      #expect(nBest[0]["answer"] as? String == answer, "\(line)")
      let score = try #require((nBest[0]["score"] as? NSNumber)?.doubleValue, "no score: \(line)")
      #expect(score.isFinite && score <= 0, "\(line)")
      return Row(task: task, answer: answer, score: score)
    }
  }

  static func lineCount(_ path: String) throws -> Int {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
  }

  /// A JSONL file of `lines` under the suite's directory.
  static func file(_ name: String, _ lines: [String]) throws -> String {
    let path = try trained.get().dir.appendingPathComponent(name).path
    try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test func predictsEveryTaskInInputOrderWithMetrics() throws {
    let out = try Self.trained.get().dir.appendingPathComponent("answers.jsonl").path
    let r = try Self.predict(["--data", Self.data, "--tasks", "sst,multi30k.en.de", "--metrics", "--out", out])
    let rows = try Self.rows(try String(contentsOfFile: out, encoding: .utf8))
    let sst = try Self.lineCount("\(Self.data)/sst/validation.jsonl")
    let multi30k = try Self.lineCount("\(Self.data)/multi30k.en.de/validation.jsonl")
    #expect(rows.count == sst + multi30k)
    #expect(rows.map(\.task) == Array(repeating: "sst", count: sst) + Array(repeating: "multi30k.en.de", count: multi30k))
    // With --out, stdout holds the scores: each task's decaNLP metric, then the decaScore.
    let lines = r.stdout.split(separator: "\n").map(String.init)
    #expect(lines.count == 3, "stdout: \(r.stdout)")
    #expect(lines.first?.hasPrefix("sst em ") == true, "stdout: \(r.stdout)")
    #expect(lines.dropFirst().first?.hasPrefix("multi30k.en.de bleu ") == true, "stdout: \(r.stdout)")
    #expect(lines.last?.hasPrefix("decaScore ") == true, "stdout: \(r.stdout)")
    #expect(r.stderr.contains("sentences/s") && r.stderr.contains("tokens/s"), "stderr: \(r.stderr)")
  }

  /// Without --out, stdout is the JSONL alone (one line per input line); the rest goes to stderr.
  /// --precision bf16 / int8: the same answers on the SIMD path and on the portable path a CPU
  /// without AVX512_BF16 / AVX512_VNNI and AVX2 runs (forced with MQAN_DISABLE_ISA), which says so on stderr.
  @Test func reducedPrecisionRunsWithOrWithoutTheInstructions() throws {
    let path = "\(Self.data)/sst/validation.jsonl"
    for p in ["bf16", "int8"] {
      let simd = try Self.predict(["--data", path, "--precision", p])
      let args = ["predict", "--checkpoint", try Self.checkpoint(), "--threads", "1", "--max-output", "6",
                  "--data", path, "--precision", p]
      let emulated = try BadInputTests.run(args, env: ["MQAN_DISABLE_ISA": "avx512_bf16,avx512_vnni,avx2"])
      #expect(emulated.status == 0, "\(emulated.stderr)")
      #expect(emulated.stderr.contains("this CPU lacks AVX512_") && emulated.stderr.contains("portable (emulated) path"),
              "\(emulated.stderr)")
      #expect(try Self.rows(emulated.stdout).map(\.answer) == (try Self.rows(simd.stdout).map(\.answer)), "\(p)")
    }
  }

  /// mqan quantize: the converted checkpoint answers exactly as --precision on the F32 one (the
  /// same bytes of output, scores included), by default; it is smaller; training does not resume
  /// from it; converting it to another precision is refused.
  @Test func quantizedCheckpointsAnswerAsTheirPrecision() throws {
    let path = "\(Self.data)/multi30k.en.de/validation.jsonl"
    let dir = try Self.trained.get().dir
    for (p, linears) in [("int8", "all"), ("bf16", "output")] {
      let out = dir.appendingPathComponent("q-\(p).safetensors").path
      let q = try CLITests.run(["quantize", "--checkpoint", try Self.checkpoint(), "--precision", p,
                                "--precision-linears", linears, "-o", out])
      #expect(q.status == 0 && q.stderr.contains("converted ") && q.stderr.contains("to \(p)"), "\(q.stderr)")
      let direct = try Self.predict(["--data", path, "--precision", p, "--precision-linears", linears])
      let stored = try CLITests.run(["predict", "--checkpoint", out, "--threads", "1", "--max-output", "6", "--data", path])
      #expect(stored.status == 0, "\(stored.stderr)")
      #expect(stored.stdout == direct.stdout, "\(p)")
      let ck = try Checkpoint.read(path: out)
      #expect(ck.quantized["out.weight"]?.rawValue == p && ck.optimizer == nil && ck.extra["precision"] == p)
      let size = { (f: String) in try FileManager.default.attributesOfItem(atPath: f)[.size] as! Int }
      #expect(try size(out) < (try size(try Self.checkpoint())))
      let again = ["quantize", "--checkpoint", out, "--precision", p == "int8" ? "bf16" : "int8", "-o", out + ".2"]
      BadInputTests.expectError(try CLITests.run(again), again, mentions: ["already converted to \(p)"])
    }
    // Training resumes from F32 checkpoints only.
    let save = dir.appendingPathComponent("resume-quantized").path
    try FileManager.default.createDirectory(atPath: save, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: dir.appendingPathComponent("q-int8.safetensors").path,
                                     toPath: save + "/latest.safetensors")
    let resume = TrainResumeTests.trainArgs(tasks: "sst", vectors: try TrainResumeTests.writeVectors(in: dir), save: save,
                                            ["--steps", "6", "--resume"])
    BadInputTests.expectError(try CLITests.run(resume), resume, mentions: ["mqan quantize", "F32 checkpoint"])
  }

  /// --shortlist: as large as the vocabulary, the same answers and scores as without; small, it
  /// runs and says its sizes. The checkpoint of mqan train holds its tasks' answer words, and
  /// mqan shortlist learns them into another checkpoint.
  @Test func shortlistDecodesAndLearnsAnswerWords() throws {
    let path = "\(Self.data)/multi30k.en.de/validation.jsonl"
    let plain = try Self.predict(["--data", path])
    let full = try Self.predict(["--data", path, "--shortlist", "1000000"])
    #expect(full.stdout == plain.stdout)
    let small = try Self.predict(["--data", path, "--shortlist", "4"])
    #expect(small.stderr.contains("shortlist: ") && small.stderr.contains("words per batch"), "\(small.stderr)")
    #expect(try Self.rows(small.stdout).count == (try Self.lineCount(path)))
    let trained = try Checkpoint.read(path: try Self.checkpoint())
    let words = try #require(trained.extra[AnswerWords.metadataKey])
    #expect(words.contains("\"sst\"") && words.contains("\"multi30k.en.de\""), "\(words)")
    let out = try Self.trained.get().dir.appendingPathComponent("shortlisted.safetensors").path
    let r = try CLITests.run(["shortlist", "--checkpoint", try Self.checkpoint(), "--data", Self.data, "--tasks", "sst",
                              "-o", out])
    #expect(r.status == 0 && r.stderr.contains("sst: "), "\(r.stderr)")
    let learned = try Checkpoint.read(path: out)
    #expect(learned.parameters == trained.parameters)
    #expect(learned.extra[AnswerWords.metadataKey] == words, "the same data gives the same words")
    let bad = ["shortlist", "--checkpoint", try Self.checkpoint(), "--data", Self.data, "--tasks", "nosuchtask", "-o", out]
    BadInputTests.expectError(try CLITests.run(bad), bad, mentions: ["nosuchtask"])
  }

  @Test func stdoutIsCleanJSONL() throws {
    let path = "\(Self.data)/sst/validation.jsonl"
    let r = try Self.predict(["--data", path, "--metrics"])
    let rows = try Self.rows(r.stdout)
    #expect(rows.count == (try Self.lineCount(path)))
    #expect(rows.allSatisfy { $0.task == "sst" }, "a file's task is its folder's name")
    #expect(r.stderr.contains("sst em ") && r.stderr.contains("decaScore "), "stderr: \(r.stderr)")
  }

  /// --beam 3 --n-best 2: two candidates per line, best first, the answer being the first; --beam 1
  /// goes the greedy way; --n-best above --beam is refused.
  @Test func beamSearchGivesNBestLists() throws {
    let path = "\(Self.data)/multi30k.en.de/validation.jsonl"
    let r = try Self.predict(["--data", path, "--beam", "3", "--n-best", "2", "--length-penalty", "0.6"])
    let lines = r.stdout.split(separator: "\n")
    #expect(lines.count == (try Self.lineCount(path)))
    for line in lines {
      let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      let nBest = try #require(obj["n_best"] as? [[String: Any]])
      #expect(nBest.count == 2, "\(line)")
      #expect(nBest.first?["answer"] as? String == obj["answer"] as? String)
      let scores = nBest.compactMap { ($0["score"] as? NSNumber)?.doubleValue }
      #expect(scores.count == 2 && scores[0] >= scores[1], "\(line)")
    }
    let bad = try CLITests.run(["predict", "--checkpoint", try Self.checkpoint(), "--data", path, "--beam", "2",
                                "--n-best", "3"])
    #expect(bad.status != 0 && bad.stderr.contains("--n-best"))
  }

  /// Answers come back in input order although batches are sorted by length: each example
  /// predicted on its own gives the answer and score of its line (batches of one, so the
  /// arithmetic is the same).
  @Test func answersFollowInputOrder() throws {
    let lines = try String(contentsOfFile: "\(Self.data)/multi30k.en.de/validation.jsonl", encoding: .utf8)
      .split(separator: "\n").prefix(6).map(String.init)
    let all = try Self.rows(try Self.predict(["--data", try Self.file("order.jsonl", lines), "--tasks", "multi30k.en.de",
                                              "--batch-size", "1"]).stdout)
    try #require(all.count == lines.count)
    for (i, line) in lines.enumerated() {
      let one = try Self.rows(try Self.predict(["--data", try Self.file("order-\(i).jsonl", [line]),
                                                "--tasks", "multi30k.en.de", "--batch-size", "1"]).stdout)
      #expect(one == [all[i]], "line \(i + 1): alone \(one), in the file \(all[i])")
    }
    // Batched by a token budget instead: same answers, in input order.
    let budget = try Self.rows(try Self.predict(["--data", try Self.file("order.jsonl", lines), "--tasks", "multi30k.en.de",
                                                 "--batch-tokens", "120"]).stdout)
    #expect(budget.map(\.answer) == all.map(\.answer))
  }

  /// An empty context decodes (`<init> <eos>`); a context over decaNLP's 400 tokens is cut, and said so.
  @Test func emptyAndOverlongContexts() throws {
    let long = Array(repeating: "the film is positive .", count: 120).joined(separator: " ")
    let path = try Self.file("edge.jsonl", [#"{"context": "", "question": "is it positive?", "answer": "positive"}"#,
                                            #"{"context": "\#(long)", "question": "is it positive?", "answer": "positive"}"#])
    let r = try Self.predict(["--data", path, "--tasks", "sst", "--decoder", "decanlp"])
    #expect(try Self.rows(r.stdout).count == 2)
    #expect(r.stderr.contains("1 of 2 contexts truncated to 400 tokens"), "stderr: \(r.stderr)")
  }

  @Test func badInputsGiveOneLineErrors() throws {
    let ck = try Self.checkpoint()
    let sst = "\(Self.data)/sst/validation.jsonl"
    try CLITests.expectOneLineError(["predict", "--checkpoint", "/nonexistent/ck.safetensors", "--data", sst],
                                    mentions: "/nonexistent/ck.safetensors")
    let corrupt = try Self.trained.get().dir.appendingPathComponent("corrupt.safetensors").path
    let bytes = try Data(contentsOf: URL(fileURLWithPath: ck))
    try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: corrupt))
    try CLITests.expectOneLineError(["predict", "--checkpoint", corrupt, "--data", sst], mentions: "corrupt.safetensors")
    try CLITests.expectOneLineError(["predict", "--checkpoint", ck, "--data", Self.data, "--tasks", "sst,nosuchtask"],
                                    mentions: "unknown task \"nosuchtask\"")
    let malformed = try Self.file("malformed.jsonl", [#"{"context": "a", "question": "b", "answer": "c"}"#, #"{"context": "a""#])
    try CLITests.expectOneLineError(["predict", "--checkpoint", ck, "--data", malformed, "--tasks", "sst"],
                                    mentions: "malformed.jsonl:2")
    try CLITests.expectOneLineError(["predict", "--checkpoint", ck, "--data", sst, "--decoder", "beam"],
                                    mentions: "--decoder")
    try CLITests.expectOneLineError(["predict", "--checkpoint", ck, "--data", "/nonexistent/data"],
                                    mentions: "/nonexistent/data")
    let noTable = try Self.trained.get().dir.appendingPathComponent("no-embeddings.safetensors").path
    try Self.dropTensor("embeddings", from: ck, to: noTable)
    try CLITests.expectOneLineError(["predict", "--checkpoint", noTable, "--data", sst],
                                    mentions: "no-embeddings.safetensors: tensor \"embeddings\" is missing")
  }

  /// Copies a safetensors file without one tensor (the others packed again, in offset order).
  static func dropTensor(_ name: String, from src: String, to dst: String) throws {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: src))
    let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    var header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as? [String: Any])
    try #require(header.removeValue(forKey: name) != nil, "\(src) has no tensor \(name)")
    let body = bytes.subdata(in: (8 + n)..<bytes.count)
    var packed = Data()
    let tensors = header.compactMap { k, v -> (String, [String: Any], [Int])? in
      guard k != "__metadata__", let t = v as? [String: Any], let o = t["data_offsets"] as? [Int] else { return nil }
      return (k, t, o)
    }.sorted { $0.2[0] < $1.2[0] }
    for (k, t, o) in tensors {
      var t = t
      t["data_offsets"] = [packed.count, packed.count + o[1] - o[0]]
      packed.append(body.subdata(in: o[0]..<o[1]))
      header[k] = t
    }
    var json = try JSONSerialization.data(withJSONObject: header)
    while json.count % 8 != 0 { json.append(0x20) }
    var out = Data((0..<8).map { UInt8((json.count >> (8 * $0)) & 0xFF) })
    out.append(json)
    out.append(packed)
    try out.write(to: URL(fileURLWithPath: dst))
  }
}
