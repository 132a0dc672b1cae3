import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `mqan train` end to end: a resumed run continues exactly as an uninterrupted one, a run killed
/// with SIGKILL leaves only whole checkpoints and resumes from the last of them, and bad input
/// gives one line on stderr naming the problem.
@Suite struct TrainResumeTests {
  static let data = CLITests.fixtures.appendingPathComponent("data").path

  /// A fresh directory under the system's temporary directory.
  static func tempDir(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
      .appendingPathComponent("mqan-train-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// A tiny GloVe-format file: a few words of the fixture data, 8-dimensional.
  static func writeVectors(in dir: URL) throws -> String {
    let words = ["the", "a", "of", "and", "is", "review", "positive", "negative", "film", "."]
    var text = ""
    for (i, w) in words.enumerated() {
      let values = (0..<8).map { j in String(format: "%.3f", sin(Double(i * 8 + j + 1)) * 0.5) }
      text += ([w] + values).joined(separator: " ") + "\n"
    }
    let path = dir.appendingPathComponent("glove.8d.txt").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  /// `mqan train` with the small settings every test here uses, plus `extra`.
  static func trainArgs(data: String = data, tasks: String, vectors: String, save: String, _ extra: [String]) -> [String] {
    ["train", "--data", data, "--tasks", tasks, "--preset", "tiny", "--embeddings", vectors, "--save", save,
     "--threads", "1", "--batch-tokens", "300", "--val-examples", "5", "--max-output", "5"] + extra
  }

  static func train(_ args: [String]) throws -> CLITests.Result {
    let r = try CLITests.run(args)
    #expect(r.status == 0, "mqan \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
    return r
  }

  /// One logged training step of `<save>/log.jsonl`; equal when every number is bit-for-bit equal.
  struct StepRow: Equatable, CustomStringConvertible {
    var step: Int
    var task: String
    var loss: Double, lr: Double, gradNorm: Double

    static func == (a: StepRow, b: StepRow) -> Bool {
      a.step == b.step && a.task == b.task && a.loss.bitPattern == b.loss.bitPattern
        && a.lr.bitPattern == b.lr.bitPattern && a.gradNorm.bitPattern == b.gradNorm.bitPattern
    }

    var description: String { "step \(step) \(task) loss \(loss) lr \(lr) grad_norm \(gradNorm)" }
  }

  struct LogError: Error, CustomStringConvertible {
    var description: String
  }

  /// The training-step rows of a log, in file order. A last line without its newline (a write
  /// in progress, or one a kill cut short) is left out.
  static func stepRows(_ save: URL) throws -> [StepRow] {
    let text = try String(contentsOf: save.appendingPathComponent("log.jsonl"), encoding: .utf8)
    // Whole lines end in "\n": the last piece is empty, or a line still being written.
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    var rows: [StepRow] = []
    for line in lines {
      guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw LogError(description: "log.jsonl: not a JSON object: \(line)")
      }
      guard let loss = obj["loss"] as? Double else { continue }
      guard let step = obj["step"] as? Int else { throw LogError(description: "log.jsonl: no step: \(line)") }
      rows.append(StepRow(step: step, task: obj["task"] as? String ?? "?", loss: loss,
                          lr: obj["lr"] as? Double ?? .nan, gradNorm: obj["grad_norm"] as? Double ?? .nan))
    }
    return rows
  }

  /// The step in a checkpoint's safetensors header, after checking the file is whole: an 8-byte
  /// header length, a JSON header with `format` mqan-checkpoint-1, every tensor F32 with
  /// `data_offsets` matching its shape, and the data ending exactly at the end of the file.
  static func checkpointStep(_ path: String) throws -> Int {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    try #require(bytes.count >= 8, "\(path): \(bytes.count) bytes")
    let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    try #require(n > 0 && 8 + n <= bytes.count, "\(path): header length \(n), file \(bytes.count) bytes")
    let header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as? [String: Any],
                              "\(path): header is not a JSON object")
    let meta = try #require(header["__metadata__"] as? [String: String], "\(path): no __metadata__")
    #expect(meta["format"] == "mqan-checkpoint-1", "\(path): format \(meta["format"] ?? "none")")
    var end = 0
    for (name, value) in header where name != "__metadata__" {
      let t = try #require(value as? [String: Any], "\(path): tensor \(name)")
      let shape = try #require(t["shape"] as? [Int], "\(path): \(name) shape")
      let offsets = try #require(t["data_offsets"] as? [Int], "\(path): \(name) data_offsets")
      #expect(t["dtype"] as? String == "F32", "\(path): \(name) dtype")
      #expect(offsets.count == 2 && offsets[1] - offsets[0] == 4 * shape.reduce(1, *), "\(path): \(name) \(offsets)")
      end = max(end, offsets.last ?? 0)
    }
    #expect(8 + n + end == bytes.count, "\(path): data ends at \(8 + n + end), the file at \(bytes.count)")
    return try #require(meta["step"].flatMap { Int($0) }, "\(path): step \(meta["step"] ?? "none")")
  }

  static func temporaryFiles(in dir: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") && $0.contains(".tmp-") }
  }

  // MARK: - Resume equals an uninterrupted run

  /// Run A trains 12 steps; run B trains 8, then resumes to 12. Every step's loss, learning rate,
  /// gradient norm and task are bit-for-bit A's, and B's log holds each step once.
  func resumeMatches(data: String, tasks: String, extra: [String]) throws {
    let dir = try Self.tempDir("resume")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try Self.writeVectors(in: dir)
    let a = dir.appendingPathComponent("A"), b = dir.appendingPathComponent("B")
    let common = ["--save-every", "4", "--seed", "7"] + extra
    _ = try Self.train(Self.trainArgs(data: data, tasks: tasks, vectors: vectors, save: a.path, common + ["--steps", "12"]))
    _ = try Self.train(Self.trainArgs(data: data, tasks: tasks, vectors: vectors, save: b.path, common + ["--steps", "8"]))
    #expect(try Self.checkpointStep(b.appendingPathComponent("latest.safetensors").path) == 8)
    let resumed = try Self.train(Self.trainArgs(data: data, tasks: tasks, vectors: vectors, save: b.path,
                                                common + ["--steps", "12", "--resume"]))
    #expect(resumed.stdout.contains("step 9/12 "), "the resumed run did not start at step 9: \(resumed.stdout)")

    let rowsA = try Self.stepRows(a), rowsB = try Self.stepRows(b)
    #expect(rowsA.map(\.step) == Array(1...12))
    #expect(rowsB.map(\.step) == Array(1...12), "B's log steps: \(rowsB.map(\.step))")
    for (ra, rb) in zip(rowsA, rowsB) {
      #expect(ra == rb, "uninterrupted: \(ra); resumed: \(rb)")
    }
    #expect(try Self.checkpointStep(a.appendingPathComponent("latest.safetensors").path) == 12)
    #expect(try Self.checkpointStep(b.appendingPathComponent("latest.safetensors").path) == 12)
    // The final weights and optimizer state: the same bytes, but for the best score (B validated at step 8 too).
    #expect(try Self.tensorBytes(a.appendingPathComponent("latest.safetensors").path)
            == Self.tensorBytes(b.appendingPathComponent("latest.safetensors").path),
            "the final checkpoints' tensors differ")
  }

  /// A checkpoint's tensor bytes (everything after the header).
  static func tensorBytes(_ path: String) throws -> Data {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    return bytes.subdata(in: (8 + n)..<bytes.count)
  }

  /// With the word vectors fixed, and trained (the table then lives in the checkpoint, with Adam state).
  @Test(arguments: [[], ["--train-embeddings"]])
  func resumeEqualsAnUninterruptedRun(extra: [String]) throws {
    try resumeMatches(data: Self.data, tasks: "sst,squad,multi30k.en.de", extra: extra)
  }

  /// The same with a task of a few examples (an epoch is one or two batches, so the saved
  /// iterators stand at epoch boundaries and deep in later epochs) and a jump-start.
  @Test func resumeAcrossEpochsAndJumpStart() throws {
    let dir = try Self.tempDir("epochs")
    defer { try? FileManager.default.removeItem(at: dir) }
    let few = dir.appendingPathComponent("few")
    try FileManager.default.createDirectory(at: few, withIntermediateDirectories: true)
    let sst = try String(contentsOfFile: "\(Self.data)/sst/train.jsonl", encoding: .utf8).split(separator: "\n")
    try Data((sst.prefix(7).joined(separator: "\n") + "\n").utf8).write(to: few.appendingPathComponent("train.jsonl"))
    try Data((sst.suffix(3).joined(separator: "\n") + "\n").utf8).write(to: few.appendingPathComponent("validation.jsonl"))
    try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("squad").path,
                                               withDestinationPath: "\(Self.data)/squad")
    try resumeMatches(data: dir.path, tasks: "few,squad", extra: ["--jump-start", "3"])
  }

  /// The same run twice with the same seed: checkpoint files identical byte for byte, the
  /// metadata's JSON included (keys sorted, no timestamps), whatever `--threads` is (1, 2, 3):
  /// no kernel's summation order depends on how many threads share it.
  @Test func theSameRunWritesTheSameBytesOnAnyThreadCount() throws {
    let dir = try Self.tempDir("bytes")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try Self.writeVectors(in: dir)
    var files: [Data] = []
    for (run, threads) in [("a", "1"), ("b", "1"), ("c", "2"), ("d", "3")] {
      let save = dir.appendingPathComponent(run).path
      var args = Self.trainArgs(tasks: "sst,squad", vectors: vectors, save: save,
                                ["--steps", "3", "--save-every", "3", "--val-every", "3"])
      args[try #require(args.firstIndex(of: "--threads")) + 1] = threads
      _ = try Self.train(args)
      files.append(try Data(contentsOf: URL(fileURLWithPath: save + "/latest.safetensors")))
    }
    #expect(files[0] == files[1], "same run, same threads")
    #expect(files[0] == files[2] && files[0] == files[3], "1, 2 and 3 threads")
  }

  // MARK: - SIGKILL mid-way

  /// A run killed with SIGKILL leaves whole checkpoints only; resuming it starts at the
  /// checkpoint's step + 1, sweeps temporary files, and redoes the lost steps bit-for-bit.
  @Test func killedRunResumesFromItsLastCheckpoint() throws {
    let dir = try Self.tempDir("kill")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try Self.writeVectors(in: dir)
    let save = dir.appendingPathComponent("run")
    let latest = save.appendingPathComponent("latest.safetensors").path
    let common = ["--save-every", "5", "--val-every", "10", "--seed", "11"]
    let tasks = "sst,squad,multi30k.en.de"

    let p = Process()
    p.executableURL = try CLITests.binary()
    p.arguments = Self.trainArgs(tasks: tasks, vectors: vectors, save: save.path, common + ["--steps", "400"])
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
    // Wait, on the trainer's own (unbuffered) output, for the event of step 20: past the second
    // checkpoint (step 10), with steps logged after it. No clock: the read ends at that line or at
    // the end of the output, when the run has ended.
    var text = ""
    var sawStep20 = false
    while !sawStep20 {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
      sawStep20 = text.split(separator: "\n").contains { $0.hasPrefix("step 20/") }
    }
    guard sawStep20, p.isRunning else {
      Issue.record("the run ended (status \(p.terminationStatus)) before it could be killed: \(text.suffix(500))")
      return
    }
    #expect(kill(p.processIdentifier, SIGKILL) == 0)
    p.waitUntilExit()
    #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL)

    // Every checkpoint is whole and reads back: each one, as the latest of a fresh directory,
    // resumes (Checkpoint.read, the iterators' and optimizer's state) for zero steps.
    let killedRows = try Self.stepRows(save)
    let files = try FileManager.default.contentsOfDirectory(atPath: save.path).filter { $0.hasSuffix(".safetensors") }
    #expect(files.contains("latest.safetensors") && files.contains("best.safetensors"), "\(files)")
    for name in files where !name.hasPrefix(".") {
      let path = save.appendingPathComponent(name).path
      let step = try Self.checkpointStep(path)
      #expect(step >= 5 && step % 5 == 0 && step <= killedRows.count, "\(name): step \(step)")
      let copy = dir.appendingPathComponent("readback-\(name)")
      try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: path, toPath: copy.appendingPathComponent("latest.safetensors").path)
      _ = try Self.train(Self.trainArgs(tasks: tasks, vectors: vectors, save: copy.path,
                                        common + ["--steps", "\(step)", "--resume"]))
    }
    let checkpoint = try Self.checkpointStep(latest)
    #expect(killedRows.map(\.step) == Array(1...killedRows.count), "killed run's log: \(killedRows.map(\.step))")
    #expect(checkpoint >= 10 && killedRows.count >= checkpoint, "checkpoint \(checkpoint), logged \(killedRows.count)")

    // A temporary file such as a writer killed mid-checkpoint leaves (pid 1 is never a trainer).
    let stale = save.appendingPathComponent(".latest.safetensors.tmp-1-0123456789abcdef")
    try Data([0, 1, 2]).write(to: stale)

    let target = killedRows.count + 3
    let r = try Self.train(Self.trainArgs(tasks: tasks, vectors: vectors, save: save.path,
                                          common + ["--steps", "\(target)", "--resume"]))
    let firstStep = r.stdout.split(separator: "\n").first { $0.hasPrefix("step ") }
    #expect(firstStep?.hasPrefix("step \(checkpoint + 1)/\(target) ") == true,
            "checkpoint step \(checkpoint), the resumed run's first step: \(firstStep ?? "none")")
    let rows = try Self.stepRows(save)
    #expect(rows.map(\.step) == Array(1...target), "resumed log steps: \(rows.map(\.step))")
    // Steps up to the checkpoint are kept; the ones lost with the kill are redone exactly.
    for (old, new) in zip(killedRows, rows) {
      #expect(old == new, "killed run: \(old); resumed: \(new)")
    }
    #expect(try Self.checkpointStep(latest) == target)
    let leftovers = try Self.temporaryFiles(in: save)
    #expect(leftovers.isEmpty, "temporary files left in \(save.path): \(leftovers)")
  }

  // MARK: - Bad input

  @Test func badTrainInput() throws {
    let dir = try Self.tempDir("bad")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try Self.writeVectors(in: dir)
    let save = dir.appendingPathComponent("save").path
    func args(data: String = Self.data, tasks: String = "sst", vectors: String? = vectors, _ extra: [String] = []) -> [String] {
      var a = ["train", "--data", data, "--tasks", tasks, "--preset", "tiny", "--save", save, "--threads", "1",
               "--batch-tokens", "300", "--steps", "1"]
      if let vectors { a += ["--embeddings", vectors] }
      return a + extra
    }
    // An unknown task folder: the file it looked for.
    try CLITests.expectOneLineError(args(tasks: "sst,nosuchtask"), mentions: "nosuchtask/train.jsonl")
    try CLITests.expectOneLineError(args(tasks: ""), mentions: "task")
    // Word vectors: missing file, no --embeddings, a malformed line.
    let missing = dir.appendingPathComponent("no-such-glove.txt").path
    try CLITests.expectOneLineError(args(vectors: missing), mentions: missing)
    try CLITests.expectOneLineError(args(vectors: nil), mentions: "--embeddings")
    let ragged = dir.appendingPathComponent("ragged.txt")
    try Data("the 0.1 0.2 0.3\nis 0.4 0.5\n".utf8).write(to: ragged)
    try CLITests.expectOneLineError(args(vectors: ragged.path), mentions: "ragged.txt:2")
    // Malformed JSONL: the file and the line.
    let data = dir.appendingPathComponent("data")
    let task = data.appendingPathComponent("broken")
    try FileManager.default.createDirectory(at: task, withIntermediateDirectories: true)
    let good = #"{"context": "a fine film", "question": "Is this review negative or positive?", "answer": "positive"}"#
    try Data("\(good)\n\(good)\n{\"context\": \"cut off\", \"question\": \n\(good)\n".utf8)
      .write(to: task.appendingPathComponent("train.jsonl"))
    try Data("\(good)\n".utf8).write(to: task.appendingPathComponent("validation.jsonl"))
    try CLITests.expectOneLineError(args(data: data.path, tasks: "broken"), mentions: "broken/train.jsonl:3")
    try Data("\(good)\n\(good)\n".utf8).write(to: task.appendingPathComponent("train.jsonl"))
    try Data("\(good)\n{\"context\": \"c\", \"question\": \"q\"}\n".utf8)
      .write(to: task.appendingPathComponent("validation.jsonl"))
    try CLITests.expectOneLineError(args(data: data.path, tasks: "broken"), mentions: "broken/validation.jsonl:2")
    // Bad numbers.
    try CLITests.expectOneLineError(args(["--steps", "0"]), mentions: "--steps")
    try CLITests.expectOneLineError(args(["--save-every", "0"]), mentions: "--save-every")
    try CLITests.expectOneLineError(args(["--batch-tokens", "0"]), mentions: "--batch-tokens")
    // A truncated checkpoint to resume from: the file.
    let cut = dir.appendingPathComponent("cut")
    try FileManager.default.createDirectory(at: cut, withIntermediateDirectories: true)
    var header = Data([100, 0, 0, 0, 0, 0, 0, 0])
    header.append(Data(#"{"__metadata__": {"format": "mqan-checkpoint-1"}}"#.utf8))
    try header.write(to: cut.appendingPathComponent("latest.safetensors"))
    try CLITests.expectOneLineError(["train", "--data", Self.data, "--tasks", "sst", "--preset", "tiny",
                                     "--embeddings", vectors, "--save", cut.path, "--resume"],
                                    mentions: "latest.safetensors")
  }
}
