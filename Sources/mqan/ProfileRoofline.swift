import Foundation
import Runtime

/// The roofline part of `mqan profile`'s report: the header naming the GEMM path and the measured
/// roofs, the per-kernel columns (arithmetic intensity, the bounding roof, % of it, compute or
/// memory bound) and the `--json` keys.
extension ProfileReport {
  /// The header: the GEMM path, then the roofs (or that the calibration was skipped).
  func printRooflineHeader() {
    printOut("gemm: \(gemmPath)")
    guard let r = roofline else {
      printOut("roofline: skipped (--no-roofline)\n")
      return
    }
    printOut(String(format: "roofline (%d thread%@, %@ %@): peak %.1f GFLOP/s; read L2 %.1f, LLC %.1f, memory %.1f GB/s",
                       r.threads, r.threads == 1 ? "" : "s", r.fromCache ? "cached from" : "measured", r.measuredAt, r.peakGflops, r.l2GBps,
                       r.llcGBps, r.memGBps))
    printOut(String(format: "  %@; L2 %@/core, L3 %@; roof = peak (compute-bound) or the level a call's bytes fit",
                       r.cpuModel, Self.size(r.l2Bytes), Self.size(r.l3Bytes)) + "\n")
  }

  /// "1 MiB", "512 KiB".
  static func size(_ bytes: Int) -> String {
    bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
  }

  /// Where a row sits on the roofline (nil without one).
  func classify(_ r: Row) -> KernelRoofline? {
    roofline?.classify(flops: r.flops, bytes: r.bytes, seconds: r.ms / 1e3, workingSet: r.workingSet)
  }

  /// The extra column headings (none without a roofline).
  var rooflineHeadings: String {
    roofline == nil ? "" : pad("AI", 8, right: true) + pad("roof", 6, right: true) + pad("%roof", 7, right: true)
      + "  " + pad("bound", 7)
  }

  /// A row's extra columns: FLOPs per byte, the roof (peak, or the level whose bandwidth bounds
  /// it), achieved as % of that roof, and compute or memory.
  func rooflineColumns(_ r: Row) -> String {
    guard let k = classify(r) else { return "" }
    let ai = k.intensity.isFinite ? String(format: k.intensity < 10 ? "%.2f" : "%.0f", k.intensity) : "inf"
    let roof = k.bound == .compute ? "peak" : (k.level == .memory ? "mem" : k.level.rawValue)
    return pad(ai, 8, right: true) + pad(roof, 6, right: true) + String(format: "%7.1f", k.roofPercent)
      + "  " + pad(k.bound.rawValue, 7)
  }

  /// The `--json` keys: `gemm_path` and, when calibrated, `roofline`.
  var rooflineJSON: [String: Any] {
    var out: [String: Any] = ["gemm_path": gemmPath]
    if let r = roofline {
      out["roofline"] = ["peak_gflops": r.peakGflops, "l2_gbps": r.l2GBps, "llc_gbps": r.llcGBps,
                         "mem_gbps": r.memGBps, "cached": r.fromCache, "threads": r.threads,
                         "cpu_model": r.cpuModel, "measured_at": r.measuredAt,
                         "cpu_share": r.cpuShare ?? 1] as [String: Any]
    }
    return out
  }
}

extension ProfileCommand {
  /// The GEMM path and, unless --no-roofline, the roofline of --threads threads (cached per
  /// machine); a cache that cannot be written is a warning on stderr, not an error.
  func measureRoofline(into report: inout ProfileReport) throws {
    report.gemmPath = Roofline.activeGemmDescription()
    guard !noRoofline else { return }
    let r = try Roofline.cached(threads: threads)
    if let warning = r.cacheWarning { note("warning: \(warning)") }
    report.roofline = r
  }
}
