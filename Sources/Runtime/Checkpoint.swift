import Foundation

/// A training checkpoint: weights under decaNLP's state_dict names, Adam's state, and what a
/// resumed run needs to continue exactly where this one stopped.
///
/// The file is safetensors (format `mqan-checkpoint-1`), so any safetensors reader can load the
/// weights by their decaNLP names:
///
/// | tensors | |
/// | --- | --- |
/// | `<name>` | every parameter, F32, sorted by name |
/// | `adam.m.<name>`, `adam.v.<name>` | Adam's moments (only with optimizer state) |
///
/// | `__metadata__` key | value |
/// | --- | --- |
/// | `format` | `mqan-checkpoint-1` |
/// | `model_config`, `vocabulary`, `data_position` | JSON texts the caller provides (kept as given) |
/// | `decoder` | the decoder mode (`decanlp` or `consistent`) |
/// | `step`, `seed` | decimal integers: updates done, the run's seed |
/// | `best_score` | the best validation score so far (absent until there is one) |
/// | `adam_config`, `adam_step` | the optimizer's settings (JSON) and its t (only with optimizer state) |
///
/// Other metadata keys are kept in `extra`. Writing is atomic (temporary file, fsync, rename).
public struct Checkpoint: Sendable, Equatable {
  public static let format = "mqan-checkpoint-1"
  /// Metadata keys this type owns; `extra` may not use them.
  public static let reservedKeys: Set<String> = [
    "format", "model_config", "vocabulary", "decoder", "step", "data_position", "seed", "best_score",
    "adam_config", "adam_step",
  ]

  /// The weights by decaNLP state_dict key.
  public var parameters: [String: HostTensor]
  /// Adam's moments and t, when the checkpoint can resume training.
  public var optimizer: AdamState?
  /// The optimizer's settings (stored with `optimizer`).
  public var optimizerConfig: AdamConfig?
  /// The model config as JSON (decaNLP's names: dimension, transformer_heads, ...).
  public var modelConfig: String
  /// The vocabulary as JSON (opaque here).
  public var vocabulary: String
  /// `decanlp` or `consistent` (the model's `DecoderMode`).
  public var decoderMode: String
  /// Updates done; a resumed run's next update is `step + 1`.
  public var step: Int
  /// Where the data iterators stand, as JSON (opaque here).
  public var dataPosition: String
  public var seed: UInt64
  /// The best validation score so far (higher is better), nil before the first validation.
  public var bestScore: Double?
  /// Further metadata, kept as given.
  public var extra: [String: String]

  public init(parameters: [String: HostTensor], optimizer: AdamState? = nil, optimizerConfig: AdamConfig? = nil,
              modelConfig: String, vocabulary: String, decoderMode: String, step: Int,
              dataPosition: String, seed: UInt64, bestScore: Double? = nil, extra: [String: String] = [:]) {
    self.parameters = parameters
    self.optimizer = optimizer
    self.optimizerConfig = optimizerConfig
    self.modelConfig = modelConfig
    self.vocabulary = vocabulary
    self.decoderMode = decoderMode
    self.step = step
    self.dataPosition = dataPosition
    self.seed = seed
    self.bestScore = bestScore
    self.extra = extra
  }

  /// Writes the checkpoint to `path` atomically: `path` holds the old file or the whole new one.
  /// - Throws: `CheckpointError` for a checkpoint that could not be read back (bad names, shapes or
  ///   JSON) before anything is written, or for an I/O failure.
  public func write(to path: String) throws(CheckpointError) {
    try write(to: path, afterTensor: nil)
  }

  /// `write(to:)` with a hook called after each tensor's bytes (tests use it to fail mid-way).
  func write(to path: String, afterTensor hook: ((String) throws -> Void)?) throws(CheckpointError) {
    let (tensors, metadata) = try encoded(file: path)
    let header: [UInt8]
    do { header = try SafetensorsFile.encodedHeader(tensors, metadata: metadata, file: path) } catch {
      throw .file(error)
    }
    do {
      try AtomicFile.write(to: path) { w in
        try w.write(header)
        for (name, t) in tensors {
          try writeLittleEndian(t, to: w)
          try hook?(name)
        }
      }
    } catch let e as AtomicFileError {
      throw .io(path: path, message: "\(e.operation): \(e.reason)")
    } catch {
      throw .io(path: path, message: "write interrupted: \(error)")
    }
  }

  /// Reads and checks a checkpoint; errors name the file and the tensor or metadata key.
  public static func read(path: String) throws(CheckpointError) -> Checkpoint {
    let file: SafetensorsFile
    do { file = try SafetensorsFile.read(path: path) } catch { throw .file(error) }
    return try Checkpoint(file)
  }

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
    for name in file.order {
      let t = file.tensors[name]!
      guard t.dtype == .f32 else { throw .invalidTensor(file: f, tensor: name, reason: "dtype \(t.dtype), expected F32") }
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

  // MARK: - Encoding

  /// The tensors in file order and the metadata, after `validate`.
  func encoded(file: String) throws(CheckpointError) -> ([(String, HostTensor)], [String: String]) {
    try validate(file: file)
    var tensors: [(String, HostTensor)] = parameters.keys.sorted().map { ($0, parameters[$0]!) }
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
      guard !name.isEmpty, !name.hasPrefix("adam."), name != "__metadata__" else {
        throw .invalidTensor(file: f, tensor: name, reason: "not a usable parameter name")
      }
      guard parameters[name]!.dtype == .f32 else {
        throw .invalidTensor(file: f, tensor: name, reason: "dtype \(parameters[name]!.dtype), expected F32")
      }
    }
    guard let optimizer else { return }
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

/// Streams a tensor's elements as little-endian bytes.
private func writeLittleEndian(_ t: HostTensor, to w: AtomicFile.Writer) throws(AtomicFileError) {
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
  }
}

/// A training run's checkpoint directory: `step-<n>.safetensors` every save (the last `keepLast`
/// kept), `latest.safetensors` (the newest save) and `best.safetensors` (the save with the highest
/// validation score).
///
/// Every file appears whole or not at all: a step file is written through `AtomicFile`; `latest`
/// and `best` are then published as hard links to it under a temporary name, renamed into place
/// (a plain atomic copy where the file system has no hard links). A killed run leaves at worst a
/// hidden temporary file (`removeTemporaryFiles` sweeps them).
public struct CheckpointDirectory: Sendable {
  public let path: String
  /// How many step files to keep (the newest); 0 writes `latest` only.
  public let keepLast: Int

  /// Opens `path`, creating it (and its parents) if needed.
  public init(path: String, keepLast: Int = 3) throws(CheckpointError) {
    guard keepLast >= 0 else { throw .io(path: path, message: "keepLast must be >= 0, got \(keepLast)") }
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
      throw .io(path: path, message: "cannot create the checkpoint directory: \(error.localizedDescription)")
    }
    self.path = path
    self.keepLast = keepLast
  }

  public var latestPath: String { "\(path)/latest.safetensors" }
  public var bestPath: String { "\(path)/best.safetensors" }
  public func stepPath(_ step: Int) -> String { "\(path)/step-\(step).safetensors" }

  /// What `save` did.
  public struct Saved: Sendable, Equatable {
    /// The checkpoint as written (its `bestScore` updated when this save is the new best).
    public var checkpoint: Checkpoint
    /// The step file written (nil when `keepLast` is 0).
    public var stepPath: String?
    /// Whether `best.safetensors` now holds this checkpoint.
    public var isBest: Bool
  }

  /// Saves `checkpoint` as step file and `latest`; with a `validationScore` above the checkpoint's
  /// `bestScore` (or the first score), also as `best`. Then removes step files beyond `keepLast`.
  public func save(_ checkpoint: Checkpoint, validationScore: Double? = nil) throws(CheckpointError) -> Saved {
    var c = checkpoint
    var isBest = false
    if let s = validationScore, !s.isNaN, c.bestScore.map({ s > $0 }) ?? true {
      c.bestScore = s
      isBest = true
    }
    var written: String? = nil
    if keepLast > 0 {
      let stepFile = stepPath(c.step)
      try c.write(to: stepFile)
      try publish(stepFile, as: latestPath, c)
      written = stepFile
    } else {
      try c.write(to: latestPath)
    }
    if isBest { try publish(latestPath, as: bestPath, c) }
    try prune()
    return Saved(checkpoint: c, stepPath: written, isBest: isBest)
  }

  /// The step files present, oldest first.
  public func stepFiles() throws(CheckpointError) -> [(step: Int, path: String)] {
    let names: [String]
    do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
      throw .io(path: path, message: "cannot list the checkpoint directory: \(error.localizedDescription)")
    }
    var out: [(step: Int, path: String)] = []
    for name in names where name.hasPrefix("step-") && name.hasSuffix(".safetensors") {
      let digits = name.dropFirst(5).dropLast(12)
      guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let n = Int(digits) else { continue }
      out.append((n, "\(path)/\(name)"))
    }
    return out.sorted { $0.step < $1.step }
  }

  /// The file a resumed run starts from: the newest step file, else `latest`, else nil. (The newest
  /// step file is `latest` itself, or newer when a run died between writing it and publishing it.)
  public func resumePath() throws(CheckpointError) -> String? {
    if let last = try stepFiles().last { return last.path }
    return FileManager.default.fileExists(atPath: latestPath) ? latestPath : nil
  }

  /// Reads the checkpoint at `resumePath()`, or nil when the directory has none.
  public func loadForResume() throws(CheckpointError) -> Checkpoint? {
    guard let p = try resumePath() else { return nil }
    return try Checkpoint.read(path: p)
  }

  /// Reads `best.safetensors`, or nil when there is none yet.
  public func loadBest() throws(CheckpointError) -> Checkpoint? {
    guard FileManager.default.fileExists(atPath: bestPath) else { return nil }
    return try Checkpoint.read(path: bestPath)
  }

  /// Removes temporary files that killed writers left behind (`.<name>.tmp-*`).
  public func removeTemporaryFiles() {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    for name in names where name.hasPrefix(".") && name.contains(".safetensors.tmp-") {
      _ = unlink("\(path)/\(name)")
    }
  }

  // MARK: - Internals

  /// Makes `dst` the same file as `src` atomically: a hard link under a temporary name renamed over
  /// `dst`, then the directory synced; where links are unsupported, an atomic copy of `c`.
  private func publish(_ src: String, as dst: String, _ c: Checkpoint) throws(CheckpointError) {
    let name = dst.split(separator: "/").last.map(String.init) ?? dst
    let tmp = "\(path)/.\(name).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    guard link(src, tmp) == 0 else {
      try c.write(to: dst)
      return
    }
    guard rename(tmp, dst) == 0 else {
      let reason = String(cString: strerror(errno))
      _ = unlink(tmp)
      throw .io(path: dst, message: "cannot rename \(tmp) over it: \(reason)")
    }
    let fd = open(path, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { throw .io(path: path, message: "cannot open directory: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    if fsync(fd) != 0, errno != EINVAL {
      throw .io(path: path, message: "cannot fsync directory: \(String(cString: strerror(errno)))")
    }
  }

  /// Deletes all but the newest `keepLast` step files.
  private func prune() throws(CheckpointError) {
    let files = try stepFiles()
    guard files.count > keepLast else { return }
    for f in files.dropLast(keepLast) where unlink(f.path) != 0 && errno != ENOENT {
      throw .io(path: f.path, message: "cannot remove old step file: \(String(cString: strerror(errno)))")
    }
  }
}
