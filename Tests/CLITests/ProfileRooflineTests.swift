import Foundation
import Testing

/// `mqan profile`'s roofline: the header, the per-kernel columns, the JSON keys, the cache file
/// (in a scratch XDG_CACHE_HOME, so the user's own cache is untouched) and --no-roofline.
@Suite struct ProfileRooflineTests {
  static let args = ["profile", "forward", "--preset", "tiny", "--batch", "2", "--context", "8", "--question", "4",
                     "--answer", "4", "--steps", "1", "--json"]

  /// Runs the binary with XDG_CACHE_HOME set to `cacheHome`.
  static func run(_ args: [String], cacheHome: String) throws -> CLITests.Result {
    let p = Process()
    p.executableURL = try CLITests.binary()
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    env["XDG_CACHE_HOME"] = cacheHome
    env.removeValue(forKey: "MQAN_ROOFLINE_CACHE")
    p.environment = env
    return try CLITests.collect(p)
  }

  static func lastJSON(_ r: CLITests.Result) throws -> [String: Any] {
    let last = try #require(r.stdout.split(separator: "\n").last)
    return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
  }

  @Test func jsonNamesTheGemmPathAndTheRoofline() throws {
    let home = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-roofline-\(UUID().uuidString)").path
    let r = try Self.run(Self.args, cacheHome: home)
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("gemm_path"))
    #expect(r.stdout.contains("roofline"))
    #expect(r.stdout.contains("\ngemm: ") || r.stdout.hasPrefix("gemm: "))
    #expect(r.stdout.contains("\nroofline (2 threads, measured "))
    #expect(r.stdout.contains("%roof"), "kernel rows gain the roofline columns")
    let obj = try Self.lastJSON(r)
    let gemm = try #require(obj["gemm_path"] as? String)
    #expect(gemm.hasPrefix("mqan-") || gemm.hasPrefix("openblas "))
    let roof = try #require(obj["roofline"] as? [String: Any])
    for key in ["peak_gflops", "l2_gbps", "llc_gbps", "mem_gbps"] {
      #expect((roof[key] as? Double).map { $0.isFinite && $0 > 0 } == true, "roofline.\(key)")
    }
    #expect(roof["cached"] as? Bool == false)
    // Written to the cache unless other work (other tests) kept the cores busy; then not cached,
    // with a warning on stderr, and the next run measures again.
    let share = try #require(roof["cpu_share"] as? Double)
    let cachedIt = share >= 0.9
    #expect(FileManager.default.fileExists(atPath: home + "/mqan/roofline.json") == cachedIt, "share \(share)")
    #expect(r.stderr.contains("busy") == !cachedIt, "\(r.stderr)")
    let again = try Self.run(Self.args, cacheHome: home)
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try Self.lastJSON(again)["roofline"].flatMap { ($0 as? [String: Any])?["cached"] as? Bool } == cachedIt)
    #expect(again.stdout.contains("cached from ") == cachedIt)
    try FileManager.default.createDirectory(atPath: home + "/mqan", withIntermediateDirectories: true)
    // A corrupt cache file is measured again, not an error.
    try Data("{ not json".utf8).write(to: URL(fileURLWithPath: home + "/mqan/roofline.json"))
    let corrupt = try Self.run(Self.args, cacheHome: home)
    #expect(corrupt.status == 0, "\(corrupt.stderr)")
    #expect(try Self.lastJSON(corrupt)["roofline"].flatMap { ($0 as? [String: Any])?["cached"] as? Bool } == false)
  }

  @Test func noRooflineSkipsTheCalibration() throws {
    let home = FileManager.default.temporaryDirectory.appendingPathComponent("mqan-cli-noroofline-\(UUID().uuidString)").path
    let r = try Self.run(Self.args + ["--no-roofline"], cacheHome: home)
    #expect(r.status == 0, "\(r.stderr)")
    let obj = try Self.lastJSON(r)
    #expect(obj["gemm_path"] is String)
    #expect(obj["roofline"] == nil)
    #expect(!r.stdout.contains("%roof"))
    #expect(r.stdout.contains("roofline: skipped"))
    #expect(!FileManager.default.fileExists(atPath: home + "/mqan/roofline.json"))
  }
}
