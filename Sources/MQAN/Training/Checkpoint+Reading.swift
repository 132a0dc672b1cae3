import Foundation
import GraphIR
import Runtime

extension Checkpoint {
  /// Decodes an already-read safetensors file.
  public init(_ file: SafetensorsFile) throws(CheckpointError) {
    let f = file.source, meta = file.metadata
    guard let format = meta["format"] else {
      throw .notACheckpoint(file: f, reason: "no \"format\" in __metadata__")
    }
    guard format == Self.format else {
      throw .notACheckpoint(file: f, reason: "format \"\(format)\" is not \(Self.format)")
    }
    func required(_ key: String) throws(CheckpointError) -> String {
      guard let v = meta[key] else { throw .missingMetadata(file: f, key: key) }
      return v
    }
    func integer<T: FixedWidthInteger>(_ key: String, _: T.Type) throws(CheckpointError) -> T {
      let text = try required(key)
      guard let v = T(text), v >= 0 else {
        throw .invalidMetadata(file: f, key: key, reason: "\"\(text)\" is not a non-negative integer")
      }
      return v
    }
    modelConfig = try required("model_config")
    vocabulary = try required("vocabulary")
    decoderMode = try required("decoder")
    dataPosition = try required("data_position")
    step = try integer("step", Int.self)
    seed = try integer("seed", UInt64.self)
    if let text = meta["best_score"] {
      guard let v = Double(text), !v.isNaN else {
        throw .invalidMetadata(file: f, key: "best_score", reason: "\"\(text)\" is not a number")
      }
      bestScore = v
    } else {
      bestScore = nil
    }
    extra = meta.filter { !Self.reservedKeys.contains($0.key) }
    let hasAdam = meta["adam_step"] != nil || meta["adam_config"] != nil
    if hasAdam {
      let text = try required("adam_config")
      do { optimizerConfig = try JSONDecoder().decode(AdamConfig.self, from: Data(text.utf8)) } catch {
        throw .invalidMetadata(file: f, key: "adam_config", reason: "not an Adam config: \(error)")
      }
    } else {
      optimizerConfig = nil
    }
    var params: [String: HostTensor] = [:], m: [String: HostTensor] = [:], v: [String: HostTensor] = [:]
    var quantized: [String: Precision] = [:]
    for name in file.order {
      var t = file.tensors[name]!
      let scaleName = Self.scalePrefix + name
      if name.hasPrefix(Self.scalePrefix) {
        let weight = String(name.dropFirst(Self.scalePrefix.count))
        guard file.tensors[weight]?.dtype == .i8 else {
          throw .invalidTensor(file: f, tensor: name, reason: "int8 row scales without an I8 weight \"\(weight)\"")
        }
        continue
      }
      if t.dtype == .bf16 || t.dtype == .i8 {
        guard !name.hasPrefix("adam.") else {
          throw .invalidTensor(file: f, tensor: name, reason: "dtype \(t.dtype): optimizer state is F32")
        }
        if t.dtype == .i8, file.tensors[scaleName] == nil {
          throw .missingTensor(file: f, tensor: scaleName, reason: "the row scales of the I8 weight \"\(name)\"")
        }
        do { t = try QuantizedWeight.expand(t, scales: file.tensors[scaleName]) } catch {
          throw .invalidTensor(file: f, tensor: name, reason: "\(error)")
        }
        quantized[name] = file.tensors[name]!.dtype == .bf16 ? .bf16 : .int8
      }
      guard t.dtype == .f32 else { throw .invalidTensor(file: f, tensor: name, reason: "dtype \(t.dtype), expected F32") }
      if let bad = t.firstNonFinite {
        throw .invalidTensor(file: f, tensor: name, reason: "non-finite value \(bad.value) at index \(bad.index) "
                               + "(element \(bad.flat)); a weight must be a finite number")
      }
      if name.hasPrefix("adam.m.") {
        m[String(name.dropFirst(7))] = t
      } else if name.hasPrefix("adam.v.") {
        v[String(name.dropFirst(7))] = t
      } else if name.hasPrefix("adam.") {
        throw .invalidTensor(file: f, tensor: name, reason: "unknown optimizer tensor (expected adam.m.* or adam.v.*)")
      } else {
        params[name] = t
      }
    }
    parameters = params
    self.quantized = quantized
    if hasAdam {
      optimizer = AdamState(step: try integer("adam_step", Int.self), m: m, v: v)
    } else {
      if let any = (m.keys.sorted() + v.keys.sorted()).first {
        throw .invalidTensor(file: f, tensor: m[any] != nil ? "adam.m.\(any)" : "adam.v.\(any)",
                             reason: "optimizer tensor without \"adam_step\" in __metadata__")
      }
      optimizer = nil
    }
    try validate(file: f)
  }

}
