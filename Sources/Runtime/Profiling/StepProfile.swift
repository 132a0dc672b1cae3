import GraphIR

/// Per-step wall time and call counts of one plan occurrence (the top plan, or one scan's
/// body), kept across runs and buckets. Each slot is written only by the thread that leads its
/// step's team, and read after `run` returns.
final class ProfileTable {
  let plan: Plan
  let nanoseconds: UnsafeMutablePointer<UInt64>
  let calls: UnsafeMutablePointer<Int>
  private(set) var children: [Int: ProfileTable] = [:]
  /// This table's index in the trace's table list; the trace is shared by the whole tree.
  let id: Int
  let trace: TraceRecorder?

  init(plan: Plan, trace: TraceRecorder?) {
    self.plan = plan
    self.trace = trace
    id = trace?.register(plan) ?? 0
    let n = max(plan.steps.count, 1)
    nanoseconds = .allocate(capacity: n)
    nanoseconds.initialize(repeating: 0, count: n)
    calls = .allocate(capacity: n)
    calls.initialize(repeating: 0, count: n)
    for (i, st) in plan.steps.enumerated() where st.body.count == 1 {
      children[i] = ProfileTable(plan: st.body[0], trace: trace)
      trace?.setPath(of: children[i]!.id, parent: id, step: i)
    }
  }

  deinit {
    nanoseconds.deallocate()
    calls.deallocate()
  }

  func child(_ step: Int) -> ProfileTable? { children[step] }

  @inline(__always)
  func record(_ step: Int, nanoseconds ns: UInt64) {
    nanoseconds[step] &+= ns
    calls[step] += 1
  }

  func reset() {
    nanoseconds.update(repeating: 0, count: max(plan.steps.count, 1))
    calls.update(repeating: 0, count: max(plan.steps.count, 1))
    for c in children.values { c.reset() }
    if id == 0 { trace?.reset() }
  }

  /// Records in plan order, a body's steps right after their scan, paths like `train/3/1`.
  func records(path: String) -> [StepProfile] {
    var out: [StepProfile] = []
    for (i, st) in plan.steps.enumerated() {
      out.append(StepProfile(path: "\(path)/\(i)", label: st.label, op: st.op, stage: st.stage,
                             calls: calls[i], nanoseconds: nanoseconds[i]))
      if let c = children[i] { out += c.records(path: "\(path)/\(i)") }
    }
    return out
  }
}

/// What the profiler measured for one step, summed over runs.
public struct StepProfile: Sendable, Hashable {
  /// Where the step sits: plan name, then step indices through scan bodies (`train/12/3`).
  public var path: String
  public var label: String
  public var op: OpKind
  public var stage: Int
  /// Executions (a scan body's steps count once per time step).
  public var calls: Int
  /// Wall time summed over calls, as measured by the thread that leads the step's team.
  public var nanoseconds: UInt64
}

/// Per-thread kernel intervals for a Chrome trace: each thread appends to its own preallocated
/// event array (no locks, no allocation while running); events past the capacity are counted
/// and dropped.
