import Foundation

/// Standard output through one checked writer: every `print` of this module lands here, and a
/// write that fails (a full disk, `> /dev/full`, a closed pipe) is remembered and, at the latest
/// when the command ends, turned into `error: cannot write to standard output: ...` and a non-zero
/// exit. Bulk output (`mqan predict`'s answers) is written with `Output.write`, which throws at once.
enum Output {
  /// The errno of the first failed write to standard output.
  nonisolated(unsafe) private static var failure: Int32?
  nonisolated(unsafe) private static var buffer: [UInt8] = []
  /// A terminal gets every line as it is printed.
  private static let terminal = isatty(1) != 0

  struct WriteError: Error, CustomStringConvertible {
    var code: Int32
    var description: String { "cannot write to standard output: \(String(cString: strerror(code)))" }
  }

  /// Writes `bytes` to standard output now; throws when any write so far failed.
  static func write(_ bytes: [UInt8]) throws {
    buffer += bytes
    try check()
  }

  /// Buffered (flushed past 64 KiB, or at once on a terminal); a failure is remembered for `check`.
  static func put(_ bytes: [UInt8]) {
    buffer += bytes
    if terminal || buffer.count >= 1 << 16 { flush() }
  }

  /// Flushes standard output; throws `WriteError` when a write failed.
  static func check() throws {
    flush()
    if let code = failure { throw WriteError(code: code) }
  }

  private static func flush() {
    defer { buffer.removeAll(keepingCapacity: true) }
    guard failure == nil, !buffer.isEmpty else { return }
    buffer.withUnsafeBytes { raw in
      var done = 0
      while done < raw.count {
        let n = Foundation.write(1, raw.baseAddress! + done, raw.count - done)
        if n < 0 {
          if errno == EINTR { continue }
          failure = errno
          return
        }
        done += n
      }
    }
  }
}

/// This module's `print`: Swift's, through `Output` (so failed writes are not lost).
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
  Output.put(Array((items.map { "\($0)" }.joined(separator: separator) + terminator).utf8))
}

/// One line on standard error (progress, warnings); a failure there cannot be reported anywhere.
func note(_ s: String, terminator: String = "\n") {
  let bytes = Array((s + terminator).utf8)
  bytes.withUnsafeBytes { raw in _ = Foundation.write(2, raw.baseAddress!, raw.count) }
}

/// `print` for types with a `print` method of their own (`ProfileReport`).
func printOut(_ s: String) { print(s) }
