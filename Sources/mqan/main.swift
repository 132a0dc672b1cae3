import ArgumentParser
import Foundation

/// `mqan`: compile, verify and profile decaNLP's MQAN on CPU.
struct MQANCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mqan",
    abstract: "A static-graph compiler and threaded CPU runtime for decaNLP's MQAN.",
    subcommands: [CompileCommand.self, VerifyCommand.self, TrainCommand.self, PredictCommand.self, ProfileCommand.self])
}

// Bad input is one line on stderr and a non-zero exit (argument-parser would add the usage text).
do {
  var command = try MQANCommand.parseAsRoot()
  try command.run()
} catch {
  let code = MQANCommand.exitCode(for: error)
  if code == .success {
    print(MQANCommand.fullMessage(for: error))
  } else {
    let message = MQANCommand.message(for: error)
      .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      .joined(separator: "; ")
    if !message.isEmpty { FileHandle.standardError.write(Data("error: \(message)\n".utf8)) }
  }
  exit(code.rawValue)
}
