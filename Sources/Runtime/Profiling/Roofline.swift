import CKernels
import Foundation

/// This machine's roofline for one GEMM path and thread count: the single-precision FMA peak of
/// all threads at once and the streaming read bandwidth of all threads from L2, the last-level
/// cache and memory (roofline.c's kernels, timed here), with what it was measured on.
///
/// Levels: each thread reads its own buffer, all threads at once: L2 = half the L2 per thread;
/// LLC = half of L3 split over the threads (at least the L2 size, so it never measures L2);
/// memory = max(4 x L3, 256 MiB) in all. Each measurement is repeated and the best rate kept.
/// `cached` keeps one entry per (CPU model, threads, GEMM path) in
/// `${XDG_CACHE_HOME:-$HOME/.cache}/mqan/roofline.json`, since a calibration takes about a second.
public struct Roofline: Codable, Sendable, Equatable {
  /// `mqan-avx512`, `mqan-avx2`, `mqan-portable`, or `openblas <core>` (`activeGemmDescription`).
  public var gemmPath: String
  public var threads: Int
  /// FMA peak of all threads, GFLOP/s, with the instructions of the GEMM path.
  public var peakGflops: Double
  /// Read bandwidth of all threads from each level, GB/s (1e9 bytes/s).
  public var l2GBps: Double
  public var llcGBps: Double
  public var memGBps: Double
  /// Cache sizes in bytes as mq_gemm_cache_sizes reports them (L1d and L2 per core, L3 in all).
  public var l1dBytes: Int
  public var l2Bytes: Int
  public var l3Bytes: Int
  /// /proc/cpuinfo's "model name", or "unknown".
  public var cpuModel: String
  /// When it was measured, ISO 8601 (UTC).
  public var measuredAt: String
  /// The share of `threads` cores the calibration's threads got (process CPU time over wall time
  /// x min(threads, cores this process may use)) in the least undisturbed of its best runs: near 1 on an idle machine; well under 1
  /// when other work shared the cores, so the roofs read low. nil in files that lack it.
  public var cpuShare: Double?
  /// True when `cached` read it from the cache file (not stored in the file).
  public var fromCache = false
  /// Why `cached` could not write the cache file, if it could not (not stored; the roofline is
  /// still good).
  public var cacheWarning: String?

  enum CodingKeys: String, CodingKey {
    case gemmPath = "gemm_path", threads, peakGflops = "peak_gflops", l2GBps = "l2_gbps", llcGBps = "llc_gbps"
    case memGBps = "mem_gbps", l1dBytes = "l1d_bytes", l2Bytes = "l2_bytes", l3Bytes = "l3_bytes"
    case cpuModel = "cpu_model", measuredAt = "measured_at", cpuShare = "cpu_share"
  }

  public init(gemmPath: String, threads: Int, peakGflops: Double, l2GBps: Double, llcGBps: Double, memGBps: Double,
              l1dBytes: Int, l2Bytes: Int, l3Bytes: Int, cpuModel: String, measuredAt: String,
              cpuShare: Double? = nil) {
    self.gemmPath = gemmPath
    self.threads = threads
    self.peakGflops = peakGflops
    self.l2GBps = l2GBps
    self.llcGBps = llcGBps
    self.memGBps = memGBps
    self.l1dBytes = l1dBytes
    self.l2Bytes = l2Bytes
    self.l3Bytes = l3Bytes
    self.cpuModel = cpuModel
    self.measuredAt = measuredAt
    self.cpuShare = cpuShare
  }

  /// Every rate positive and finite (a cache entry that is not is measured again).
  public var isValid: Bool {
    threads >= 1 && [peakGflops, l2GBps, llcGBps, memGBps].allSatisfy { $0.isFinite && $0 > 0 }
  }
}

// MARK: - Measuring

extension Roofline {
  /// How long and how big a calibration is. `full` (what `mqan profile` uses) takes well under a
  /// second on a 2-core machine and at most ~1.5 s; `quick` (tests) a few milliseconds, with
  /// buffers too small to mean anything about the memory level. Many short repeats (the best
  /// kept) ride out other work that comes and goes on the cores.
  public struct Calibration: Sendable {
    /// Seconds each timed repetition aims for.
    public var targetSeconds: Double
    /// Timed repetitions of each measurement (the best is kept).
    public var repeats: Int
    /// The memory level's buffers, all threads together: at least this many bytes ...
    public var minimumMemoryBytes: Int
    /// ... and at least this many times L3.
    public var memoryL3Multiple: Int
    /// No thread's buffer is larger than this (nil: no cap).
    public var maximumBufferBytes: Int?
    /// `cached` writes a measurement to the cache file only when its `cpuShare` is at least this
    /// (a roofline measured on busy cores would otherwise stay low until the file is deleted).
    public var minimumCpuShareToCache: Double

    public init(targetSeconds: Double, repeats: Int, minimumMemoryBytes: Int, memoryL3Multiple: Int,
                maximumBufferBytes: Int?, minimumCpuShareToCache: Double) {
      self.targetSeconds = targetSeconds
      self.repeats = repeats
      self.minimumMemoryBytes = minimumMemoryBytes
      self.memoryL3Multiple = memoryL3Multiple
      self.maximumBufferBytes = maximumBufferBytes
      self.minimumCpuShareToCache = minimumCpuShareToCache
    }

    public static let full = Calibration(targetSeconds: 0.015, repeats: 8, minimumMemoryBytes: 256 << 20,
                                         memoryL3Multiple: 4, maximumBufferBytes: nil, minimumCpuShareToCache: 0.9)
    public static let quick = Calibration(targetSeconds: 0.002, repeats: 2, minimumMemoryBytes: 4 << 20,
                                          memoryL3Multiple: 0, maximumBufferBytes: 2 << 20, minimumCpuShareToCache: 0)
  }

  /// The GEMM the calling thread's kernels use: mqan's own path (`mqan-avx512`, ...) or
  /// `openblas <core>`.
  public static func activeGemmDescription() -> String {
    if mq_gemm_backend() == Int32(MQ_BACKEND_MQAN) {
      return String(cString: mq_gemm_path_name(mq_gemm_backend_path()))
    }
    return "openblas " + String(cString: mq_openblas_core())
  }

  /// The instruction set the peak is measured with: the calling thread's mqan path, or the best
  /// path this CPU runs when the backend is OpenBLAS (whose kernels use the widest FMA there is).
  static func activeCalibrationPath() -> Int32 {
    mq_gemm_backend() == Int32(MQ_BACKEND_MQAN) ? mq_gemm_backend_path() : mq_gemm_best_path()
  }

  /// /proc/cpuinfo's first "model name", or "unknown".
  public static func cpuModel() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      if !name.isEmpty { return name }
    }
    return "unknown"
  }

  /// Measures the roofline of `threads` threads for the calling thread's GEMM backend.
  public static func measure(threads: Int, calibration: Calibration = .full) throws(RuntimeError) -> Roofline {
    let n = max(threads, 1)
    let path = activeCalibrationPath()
    let caches = mq_gemm_cache_sizes()
    let pool = try ThreadPool(threads: n)
    let l2 = Int(max(caches.l2, 4096)), l3 = Int(max(caches.l3, caches.l2, 4096))
    let peak = peakFlops(pool: pool, threads: n, path: path, calibration: calibration)
    let l2Rate = try readRate(pool: pool, threads: n, path: path, bytesPerThread: l2 / 2, calibration: calibration)
    let llcRate = try readRate(pool: pool, threads: n, path: path, bytesPerThread: max(l3 / 2 / n, l2),
                               calibration: calibration)
    let memTotal = max(calibration.memoryL3Multiple * l3, calibration.minimumMemoryBytes)
    let memRate = try readRate(pool: pool, threads: n, path: path, bytesPerThread: (memTotal + n - 1) / n,
                               calibration: calibration)
    let share = [peak, l2Rate, llcRate, memRate].map(\.cpuShare).min() ?? 1
    return Roofline(gemmPath: activeGemmDescription(), threads: n, peakGflops: peak.rate / 1e9,
                    l2GBps: l2Rate.rate / 1e9, llcGBps: llcRate.rate / 1e9, memGBps: memRate.rate / 1e9,
                    l1dBytes: Int(caches.l1d), l2Bytes: l2, l3Bytes: l3, cpuModel: cpuModel(),
                    measuredAt: Date().ISO8601Format(), cpuShare: (share * 1000).rounded() / 1000)
  }

  /// CPU time of every thread of this process, seconds.
  static func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  /// The best rate (work per second) of `calibration.repeats` timed runs of `run(units)` on
  /// `threads` threads, which returns the work it did, and the share of the threads' cores that
  /// run got (capped at 1); `units` first grows from `start` until a run takes a quarter of the
  /// target, then is scaled so a run takes about the target.
  static func bestRate(calibration: Calibration, threads: Int, start: Int64,
                       _ run: (Int64) -> Double) -> (rate: Double, cpuShare: Double) {
    // More threads than this process may use cores share them by the caller's choice, not others'.
    let cores = Double(max(min(threads, ProcessInfo.processInfo.activeProcessorCount), 1))
    func timed(_ units: Int64) -> (seconds: Double, work: Double, share: Double) {
      let c0 = processCPUSeconds(), t0 = monotonicNanoseconds()
      let work = run(units)
      let seconds = Double(monotonicNanoseconds() &- t0) / 1e9, cpu = processCPUSeconds() - c0
      return (seconds, work, seconds > 0 ? min(cpu / (seconds * Double(cores)), 1) : 1)
    }
    var units = max(start, 1)
    var (seconds, work, share) = timed(units)
    while seconds < calibration.targetSeconds / 4, units < (1 << 40) {
      units *= seconds < calibration.targetSeconds / 64 ? 8 : 2
      (seconds, work, share) = timed(units)
    }
    let scale = calibration.targetSeconds / max(seconds, 1e-9)
    units = max(1, Int64(Double(units) * min(max(scale, 0.25), 4)))
    var best = (rate: seconds > 0 ? work / seconds : 0, cpuShare: share)
    for _ in 0..<max(calibration.repeats, 1) {
      (seconds, work, share) = timed(units)
      if seconds > 0, work / seconds > best.rate { best = (work / seconds, share) }
    }
    return best
  }

  /// FLOP/s of the FMA loop on every thread at once.
  static func peakFlops(pool: ThreadPool, threads n: Int, path: Int32,
                        calibration: Calibration) -> (rate: Double, cpuShare: Double) {
    var flops = [Double](repeating: 0, count: n), sink = [Float](repeating: 0, count: n)
    return flops.withUnsafeMutableBufferPointer { f in
      sink.withUnsafeMutableBufferPointer { s in
        bestRate(calibration: calibration, threads: n, start: 1024) { iters in
          var task = mq_roofline_task(path: path, iters: iters, bufs: nil, floats: 0, passes: 0,
                                      flops: f.baseAddress, sink: s.baseAddress)
          withUnsafeMutablePointer(to: &task) { pool.run(mq_roofline_fma_task, UnsafeMutableRawPointer($0)) }
          return f.reduce(0, +)
        }
      }
    }
  }

  /// Bytes/s read by every thread at once, each from its own buffer of `bytesPerThread` bytes
  /// (rounded up to 256), written first by the thread that reads it.
  static func readRate(pool: ThreadPool, threads n: Int, path: Int32, bytesPerThread: Int,
                       calibration: Calibration) throws(RuntimeError) -> (rate: Double, cpuShare: Double) {
    var bytes = max(bytesPerThread, 4096)
    if let cap = calibration.maximumBufferBytes { bytes = min(bytes, max(cap, 4096)) }
    bytes = (bytes + 255) / 256 * 256
    var bufs: [UnsafeMutablePointer<Float>?] = []
    defer { for b in bufs { free(b) } }
    for _ in 0..<n {
      var raw: UnsafeMutableRawPointer?
      guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
        throw .allocation("roofline calibration: \(n) read buffers of \(bytes) bytes")
      }
      bufs.append(raw.bindMemory(to: Float.self, capacity: bytes / 4))
    }
    var flops = [Double](repeating: 0, count: n), sink = [Float](repeating: 0, count: n)
    return bufs.withUnsafeBufferPointer { b in
      flops.withUnsafeMutableBufferPointer { f in
        sink.withUnsafeMutableBufferPointer { s in
          var task = mq_roofline_task(path: path, iters: 0, bufs: b.baseAddress, floats: Int64(bytes / 4), passes: 1,
                                      flops: f.baseAddress, sink: s.baseAddress)
          withUnsafeMutablePointer(to: &task) { pool.run(mq_roofline_fill_task, UnsafeMutableRawPointer($0)) }
          // One untimed pass brings each buffer into the level it fits (and its pages into the TLB).
          withUnsafeMutablePointer(to: &task) { pool.run(mq_roofline_read_task, UnsafeMutableRawPointer($0)) }
          return bestRate(calibration: calibration, threads: n, start: 1) { passes in
            task.passes = passes
            withUnsafeMutablePointer(to: &task) { pool.run(mq_roofline_read_task, UnsafeMutableRawPointer($0)) }
            return f.reduce(0, +)
          }
        }
      }
    }
  }
}

// MARK: - The cache file

extension Roofline {
  /// The cache file's contents: one entry per (CPU model, threads, GEMM path).
  struct CacheFile: Codable {
    var version: Int
    var entries: [Roofline]
  }

  /// 2: entries carry `cpu_share` and were measured on cores that were not busy (version 1 files,
  /// from before that check, are measured again).
  static let cacheVersion = 2

  /// `${XDG_CACHE_HOME:-$HOME/.cache}/mqan/roofline.json` (XDG_CACHE_HOME only when absolute, as
  /// the XDG spec says); nil when `MQAN_ROOFLINE_CACHE=0` or neither variable is set.
  public static func defaultCachePath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    if environment["MQAN_ROOFLINE_CACHE"] == "0" { return nil }
    if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/mqan/roofline.json" }
    guard let home = environment["HOME"], !home.isEmpty else { return nil }
    return home + "/.cache/mqan/roofline.json"
  }

  /// The entries of the cache file at `path`; none when it is missing, unreadable, not JSON, or
  /// of another version (it is then measured again and rewritten, never an error).
  static func readCache(_ path: String) -> [Roofline] {
    guard let data = FileManager.default.contents(atPath: path),
          let file = try? JSONDecoder().decode(CacheFile.self, from: data), file.version == cacheVersion
    else { return [] }
    return file.entries
  }

  /// The roofline of `threads` threads for the calling thread's GEMM backend, from the cache file
  /// at `path` (nil: `defaultCachePath()`, no cache when that is nil) when it holds a valid entry
  /// for this CPU model, thread count and GEMM path; otherwise measured and written back
  /// atomically, other entries kept. A file that cannot be written, or a measurement on cores
  /// busy with other work (`cpuShare` under `calibration.minimumCpuShareToCache`, not written
  /// then, so the next run measures again), leaves `cacheWarning` set.
  public static func cached(threads: Int, path: String? = nil,
                            calibration: Calibration = .full) throws(RuntimeError) -> Roofline {
    let n = max(threads, 1)
    guard let file = path ?? defaultCachePath() else { return try measure(threads: n, calibration: calibration) }
    let model = cpuModel(), gemm = activeGemmDescription()
    let matches = { (r: Roofline) in r.cpuModel == model && r.threads == n && r.gemmPath == gemm }
    var entries = readCache(file)
    if var hit = entries.first(where: matches), hit.isValid {
      hit.fromCache = true
      return hit
    }
    var fresh = try measure(threads: n, calibration: calibration)
    if let share = fresh.cpuShare, share < calibration.minimumCpuShareToCache {
      fresh.cacheWarning = String(format: "the cores were busy during the roofline calibration (its threads got %.0f%% "
                                    + "of them), so the roofs may read low; not cached", 100 * share)
      return fresh
    }
    entries.removeAll(where: matches)
    entries.append(fresh)
    do {
      let dir = (file as NSString).deletingLastPathComponent
      if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      let data = try encoder.encode(CacheFile(version: cacheVersion, entries: entries))
      try AtomicFile.write([UInt8](data), to: file)
    } catch {
      fresh.cacheWarning = "cannot write the roofline cache \(file): \(error)"
    }
    return fresh
  }
}

// MARK: - Classifying a kernel

/// Where one kernel sits on the roofline.
public struct KernelRoofline: Sendable, Equatable {
  /// The memory level whose bandwidth bounds a kernel of this working set.
  public enum Level: String, Sendable { case l2 = "L2", llc = "LLC", memory }
  public enum Bound: String, Sendable { case compute, memory }

  /// Arithmetic intensity, FLOPs per byte (infinity for FLOPs over no bytes).
  public var intensity: Double
  public var level: Level
  /// The level's bandwidth, GB/s.
  public var bandwidthGBps: Double
  /// min(peak, intensity x bandwidth), GFLOP/s.
  public var attainableGflops: Double
  public var achievedGflops: Double
  /// Achieved as % of the bounding roof: of the peak when compute-bound, of the level's
  /// bandwidth when memory-bound (so kernels that do no FLOPs, copies, still get a figure).
  public var roofPercent: Double
  public var bound: Bound
}

extension Roofline {
  /// The level that serves a working set of `bytes`: L2 when each thread's share fits its L2,
  /// the last-level cache when the whole fits L3, else memory; with that level's GB/s.
  public func level(workingSet bytes: Double) -> (KernelRoofline.Level, Double) {
    if bytes / Double(max(threads, 1)) <= Double(l2Bytes) { return (.l2, l2GBps) }
    if bytes <= Double(l3Bytes) { return (.llc, llcGBps) }
    return (.memory, memGBps)
  }

  /// Classifies a kernel that did `flops` FLOPs over `bytes` bytes in `seconds` (all three for
  /// the same runs); `workingSet` (default `bytes`) is what one call touches, which picks the level.
  public func classify(flops: Double, bytes: Double, seconds: Double, workingSet: Double? = nil) -> KernelRoofline {
    let (level, bandwidth) = self.level(workingSet: workingSet ?? bytes)
    let intensity = bytes > 0 ? flops / bytes : (flops > 0 ? Double.infinity : 0)
    let memoryRoof = intensity * bandwidth
    let computeBound = memoryRoof >= peakGflops
    let attainable = min(peakGflops, memoryRoof)
    let achieved = seconds > 0 ? flops / seconds / 1e9 : 0
    let percent: Double
    if seconds <= 0 {
      percent = 0
    } else if computeBound {
      percent = peakGflops > 0 ? 100 * achieved / peakGflops : 0
    } else {
      percent = bandwidth > 0 ? 100 * (bytes / seconds / 1e9) / bandwidth : 0
    }
    return KernelRoofline(intensity: intensity, level: level, bandwidthGBps: bandwidth, attainableGflops: attainable,
                          achievedGflops: achieved, roofPercent: percent, bound: computeBound ? .compute : .memory)
  }
}
