import Foundation
import Runtime

extension Checkpoint {
  /// The tensors in file order and the metadata, after `validate`.
  func encoded(file: String) throws(CheckpointError) -> ([(String, HostTensor)], [String: String]) {
    try validate(file: file)
    var tensors: [(String, HostTensor)] = []
    for name in parameters.keys.sorted() {
      guard let p = quantized[name], p != .fp32 else { tensors.append((name, parameters[name]!)); continue }
      do {
        let (values, scales) = try QuantizedWeight.compact(parameters[name]!, precision: p)
        tensors.append((name, values))
        if let scales { tensors.append((Self.scalePrefix + name, scales)) }
      } catch {
        throw .invalidTensor(file: file, tensor: name, reason: "\(error)")
      }
    }
    var meta = extra
    meta["format"] = Self.format
    meta["model_config"] = modelConfig
    meta["vocabulary"] = vocabulary
    meta["decoder"] = decoderMode
    meta["step"] = String(step)
    meta["data_position"] = dataPosition
    meta["seed"] = String(seed)
    if let bestScore { meta["best_score"] = "\(bestScore)" }
    if let optimizer {
      // Only trained tensors have state (`validate` checked both moments are there).
      for name in parameters.keys.sorted() { if let m = optimizer.m[name] { tensors.append(("adam.m.\(name)", m)) } }
      for name in parameters.keys.sorted() { if let v = optimizer.v[name] { tensors.append(("adam.v.\(name)", v)) } }
      meta["adam_step"] = String(optimizer.step)
      let e = JSONEncoder()
      e.outputFormatting = [.sortedKeys]
      let config = optimizerConfig ?? AdamConfig()
      meta["adam_config"] = String(decoding: (try? e.encode(config)) ?? Data("{}".utf8), as: UTF8.self)
    }
    return (tensors, meta)
  }

  /// The checks both `write` and `read` make, so what is written always reads back.
  func validate(file f: String) throws(CheckpointError) {
    for key in extra.keys.sorted() where Self.reservedKeys.contains(key) {
      throw .invalidMetadata(file: f, key: key, reason: "reserved key used in extra metadata")
    }
    for (key, text) in [("model_config", modelConfig), ("vocabulary", vocabulary), ("data_position", dataPosition)] {
      guard (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil else {
        throw .invalidMetadata(file: f, key: key, reason: "not valid JSON")
      }
    }
    guard !decoderMode.isEmpty else { throw .invalidMetadata(file: f, key: "decoder", reason: "empty") }
    guard step >= 0 else { throw .invalidMetadata(file: f, key: "step", reason: "\(step) is negative") }
    if let bestScore, bestScore.isNaN { throw .invalidMetadata(file: f, key: "best_score", reason: "NaN") }
    for name in parameters.keys.sorted() {
      guard !name.isEmpty, !name.hasPrefix("adam."), !name.hasPrefix(Self.scalePrefix), name != "__metadata__" else {
        throw .invalidTensor(file: f, tensor: name, reason: "not a usable parameter name")
      }
      guard parameters[name]!.dtype == .f32 else {
        throw .invalidTensor(file: f, tensor: name, reason: "dtype \(parameters[name]!.dtype), expected F32")
      }
    }
    for name in quantized.keys.sorted() where parameters[name] == nil {
      throw .invalidTensor(file: f, tensor: name, reason: "marked \(quantized[name]!.rawValue), but there is no such parameter")
    }
    guard let optimizer else { return }
    if let name = quantized.keys.sorted().first {
      throw .invalidTensor(file: f, tensor: name, reason: "a weight converted to \(quantized[name]!.rawValue) is for inference; "
                             + "a checkpoint with optimizer state keeps every weight in F32")
    }
    guard optimizer.step >= 0 else {
      throw .invalidMetadata(file: f, key: "adam_step", reason: "\(optimizer.step) is negative")
    }
    if let c = optimizerConfig {
      do { try c.validate() } catch { throw .invalidMetadata(file: f, key: "adam_config", reason: "\(error)") }
    }
    for (what, table) in [("m", optimizer.m), ("v", optimizer.v)] {
      for name in table.keys.sorted() where parameters[name] == nil {
        throw .invalidTensor(file: f, tensor: "adam.\(what).\(name)", reason: "no parameter \"\(name)\"")
      }
      for name in parameters.keys.sorted() {
        let tensor = "adam.\(what).\(name)"
        // Tensors the optimizer does not train (a fixed embedding table) have no state, but a
        // trained one has both moments.
        guard let t = table[name] else {
          if optimizer.m[name] != nil || optimizer.v[name] != nil {
            throw .missingTensor(file: f, tensor: tensor, reason: "the optimizer state needs both moments")
          }
          continue
        }
        guard t.dtype == .f32, t.shape == parameters[name]!.shape else {
          throw .invalidTensor(file: f, tensor: tensor,
                               reason: "\(t.dtype) \(t.shape), expected F32 \(parameters[name]!.shape) as the parameter")
        }
      }
    }
  }
}

/// Streams a tensor's elements as little-endian bytes.
func writeLittleEndian(_ t: HostTensor, to w: AtomicFile.Writer) throws(AtomicFileError) {
  func bytes<T: BitwiseCopyable>(_ a: [T]) throws(AtomicFileError) {
    #if _endian(big)
    var b = a.withUnsafeBytes { Array($0) }
    let n = MemoryLayout<T>.size
    for i in stride(from: 0, to: b.count, by: n) { b[i..<(i + n)].reverse() }
    try w.write(b)
    #else
    do { try a.withUnsafeBytes { try w.write($0) } } catch { throw error as! AtomicFileError }
    #endif
  }
  switch t.storage {
  case .f32(let a): try bytes(a)
  case .i64(let a): try bytes(a)
  case .i32(let a): try bytes(a)
  case .bf16(let a): try bytes(a)
  case .i8(let a): try bytes(a)
  }
}
