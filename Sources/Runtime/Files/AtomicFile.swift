import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an atomic write failed: the path, the step, and the errno text.
public struct AtomicFileError: Error, CustomStringConvertible, Equatable {
  /// The destination path.
  public let path: String
  /// What was being done, e.g. "cannot create temporary file /d/.x.tmp-1-ab".
  public let operation: String
  /// The system's text for the errno, e.g. "No such file or directory".
  public let reason: String

  /// One line: `path: operation: reason`.
  public var description: String { "\(path): \(operation): \(reason)" }
}

/// Writes files atomically: readers see the old contents or the new, never a mix.
///
/// The bytes go to a temporary file in the destination's directory (`.<name>.tmp-<pid>-<random>`),
/// which is fsynced, renamed over the destination and the directory fsynced. On any failure,
/// including an error thrown by the caller's writer closure, the temporary file is removed and
/// the destination is left as it was. A process killed mid-write can leave a temporary file
/// behind, never a half-written destination. The new file gets mode 0666 less the umask.
public enum AtomicFile {
  /// Streams bytes into the temporary file; buffered, so small writes are cheap.
  public final class Writer {
    fileprivate let fd: FileDescriptor
    fileprivate let path: String
    private var buffer: [UInt8] = []
    private static let bufferSize = 1 << 20

    fileprivate init(fd: FileDescriptor, path: String) {
      self.fd = fd
      self.path = path
      buffer.reserveCapacity(Self.bufferSize)
    }

    /// Appends `bytes` to the file.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(AtomicFileError) {
      if buffer.count + bytes.count <= Self.bufferSize {
        buffer.append(contentsOf: bytes)
        return
      }
      try flush()
      if bytes.count >= Self.bufferSize {
        try writeAll(bytes)
      } else {
        buffer.append(contentsOf: bytes)
      }
    }

    /// Appends `bytes` to the file.
    public func write(_ bytes: [UInt8]) throws(AtomicFileError) {
      do { try bytes.withUnsafeBytes { try write($0) } } catch { throw error as! AtomicFileError }
    }

    /// Writes out whatever is buffered.
    fileprivate func flush() throws(AtomicFileError) {
      guard !buffer.isEmpty else { return }
      do { try buffer.withUnsafeBytes { try writeAll($0) } } catch { throw error as! AtomicFileError }
      buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws(AtomicFileError) {
      do {
        _ = try fd.writeAll(raw)
      } catch {
        throw AtomicFileError(path: path, operation: "cannot write", reason: "\(error)")
      }
    }
  }

  /// Atomically replaces (or creates) `path` with `bytes`.
  public static func write(_ bytes: [UInt8], to path: String) throws(AtomicFileError) {
    do {
      try write(to: path) { w in try w.write(bytes) }
    } catch let e as AtomicFileError {
      throw e
    } catch {
      preconditionFailure("unreachable: \(error)")
    }
  }

  /// Atomically replaces (or creates) `path` with what `body` writes. If `body` throws, its
  /// error is rethrown unchanged and `path` is untouched; I/O failures throw `AtomicFileError`.
  public static func write(to path: String, _ body: (Writer) throws -> Void) throws {
    let (dir, name) = split(path)
    guard !name.isEmpty, name != ".", name != ".." else {
      throw AtomicFileError(path: path, operation: "cannot write", reason: "not a file name")
    }
    let tmp = "\(dir)/.\(name).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    let fd: FileDescriptor
    do {
      fd = try FileDescriptor.open(FilePath(tmp), .writeOnly,
                                   options: [.create, .exclusiveCreate, .truncate],
                                   permissions: [.ownerReadWrite, .groupReadWrite, .otherReadWrite])
    } catch {
      throw AtomicFileError(path: path, operation: "cannot create temporary file \(tmp)", reason: "\(error)")
    }
    var open = true
    do {
      let writer = Writer(fd: fd, path: path)
      try body(writer)
      try writer.flush()
      guard fsync(fd.rawValue) == 0 else { throw failure(path, "cannot fsync \(tmp)") }
      open = false
      do { try fd.close() } catch {
        throw AtomicFileError(path: path, operation: "cannot close \(tmp)", reason: "\(error)")
      }
      guard rename(tmp, path) == 0 else { throw failure(path, "cannot rename \(tmp) over it") }
    } catch {
      if open { try? fd.close() }
      _ = unlink(tmp)
      throw error
    }
    try syncDirectory(dir, for: path)
  }

  /// Flushes the directory entry of a rename to disk; filesystems that cannot fsync a
  /// directory (EINVAL) are tolerated.
  private static func syncDirectory(_ dir: String, for path: String) throws(AtomicFileError) {
    let dfd: FileDescriptor
    do {
      dfd = try FileDescriptor.open(FilePath(dir), .readOnly, options: [.directory])
    } catch {
      throw AtomicFileError(path: path, operation: "cannot open directory \(dir)", reason: "\(error)")
    }
    defer { try? dfd.close() }
    if fsync(dfd.rawValue) != 0, errno != EINVAL {
      throw failure(path, "cannot fsync directory \(dir)")
    }
  }

  private static func failure(_ path: String, _ operation: String) -> AtomicFileError {
    AtomicFileError(path: path, operation: operation, reason: "\(Errno(rawValue: errno))")
  }

  /// ("dir", "name") of a path; "." for a bare name.
  private static func split(_ path: String) -> (String, String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let dir = path[..<slash]
    return (dir.isEmpty ? "/" : String(dir), String(path[path.index(after: slash)...]))
  }
}
