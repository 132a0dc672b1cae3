import Foundation
import Testing

/// Files stay small: no file under `Sources/` runs past 400 lines (one concept per file).
@Suite struct SourceBudgetTests {
  static let maxLines = 400

  @Test func noSourceFileIsOverBudget() throws {
    let sources = CLITests.repoRoot.appendingPathComponent("Sources")
    let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }
      .filter { $0.hasSuffix(".swift") || $0.hasSuffix(".c") || $0.hasSuffix(".h") }
    #expect(files.count > 50, "the scan found \(files.count) files")
    for file in files.sorted() {
      let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count - (text.hasSuffix("\n") ? 1 : 0)
      #expect(lines <= Self.maxLines, "Sources/\(file) has \(lines) lines (budget \(Self.maxLines)): split it")
    }
  }
}
