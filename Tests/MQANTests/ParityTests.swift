import Foundation
import Testing
@testable import MQAN

/// decaNLP's own numbers: every expected tensor of the bundled fixtures within its tolerance.
@Suite struct ParityTests {
  static func fixture(_ name: String) throws -> ParityFixture {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try ParityFixture(path: url.path)
  }

  @Test(arguments: ["tiny", "small"], [1, 2])
  func forwardMatchesDecaNLP(name: String, threads: Int) throws {
    let lines = try ParityCheck.run(Self.fixture(name), threads: threads)
    let failures = lines.filter { $0.status == .fail }
    #expect(failures.isEmpty, "\(failures.map(\.description).joined(separator: "\n"))")
    let ok = Set(lines.filter { $0.status == .ok }.map(\.name))
    #expect(ok.contains("expected.loss"))
    #expect(ok.contains("expected.probs"))
    #expect(ok.contains("expected.greedy_decanlp"))
    // Every activation the fixture lists is compared, none skipped.
    for l in lines where l.name.hasPrefix("expected.act.") { #expect(l.status == .ok, "\(l)") }
    // What is not built yet says skipped, never ok.
    for l in lines where l.name.hasPrefix("expected.grad.") || l.name.hasPrefix("expected.after_step.") {
      #expect(l.status == .skipped)
    }
  }
}
