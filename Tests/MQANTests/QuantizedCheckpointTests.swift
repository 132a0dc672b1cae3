import Foundation
import GraphIR
import Runtime
import Testing
import TestSupport

@testable import MQAN

/// Checkpoints with weights stored in bf16 or int8 (`mqan quantize`): they read back to the same
/// F32 values, are written compactly, and malformed ones are refused naming the tensor.
@Suite struct QuantizedCheckpointTests {
  static func sample() throws -> Checkpoint {
    var c = try CheckpointTests.sample()
    c.optimizer = nil
    c.optimizerConfig = nil
    for (name, p) in [("out.weight", Precision.int8), ("coattention.embed_sentinel.weight", .bf16)] {
      c.parameters[name] = try QuantizedWeight.rounded(c.parameters[name]!, precision: p)
      c.quantized[name] = p
    }
    return c
  }

  @Test func roundTripKeepsTheValuesAndStoresThemCompactly() throws {
    let dir = try CheckpointTests.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let c = try Self.sample()
    try c.write(to: dir + "/q.safetensors")
    #expect(try Checkpoint.read(path: dir + "/q.safetensors") == c)
    let file = try SafetensorsFile.read(path: dir + "/q.safetensors")
    #expect(file.tensors["out.weight"]?.dtype == .i8)
    #expect(file.tensors["quant.scale.out.weight"]?.shape == [4])
    #expect(file.tensors["coattention.embed_sentinel.weight"]?.dtype == .bf16)
    #expect(file.tensors["out.bias"]?.dtype == .f32)
  }

  @Test func valuesThePrecisionCannotHoldAreRefused() throws {
    var c = try Self.sample()
    c.parameters["out.weight"] = try CheckpointTests.sample().parameters["out.weight"]
    let dir = try CheckpointTests.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect { try c.write(to: dir + "/bad.safetensors") } throws: { "\($0)".contains("out.weight") && "\($0)".contains("not an int8 value") }
    #expect(!FileManager.default.fileExists(atPath: dir + "/bad.safetensors"))
    // Optimizer state and converted weights do not go together.
    var trained = try CheckpointTests.sample()
    trained.quantized["out.weight"] = .int8
    #expect { try trained.write(to: dir + "/bad.safetensors") } throws: { "\($0)".contains("is for inference") }
  }

  @Test func malformedFilesNameTheTensor() throws {
    let c = try Self.sample()
    let (tensors, meta) = try c.encoded(file: "q")
    func read(_ ts: [(String, HostTensor)]) -> String {
      do {
        _ = try Checkpoint(SafetensorsFile(bytes: SafetensorsFile.encode(ts, metadata: meta), source: "q.safetensors"))
        return "read"
      } catch { return "\(error)" }
    }
    #expect(read(tensors) == "read")
    let noScales = tensors.filter { $0.0 != "quant.scale.out.weight" }
    #expect(read(noScales).contains("quant.scale.out.weight") && read(noScales).contains("row scales"))
    let strayScales = tensors + [("quant.scale.out.bias", HostTensor(shape: [4], floats: [1, 1, 1, 1]))]
    #expect(read(strayScales).contains("without an I8 weight \"out.bias\""))
    let wrongScales = tensors.map { $0.0 == "quant.scale.out.weight" ? ($0.0, HostTensor(shape: [3], floats: [1, 1, 1])) : $0 }
    #expect(read(wrongScales).contains("do not match"))
    let nanScales = tensors.map { $0.0 == "quant.scale.out.weight" ? ($0.0, HostTensor(shape: [4], floats: [1, .nan, 1, 1])) : $0 }
    #expect(read(nanScales).contains("non-finite"))
  }
}
