import ArgumentParser
import Foundation
import GraphIR
import MQAN
import Runtime
import Serve

/// `mqan serve`: answers genienlp's JSON-lines protocol (TCP or stdin) and HTTP with one copy of
/// a checkpoint's weights, batching requests from every connection.
struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve a checkpoint: genienlp's JSON-lines protocol over TCP (or stdin) and HTTP, requests batched across connections.",
    discussion: """
      Requests from every connection enter one scheduler, which decodes one running batch of up to \
      --max-batch rows with continuous batching: before every decoding step, waiting requests \
      (oldest first, within --max-batch-tokens) are encoded and join the batch's free rows, and a \
      row leaves it as soon as it finishes; each request is answered when its rows have finished. \
      An idle server lets its first batch fill for at most --max-wait-ms. SIGTERM or SIGINT: stop accepting, answer what is in \
      flight, exit 0. README "Serving: mqan serve" describes the protocols.
      """)

  @Option(help: "A checkpoint written by mqan train (latest.safetensors, best.safetensors).") var checkpoint: String
  @Option(help: "Address to listen on.") var host = "127.0.0.1"
  @Option(help: "JSON-lines TCP port (genienlp's protocol; 0: any free port, printed on stderr).") var port = 8401
  @Option(help: "HTTP port (POST /v1/predict, GET /health, GET /metrics; 0: any free port).") var httpPort = 8080
  @Flag(help: "Read JSON-lines requests from stdin and answer on stdout (no network); ends at the end of stdin.")
  var stdin = false
  @Option(help: "Rows (examples) of the running batch at most (1...4096); a request with more instances joins it over several steps.")
  var maxBatch = 16
  @Option(help: "Instances of one request at most (1...4096).") var maxInstances = 64
  @Option(help: "Running batch token budget: rows x longest (context + question) tokens (1...1000000; default: none).")
  var maxBatchTokens: Int?
  @Option(help: "How long an idle server's first batch may wait for more requests after its oldest arrived, in ms (0...10000; 0: it starts at once).")
  var maxWaitMs = 0
  @Option(help: "Requests waiting at most; more are refused at once (HTTP 429, a JSON-lines error) (1...1000000).")
  var maxQueue = 1024
  @Option(help: "Bytes of one request line or HTTP body at most (64...67108864).") var maxRequestBytes = 1 << 20
  @Option(help: "Context tokens of one example at most (1...400, decaNLP's limit); longer contexts are refused.")
  var maxContext = 400
  @Option(help: "Longest answer in tokens (1...1000).") var maxOutput = 50
  @Option(help: "Decoder computation: consistent (answers independent of batch neighbours) or decanlp.")
  var decoder = "consistent"
  @Option(help: "Threads (1...256).") var threads = 2
  @Option(help: "Beam size (1: greedy; 1...64).") var beam = 1
  @Option(help: "Answers per input, best first, as candidates with scores (at most --beam).") var nBest = 1
  @Option(help: "GNMT length penalty alpha: scores divided by ((5 + length) / 6)^alpha; 0: none.") var lengthPenalty = 0.0
  @OptionGroup var gemm: GemmOption
  @OptionGroup var precision: PrecisionOption

  func run() throws {
    for (name, v, r) in [("max-batch", maxBatch, 1...Limits.batch), ("max-instances", maxInstances, 1...Limits.batch),
                         ("max-batch-tokens", maxBatchTokens ?? 1, 1...Limits.batchTokens),
                         ("max-wait-ms", maxWaitMs, 0...10_000), ("max-queue", maxQueue, 1...1_000_000),
                         ("max-request-bytes", maxRequestBytes, 64...(64 << 20)), ("max-context", maxContext, 1...400),
                         ("max-output", maxOutput, 1...Limits.maxOutput), ("threads", threads, 1...Limits.threads),
                         ("beam", beam, 1...Limits.beam), ("n-best", nBest, 1...Limits.beam),
                         ("port", port, 0...65535), ("http-port", httpPort, 0...65535)] {
      try checkRange(name, v, r)
    }
    guard nBest <= beam else { throw ValidationError("--n-best \(nBest) must not exceed --beam \(beam)") }
    guard lengthPenalty >= 0, lengthPenalty.isFinite else {
      throw ValidationError("--length-penalty must be a finite number >= 0, got \(lengthPenalty)")
    }
    guard let mode = DecoderMode(rawValue: decoder) else {
      throw ValidationError("unknown --decoder \"\(decoder)\" (decanlp or consistent)")
    }
    try reportingErrors {
      let model = try InferenceCheckpoint(path: checkpoint)
      let config = model.config, vocabulary = model.vocabulary, table = model.table
      if mode == .decanlp {
        note("--decoder decanlp: an answer can depend on its batch neighbours' padding (README \"mqan predict\")")
      }
      let decoder = try MQANDecoder(config: config, params: model.params, mode: mode, threads: threads,
                                    gemm: try gemm.target(), precision: try precision.target(checkpoint: model.checkpoint.extra))
      var predictor = Predictor(config: config, vocabulary: vocabulary, embeddings: table, batchSize: maxBatch,
                                maxOutput: maxOutput)
      if beam > 1 || nBest > 1 { predictor.beam = (beam, nBest, lengthPenalty) }
      var options = SchedulerOptions()
      options.maxBatch = maxBatch
      options.maxBatchTokens = maxBatchTokens
      options.maxWaitMilliseconds = maxWaitMs
      options.maxQueue = maxQueue
      var limits = RequestLimits()
      limits.maxBytes = maxRequestBytes
      limits.maxInstances = maxInstances
      limits.maxContextTokens = maxContext
      options.maxContextTokens = limits.maxContextTokens
      options.maxQuestionTokens = limits.maxQuestionTokens
      let scheduler = try Scheduler(predictor: predictor, decoder: decoder, options: options, metrics: ServeMetrics())
      let core = ServeCore(scheduler: scheduler, limits: limits, nBest: nBest)
      if stdin {
        ServeRunner.runStdin(core: core)
        return
      }
      var listeners = Listeners()
      listeners.host = host
      listeners.port = port
      listeners.httpPort = httpPort
      let where_ = listeners
      try Self.blocking { try await ServeRunner.runNetwork(core: core, listeners: where_) { note($0) } }
      note("mqan serve: stopped")
    }
  }

  /// Runs async work from this synchronous command (the main thread waits; the work runs on
  /// Swift's concurrency threads) and returns its result.
  static func blocking(_ work: @escaping @Sendable () async throws -> Void) throws {
    final class Outcome: @unchecked Sendable { var error: Error? }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
      do { try await work() } catch { outcome.error = error }
      done.signal()
    }
    done.wait()
    if let e = outcome.error { throw e }
  }
}
