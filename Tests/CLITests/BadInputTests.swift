import Foundation
import Testing

/// The reliability issue's bad inputs, one pinned example per case: sizes beyond mqan's limits,
/// output that cannot be written, framework errors and misleading messages, silent surprises.
/// Each gives one `error:` line naming the option, field or file, and a non-zero exit (or, where
/// the input is usable, a warning and success).
@Suite struct BadInputTests {
  static let data = TrainResumeTests.data

  /// Runs `mqan` with stdout sent to `stdoutPath` (e.g. /dev/full) and extra environment.
  static func run(_ args: [String], stdoutPath: String? = nil, env: [String: String] = [:]) throws -> CLITests.Result {
    let p = Process()
    p.executableURL = try CLITests.binary()
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(env) { _, b in b }
    let err = Pipe(), out = Pipe()
    if let path = stdoutPath {
      p.standardOutput = try #require(FileHandle(forWritingAtPath: path))
    } else {
      p.standardOutput = out
    }
    p.standardError = err
    try p.run()
    let o = stdoutPath == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CLITests.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                           stderr: String(decoding: e, as: UTF8.self))
  }

  static func expectError(_ r: CLITests.Result, _ args: [String], mentions: [String]) {
    #expect(r.status != 0 && r.status < 128, "\(args) exited \(r.status)")
    #expect(r.stderr.hasPrefix("error: ") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
    for m in mentions { #expect(r.stderr.contains(m), "\(args): \(r.stderr) does not mention \(m)") }
  }

  static func config(_ dir: URL, _ name: String, _ text: String) throws -> String {
    let path = dir.appendingPathComponent(name).path
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  static let tinyKeys = #""transformer_heads": 3, "transformer_hidden": 12, "generative_vocab": 30, "embedding_dim": 10"#

  // MARK: - 1. Sizes without bounds, unchecked arithmetic

  @Test func sizesBeyondTheLimitsAreOneLineErrors() throws {
    let dir = try TrainResumeTests.tempDir("limits")
    defer { try? FileManager.default.removeItem(at: dir) }
    try CLITests.expectOneLineError(["compile", "--shape", "B=9999999999,Tc=9999999999"], mentions: "B=9999999999")
    try CLITests.expectOneLineError(["compile", "--preset", "tiny", "--shape", "B=2000000000,Tc=2000000000"],
                                    mentions: "overflows")
    let huge = try Self.config(dir, "huge.json", #"{"dimension": 2000000000000, "transformer_layers": 2, \#(Self.tinyKeys)}"#)
    try CLITests.expectOneLineError(["compile", "--config", huge], mentions: "huge.json: field \"dimension\"")
    let deep = try Self.config(dir, "deep.json", #"{"dimension": 20, "transformer_layers": 1000000, \#(Self.tinyKeys)}"#)
    try CLITests.expectOneLineError(["compile", "--config", deep], mentions: "transformer_layers\": must be in 1...64")
    try CLITests.expectOneLineError(["predict", "--checkpoint", "c", "--data", "d", "--max-output", "1000000000"],
                                    mentions: "--max-output must be <= 1000")
    try CLITests.expectOneLineError(["profile", "train", "--batch", "1", "--context", "100000"], mentions: "--context")
    try CLITests.expectOneLineError(["profile", "forward", "--threads", "100000"], mentions: "--threads must be <= 256")
    try CLITests.expectOneLineError(["train", "--data", "d", "--tasks", "t", "--save", "s", "--threads", "100000"],
                                    mentions: "--threads")
    try CLITests.expectOneLineError(["predict", "--checkpoint", "c", "--data", "d", "--beam", "1000"], mentions: "--beam")
    // Memory: a model and table beyond the memory limit are refused before they are allocated.
    let args = ["profile", "forward", "--preset", "tiny", "--steps", "1", "--no-roofline"]
    Self.expectError(try Self.run(args, env: ["MQAN_MEMORY_LIMIT": "100000"]), args, mentions: ["memory limit"])
  }

  @Test func compileTimeIsLinearInLayersUpToTheCap() throws {
    // 64 layers (the cap) compile: the arena layout is one sweep per buffer, not a quadratic scan.
    let dir = try TrainResumeTests.tempDir("layers")
    defer { try? FileManager.default.removeItem(at: dir) }
    let cap = try Self.config(dir, "cap.json", #"{"dimension": 20, "transformer_layers": 64, \#(Self.tinyKeys)}"#)
    let r = try CLITests.run(["compile", "--config", cap, "--plan", "train"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("transformer_layers 64"))
  }

  // MARK: - 4. Output that cannot be written

  @Test func outputToAFullDiskIsAnError() throws {
    for args in [["compile", "--preset", "tiny"],
                 ["verify", CLITests.fixtures.appendingPathComponent("tiny.safetensors").path]] {
      Self.expectError(try Self.run(args, stdoutPath: "/dev/full"), args, mentions: ["cannot write to standard output"])
    }
    try CLITests.expectOneLineError(["compile", "--preset", "tiny", "-o", "/dev/full"], mentions: "/dev/full")
    // Output files in a folder that does not exist are refused before any work.
    try CLITests.expectOneLineError(["predict", "--checkpoint", "c", "--data", "d", "--out", "/nonexistent/a.jsonl"],
                                    mentions: "--out /nonexistent/a.jsonl: the folder /nonexistent does not exist")
    try CLITests.expectOneLineError(["profile", "forward", "--trace", "/nonexistent/t.json"], mentions: "--trace")
  }

  // MARK: - 5 and 6. Messages, config files, options, help

  @Test func configFilesAreReadStrictly() throws {
    let dir = try TrainResumeTests.tempDir("config")
    defer { try? FileManager.default.removeItem(at: dir) }
    let unknown = try Self.config(dir, "unknown.json", #"{"dimension": 20, "transformer_layers": 2, "dimensoin": 4, \#(Self.tinyKeys)}"#)
    try CLITests.expectOneLineError(["compile", "--config", unknown], mentions: "unknown.json: unknown key \"dimensoin\"")
    let fraction = try Self.config(dir, "fraction.json", #"{"dimension": 20.5, "transformer_layers": 2, \#(Self.tinyKeys)}"#)
    try CLITests.expectOneLineError(["compile", "--config", fraction], mentions: "field \"dimension\": expected an integer")
    let text = try Self.config(dir, "text.json", #"{"dimension": "20", "transformer_layers": 2, \#(Self.tinyKeys)}"#)
    try CLITests.expectOneLineError(["compile", "--config", text], mentions: "expected an integer, got the string")
    let broken = try Self.config(dir, "broken.json", #"{"dimension": 20,"#)
    try CLITests.expectOneLineError(["compile", "--config", broken], mentions: "broken.json: not valid JSON")
    let list = try Self.config(dir, "list.json", "[1, 2]")
    try CLITests.expectOneLineError(["compile", "--config", list], mentions: "expected a JSON object")
  }

  @Test func optionsAndHelp() throws {
    try CLITests.expectOneLineError(["train", "--frobnicate"], mentions: "unknown option --frobnicate")
    try CLITests.expectOneLineError(["verify", "--frobnicate"], mentions: "unknown option --frobnicate")
    try CLITests.expectOneLineError(["profile", "--frobnicate"], mentions: "unknown option --frobnicate")
    try CLITests.expectOneLineError(["predict", "--checkpoint", "c", "--data", "d", "--beam", "0"],
                                    mentions: "--beam must be >= 1, got 0")
    try CLITests.expectOneLineError(["profile", "decode", "--preset", "tiny", "--plan", "F"], mentions: "--plan")
    // A partial --shape keeps the defaults of the dims it does not name.
    let memory = try CLITests.run(["compile", "--preset", "tiny", "--shape", "B=4", "--emit", "memory"])
    #expect(memory.status == 0, "\(memory.stderr)")
    #expect(memory.stdout.contains("B=4") && memory.stdout.contains("Tc=256"), "\(memory.stdout)")
    let version = try CLITests.run(["--version"])
    #expect(version.status == 0 && !version.stdout.isEmpty, "\(version)")
    let top = try CLITests.run(["--help"])
    #expect(top.stdout.contains("greedy or beam search") && !top.stdout.contains("(greedy decoding)"))
    let train = try CLITests.run(["train", "--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
      .split(separator: " ").joined(separator: " ")
    for d in ["(default: default)", "(default: 0.2)", "(default: all)", "(1...256)"] {
      #expect(train.contains(d), "train --help lacks \(d)")
    }
  }

  // MARK: - 2, 5, 6. Training and prediction input

  @Test func trainingAndPredictionInput() throws {
    let dir = try TrainResumeTests.tempDir("input")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try TrainResumeTests.writeVectors(in: dir)
    let save = dir.appendingPathComponent("run").path
    func train(data: String = Self.data, tasks: String = "sst", save: String = save, _ extra: [String] = []) -> [String] {
      TrainResumeTests.trainArgs(data: data, tasks: tasks, vectors: vectors, save: save, ["--steps", "2"] + extra)
    }
    // The save folder: a file, a place no folder can be made.
    let file = dir.appendingPathComponent("a-file").path
    try Data().write(to: URL(fileURLWithPath: file))
    try CLITests.expectOneLineError(train(save: file), mentions: "\(file): cannot save here: it is a file")
    try CLITests.expectOneLineError(train(save: "/dev/null/run"), mentions: "cannot create the --save folder")
    // Nothing to resume; duplicate tasks; no validation.
    try CLITests.expectOneLineError(train(["--resume"]), mentions: "--resume: \(save) holds no latest.safetensors")
    try CLITests.expectOneLineError(train(tasks: "sst,sst"), mentions: "--tasks: sst is given twice")
    try CLITests.expectOneLineError(train(["--val-examples", "0"]), mentions: "--val-examples must be >= 1")

    // Task folders with an empty file, empty answers, one 200,000-word validation context.
    let root = dir.appendingPathComponent("data")
    let sst = try String(contentsOfFile: "\(Self.data)/sst/train.jsonl", encoding: .utf8)
    func task(_ name: String, train: String, validation: String) throws {
      let t = root.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: t, withIntermediateDirectories: true)
      try Data(train.utf8).write(to: t.appendingPathComponent("train.jsonl"))
      try Data(validation.utf8).write(to: t.appendingPathComponent("validation.jsonl"))
    }
    let line = #"{"context": "a fine film", "question": "Is this review negative or positive?", "answer": "positive"}"#
    let long = #"{"context": "\#(Array(repeating: "film", count: 200_000).joined(separator: " "))", "question": "q?", "answer": "positive"}"#
    try task("emptytrain", train: "", validation: line + "\n")
    try task("emptyval", train: sst, validation: "")
    try task("emptyanswers", train: sst + #"{"context": "x", "question": "q", "answer": ""}"# + "\n", validation: line + "\n")
    try task("long", train: sst, validation: long + "\n")
    try CLITests.expectOneLineError(train(data: root.path, tasks: "emptytrain"), mentions: "emptytrain/train.jsonl: no training examples")
    try CLITests.expectOneLineError(train(data: root.path, tasks: "emptyval"), mentions: "emptyval/validation.jsonl: no validation examples")
    let dropped = try CLITests.run(train(data: root.path, tasks: "emptyanswers", save: save + "-e"))
    #expect(dropped.status == 0 && dropped.stderr.contains("dropped 1 of 201 training examples"), "\(dropped.stderr)")
    // Validation data is prepared as prediction data: the long context is cut, the run completes.
    let cut = try CLITests.run(train(data: root.path, tasks: "long", save: save + "-l"))
    #expect(cut.status == 0 && cut.stderr.contains("1 of 1 contexts truncated to 400 tokens"), "\(cut.stderr)")
    #expect(cut.stdout.contains("validation step 2 long"), "\(cut.stdout)")

    // A checkpoint: --steps below its step; a bad data position; predict into a full disk.
    _ = try TrainResumeTests.train(train())
    let latest = "\(save)/latest.safetensors"
    try CLITests.expectOneLineError(train(["--resume", "--steps", "1"]), mentions: "--steps: 1 is below step 2 of the checkpoint")
    let bad = dir.appendingPathComponent("badpos")
    try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
    try Self.rewriteMetadata(latest, to: bad.appendingPathComponent("latest.safetensors").path,
                             key: "data_position", value: "{}")
    try CLITests.expectOneLineError(train(save: bad.path, ["--resume", "--steps", "3"]),
                                    mentions: "__metadata__ key \"data_position\": missing key \"iterators\"")
    let predict = ["predict", "--checkpoint", latest, "--data", "\(Self.data)/sst/validation.jsonl", "--max-output", "3"]
    Self.expectError(try Self.run(predict, stdoutPath: "/dev/full"), predict, mentions: ["No space left on device"])
    try CLITests.expectOneLineError(predict + ["--tasks", "a,a"], mentions: "--tasks: a is given twice")
    let empty = dir.appendingPathComponent("empty.jsonl").path
    try Data().write(to: URL(fileURLWithPath: empty))
    try CLITests.expectOneLineError(["predict", "--checkpoint", latest, "--data", empty], mentions: "\(empty): no examples")
  }

  /// Copies a safetensors file with one `__metadata__` value replaced.
  static func rewriteMetadata(_ src: String, to dst: String, key: String, value: String) throws {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: src))
    let n = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    var header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as? [String: Any])
    var meta = try #require(header["__metadata__"] as? [String: String])
    meta[key] = value
    header["__metadata__"] = meta
    var text = try JSONSerialization.data(withJSONObject: header)
    while text.count % 8 != 0 { text.append(0x20) }
    var out = Data()
    withUnsafeBytes(of: UInt64(text.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(text)
    out.append(bytes.subdata(in: (8 + n)..<bytes.count))
    try out.write(to: URL(fileURLWithPath: dst))
  }
}
