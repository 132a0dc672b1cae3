import Foundation
import MQAN
import Synchronization

/// One request inside the scheduler: its encoded rows, deadline and what to call with the answer.
public final class Job: @unchecked Sendable {
  let request: ServeRequest
  let rows: [EncodedExample]
  /// Tokens of the longest row (context + question), for `--max-batch-tokens`.
  let longest: Int
  let arrival: UInt64
  let deadline: UInt64?
  let completion: @Sendable (Result<[Prediction], ServeError>) -> Void
  private let cancelledFlag = Atomic<Bool>(false)
  // Scheduler thread only:
  var results: [Prediction?]
  var remaining: Int
  var settled = false

  init(request: ServeRequest, rows: [EncodedExample], completion: @escaping @Sendable (Result<[Prediction], ServeError>) -> Void) {
    self.request = request
    self.rows = rows
    longest = rows.map { $0.context.count + $0.question.count }.max() ?? 0
    let now = DispatchTime.now().uptimeNanoseconds
    arrival = now
    deadline = request.timeoutMilliseconds.map { now + UInt64($0) * 1_000_000 }
    self.completion = completion
    results = [Prediction?](repeating: nil, count: rows.count)
    remaining = rows.count
  }

  /// Its client went away: the rows it holds are dropped at the next step, no answer is sent.
  public func cancel() { cancelledFlag.store(true, ordering: .relaxed) }
  var cancelled: Bool { cancelledFlag.load(ordering: .relaxed) }

  func expired(_ now: UInt64) -> Bool { deadline.map { now >= $0 } ?? false }
}

/// Batching settings of the scheduler.
public struct SchedulerOptions: Sendable {
  /// Rows (examples) decoded together at most (a request with more rows is decoded alone).
  public var maxBatch = 16
  /// count x longest (context + question) tokens of a batch at most; nil: no budget.
  public var maxBatchTokens: Int?
  /// How long the oldest waiting request may wait for more to fill its batch.
  public var maxWaitMilliseconds = 0
  /// Requests waiting at most; the next one is refused at once.
  public var maxQueue = 1024

  public init() {}
}

/// One queue for every connection and protocol, decoded on a thread of its own.
///
/// Iteration-level batching: when the decoder is free, waiting requests (the oldest, then those
/// closest to it in length; whole requests, within `maxBatch` rows and `maxBatchTokens`) form the
/// next batch at once, or after at most `maxWaitMilliseconds` when fewer than `maxBatch` rows wait. Each request is answered as
/// soon as its last row has finished (`BeamSearchHooks`), not when the batch ends; a timed-out or
/// cancelled request's rows stop decoding at the next step. A batch's rows do not take new
/// requests while it runs.
public final class Scheduler: @unchecked Sendable {
  let predictor: Predictor
  let decoder: MQANDecoder
  let options: SchedulerOptions
  let metrics: ServeMetrics
  private let condition = NSCondition()
  // Guarded by `condition`:
  private var queue: [Job] = []
  private var stopping = false
  private var drained: [@Sendable () -> Void] = []
  private var thread: Thread?
  private var finishedRunning = false

  public init(predictor: Predictor, decoder: MQANDecoder, options: SchedulerOptions, metrics: ServeMetrics) {
    self.predictor = predictor
    self.decoder = decoder
    self.options = options
    self.metrics = metrics
  }

  /// Starts the decoding thread.
  public func start() {
    let t = Thread { [self] in loop() }
    t.name = "mqan-scheduler"
    t.stackSize = 8 << 20
    condition.lock()
    thread = t
    condition.unlock()
    t.start()
  }

  /// Queues `job`; an error (overload, shutting down) when it is refused.
  func submit(_ job: Job) -> ServeError? {
    condition.lock()
    defer { condition.unlock() }
    if stopping { return .unavailable }
    let waiting = queue.count
    if waiting >= options.maxQueue { return .overloaded(waiting) }
    queue.append(job)
    metrics.queueLength.set(Double(waiting + 1))
    condition.signal()
    return nil
  }

  /// Stops taking requests; `done` runs once every queued request has been answered.
  public func drain(_ done: @escaping @Sendable () -> Void) {
    condition.lock()
    stopping = true
    if finishedRunning || thread == nil {
      condition.unlock()
      done()
      return
    }
    drained.append(done)
    condition.signal()
    condition.unlock()
  }

  /// `drain` for async callers.
  public func drain() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in drain { c.resume() } }
  }

  private func loop() {
    while let batch = nextBatch() {
      run(batch)
    }
    condition.lock()
    finishedRunning = true
    let waiting = drained
    drained = []
    condition.unlock()
    for d in waiting { d() }
  }

  /// The next batch (nil: stopping with nothing left): the oldest waiting request, then, while
  /// they fit in `maxBatch` rows and `maxBatchTokens`, the other waiting requests closest to it in
  /// length (ties: the older first). When everything waiting fits, that is everything; when more
  /// waits, batches of similar lengths waste less padding (as `mqan predict`'s sorted batches),
  /// and a request waits at most as many batches as requests were ahead of it (each batch takes
  /// the oldest). Requests past their deadline
  /// or cancelled while waiting leave the queue here.
  private func nextBatch() -> [Job]? {
    condition.lock()
    while true {
      while queue.isEmpty && !stopping { condition.wait() }
      if queue.isEmpty {
        condition.unlock()
        return nil
      }
      // Let the batch fill for at most max-wait after the oldest request arrived.
      let waitEnd = queue[0].arrival + UInt64(options.maxWaitMilliseconds) * 1_000_000
      while !stopping && waitingRows() < options.maxBatch {
        let now = DispatchTime.now().uptimeNanoseconds
        if now >= waitEnd { break }
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitEnd - now) / 1e9))
      }
      let now = DispatchTime.now().uptimeNanoseconds
      var live: [Job] = [], expired: [Job] = []
      for job in queue {
        if job.cancelled || job.expired(now) { expired.append(job) } else { live.append(job) }
      }
      var batch: [Job] = []
      if let first = live.first {
        var picked = [0]
        var rows = first.rows.count, longest = first.longest
        let rest = live.indices.dropFirst().sorted {
          (abs(live[$0].longest - first.longest), $0) < (abs(live[$1].longest - first.longest), $1)
        }
        for i in rest where rows < options.maxBatch {
          let n = rows + live[i].rows.count, l = max(longest, live[i].longest)
          if n > options.maxBatch { continue }
          if let budget = options.maxBatchTokens, n * l > budget { continue }
          picked.append(i)
          rows = n
          longest = l
        }
        picked.sort()
        batch = picked.map { live[$0] }
        var taken = [Bool](repeating: false, count: live.count)
        for i in picked { taken[i] = true }
        queue = live.indices.filter { !taken[$0] }.map { live[$0] }
      } else {
        queue = []
      }
      metrics.queueLength.set(Double(queue.count))
      condition.unlock()
      for job in expired {
        settle(job, .failure(job.cancelled ? .unavailable : .timedOut(job.request.timeoutMilliseconds ?? 0)))
      }
      if !batch.isEmpty { return batch }
      condition.lock()
    }
  }

  private func waitingRows() -> Int {
    var n = 0
    for job in queue {
      n += job.rows.count
      if n >= options.maxBatch { break }
    }
    return n
  }

  private func settle(_ job: Job, _ result: Result<[Prediction], ServeError>) {
    guard !job.settled else { return }
    job.settled = true
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - job.arrival) / 1e9
    switch result {
    case .success: metrics.answered(seconds: seconds)
    case .failure(let e): metrics.failed(e)
    }
    // A cancelled job's client is gone; its completion still runs (an async caller's
    // continuation must resume), and writes to a closed connection go nowhere.
    job.completion(result)
  }

  private func run(_ batch: [Job]) {
    var owner: [(job: Job, index: Int)] = []
    for job in batch { for i in job.rows.indices { owner.append((job, i)) } }
    metrics.rowsInUse.set(Double(owner.count))
    metrics.batches.increment()
    let start = DispatchTime.now().uptimeNanoseconds
    var generated = 0
    do {
      try predictor.decodeBatch(owner.map { $0.job.rows[$0.index] }, decoder: decoder, dropped: { [self] k in
        let job = owner[k].job
        if job.settled { return true }
        if job.cancelled {
          settle(job, .failure(.unavailable))
          return true
        }
        if job.expired(DispatchTime.now().uptimeNanoseconds) {
          settle(job, .failure(.timedOut(job.request.timeoutMilliseconds ?? 0)))
          return true
        }
        return false
      }) { [self] k, prediction in
        let (job, i) = owner[k]
        metrics.rowsInUse.decrement()
        generated += prediction.tokens
        guard !job.settled else { return }
        job.results[i] = prediction
        job.remaining -= 1
        if job.remaining == 0 { settle(job, .success(job.results.map { $0! })) }
      }
    } catch {
      for job in batch { settle(job, .failure(.failed("\(error)"))) }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    metrics.generated(tokens: generated, seconds: seconds)
    metrics.rowsInUse.set(to: 0)
    // Rows dropped before finishing leave no answer: settle whatever is left (cannot happen for
    // live jobs, whose every row is reported).
    for job in batch where !job.settled { settle(job, .failure(.failed("no answer for \(job.remaining) rows"))) }
  }
}
