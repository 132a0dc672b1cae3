import ArgumentParser

/// `mqan`: compile, verify, train, predict and profile decaNLP's MQAN on CPU.
struct MQANCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mqan",
    abstract: "A static-graph compiler and threaded CPU runtime for decaNLP's MQAN.",
    subcommands: [CompileCommand.self, VerifyCommand.self, ProfileCommand.self])
}

MQANCommand.main()
