import ArgumentParser
import GraphIR
import MQAN

/// `mqan verify FIXTURE...`: parity with numbers exported from decaNLP's own code.
struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Run MQAN on parity fixtures exported from decaNLP and compare every expected tensor.",
    discussion: """
      Prints one line per tensor: ok, FAIL or skipped, the tensor's name, then the error and tolerance. \
      Exits non-zero on any FAIL.
      """)

  @Argument(help: "Parity fixtures (safetensors, format mqan-parity-1).")
  var fixtures: [String]
  @Option(help: "Threads for the runtime (1...256).")
  var threads: Int = 1
  @Flag(help: "Run the unfused plans (no fusion passes), for comparison.")
  var noFuse = false
  @OptionGroup var gemm: GemmOption

  func run() throws {
    try checkRange("threads", threads, 1...Limits.threads)
    var failed = false
    let target = try gemm.target()
    try reportingErrors {
      for path in fixtures {
        if fixtures.count > 1 { print("== \(path)") }
        let fx = try ParityFixture(path: path)
        let lines = try ParityCheck.run(fx, threads: threads, fuse: !noFuse, gemm: target)
        for l in lines { print(l) }
        let ok = lines.filter { $0.status == .ok }.count
        let fail = lines.filter { $0.status == .fail }.count
        let skipped = lines.filter { $0.status == .skipped }.count
        print("\(path): \(ok) ok, \(fail) FAIL, \(skipped) skipped")
        if fail > 0 { failed = true }
      }
    }
    if failed { throw ExitCode.failure }
  }
}
