import Foundation
import Testing

/// End-to-end runs of the `mqan` binary that `swift test` builds next to the test bundle.
@Suite struct CLITests {
  static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static let fixtures = repoRoot.appendingPathComponent("Tests/MQANTests/Fixtures")

  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static func binary() throws -> URL {
    let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    for _ in 0..<4 {
      let candidate = dir.appendingPathComponent("mqan")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
      dir = dir.deletingLastPathComponent()
    }
    throw CocoaError(.fileNoSuchFile)
  }

  static func run(_ args: [String]) throws -> Result {
    let p = Process()
    p.executableURL = try binary()
    p.arguments = args
    return try collect(p)
  }

  /// Runs a configured process to its end and returns its status, stdout and stderr.
  static func collect(_ p: Process) throws -> Result {
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                  stderr: String(decoding: e, as: UTF8.self))
  }

  static func tempFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-\(getpid())-\(name)")
    try Data(bytes).write(to: url)
    return url.path
  }

  /// One line on stderr, starting `error:` and containing `mentions`; non-zero exit; no crash.
  static func expectOneLineError(_ args: [String], mentions: String) throws {
    let r = try run(args)
    #expect(r.status != 0, "\(args) exited 0")
    #expect(r.status < 128, "\(args) crashed with status \(r.status)")
    let lines = r.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(args): stderr was \(r.stderr)")
    #expect(r.stderr.hasPrefix("error: "))
    #expect(r.stderr.contains(mentions), "\(args): \(r.stderr) does not mention \(mentions)")
  }

  @Test func verifyPassesOnTheBundledFixtures() throws {
    let r = try Self.run(["verify", Self.fixtures.appendingPathComponent("tiny.safetensors").path])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stdout.split(separator: "\n")
    #expect(lines.contains { $0.hasPrefix("ok expected.loss max_abs=") && $0.contains("tol=1e-05") })
    #expect(lines.contains { $0.hasPrefix("ok expected.probs ") })
    #expect(lines.contains { $0.hasPrefix("ok expected.grad.out.weight max_abs=") })
    #expect(lines.contains { $0.hasPrefix("ok expected.after_step.out.weight max_abs=") })
    #expect(!lines.contains { $0.hasPrefix("skipped") })
    #expect(!lines.contains { $0.hasPrefix("FAIL") })
  }

  @Test func compileSummaryStatesDecaNLPsParameterCount() throws {
    let r = try Self.run(["compile", "--preset", "default", "--plan", "train", "--emit", "summary"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("parameters: 14,469,902"))
    #expect(r.stdout.contains("FLOPs per step: "))
    #expect(r.stdout.contains("arena at "))
  }

  @Test func badFixtures() throws {
    let tiny = try [UInt8](Data(contentsOf: Self.fixtures.appendingPathComponent("tiny.safetensors")))
    try Self.expectOneLineError(["verify", "/no/such/fixture.safetensors"], mentions: "/no/such/fixture.safetensors")
    let truncated = try Self.tempFile("truncated.safetensors", Array(tiny.prefix(tiny.count / 2)))
    try Self.expectOneLineError(["verify", truncated], mentions: "past the end")
    var lying = tiny
    lying[0] = 0xFF
    lying[1] = 0xFF
    try Self.expectOneLineError(["verify", try Self.tempFile("lying.safetensors", lying)], mentions: "header")
    let notAFixture = try Self.tempFile("plain.safetensors", Array("{}".utf8.count == 2
      ? [2, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8) : []))
    try Self.expectOneLineError(["verify", notAFixture], mentions: "format")
  }

  @Test func badArguments() throws {
    try Self.expectOneLineError(["compile", "--preset", "huge"], mentions: "huge")
    try Self.expectOneLineError(["compile", "--shape", "B=x"], mentions: "B=x")
    try Self.expectOneLineError(["compile", "--bogus"], mentions: "--bogus")
    try Self.expectOneLineError(["profile", "forward", "--batch", "0"], mentions: "--batch")
    let badConfig = try Self.tempFile("config.json", Array(#"{"dimension": 7, "transformer_heads": 3}"#.utf8))
    try Self.expectOneLineError(["compile", "--config", badConfig], mentions: "transformer_hidden")
    let oddConfig = try Self.tempFile("odd.json", Array(#"""
      {"dimension": 7, "transformer_heads": 3, "transformer_hidden": 5, "transformer_layers": 1,
       "generative_vocab": 10, "embedding_dim": 4}
      """#.utf8))
    try Self.expectOneLineError(["compile", "--config", oddConfig], mentions: "dimension")
    let badPlan = try Self.tempFile("plan.json", Array(#"{"format": "mqan-plan-1", "plans": [{"name": 3}]}"#.utf8))
    try Self.expectOneLineError(["profile", "forward", "--preset", "tiny", "--plan", badPlan], mentions: "plan.json")
  }

  @Test func planRoundTripsThroughAFile() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-\(getpid())-tiny.plan").path
    let c = try Self.run(["compile", "--preset", "tiny", "-o", path])
    #expect(c.status == 0, "\(c.stderr)")
    let r = try Self.run(["profile", "forward", "--preset", "tiny", "--plan", path, "--batch", "2", "--context", "9",
                          "--question", "5", "--answer", "6", "--steps", "1", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let last = try #require(r.stdout.split(separator: "\n").last)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    #expect((obj["tokens_per_s"] as? Double ?? 0) > 0)
    #expect(obj["threads"] as? Int == 2)
  }
}
