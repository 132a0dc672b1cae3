import Foundation
import Testing
import TestSupport

import Runtime
@testable import MQAN

@Suite struct CheckpointTests {
  static func scratchDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  /// A checkpoint with every field set, optimizer state from two real Adam steps.
  static func sample(step: Int = 2, seed: UInt64 = 0xDEAD_BEEF_0000_0001) throws -> Checkpoint {
    var r = TestNumbers(state: 3)
    let params: [String: HostTensor] = [
      "out.weight": r.tensor([4, 3]), "out.bias": r.tensor([4]), "coattention.embed_sentinel.weight": r.tensor([2, 3]),
      "scalar": .scalar(0.5),
    ]
    let mem = ParameterMemory(params)
    let config = AdamConfig.decaNLP(dimension: 20, warmup: 8)
    let opt = try AdamOptimizer(config: config, parameters: mem.buffers, threads: 1)
    for _ in 0..<step { try opt.step(grads: params.mapValues { r.tensor($0.shape) }) }
    let updated = Dictionary(uniqueKeysWithValues: mem.all.map { ($0.key, HostTensor(shape: params[$0.key]!.shape, floats: $0.value)) })
    return Checkpoint(
      parameters: updated, optimizer: opt.exportState(), optimizerConfig: config,
      modelConfig: #"{"dimension": 20, "transformer_heads": 3}"#,
      vocabulary: #"{"itos": ["<unk>", "<pad>", "é\"quoted\"\n"]}"#, decoderMode: "consistent", step: step,
      dataPosition: #"{"task": "squad", "epoch": 1, "offset": 17}"#, seed: seed, bestScore: 41.25,
      extra: ["tasks": "squad,sst"])
  }

  @Test func roundTripKeepsEveryField() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let c = try Self.sample()
    try c.write(to: dir + "/c.safetensors")
    let back = try Checkpoint.read(path: dir + "/c.safetensors")
    #expect(back == c)
    #expect(back.optimizer?.step == 2 && back.optimizerConfig == c.optimizerConfig)
    // A plain safetensors file: weights under decaNLP names, Adam's moments beside them.
    let raw = try SafetensorsFile.read(path: dir + "/c.safetensors")
    #expect(raw.metadata["format"] == "mqan-checkpoint-1")
    #expect(raw.metadata["step"] == "2" && raw.metadata["seed"] == "16045690981097406465")
    #expect(try raw.tensor("out.weight") == c.parameters["out.weight"]!)
    #expect(raw.tensors["adam.m.out.bias"] != nil && raw.tensors["adam.v.scalar"] != nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["c.safetensors"])
    // Without optimizer state or a best score.
    var bare = c
    bare.optimizer = nil
    bare.optimizerConfig = nil
    bare.bestScore = nil
    try bare.write(to: dir + "/bare.safetensors")
    #expect(try Checkpoint.read(path: dir + "/bare.safetensors") == bare)
  }

  @Test func truncatedOrCorruptFilesGiveErrorsNamingTheProblem() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/c.safetensors"
    try Self.sample().write(to: path)
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    func error(_ b: [UInt8]) -> String {
      do {
        _ = try Checkpoint(SafetensorsFile(bytes: b, source: "ck.safetensors"))
        return "no error"
      } catch let e as CheckpointError {
        return e.description
      } catch {
        return "\(error)"
      }
    }
    // Truncated data: the last tensor's bytes lie past the end of the file, and it is named.
    #expect(error(Array(bytes.dropLast(2))).contains("tensor \"adam.v.scalar\""))
    #expect(error(Array(bytes.prefix(5))).contains("shorter than the 8-byte header length"))
    // Metadata that lies.
    func rewritten(_ edit: (inout [String: String]) -> Void) throws -> [UInt8] {
      let f = try SafetensorsFile(bytes: bytes, source: "x")
      var meta = f.metadata
      edit(&meta)
      return try SafetensorsFile.encode(f.order.map { ($0, f.tensors[$0]!) }, metadata: meta)
    }
    #expect(error(try rewritten { $0["format"] = "mqan-parity-1" }).contains("not an mqan checkpoint"))
    #expect(error(try rewritten { $0["step"] = "-3" }) == "ck.safetensors: __metadata__ key \"step\": \"-3\" is not a non-negative integer")
    #expect(error(try rewritten { $0["seed"] = nil }) == "ck.safetensors: __metadata__ key \"seed\" is missing")
    #expect(error(try rewritten { $0["model_config"] = "{\"dimension\": " }).contains("\"model_config\": not valid JSON"))
    #expect(error(try rewritten { $0["adam_config"] = "[]" }).contains("\"adam_config\": not an Adam config"))
    // Optimizer tensors that do not fit their parameters.
    let f = try SafetensorsFile(bytes: bytes, source: "x")
    var tensors = f.order.map { ($0, f.tensors[$0]!) }
    tensors.removeAll { $0.0 == "adam.v.out.bias" }
    #expect(error(try SafetensorsFile.encode(tensors, metadata: f.metadata)).contains("tensor \"adam.v.out.bias\" is missing"))
    tensors.append(("adam.v.out.bias", HostTensor(shape: [5], floats: [1, 2, 3, 4, 5])))
    #expect(error(try SafetensorsFile.encode(tensors, metadata: f.metadata))
      == "ck.safetensors: tensor \"adam.v.out.bias\": F32 [5], expected F32 [4] as the parameter")
    tensors.append(("adam.x.out.bias", HostTensor(shape: [4], floats: [1, 2, 3, 4])))
    #expect(error(try SafetensorsFile.encode(tensors, metadata: f.metadata)).contains("unknown optimizer tensor"))
    // A file that is not there.
    #expect(throws: CheckpointError.self) { try Checkpoint.read(path: dir + "/missing.safetensors") }
  }

  /// A weight with a NaN or an infinity is refused when read, naming the tensor and the index.
  @Test func nonFiniteWeightsAreRefusedOnRead() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for bad in [Float.nan, .infinity] {
      var c = try Self.sample()
      var w = try c.parameters["out.weight"]!.floats
      w[7] = bad
      c.parameters["out.weight"] = HostTensor(shape: [4, 3], floats: w)
      try c.write(to: dir + "/bad.safetensors")
      #expect {
        _ = try Checkpoint.read(path: dir + "/bad.safetensors")
      } throws: { e in
        let text = "\(e)"
        return text.contains("bad.safetensors") && text.contains("\"out.weight\"") && text.contains("[2, 1]")
          && text.contains("non-finite")
      }
    }
  }

  @Test func invalidCheckpointsAreNotWritten() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var c = try Self.sample()
    c.parameters["adam.m.x"] = .scalar(1)
    #expect(throws: CheckpointError.invalidTensor(file: dir + "/c.safetensors", tensor: "adam.m.x", reason: "not a usable parameter name")) {
      try c.write(to: dir + "/c.safetensors")
    }
    c = try Self.sample()
    c.extra["step"] = "7"
    #expect(throws: CheckpointError.self) { try c.write(to: dir + "/c.safetensors") }
    c = try Self.sample()
    c.vocabulary = "not json"
    #expect(throws: CheckpointError.self) { try c.write(to: dir + "/c.safetensors") }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
  }

  struct Interrupted: Error {}

  @Test func aWriteThatFailsMidwayLeavesThePreviousFileIntact() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/latest.safetensors"
    let old = try Self.sample(step: 1)
    try old.write(to: path)
    let before = try Data(contentsOf: URL(fileURLWithPath: path))
    var written = 0
    #expect(throws: CheckpointError.self) {
      try Self.sample(step: 3).write(to: path) { name in
        written += 1
        if name == "adam.m.out.bias" { throw Interrupted() }
      }
    }
    #expect(written > 1)
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    #expect(try Checkpoint.read(path: path) == old)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["latest.safetensors"])
  }

  @Test func directoryKeepsLastStepsLatestAndBest() throws {
    let root = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: root) }
    let dir = try CheckpointDirectory(path: root + "/run/checkpoints", keepLast: 2)
    #expect(try dir.loadForResume() == nil && dir.loadBest() == nil)
    var c = try Self.sample()
    c.bestScore = nil
    let scores: [Double?] = [10, nil, 5, 12, 11]
    var bestStep = 0
    for (k, score) in scores.enumerated() {
      c.step = (k + 1) * 100
      let saved = try dir.save(c, validationScore: score)
      c = saved.checkpoint  // carries bestScore forward, as the trainer does
      if saved.isBest { bestStep = c.step }
      #expect(saved.stepPath == dir.stepPath(c.step))
    }
    #expect(bestStep == 400 && c.bestScore == 12)
    #expect(try dir.stepFiles().map(\.step) == [400, 500])
    #expect(try dir.resumePath() == dir.stepPath(500))
    let latest = try Checkpoint.read(path: dir.latestPath)
    #expect(latest.step == 500 && latest.bestScore == 12)
    #expect(try dir.loadForResume() == latest)
    let best = try #require(try dir.loadBest())
    #expect(best.step == 400 && best.bestScore == 12)
    let names = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
    #expect(names == ["latest.safetensors", "best.safetensors", "step-400.safetensors", "step-500.safetensors"])
    // A stale temporary file from a killed writer is swept.
    _ = FileManager.default.createFile(atPath: dir.path + "/.latest.safetensors.tmp-1-abc", contents: Data([1, 2]))
    dir.removeTemporaryFiles()
    #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == names)
  }

  @Test func directoryWithoutStepFilesWritesLatestOnly() throws {
    let root = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: root) }
    let dir = try CheckpointDirectory(path: root, keepLast: 0)
    let c = try Self.sample()
    let saved = try dir.save(c, validationScore: 50)
    #expect(saved.stepPath == nil && saved.isBest)
    #expect(Set(try FileManager.default.contentsOfDirectory(atPath: root)) == ["latest.safetensors", "best.safetensors"])
    #expect(try dir.loadForResume() == saved.checkpoint)
    #expect(try dir.loadBest()?.bestScore == 50)
  }
}
