import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// write(2), named apart from `PlanFile.write(to:)`.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// A plan file that cannot be read, or one whose contents are not a valid plan: the file and
/// what is wrong.
public struct PlanFileError: Error, Equatable, CustomStringConvertible {
  public var path: String
  public var problem: String
  public init(path: String, problem: String) {
    self.path = path
    self.problem = problem
  }
  public var description: String { "\(path): \(problem)" }
}

/// The file `mqan compile -o` writes: one or more plans as JSON, beside `Plan` so that writing
/// one needs no runtime. The runtime needs nothing but a plan and weights, so loading checks
/// every invariant the executor relies on.
public struct PlanFile: Codable, Equatable, Sendable {
  public static let currentFormat = "mqan-plan-1"
  public var format: String
  public var plans: [Plan]

  public init(plans: [Plan]) {
    format = Self.currentFormat
    self.plans = plans
  }

  /// JSON with sorted keys, so the same plan always gives the same bytes.
  public func encoded() throws -> [UInt8] {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    // The LSTM decoder attention masks with -inf, which JSON has no number for.
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return [UInt8](try e.encode(self))
  }

  /// Writes atomically: a temporary file in the destination's directory, fsynced, then renamed
  /// over `path`, so `path` holds the old file or the whole new one. Every failure (a full disk,
  /// a missing folder, a destination that is a folder or a device) names the path and the reason.
  public func write(to path: String) throws {
    let bytes = try encoded()
    var st = stat()
    if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
      throw PlanFileError(path: path, problem: "cannot write the plan file: not a regular file")
    }
    let url = URL(fileURLWithPath: path)
    let temp = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
    func failure(_ what: String) -> PlanFileError {
      PlanFileError(path: path, problem: "\(what): \(String(cString: strerror(errno)))")
    }
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o666)
    guard fd >= 0 else { throw failure("cannot create the temporary file \(temp)") }
    var ok = false
    defer { if !ok { unlink(temp) } }
    var done = 0
    while done < bytes.count {
      let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, bytes.count - done) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        let e = failure("cannot write the plan file")
        close(fd)
        throw e
      }
      done += n
    }
    guard fsync(fd) == 0 else {
      let e = failure("cannot write the plan file")
      close(fd)
      throw e
    }
    guard close(fd) == 0 else { throw failure("cannot write the plan file") }
    guard rename(temp, path) == 0 else { throw failure("cannot rename the temporary file into place") }
    ok = true
  }

  /// Reads and verifies a plan file; errors name the file and what is wrong (see `decode`).
  public static func read(path: String) throws(PlanFileError) -> PlanFile {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw PlanFileError(path: path, problem: "cannot read the file")
    }
    return try decode(data, path: path)
  }

  /// Decodes and verifies a plan file's bytes; `path` names them in errors.
  public static func decode(_ data: Data, path: String) throws(PlanFileError) -> PlanFile {
    let file: PlanFile
    do {
      let d = JSONDecoder()
      d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      file = try d.decode(PlanFile.self, from: data)
    } catch {
      throw PlanFileError(path: path, problem: "not a plan file: \(Self.describe(error))")
    }
    guard file.format == currentFormat else {
      throw PlanFileError(path: path, problem: "format \"\(file.format)\" is not \(currentFormat)")
    }
    for p in file.plans {
      do { try p.verify() } catch { throw PlanFileError(path: path, problem: error.description) }
    }
    return file
  }

  /// The plan of the given name.
  public func plan(named name: String, path: String) throws(PlanFileError) -> Plan {
    guard let p = plans.first(where: { $0.name == name }) else {
      throw PlanFileError(path: path, problem: "no plan named \"\(name)\" (has: \(plans.map(\.name).joined(separator: ", ")))")
    }
    return p
  }

  static func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let k, let c):
      return "missing key \"\(k.stringValue)\" at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
      return "\(c.debugDescription) at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
    default:
      return "\(error)"
    }
  }
}
