import CKernels
import GraphIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BoundPlan {
  /// Runs every stage with `team` (the whole pool, or the sub-team of a scan step), ggml style:
  /// every thread walks the same stage list and waits at the team's barrier after each stage.
  ///
  /// A stage of one step runs it on the whole team, each thread on its row share. A stage of k
  /// steps splits the team round-robin by lane: thread `ith` joins step `ith % k` as its member
  /// `ith / k` (with that step's own barrier); when k exceeds the team, thread `ith` runs steps
  /// ith, ith + nth, ... alone, one after another.
  func execute(_ team: Team) {
    for stage in stages where !stage.steps.isEmpty {
      let k = stage.steps.count
      if k == 1 {
        run(stage.steps[0], team, timeBarrier: true)
      } else if k <= team.nth {
        let j = team.ith % k
        let sub = Team(ith: team.ith / k, nth: BoundPlan.subTeamSize(position: j, steps: k, team: team.nth),
                       tid: team.tid, barrier: stage.barriers![j])
        run(stage.steps[j], sub, timeBarrier: false)
      } else {
        var j = team.ith
        while j < k {
          run(stage.steps[j], Team(ith: 0, nth: 1, tid: team.tid, barrier: stage.barriers![j]), timeBarrier: false)
          j += team.nth
        }
      }
      team.sync()
      if poisonFreed, !stage.poison.isEmpty {
        BoundPlan.poison(stage.poison, team)
        team.sync()
      }
    }
  }

  /// Runs one step on `team`; when profiling, the team's thread 0 records the wall time (for a
  /// whole-team step, up to the end of the stage's barrier, so it covers the slowest thread), and
  /// when tracing, every thread records its own kernel interval.
  @inline(__always)
  private func run(_ step: Int, _ team: Team, timeBarrier: Bool) {
    guard let profile else { return kernels[step](team) }
    let t0 = monotonicNanoseconds()
    kernels[step](team)
    if let trace = profile.trace { trace.add(thread: team.tid, table: profile.id, step: step, start: t0,
                                             end: monotonicNanoseconds()) }
    guard team.ith == 0 else {
      if timeBarrier { team.sync(); team.sync() }
      return
    }
    if timeBarrier { team.sync() }
    profile.record(step, nanoseconds: monotonicNanoseconds() &- t0)
    if timeBarrier { team.sync() }
  }

  /// Fills freed regions with NaN, each thread its share of each region.
  static func poison(_ regions: [(base: UnsafeMutableRawPointer, bytes: Int)], _ team: Team) {
    for r in regions {
      let n = r.bytes / 4
      let (e0, e1) = team.share(n)
      if e0 < e1 {
        (r.base.assumingMemoryBound(to: Float.self) + e0).update(repeating: .nan, count: e1 - e0)
      }
    }
  }
}

@inline(__always)
func monotonicNanoseconds() -> UInt64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

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
final class TraceRecorder {
  struct Event {
    var table: Int32, step: Int32
    var start: UInt64, end: UInt64
  }
  let threads: Int
  let capacity: Int
  private let events: UnsafeMutablePointer<Event>
  private let counts: UnsafeMutablePointer<Int>
  private(set) var plans: [Plan] = []
  /// Per table: its path (`decode-step`, `train/12`), for event names.
  private(set) var paths: [String] = []

  init(threads: Int, capacity: Int) {
    self.threads = threads
    self.capacity = capacity
    events = .allocate(capacity: threads * capacity)
    counts = .allocate(capacity: threads)
    counts.initialize(repeating: 0, count: threads)
  }

  deinit {
    events.deallocate()
    counts.deallocate()
  }

  func register(_ plan: Plan) -> Int {
    plans.append(plan)
    paths.append(plan.name)
    return plans.count - 1
  }

  func setPath(of table: Int, parent: Int, step: Int) { paths[table] = "\(paths[parent])/\(step)" }

  @inline(__always)
  func add(thread: Int, table: Int, step: Int, start: UInt64, end: UInt64) {
    let n = counts[thread]
    counts[thread] = n + 1
    guard n < capacity else { return }
    events[thread * capacity + n] = Event(table: Int32(table), step: Int32(step), start: start, end: end)
  }

  func reset() { counts.update(repeating: 0, count: threads) }

  /// Every recorded event, by thread then time.
  func collect() -> (events: [TraceEvent], dropped: Int) {
    var out: [TraceEvent] = []
    var dropped = 0
    for t in 0..<threads {
      let n = min(counts[t], capacity)
      dropped += counts[t] - n
      for i in 0..<n {
        let e = events[t * capacity + i]
        let plan = plans[Int(e.table)], st = plan.steps[Int(e.step)]
        out.append(TraceEvent(path: "\(paths[Int(e.table)])/\(e.step)", label: st.label, op: st.op, thread: t,
                              startNanoseconds: e.start, durationNanoseconds: e.end &- e.start))
      }
    }
    return (out, dropped)
  }
}

/// One kernel execution on one thread.
public struct TraceEvent: Sendable, Hashable {
  /// The step, as `StepProfile.path` names it.
  public var path: String
  public var label: String
  public var op: OpKind
  /// The pool thread (0 = the caller's).
  public var thread: Int
  /// CLOCK_MONOTONIC.
  public var startNanoseconds: UInt64
  public var durationNanoseconds: UInt64
}
