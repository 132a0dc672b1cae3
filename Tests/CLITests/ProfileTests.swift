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
    let events = try traceEvents(trace)
    // 4 decode steps, each running the step plan's cache updates.
    #expect(events.filter { ($0["name"] as? String ?? "").hasPrefix("cache_update") }.count >= 4)
    #expect(Set(events.compactMap { $0["cat"] as? String }).isSuperset(of: ["encode", "decode-step", "beam search"]))
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
}
