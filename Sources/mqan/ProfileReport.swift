import Foundation
import GraphIR
import Runtime

/// The per-kernel report of `mqan profile`: every step's time, grouped into phases (forward,
/// backward, optimizer; encode, decode-step, beam search), with its FLOP rate and the bytes its
/// operands occupy, from the op table's cost rules at the profiled shapes; with a roofline, each
/// kernel's arithmetic intensity, bounding roof and % of it (ProfileRoofline.swift).
struct ProfileReport {
  struct Row {
    var phase: String
    /// As the IR names it: `linear %134` (`linear %59/%3` inside a scan body).
    var kernel: String
    var path: String
    var calls: Double
    var ms: Double
    var flops: Double
    var bytes: Double
    /// Bytes one call's operands occupy (picks the memory level of the roofline).
    var workingSet: Double
  }

  var rows: [Row] = []
  /// Wall time per run, ms, by phase: a plan's wall time, split between the phases of its steps
  /// in proportion to their kernels' time (steps of one stage run at once, so kernel times can
  /// add up to more than the wall); and time outside the plans (optimizer, beam search).
  var phases: [(phase: String, ms: Double)] = []
  /// The GEMM in use (`mqan-avx512`, `openblas Haswell`, ...) and the roofline, when measured.
  var gemmPath = "?"
  var roofline: Roofline?

  /// Splits `wallMs` (one plan's wall time per run) over the phases of the rows added since
  /// `firstRow`.
  mutating func addWall(_ wallMs: Double, rowsFrom firstRow: Int) {
    let added = rows[firstRow...]
    let sum = added.reduce(0) { $0 + $1.ms }
    var order: [String] = []
    for r in added where !order.contains(r.phase) { order.append(r.phase) }
    for p in order {
      let share = sum > 0 ? added.filter { $0.phase == p }.reduce(0) { $0 + $1.ms } / sum : 0
      phases.append((p, wallMs * share))
    }
  }

  /// Adds a plan's records, `runs` timed runs; `phase(step)` names the phase of a top-level step.
  mutating func add(_ records: [StepProfile], plan: Plan, env: [String: Int], runs: Int,
                    phase: (Int) -> String) {
    let perRun = Double(max(runs, 1))
    var labels: [String: String] = [:]
    for r in records {
      labels[r.path] = r.label
      // Scans are listed through their bodies' kernels.
      guard r.op != .scan, r.calls > 0, let (owner, index) = plan.step(atPath: r.path) else { continue }
      let top = Int(r.path.split(separator: "/").dropFirst().first ?? "") ?? 0
      let cost = owner.stepCost(index)
      let flops = Double((try? cost.flops.evaluate(env)) ?? 0), bytes = Double((try? cost.bytes.evaluate(env)) ?? 0)
      let parents = r.path.split(separator: "/").dropFirst().dropLast().indices.map { k -> String in
        let prefix = r.path.split(separator: "/").prefix(k + 1).joined(separator: "/")
        return labels[prefix] ?? "?"
      }
      let name = "\(r.op.rawValue) \((parents + [r.label]).joined(separator: "/"))"
      let calls = Double(r.calls) / perRun
      rows.append(Row(phase: phase(top), kernel: name, path: r.path, calls: calls, ms: Double(r.nanoseconds) / 1e6 / perRun,
                      flops: flops * calls, bytes: bytes * calls, workingSet: bytes))
    }
  }

  /// The phases in the order they first appear, each with its ms per run.
  var phaseTotals: [(phase: String, ms: Double)] {
    var names: [String] = []
    for p in phases where !names.contains(p.phase) { names.append(p.phase) }
    return names.map { p in (p, phases.filter { $0.phase == p }.reduce(0) { $0 + $1.ms }) }
  }

  /// Calls and ms per run by op kind, across phases, the slowest first.
  var byOp: [(op: String, calls: Double, ms: Double)] {
    var sums: [String: (calls: Double, ms: Double)] = [:]
    for r in rows {
      let op = String(r.kernel.split(separator: " ").first ?? "")
      sums[op, default: (0, 0)].calls += r.calls
      sums[op, default: (0, 0)].ms += r.ms
    }
    return sums.map { ($0.key, $0.value.calls, $0.value.ms) }.sorted { ($0.ms, $1.op) > ($1.ms, $0.op) }
  }

  /// What `--json` adds to its object: `phases` (ms per run and % of the run), `kernels` (every
  /// kernel row, the slowest first, with the roofline's columns when measured) and `by_op`, the
  /// same numbers the text report prints; plus `gemm_path` and `roofline`.
  func json(total: Double) -> [String: Any] {
    let share = { (ms: Double) in 100 * ms / max(total, 1e-9) }
    var out = rooflineJSON
    out["phases"] = phaseTotals.map { ["phase": $0.phase, "ms": $0.ms, "percent": share($0.ms)] as [String: Any] }
    out["kernels"] = rows.sorted { ($0.ms, $1.path) > ($1.ms, $0.path) }.map { r -> [String: Any] in
      var o: [String: Any] = ["phase": r.phase, "kernel": r.kernel, "path": r.path, "calls": r.calls, "ms": r.ms,
                              "percent": share(r.ms), "gflops_per_s": r.ms > 0 ? r.flops / (r.ms / 1e3) / 1e9 : 0,
                              "flops": r.flops, "bytes": r.bytes]
      if let k = classify(r) {
        o["intensity"] = k.intensity.isFinite ? k.intensity : nil
        o["roof"] = k.bound == .compute ? "peak" : k.level.rawValue
        o["roof_percent"] = k.roofPercent
        o["bound"] = k.bound.rawValue
      }
      return o
    }
    out["by_op"] = byOp.map { ["op": $0.op, "calls": $0.calls, "ms": $0.ms, "percent": share($0.ms)] as [String: Any] }
    return out
  }

  /// Prints the phases (ms per run and share of the run), then the slowest kernels of each.
  func print(total: Double, top: Int = 12) {
    printRooflineHeader()
    let totals = phaseTotals
    printOut(pad("phase", 14) + pad("ms/run", 10, right: true) + pad("% of run", 10, right: true))
    for (p, ms) in totals {
      printOut(pad(p, 14) + String(format: "%10.1f%10.1f", ms, 100 * ms / max(total, 1e-9)))
    }
    for p in totals.map(\.phase) {
      let list = rows.filter { $0.phase == p }.sorted { $0.ms > $1.ms }
      guard !list.isEmpty else { continue }
      printOut("\n\(p): slowest kernels")
      printOut("  " + pad("kernel", 30) + ["calls/run", "ms/run", "%", "GFLOP/s", "MB/run"].map { pad($0, 10, right: true) }
        .joined() + rooflineHeadings + "  path")
      for r in list.prefix(top) {
        printOut("  " + pad(r.kernel, 30)
                    + String(format: "%10.0f%10.2f%10.1f%10.1f%10.1f", r.calls, r.ms, 100 * r.ms / max(total, 1e-9),
                             r.ms > 0 ? r.flops / (r.ms / 1e3) / 1e9 : 0, r.bytes / 1e6) + rooflineColumns(r) + "  "
                    + r.path)
      }
    }
    printOut("\nby op:")
    for v in byOp.prefix(top) {
      printOut("  " + pad(v.op, 22) + String(format: "%9.0f calls/run %9.2f ms/run %6.1f %%", v.calls, v.ms,
                                                   100 * v.ms / max(total, 1e-9)))
    }
  }

  /// `s` padded with spaces to `width` (left-aligned, or right-aligned), never cut.
  func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(width - s.count, 0))
    return right ? fill + s : s + fill
  }

  /// FLOPs per run of every kernel (for the GFLOP/s of the whole run).
  var flopsPerRun: Double { rows.reduce(0) { $0 + $1.flops } }
}

/// Writes a Chrome trace (the JSON that chrome://tracing and Perfetto open): one lane per pool
/// thread, one complete event per kernel execution, named as the IR names the step, with its
/// phase as the category; plus host-side intervals (optimizer, beam search) on their own lane.
struct ChromeTrace {
  private struct Event {
    var name: String, phase: String, thread: Int, start: UInt64, duration: UInt64, path: String?
  }
  private var events: [Event] = []

  mutating func add(_ trace: [TraceEvent], phase: (TraceEvent) -> String) {
    for e in trace {
      events.append(Event(name: "\(e.op.rawValue) \(e.label)", phase: phase(e), thread: e.thread,
                          start: e.startNanoseconds, duration: e.durationNanoseconds, path: e.path))
    }
  }

  /// A host interval (CLOCK_MONOTONIC nanoseconds) on its own lane.
  mutating func addHost(_ name: String, phase: String, start: UInt64, end: UInt64) {
    events.append(Event(name: name, phase: phase, thread: ChromeTrace.hostLane, start: start, duration: end &- start,
                        path: nil))
  }

  static let hostLane = 1000

  func write(to path: String, threads: Int) throws {
    let origin = events.map(\.start).min() ?? 0
    var all: [[String: Any]] = events.map { e in
      var o: [String: Any] = ["name": e.name, "cat": e.phase, "ph": "X", "pid": 1, "tid": e.thread,
                              "ts": Double(e.start - origin) / 1e3, "dur": Double(e.duration) / 1e3]
      if let p = e.path { o["args"] = ["path": p] }
      return o
    }
    for t in 0..<threads {
      all.append(["name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": ["name": "pool thread \(t)"]])
    }
    all.append(["name": "thread_name", "ph": "M", "pid": 1, "tid": ChromeTrace.hostLane, "args": ["name": "host"]])
    all.append(["name": "process_name", "ph": "M", "pid": 1, "args": ["name": "mqan"]])
    let data = try JSONSerialization.data(withJSONObject: ["traceEvents": all, "displayTimeUnit": "ms"])
    try AtomicFile.write([UInt8](data), to: path)
  }
}

/// CLOCK_MONOTONIC now, in nanoseconds: the runtime's clock, the one trace events use.
func monotonicNow() -> UInt64 { monotonicNanoseconds() }
