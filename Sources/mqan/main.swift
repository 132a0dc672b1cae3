import ArgumentParser
import Foundation

/// `mqan`: compile, verify and profile decaNLP's MQAN on CPU.
struct MQANCommand: ParsableCommand {
  /// The version `mqan --version` prints.
  static let version = "0.12.0"

  static let configuration = CommandConfiguration(
    commandName: "mqan",
    abstract: "A static-graph compiler and threaded CPU runtime for decaNLP's MQAN.",
    version: version,
    subcommands: [CompileCommand.self, VerifyCommand.self, TrainCommand.self, PredictCommand.self, ProfileCommand.self])

  /// Parses the command line. argument-parser reports a missing required option before an
  /// unknown one (`train --frobnicate` would say `Missing expected argument '--data'`): when that
  /// happens, the parse is retried with the missing options filled in, and an unknown option found
  /// then is the error reported.
  static func parse(_ args: [String]) throws -> ParsableCommand {
    do { return try parseAsRoot(args) } catch {
      var filled = args, last: Error = error
      for _ in 0..<8 {
        let m = message(for: last)
        guard m.hasPrefix("Missing expected argument '--"), !args.contains("--"),
              let name = m.split(separator: "'").dropFirst().first?.split(separator: " ").first else { break }
        filled += [String(name), "x"]
        do { _ = try parseAsRoot(filled); break } catch { last = error }
      }
      throw message(for: last).hasPrefix("Unknown option") ? last : error
    }
  }

  /// argument-parser's message in mqan's words, on one line.
  static func oneLine(_ error: Error) -> String {
    var m = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty }.joined(separator: "; ")
    if m.hasPrefix("Unknown option '"), let end = m.dropFirst(16).firstIndex(of: "'") {
      let name = m[m.index(m.startIndex, offsetBy: 16)..<end]
      m = "unknown option \(name)" + m[m.index(after: end)...]
    } else if m.hasPrefix("Missing expected argument '") {
      m = "missing " + m.dropFirst("Missing expected ".count)
    }
    return m
  }
}

// Bad input is one line on stderr and a non-zero exit (argument-parser would add the usage text).
do {
  var command = try MQANCommand.parse(Array(CommandLine.arguments.dropFirst()))
  try command.run()
  try Output.check()
} catch {
  let code = MQANCommand.exitCode(for: error)
  if code == .success {
    print(MQANCommand.fullMessage(for: error))
    do { try Output.check() } catch {
      note("error: \(error)")
      exit(1)
    }
  } else {
    let message = error is Output.WriteError ? "\(error)" : MQANCommand.oneLine(error)
    if !message.isEmpty { note("error: \(message)") }
    // A command that failed for another reason may also have lost its output.
    if !(error is Output.WriteError) {
      do { try Output.check() } catch { note("error: \(error)") }
    }
  }
  exit(code.rawValue)
}
