import Runtime

/// Why a checkpoint could not be read, written or kept.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
  /// The safetensors layer refused the file (its message names the file and tensor).
  case file(SafetensorsError)
  /// A file or directory operation failed.
  case io(path: String, message: String)
  /// The file is safetensors but not an mqan checkpoint.
  case notACheckpoint(file: String, reason: String)
  case missingMetadata(file: String, key: String)
  case invalidMetadata(file: String, key: String, reason: String)
  case missingTensor(file: String, tensor: String, reason: String)
  case invalidTensor(file: String, tensor: String, reason: String)

  public var description: String {
    switch self {
    case .file(let e): "\(e)"
    case .io(let p, let m): "\(p): \(m)"
    case .notACheckpoint(let f, let r): "\(f): not an mqan checkpoint: \(r)"
    case .missingMetadata(let f, let k): "\(f): __metadata__ key \"\(k)\" is missing"
    case .invalidMetadata(let f, let k, let r): "\(f): __metadata__ key \"\(k)\": \(r)"
    case .missingTensor(let f, let t, let r): "\(f): tensor \"\(t)\" is missing (\(r))"
    case .invalidTensor(let f, let t, let r): "\(f): tensor \"\(t)\": \(r)"
    }
  }
}
