import Foundation
import Testing

/// `mqan profile train|decode`: the phase table, the JSON line and a Chrome trace that parses.
@Suite struct ProfileTests {
  func traceEvents(_ path: String) throws -> [[String: Any]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return try #require(obj["traceEvents"] as? [[String: Any]])
  }

  @Test func trainShowsPhasesAndWritesATrace() throws {
    let trace = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-\(getpid())-train.json").path
    let r = try CLITests.run(["profile", "train", "--preset", "tiny", "--batch", "2", "--context", "9", "--question", "5",
                              "--answer", "6", "--steps", "1", "--trace", trace, "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    for phase in ["forward", "backward", "optimizer"] { #expect(r.stdout.contains("\n\(phase) "), "no \(phase) phase") }
    #expect(r.stdout.contains("\n  linear %"), "kernels are named by op and IR node")
    #expect(r.stdout.contains("backward: slowest kernels"))
    let last = try #require(r.stdout.split(separator: "\n").last)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    for key in ["tokens_per_s", "step_ms", "step_ms_min", "step_ms_max", "peak_rss_bytes", "gflops_per_s", "threads"] {
      #expect(obj[key] != nil, "JSON lacks \(key)")
    }
    try expectReportJSON(obj, phases: ["forward", "backward", "optimizer"])
    let events = try traceEvents(trace)
    let kernels = events.filter { $0["ph"] as? String == "X" && $0["tid"] as? Int != 1000 }
    #expect(!kernels.isEmpty)
    #expect(Set(kernels.compactMap { $0["tid"] as? Int }) == [0, 1], "one lane per pool thread")
    #expect(Set(kernels.compactMap { $0["cat"] as? String }) == ["forward", "backward"])
    #expect(events.contains { $0["cat"] as? String == "optimizer" })
    #expect(kernels.allSatisfy { ($0["ts"] as? Double ?? -1) >= 0 && ($0["dur"] as? Double ?? -1) >= 0 })
  }

  @Test func decodeShowsPhasesAndWritesATrace() throws {
    let trace = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-\(getpid())-decode.json").path
    let r = try CLITests.run(["profile", "decode", "--preset", "tiny", "--batch", "3", "--context", "9", "--question",
                              "5", "--max-output", "4", "--beam", "2", "--steps", "1", "--trace", trace, "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    for phase in ["encode", "decode-step", "beam search"] { #expect(r.stdout.contains("\n\(phase) "), "no \(phase)") }
    let last = try #require(r.stdout.split(separator: "\n").last)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    #expect((obj["sentences_per_s"] as? Double ?? 0) > 0)
    #expect(obj["beam"] as? Int == 2)
    try expectReportJSON(obj, phases: ["encode", "decode-step", "beam search"])
    let events = try traceEvents(trace)
    // 4 decode steps, each running the step plan's cache updates.
    #expect(events.filter { ($0["name"] as? String ?? "").hasPrefix("cache_update") }.count >= 4)
    #expect(Set(events.compactMap { $0["cat"] as? String }).isSuperset(of: ["encode", "decode-step", "beam search"]))
  }

  /// The JSON object carries the report the text prints: the phases in order, every kernel row
  /// (the slowest first, each in a phase, with its roofline columns) and the sums by op.
  func expectReportJSON(_ obj: [String: Any], phases: [String]) throws {
    let ph = try #require(obj["phases"] as? [[String: Any]])
    #expect(ph.compactMap { $0["phase"] as? String } == phases)
    #expect(ph.allSatisfy { ($0["ms"] as? Double ?? -1) >= 0 && ($0["percent"] as? Double ?? -1) >= 0 })
    let kernels = try #require(obj["kernels"] as? [[String: Any]])
    #expect(!kernels.isEmpty)
    let ms = kernels.map { $0["ms"] as? Double ?? -1 }
    #expect(zip(ms, ms.dropFirst()).allSatisfy { $0 >= $1 }, "slowest first")
    for k in kernels {
      #expect(phases.contains(k["phase"] as? String ?? ""), "\(k)")
      #expect((k["kernel"] as? String)?.contains(" %") == true && (k["path"] as? String)?.contains("/") == true)
      #expect(["compute", "memory"].contains(k["bound"] as? String ?? ""), "roofline columns: \(k)")
      #expect(["peak", "L2", "LLC", "memory"].contains(k["roof"] as? String ?? ""))
      #expect((k["calls"] as? Double ?? 0) > 0 && (k["flops"] as? Double ?? -1) >= 0)
    }
    // by_op sums the kernel rows of each op kind.
    let byOp = try #require(obj["by_op"] as? [[String: Any]])
    for o in byOp {
      let op = try #require(o["op"] as? String)
      let sum = kernels.filter { ($0["kernel"] as? String)?.hasPrefix(op + " ") == true }.reduce(0) { $0 + ($1["ms"] as? Double ?? 0) }
      #expect(abs(sum - (o["ms"] as? Double ?? -1)) <= 1e-9 * max(1, sum), "\(op)")
    }
    #expect(Set(byOp.compactMap { $0["op"] as? String }).count == byOp.count)
  }

  /// A checkpoint of mqan train profiles with its own config, weights and table.
  @Test func profilesACheckpoint() throws {
    let ck = try PredictTests.checkpoint()
    let r = try CLITests.run(["profile", "decode", "--checkpoint", ck, "--batch", "2", "--context", "9", "--question", "5",
                              "--max-output", "3", "--steps", "1", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("sentences_per_s"))
    // A real batch from a data file, encoded with the checkpoint's vocabulary.
    let data = "\(PredictTests.data)/multi30k.en.de/validation.jsonl"
    let t = try CLITests.run(["profile", "train", "--checkpoint", ck, "--data", data, "--batch", "3", "--steps", "1", "--json"])
    #expect(t.status == 0, "\(t.stderr)")
    let last = try #require(t.stdout.split(separator: "\n").last)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    #expect((obj["loss"] as? Double).map { $0.isFinite && $0 > 0 } == true)
    try CLITests.expectOneLineError(["profile", "train", "--preset", "tiny", "--data", data], mentions: "--checkpoint")
    try CLITests.expectOneLineError(["profile", "decode", "--checkpoint", ck, "--preset", "tiny"], mentions: "--checkpoint")
    try CLITests.expectOneLineError(["profile", "train", "--checkpoint", "/nonexistent.safetensors"], mentions: "nonexistent")
  }

  /// `--graph FILE.mqir`: a checked-in graph runs on the synthetic batch and gives the loss the
  /// model's own forward graph gives (both without dropout, to float rounding); an edited variant (the loss scaled
  /// by 2) runs and says so in its loss; a broken file is one error line naming it.
  @Test func graphFromItsTextRuns() throws {
    let args = ["--preset", "tiny", "--batch", "2", "--context", "9", "--question", "5", "--answer", "6",
                "--steps", "1", "--json"]
    func loss(_ r: CLITests.Result) throws -> Double {
      #expect(r.status == 0, "\(r.stderr)")
      let last = try #require(r.stdout.split(separator: "\n").last)
      let obj = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
      return try #require(obj["loss"] as? Double)
    }
    let golden = CLITests.repoRoot.appendingPathComponent("IR/tiny.train.mqir").path
    let own = try loss(CLITests.run(["profile", "forward"] + args))
    let fromText = try loss(CLITests.run(["profile", "train", "--graph", golden] + args))
    // The golden is the compiled train graph (autodiff then CSE share nodes between the passes),
    // so its loss may differ from the plain forward graph's in the last digits.
    #expect(abs(own - fromText) <= 1e-4 * abs(own), "\(own) vs \(fromText)")
    // The variant: the loss output redirected to a doubled copy of itself (a node appended).
    var lines = try String(contentsOfFile: golden, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
      .map(String.init)
    let out = try #require(lines.firstIndex { $0.hasPrefix("  output loss = %") })
    let lossNode = String(lines[out].dropFirst("  output loss = ".count))
    let last = try #require(lines[..<out].last { $0.hasPrefix("  %") })
    let next = try #require(Int(last.dropFirst(3).prefix { $0.isNumber })) + 1
    lines[out] = "  output loss = %\(next)"
    lines.insert("  %\(next) = affine(\(lossNode)) {alpha=2.0, beta=0.0} : f32[]", at: out)
    let variant = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-\(getpid())-variant.mqir").path
    try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: variant))
    #expect(try loss(CLITests.run(["profile", "forward", "--graph", variant] + args)) == 2 * fromText)
    let bad = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-\(getpid())-bad.mqir").path
    try Data("graph @broken {\n  %0 = nonsense\n".utf8).write(to: URL(fileURLWithPath: bad))
    try CLITests.expectOneLineError(["profile", "train", "--graph", bad] + args, mentions: "bad.mqir")
  }
}
