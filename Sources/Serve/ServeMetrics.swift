import Foundation
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`): requests by outcome, queue length, batch
/// rows in use, generated tokens (and the last step's tokens/s), decoding steps, request latency.
public final class ServeMetrics: @unchecked Sendable {
  public let registry = PrometheusCollectorRegistry()
  let queueLength: Gauge
  let rowsInUse: Gauge
  let steps: Counter
  let tokens: Counter
  let tokensPerSecond: Gauge
  let latency: DurationHistogram
  private let requests: [String: Counter]

  public init() {
    func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
      MetricNameDescriptor(namespace: "mqan", metricName: metric, unitName: unit, helpText: help)
    }
    queueLength = registry.makeGauge(descriptor: name("queue", "length", "Requests waiting for a batch."))
    rowsInUse = registry.makeGauge(descriptor: name("batch_rows", "in_use", "Rows of the running batch still decoding."))
    steps = registry.makeCounter(descriptor: name("decode_steps", "total", "Decoding steps of the running batch."))
    tokens = registry.makeCounter(descriptor: name("generated_tokens", "total", "Output tokens generated."))
    tokensPerSecond = registry.makeGauge(descriptor: name("tokens", "per_second", "Output tokens per second of the last decoding step."))
    latency = registry.makeDurationHistogram(
      descriptor: name("request_duration", "seconds", "Time from a request's arrival to its answer."),
      buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)])
    var r: [String: Counter] = [:]
    for outcome in ["ok", "bad_request", "overloaded", "timed_out", "unavailable", "failed"] {
      r[outcome] = registry.makeCounter(descriptor: name("requests", "total", "Requests answered, by outcome."),
                                        labels: [("outcome", outcome)])
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
