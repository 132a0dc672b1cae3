import Foundation
import MQAN

/// What every protocol shares: request parsing and limits, the scheduler, the metrics. One copy
/// of the weights (the scheduler's decoder) serves them all.
public final class ServeCore: @unchecked Sendable {
  public let scheduler: Scheduler
  public let metrics: ServeMetrics
  public let limits: RequestLimits
  let vocabulary: Vocabulary
  let nBest: Int
  let tokenizer = Tokenizer()

  /// One answer: the HTTP status and the JSON line (no newline).
  public struct Reply: Sendable {
    public var status: Int
    public var line: String
  }

  public init(scheduler: Scheduler, limits: RequestLimits, nBest: Int) {
    self.scheduler = scheduler
    self.metrics = scheduler.metrics
    self.limits = limits
    self.vocabulary = scheduler.predictor.vocabulary
    self.nBest = nBest
  }

  /// Parses `line`, queues it and calls `reply` once with its answer or error (at once for a bad
  /// or refused request). The job is returned so that a vanished client can cancel it.
  @discardableResult
  public func handle(_ line: [UInt8], reply: @escaping @Sendable (Reply) -> Void) -> Job? {
    let request: ServeRequest
    switch ServeProtocol.parse(line, limits: limits, tokenizer: tokenizer) {
    case .failure(let f):
      metrics.failed(f.error)
      reply(Reply(status: f.error.status, line: ServeProtocol.error(id: f.id, f.error)))
      return nil
    case .success(let r): request = r
    }
    let nBest = nBest
    let rows = request.examples.map { EncodedExample($0, vocabulary: vocabulary) }
    let job = Job(request: request, rows: rows) { result in
      switch result {
      case .success(let predictions):
        reply(Reply(status: 200, line: ServeProtocol.answer(request, predictions, nBest: nBest)))
      case .failure(let e):
        reply(Reply(status: e.status, line: ServeProtocol.error(id: request.id, e)))
      }
    }
    if let refused = scheduler.submit(job) {
      metrics.failed(refused)
      reply(Reply(status: refused.status, line: ServeProtocol.error(id: request.id, refused)))
      return nil
    }
    return job
  }

  /// `handle` for async callers; cancelling the task cancels the request.
  public func handle(_ line: [UInt8]) async -> Reply {
    let box = JobBox()
    return await withTaskCancellationHandler {
      await withCheckedContinuation { (c: CheckedContinuation<Reply, Never>) in
        box.set(handle(line) { c.resume(returning: $0) })
      }
    } onCancel: {
      box.cancel()
    }
  }
}

/// The job of an async request, for its cancellation handler.
final class JobBox: @unchecked Sendable {
  private let lock = NSLock()
  private var job: Job?
  private var cancelled = false

  func set(_ j: Job?) {
    lock.lock()
    job = j
    let c = cancelled
    lock.unlock()
    if c { j?.cancel() }
  }

  func cancel() {
    lock.lock()
    cancelled = true
    let j = job
    lock.unlock()
    j?.cancel()
  }
}
