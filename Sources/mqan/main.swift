import ArgumentParser
import Collective
import Foundation

/// `mqan`: compile, verify and profile decaNLP's MQAN on CPU.
struct MQANCommand: ParsableCommand {
  /// The version `mqan --version` prints.
  static let version = "0.12.0"

  static let configuration = CommandConfiguration(
    commandName: "mqan",
    abstract: "A static-graph compiler and threaded CPU runtime for decaNLP's MQAN.",
    version: version + (Communicator.isBuiltWithMPI
      ? " (MPI: \(Communicator.libraryVersion ?? "yes"); data-parallel train and sharded predict under mpirun)"
      : " (MPI: no; built without Open MPI, one process only)"),
    subcommands: [CompileCommand.self, VerifyCommand.self, TrainCommand.self, PredictCommand.self, ProfileCommand.self,
                  ShortlistCommand.self, QuantizeCommand.self, ServeCommand.self])

  /// Parses the command line. argument-parser reports a missing required option or argument
  /// before an unknown option (`train --frobnicate` would say `Missing expected argument
  /// '--data'`): when that happens, an option that the subcommand's help does not name is
  /// reported instead.
  static func parse(_ args: [String]) throws -> ParsableCommand {
    do { return try parseAsRoot(args) } catch {
      guard message(for: error).hasPrefix("Missing expected argument") else { throw error }
      let subcommands = configuration.subcommands
      guard let sub = args.lazy.compactMap({ a in subcommands.first { $0.configuration.commandName == a } }).first
      else { throw error }
      let help = helpMessage(for: sub, includeHidden: true, columns: 1000)
      var known: Set<String> = ["-h", "--help", "--version"]
      for word in help.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }) where word.hasPrefix("-") {
        known.insert(String(word))
      }
      for a in args.prefix(while: { $0 != "--" }) where a.hasPrefix("-") && a.count > 1 && Double(a) == nil {
        let name = String(a.split(separator: "=", maxSplits: 1).first ?? "")
        if !known.contains(name) { throw UnknownOption(name: name, command: sub.configuration.commandName ?? "") }
      }
      throw error
    }
  }

  struct UnknownOption: Error, CustomStringConvertible {
    var name: String, command: String
    var description: String { "unknown option \(name) (see mqan \(command) --help)" }
  }

  /// argument-parser's message in mqan's words, on one line.
  static func oneLine(_ error: Error) -> String {
    if let u = error as? UnknownOption { return u.description }
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
  Communicator.finalize()
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
    if !message.isEmpty { note("error: " + JobPlacement.errorPrefix + message) }
    // A command that failed for another reason may also have lost its output.
    if !(error is Output.WriteError) {
      do { try Output.check() } catch { note("error: \(error)") }
    }
  }
  // One rank's error ends the whole job (the others never wait for it); alone, MPI ends cleanly.
  if code != .success { Communicator.abortJob(code: code.rawValue) }
  Communicator.finalize()
  exit(code.rawValue)
}
