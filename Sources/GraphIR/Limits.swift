import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The limits mqan checks where input enters (command-line options, config files, checkpoints,
/// plan files, data), so that a size too large for this program is one clear error, never an
/// allocation that aborts, an overflow that traps or a run that does not end. README's "Limits"
/// table lists them.
public enum Limits {
  /// Threads of a run (`--threads`).
  public static let threads = 256
  /// Examples in one batch (`profile --batch`, `predict --batch-size`).
  public static let batch = 4096
  /// Tokens of a synthetic context, question or answer (`profile --context/--question/--answer`).
  public static let sequence = 4096
  /// Output tokens of decoding (`--max-output`).
  public static let maxOutput = 1000
  /// Hypotheses per input (`--beam`).
  public static let beam = 64
  /// Token budget of a batch (`--batch-tokens`).
  public static let batchTokens = 1_000_000
  /// Words of a vocabulary (`profile --vocab`, a config's `generative_vocab`).
  public static let vocabulary = 2_000_000
  /// A config's `dimension` and `embedding_dim`.
  public static let width = 8192
  /// A config's `transformer_hidden`.
  public static let hidden = 65_536
  /// A config's `transformer_layers` (compile time grows linearly with it).
  public static let layers = 64
  /// Steps, runs and counts given on the command line (`--steps`, `--warmup`, ...).
  public static let count = 1_000_000_000
  /// Any one dim (`--shape NAME=N`, a dim bound by the data): kernels index with 32-bit ints.
  public static let dim = Int(Int32.max)

  /// Bytes one allocation (arena, weights, key/value caches, a batch's feed) may take:
  /// `MQAN_MEMORY_LIMIT` (bytes) when set, else this machine's physical memory.
  public static var memoryBytes: Int {
    if let text = getenv("MQAN_MEMORY_LIMIT"), let v = Int(String(cString: text)), v > 0 { return v }
    let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
    guard pages > 0, size > 0 else { return Int.max }
    let (bytes, overflow) = Int(pages).multipliedReportingOverflow(by: Int(size))
    return overflow ? Int.max : bytes
  }

  /// Why `bytes` for `what` cannot be allocated, or nil when they fit the memory limit.
  public static func memoryProblem(_ bytes: Int, _ what: String) -> String? {
    let limit = memoryBytes
    guard bytes > limit else { return nil }
    let source = getenv("MQAN_MEMORY_LIMIT") != nil ? "MQAN_MEMORY_LIMIT" : "this machine's memory"
    return "\(what) needs \(gigabytes(bytes)), more than the memory limit of \(gigabytes(limit)) (\(source))"
  }

  /// `12.3 GB`, `4.1 MB`, `900 bytes`.
  public static func gigabytes(_ bytes: Int) -> String {
    if bytes >= 1_000_000_000 { return String(format: "%.1f GB", Double(bytes) / 1e9) }
    if bytes >= 1_000_000 { return String(format: "%.1f MB", Double(bytes) / 1e6) }
    return "\(bytes) bytes"
  }

  /// Product of sizes, nil on overflow or a negative factor.
  public static func product(_ sizes: [Int]) -> Int? {
    var n = 1
    for s in sizes {
      guard s >= 0 else { return nil }
      let (p, o) = n.multipliedReportingOverflow(by: s)
      if o { return nil }
      n = p
    }
    return n
  }
}
