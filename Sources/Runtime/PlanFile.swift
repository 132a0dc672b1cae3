import Foundation
import GraphIR

/// The file `mqan compile -o` writes: one or more plans as JSON. The runtime needs nothing but a
/// plan and weights, so loading checks every invariant the executor relies on.
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

  /// Writes atomically (temporary file, fsync, rename).
  public func write(to path: String) throws {
    try AtomicFile.write(try encoded(), to: path)
  }

  /// Reads and verifies a plan file; errors name the file and what is wrong.
  public static func read(path: String) throws(RuntimeError) -> PlanFile {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw RuntimeError.planFile(path: path, problem: "cannot read the file")
    }
    let file: PlanFile
    do {
      let d = JSONDecoder()
      d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      file = try d.decode(PlanFile.self, from: data)
    } catch {
      throw RuntimeError.planFile(path: path, problem: "not a plan file: \(Self.describe(error))")
    }
    guard file.format == currentFormat else {
      throw RuntimeError.planFile(path: path, problem: "format \"\(file.format)\" is not \(currentFormat)")
    }
    for p in file.plans {
      do { try p.verify() } catch { throw RuntimeError.planFile(path: path, problem: error.description) }
    }
    return file
  }

  /// The plan of the given name.
  public func plan(named name: String, path: String) throws(RuntimeError) -> Plan {
    guard let p = plans.first(where: { $0.name == name }) else {
      throw RuntimeError.planFile(path: path, problem: "no plan named \"\(name)\" (has: \(plans.map(\.name).joined(separator: ", ")))")
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
