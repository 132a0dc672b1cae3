import CKernels
import Foundation
import Testing

@testable import Runtime

/// The roofline: classification on synthetic roofs, the per-machine cache file, and a (quick)
/// calibration on this machine.
@Suite struct RooflineTests {
  /// Peak 100 GFLOP/s; L2 200, LLC 100, memory 20 GB/s; 1 MiB L2 per core, 32 MiB L3; 2 threads.
  static let synthetic = Roofline(gemmPath: "mqan-test", threads: 2, peakGflops: 100, l2GBps: 200, llcGBps: 100,
                                  memGBps: 20, l1dBytes: 32 << 10, l2Bytes: 1 << 20, l3Bytes: 32 << 20,
                                  cpuModel: "test cpu", measuredAt: "2026-01-01T00:00:00Z")

  static func scratchDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roofline-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  @Test func computeBoundKernel() {
    // 1e9 FLOPs over 1 MB (AI 1000) in 20 ms: 50 GFLOP/s of a 100 GFLOP/s peak.
    let k = Self.synthetic.classify(flops: 1e9, bytes: 1e6, seconds: 0.02)
    #expect(k.bound == .compute)
    #expect(k.intensity == 1000)
    #expect(k.level == .l2)
    #expect(k.attainableGflops == 100)
    #expect(abs(k.achievedGflops - 50) < 1e-9)
    #expect(abs(k.roofPercent - 50) < 1e-9)
  }

  @Test func memoryBoundKernel() {
    // AI 0.25 over a 4 GB working set (memory, 20 GB/s): roof 5 GFLOP/s; 4 GB read in 1 s is 20 %
    // of the bandwidth, and 1 GFLOP/s is 20 % of the 5 GFLOP/s roof.
    let k = Self.synthetic.classify(flops: 1e9, bytes: 4e9, seconds: 1)
    #expect(k.bound == .memory)
    #expect(k.level == .memory)
    #expect(k.intensity == 0.25)
    #expect(abs(k.attainableGflops - 5) < 1e-9)
    #expect(abs(k.achievedGflops - 1) < 1e-9)
    #expect(abs(k.roofPercent - 20) < 1e-9)
    #expect(abs(k.roofPercent - 100 * k.achievedGflops / k.attainableGflops) < 1e-9)
    // A copy does no FLOPs: still memory-bound, % of the bandwidth.
    let copy = Self.synthetic.classify(flops: 0, bytes: 2e8, seconds: 0.01, workingSet: 2e8)
    #expect(copy.bound == .memory && copy.intensity == 0 && abs(copy.roofPercent - 100) < 1e-9)
    // On the ridge (AI x bandwidth == peak) it counts as compute-bound.
    #expect(Self.synthetic.classify(flops: 5e8, bytes: 1e6, seconds: 1).bound == .compute) // AI 500 x 200 >= 100
    #expect(Self.synthetic.classify(flops: 1e6, bytes: 2e6, seconds: 1, workingSet: Double(1 << 30)).bound == .memory)
    let ridge = Self.synthetic.classify(flops: 5e9, bytes: 1e9, seconds: 1, workingSet: Double(1 << 30)) // AI 5 x 20
    #expect(ridge.bound == .compute && ridge.attainableGflops == 100)
    // No time measured: 0 %, no division by zero.
    #expect(Self.synthetic.classify(flops: 1e6, bytes: 1e6, seconds: 0).roofPercent == 0)
  }

  @Test func levelComesFromTheWorkingSet() {
    let r = Self.synthetic
    let MiB = Double(1 << 20)
    #expect(r.level(workingSet: 1.5 * MiB).0 == .l2, "0.75 MiB per thread fits the 1 MiB L2")
    #expect(r.level(workingSet: 2 * MiB).0 == .l2)
    #expect(r.level(workingSet: 3 * MiB).0 == .llc)
    #expect(r.level(workingSet: 32 * MiB).0 == .llc)
    #expect(r.level(workingSet: 33 * MiB).0 == .memory)
    #expect(r.level(workingSet: 33 * MiB).1 == 20)
    // The same AI is compute-bound from L2 and memory-bound from memory.
    #expect(r.classify(flops: 1e6, bytes: 1e6, seconds: 1, workingSet: MiB).bound == .compute)   // 1 x 200
    #expect(r.classify(flops: 1e6, bytes: 1e6, seconds: 1, workingSet: 8 * MiB).bound == .compute) // 1 x 100
    #expect(r.classify(flops: 1e6, bytes: 1e6, seconds: 1, workingSet: 64 * MiB).bound == .memory) // 1 x 20
    // One thread: its L2 alone.
    var one = r
    one.threads = 1
    #expect(one.level(workingSet: 1.5 * MiB).0 == .llc)
  }

  @Test func quickCalibrationGivesPositiveFiniteRoofs() throws {
    let t0 = Date()
    let r = try Roofline.measure(threads: 2, calibration: .quick)
    #expect(Date().timeIntervalSince(t0) < 1)
    #expect(r.isValid)
    for v in [r.peakGflops, r.l2GBps, r.llcGBps, r.memGBps] { #expect(v.isFinite && v > 0) }
    #expect(r.threads == 2)
    #expect(r.gemmPath == Roofline.activeGemmDescription())
    #expect(r.gemmPath.hasPrefix("mqan-") || r.gemmPath.hasPrefix("openblas "))
    #expect(r.l2Bytes > 0 && r.l3Bytes >= r.l2Bytes)
    #expect(!r.cpuModel.isEmpty)
    #expect(!r.fromCache)
  }

  @Test func cacheRoundTrip() throws {
    let dir = try Self.scratchDirectory()
    let file = dir + "/sub/roofline.json"
    let first = try Roofline.cached(threads: 1, path: file, calibration: .quick)
    #expect(!first.fromCache)
    #expect(first.cacheWarning == nil)
    #expect(FileManager.default.fileExists(atPath: file), "the directory is created")
    let second = try Roofline.cached(threads: 1, path: file, calibration: .quick)
    #expect(second.fromCache)
    var unflagged = second
    unflagged.fromCache = false
    #expect(unflagged == first, "what was written is what is read")
    // Another thread count is another entry; both are kept.
    let two = try Roofline.cached(threads: 2, path: file, calibration: .quick)
    #expect(!two.fromCache)
    #expect(Roofline.readCache(file).count == 2)
    #expect(try Roofline.cached(threads: 1, path: file, calibration: .quick).fromCache)
    #expect(try Roofline.cached(threads: 2, path: file, calibration: .quick).fromCache)
  }

  @Test func corruptCacheIsMeasuredAgain() throws {
    let dir = try Self.scratchDirectory()
    let file = dir + "/roofline.json"
    for junk in ["not json {", "", #"{"version": 1, "entries": [{"threads": "two"}]}"#, #"{"version": 99, "entries": []}"#,
                 "[1, 2, 3]"] {
      try Data(junk.utf8).write(to: URL(fileURLWithPath: file))
      let r = try Roofline.cached(threads: 1, path: file, calibration: .quick)
      #expect(!r.fromCache, "\(junk)")
      #expect(r.isValid)
      #expect(Roofline.readCache(file).count == 1, "rewritten whole after \(junk)")
    }
    // An entry for this machine with nonsense rates is measured again and replaced.
    var bad = try Roofline.cached(threads: 1, path: file, calibration: .quick)
    bad.peakGflops = 0
    let data = try JSONEncoder().encode(Roofline.CacheFile(version: Roofline.cacheVersion, entries: [bad]))
    try data.write(to: URL(fileURLWithPath: file))
    let again = try Roofline.cached(threads: 1, path: file, calibration: .quick)
    #expect(!again.fromCache && again.peakGflops > 0)
    #expect(Roofline.readCache(file).count == 1)
    // A directory where the file should be: not readable as a cache, not writable; a warning, no throw.
    let blocked = dir + "/blocked"
    try FileManager.default.createDirectory(atPath: blocked + "/roofline.json", withIntermediateDirectories: true)
    let w = try Roofline.cached(threads: 1, path: blocked + "/roofline.json", calibration: .quick)
    #expect(!w.fromCache && w.isValid)
    #expect(w.cacheWarning?.contains("roofline.json") == true)
  }

  /// A calibration on cores busy with other work is not cached (here: a share no run can reach).
  @Test func busyCoresAreNotCached() throws {
    let dir = try Self.scratchDirectory()
    let file = dir + "/roofline.json"
    var strict = Roofline.Calibration.quick
    strict.minimumCpuShareToCache = 2
    let r = try Roofline.cached(threads: 1, path: file, calibration: strict)
    #expect(r.isValid && !r.fromCache)
    #expect(r.cacheWarning?.contains("busy") == true)
    #expect(!FileManager.default.fileExists(atPath: file))
    let share = try #require(r.cpuShare)
    #expect(share > 0 && share <= 1)
  }

  @Test func defaultCachePathFollowsTheEnvironment() {
    #expect(Roofline.defaultCachePath(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"])
      == "/x/cache/mqan/roofline.json")
    #expect(Roofline.defaultCachePath(environment: ["HOME": "/home/u"]) == "/home/u/.cache/mqan/roofline.json")
    #expect(Roofline.defaultCachePath(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/home/u"])
      == "/home/u/.cache/mqan/roofline.json", "a relative XDG_CACHE_HOME is ignored")
    #expect(Roofline.defaultCachePath(environment: ["HOME": "/home/u", "MQAN_ROOFLINE_CACHE": "0"]) == nil)
    #expect(Roofline.defaultCachePath(environment: [:]) == nil)
  }

  /// The read kernel sums every float of any length on every path this CPU runs (and an
  /// unsupported path falls back); the peak loop counts its FLOPs and stays finite.
  @Test func kernelsCountAndSum() {
    let n = 1000 + 37
    let buf = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64).bindMemory(to: Float.self, capacity: n)
    defer { buf.deallocate() }
    for i in 0..<n { buf[i] = Float(i % 7) }
    let expected = (0..<n).reduce(Float(0)) { $0 + Float($1 % 7) }
    for path in [Int32(MQ_GEMM_PORTABLE), Int32(MQ_GEMM_AVX2), Int32(MQ_GEMM_AVX512), 17] {
      #expect(mq_roofline_read(path, buf, Int64(n)) == expected, "path \(path)")
      #expect(mq_roofline_read(path, buf, 5) == expected - (5..<n).reduce(Float(0)) { $0 + Float($1 % 7) })
      var sink: Float = 0
      let flops = mq_roofline_fma(path, 100, &sink)
      // Every tile is two vectors wide: lanes = NR / 2 of the path that runs.
      let lanes = Int(mq_gemm_nr(mq_gemm_path_supported(path) != 0 ? path : mq_gemm_best_path())) / 2
      #expect(flops == Double(100 * Int(mq_roofline_chains(path)) * lanes * 2), "path \(path)")
      #expect(sink.isFinite && sink > 0)
    }
  }
}
