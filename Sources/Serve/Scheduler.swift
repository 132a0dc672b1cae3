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
  /// Rows that have joined the running batch.
  var admitted = 0
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
  /// Rows (examples) decoded together at most: the running batch's slots.
  public var maxBatch = 16
  /// count x longest (context + question) tokens of the running batch at most; nil: no budget.
  public var maxBatchTokens: Int?
  /// How long the oldest waiting request may wait for more to fill an idle decoder's first batch.
  public var maxWaitMilliseconds = 0
  /// Requests waiting at most; the next one is refused at once.
  public var maxQueue = 1024
  /// The longest context and question of a row, in tokens (the running batch is sized for them).
  public var maxContextTokens = LengthLimits.decaNLP.maxContextLength
  public var maxQuestionTokens = LengthLimits.decaNLP.maxQuestionLength

  public init() {}
}

/// One queue for every connection and protocol, decoded on a thread of its own with continuous
/// batching (`ContinuousDecoder`).
///
/// Before every decoding step, waiting rows join the running batch's free slots (oldest request
/// first; a request with more rows than are free joins over several steps), within `maxBatch`
/// rows and `maxBatchTokens`, and are encoded together. Each step decodes every row of the batch
/// one token; a row that finishes leaves it at once and frees its slot for the next step, and a
/// request is answered as soon as its last row has finished. When the decoder is idle, the first
/// rows wait at most `maxWaitMilliseconds` for others to fill the batch. A timed-out or cancelled
/// request's rows leave the batch before the next step. The batch's memory is allocated when the
/// scheduler is made, for `maxBatch` rows of the longest context and question.
public final class Scheduler: @unchecked Sendable {
  let predictor: Predictor
  let options: SchedulerOptions
  let metrics: ServeMetrics
  private let condition = NSCondition()
  // Guarded by `condition`:
  private var queue: [Job] = []
  private var stopping = false
  private var drained: [@Sendable () -> Void] = []
  private var thread: Thread?
  private var finishedRunning = false
  // Scheduler thread only: the running batch, and each of its rows' request and tokens.
  private let running: ContinuousDecoder
  private var owner: [Int: (job: Job, index: Int)] = [:]

  public init(predictor: Predictor, decoder: MQANDecoder, options: SchedulerOptions, metrics: ServeMetrics) throws {
    self.predictor = predictor
    self.options = options
    self.metrics = metrics
    running = try ContinuousDecoder(decoder: decoder, embeddings: predictor.embeddings, options: predictor.searchOptions,
                                    capacity: options.maxBatch, maxContext: options.maxContextTokens + 2,
                                    maxQuestion: options.maxQuestionTokens + 2)
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
    while let joining = nextRows() {
      admit(joining)
      dropGone()
      step()
    }
    condition.lock()
    finishedRunning = true
    let waiting = drained
    drained = []
    condition.unlock()
    for d in waiting { d() }
  }

  /// The rows that join the running batch before the next step (nil: stopping with nothing left).
  /// Blocks while the batch is empty and nothing waits; an idle decoder's first rows wait up to
  /// `maxWaitMilliseconds` for more. Requests past their deadline or cancelled while waiting leave
  /// the queue here.
  private func nextRows() -> [(job: Job, index: Int)]? {
    let idle = running.active == 0
    condition.lock()
    if idle {
      while queue.isEmpty && !stopping { condition.wait() }
      if queue.isEmpty {
        condition.unlock()
        return nil
      }
      // Let the batch fill for at most max-wait after the oldest request arrived.
      let waitEnd = queue[0].arrival + UInt64(options.maxWaitMilliseconds) * 1_000_000
      while !stopping && waitingRows() < running.free {
        let now = DispatchTime.now().uptimeNanoseconds
        if now >= waitEnd { break }
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitEnd - now) / 1e9))
      }
    }
    let now = DispatchTime.now().uptimeNanoseconds
    var gone: [Job] = [], joining: [(job: Job, index: Int)] = []
    var free = running.free, rows = running.active
    var longest = owner.values.map { $0.job.longest }.max() ?? 0
    var live: [Job] = []
    for job in queue {
      if job.settled || job.cancelled || job.expired(now) { gone.append(job) } else { live.append(job) }
    }
    // The oldest request first, then the others closest to it in length, those no longer than it
    // before the longer ones (a longer row pads every other; ties: the older), as far as the
    // free rows go: rows of similar lengths are encoded together with little padding, and a
    // request waits at most as many admissions as requests were ahead of it. A request that does
    // not fit whole joins row by row as rows free up.
    let first = live.first?.longest ?? 0
    func rank(_ i: Int) -> (Int, Int, Int) { (live[i].longest > first ? 1 : 0, abs(live[i].longest - first), i) }
    let order = live.indices.sorted { rank($0) < rank($1) }
    for i in order where free > 0 {
      let job = live[i]
      while free > 0 && job.admitted < job.rows.count {
        let l = max(longest, job.longest)
        if let budget = options.maxBatchTokens, rows > 0, (rows + 1) * l > budget { break }
        joining.append((job, job.admitted))
        job.admitted += 1
        free -= 1
        rows += 1
        longest = l
      }
    }
    // While more than half the batch is decoding, nothing joins: joining rows are encoded
    // together, and the encoder costs less per row in larger batches. Left to join as rows free
    // up one by one, a batch settles into cohorts that join every step in small groups (on sst
    // at 64 clients, 8 rows per join instead of 16: 10% fewer answers/s). A lightly loaded
    // server has free rows, so its requests join at once.
    if running.active > 0 && running.free * 2 < running.capacity {
      for (job, _) in joining { job.admitted -= 1 }
      joining = []
    }
    let kept = live.filter { $0.admitted < $0.rows.count }
    queue = kept
    metrics.queueLength.set(Double(queue.count))
    condition.unlock()
    for job in gone { settle(job, .failure(Self.reason(job))) }
    return joining
  }

  private func waitingRows() -> Int {
    var n = 0
    for job in queue {
      n += job.rows.count - job.admitted
      if n >= running.free { break }
    }
    return n
  }

  private static func reason(_ job: Job) -> ServeError {
    job.cancelled ? .unavailable : .timedOut(job.request.timeoutMilliseconds ?? 0)
  }

  /// Encodes `joining` into the running batch.
  private func admit(_ joining: [(job: Job, index: Int)]) {
    if joining.isEmpty { return }
    do {
      let handles = try running.admit(joining.map { $0.job.rows[$0.index] })
      for (h, row) in zip(handles, joining) { owner[h] = row }
    } catch {
      for (job, _) in joining { settle(job, .failure(.failed("\(error)"))) }
    }
    metrics.rowsInUse.set(Double(running.active))
  }

  /// Rows of requests that were answered (an error), cancelled or timed out leave the batch.
  private func dropGone() {
    let now = DispatchTime.now().uptimeNanoseconds
    for h in running.handles {
      guard let job = owner[h]?.job else { continue }
      if !job.settled && (job.cancelled || job.expired(now)) { settle(job, .failure(Self.reason(job))) }
      if job.settled {
        running.drop(h)
        owner[h] = nil
      }
    }
  }

  /// One decoding step of the running batch; rows that finish answer their requests.
  private func step() {
    guard running.active > 0 else { return }
    let start = DispatchTime.now().uptimeNanoseconds
    let decoding = running.active
    do {
      for f in try running.step() {
        guard let (job, i) = owner.removeValue(forKey: f.handle) else { continue }
        if job.settled { continue }
        job.results[i] = predictor.prediction(f.hypotheses, toFull: f.toFull)
        job.remaining -= 1
        if job.remaining == 0 { settle(job, .success(job.results.map { $0! })) }
      }
    } catch {
      for h in running.handles {
        if let job = owner.removeValue(forKey: h)?.job { settle(job, .failure(.failed("\(error)"))) }
        running.drop(h)
      }
    }
    metrics.steps.increment()
    metrics.generated(tokens: decoding, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    metrics.rowsInUse.set(Double(running.active))
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
}
