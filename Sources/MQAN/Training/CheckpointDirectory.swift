import Foundation
import Runtime

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
