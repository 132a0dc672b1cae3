import Foundation
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`): requests by outcome, queue length, batch
/// rows in use, generated tokens (and the last batch's tokens/s), batches, request latency.
public final class ServeMetrics: @unchecked Sendable {
  public let registry = PrometheusCollectorRegistry()
  let queueLength: Gauge
  let rowsInUse: Gauge
  let batches: Counter
  let tokens: Counter
  let tokensPerSecond: Gauge
  let latency: DurationHistogram
  private let requests: [String: Counter]

  public init() {
    queueLength = registry.makeGauge(name: "mqan_queue_length", help: "Requests waiting for a batch.")
    rowsInUse = registry.makeGauge(name: "mqan_batch_rows_in_use", help: "Rows of the running batch still decoding.")
    batches = registry.makeCounter(name: "mqan_batches_total", help: "Batches decoded.")
    tokens = registry.makeCounter(name: "mqan_generated_tokens_total", help: "Output tokens generated.")
    tokensPerSecond = registry.makeGauge(name: "mqan_tokens_per_second", help: "Output tokens per second of the last batch.")
    latency = registry.makeDurationHistogram(
      name: "mqan_request_duration_seconds",
      buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)],
      help: "Time from a request's arrival to its answer.")
    var r: [String: Counter] = [:]
    for outcome in ["ok", "bad_request", "overloaded", "timed_out", "unavailable", "failed"] {
      r[outcome] = registry.makeCounter(name: "mqan_requests_total", labels: [("outcome", outcome)],
                                        help: "Requests answered, by outcome.")
    }
    requests = r
  }

  func answered(seconds: Double) {
    requests["ok"]?.increment()
    latency.record(.nanoseconds(Int64(seconds * 1e9)))
  }

  func failed(_ error: ServeError) {
    requests[error.label]?.increment()
  }

  func generated(tokens n: Int, seconds: Double) {
    tokens.increment(by: Int64(n))
    if seconds > 0 { tokensPerSecond.set(Double(n) / seconds) }
  }

  /// Prometheus' text format.
  public func text() -> String { registry.emitToString() }
}
