import GraphIR

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
