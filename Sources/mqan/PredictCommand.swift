import ArgumentParser
import Collective
import Foundation
import GraphIR
import MQAN
import Runtime

/// `mqan predict`: greedy answers from a checkpoint for decaNLP-format examples.
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Answer decaNLP-format examples with a trained checkpoint (greedy or beam search), optionally scoring them.",
    discussion: """
      predict compiles its own encode and decode-step plans from the checkpoint's model config (it \
      takes no --plan file): the plans `mqan compile --plan all` prints for that config. Under \
      mpirun (or srun) N ranks form the same batches, decode a length-balanced share each, and \
      rank 0 writes every answer in input order (the same file as one process) and the metrics \
      over the whole set; --threads is per rank.
      """)

  @Option(help: "A checkpoint written by mqan train (latest.safetensors, best.safetensors).") var checkpoint: String
  @Option(help: "A JSONL file, or a folder with one folder per task holding validation.jsonl.") var data: String
  @Option(help: "Tasks, comma-separated, each once (default: every task folder; for a file, its folder's name).")
  var tasks: String?
  @Option(help: "Longest answer in tokens (1...1000; default: 50, or decaNLP's max_output_length for a checkpoint imported from decaNLP).")
  var maxOutput: Int?
  @Option(help: "Decoder computation: decanlp or consistent (default: the checkpoint's).") var decoder: String?
  @Option(help: "Write the answers (JSONL) to this file instead of stdout.") var out: String?
  @Flag(help: "After each stage of every plan run, check its outputs for NaN and infinities; the first one is an error naming its plan step and IR node (costs about one more read of what each run writes).")
  var checkNumerics = false
  @Flag(help: "Score each task with decaNLP's metric and print the decaScore.") var metrics = false
  @Option(help: "Threads (1...256), per rank under mpirun.") var threads = 2
  @Option(help: "Examples per batch (at most, with --batch-tokens; 1...4096; default: 64, or decaNLP's val_batch_size for a checkpoint imported from decaNLP).")
  var batchSize: Int?
  @Option(help: """
    Token budget per batch: length-sorted examples are batched while count x the longest \
    (context + question) tokens stays within it (1...1000000; default: --batch-size examples per batch).
    """) var batchTokens: Int?
  @Option(help: "Beam size (1: greedy; 1...64).") var beam = 1
  @Option(help: "Answers per input, best first (at most --beam).") var nBest = 1
  @OptionGroup var gemm: GemmOption
  @OptionGroup var precision: PrecisionOption
  @OptionGroup var decaNLP: DecaNLPPredictOptions
  @Option(help: """
    Vocabulary shortlist: per batch, the output layer computes only the N most frequent words, every word of the     batch's contexts and questions and the task's answer words (the checkpoint's answer_words, from mqan train or     mqan shortlist); softmax and mixture are exact over that set, copying is never cut (0: none; 1...1000000).
    """) var shortlist = 0
  @Option(help: "GNMT length penalty alpha: scores divided by ((5 + length) / 6)^alpha; 0: none.") var lengthPenalty = 0.0

  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  /// One task's examples and where they came from.
  struct TaskInput {
    var task: String
    var path: String
    var examples: [Example]
  }

  func run() throws {
    for (name, v, r) in [("max-output", maxOutput ?? 1, 1...Limits.maxOutput), ("threads", threads, 1...Limits.threads),
                         ("batch-size", batchSize ?? 1, 1...Limits.batch), ("beam", beam, 1...Limits.beam),
                         ("n-best", nBest, 1...Limits.beam), ("batch-tokens", batchTokens ?? 1, 1...Limits.batchTokens),
                         ("shortlist", shortlist, 0...Limits.vocabulary)] {
      try checkRange(name, v, r)
    }
    guard nBest <= beam else { throw ValidationError("--n-best \(nBest) must not exceed --beam \(beam)") }
    guard lengthPenalty >= 0, lengthPenalty.isFinite else {
      throw ValidationError("--length-penalty must be a finite number >= 0, got \(lengthPenalty)")
    }
    if let t = tasks { _ = try taskList(t) }
    if let path = out { try checkWritable(path, option: "out") }
    var mode: DecoderMode?
    if let d = decoder {
      guard let m = DecoderMode(rawValue: d) else {
        throw ValidationError("unknown --decoder \"\(d)\" (decanlp or consistent)")
      }
      mode = m
    }
    try reportingErrors {
      let comm = try JobPlacement.join(threads: threads)
      let lead = comm.rank == 0
      // mpirun gives its ranks a pseudo-terminal: no progress line there.
      let stderrTerminal = isatty(2) != 0 && Communicator.launchedSize() == nil

      // The checkpoint: weights, table, model config, vocabulary, decoder mode.
      let model = try InferenceCheckpoint(path: checkpoint)
      let ck = model.checkpoint, config = model.config
      var vocabulary = model.vocabulary, table = model.table
      if mode == nil {
        guard let m = DecoderMode(rawValue: ck.decoderMode) else {
          throw CheckpointError.invalidMetadata(file: checkpoint, key: "decoder_mode",
                                                reason: "unknown mode \"\(ck.decoderMode)\" (decanlp or consistent)")
        }
        mode = m
      }

      // The data, every file read before any decoding starts.
      var inputs = try loadInputs()
      let imported = try decaNLP.prepare(ck, path: checkpoint, vocabulary: &vocabulary, table: &table, inputs: &inputs)
      let greedy = try MQANDecoder(config: config, params: model.params, mode: mode!, threads: threads,
                                   gemm: try gemm.target(), precision: try precision.target(checkpoint: ck.extra),
                                   shortlist: shortlist > 0, checkNumerics: checkNumerics)
      var predictor = Predictor(config: config, vocabulary: vocabulary, embeddings: table,
                                batchSize: batchSize ?? imported?.valBatchSize ?? 64,
                                maxOutput: maxOutput ?? imported?.maxOutputLength ?? 50)
      predictor.sortsByAnswer = imported != nil
      if beam > 1 || nBest > 1 { predictor.beam = (beam, nBest, lengthPenalty) }
      predictor.batchTokens = batchTokens
      if shortlist > 0 { predictor.shortlist = try loadShortlist(ck, config: config) }
      var shortlistSizes: [Int] = []

      let encoder = JSONEncoder()
      encoder.outputFormatting = [.withoutEscapingSlashes]
      let total = inputs.reduce(0) { $0 + $1.examples.count }
      var lines: [UInt8] = []
      var perTask: [(task: String, metric: Metric, score: Double)] = []
      var generated = 0
      var finishedBefore = 0
      let start = Date()
      var lastProgress = Date.distantPast
      for input in inputs {
        let (prepared, report) = TaskData(task: input.task, path: input.path, examples: input.examples)
          .prepared(policy: .truncate)
        if report.truncatedContexts > 0 && lead {
          note("\(input.task): \(report.truncatedContexts) of \(input.examples.count) contexts truncated to "
               + "\(LengthLimits.decaNLP.maxContextLength) tokens")
        }
        if report.truncatedQuestions > 0 && lead {
          note("\(input.task): \(report.truncatedQuestions) of \(input.examples.count) questions truncated to "
               + "\(LengthLimits.decaNLP.maxQuestionLength) tokens")
        }
        predictor.shard = (comm.rank, comm.size)
        var (predictions, owned) = try predictor.predictShare(prepared.examples, task: input.task, decoder: greedy,
                                                              shortlistSize: { shortlistSizes.append($0) }) { done in
          guard stderrTerminal, Date().timeIntervalSince(lastProgress) > 0.2 || finishedBefore + done == total else { return }
          lastProgress = Date()
          let elapsed = Date().timeIntervalSince(start)
          note(String(format: "\r\u{1B}[K%@ %d/%d examples %.0fs", input.task, finishedBefore + done, total, elapsed),
               terminator: "")
        }
        finishedBefore += prepared.examples.count
        if comm.size > 1 {
          // Every rank's answers to rank 0, which writes them all in input order.
          let shares = try comm.gather(PredictionShards.encode(predictions, indices: owned))
          guard lead else { continue }
          try PredictionShards.merge(shares, into: &predictions)
        }
        for p in predictions {
          generated += p.tokens
          // Keys in a fixed order: task, answer, n_best.
          let task = try encoder.encode(input.task), answer = try encoder.encode(p.answer)
          lines += Array("{\"task\":".utf8) + task + Array(",\"answer\":".utf8) + answer + Array(",\"n_best\":[".utf8)
          for (j, alt) in p.nBest.enumerated() {
            let s = alt.score.isFinite ? alt.score : -Double.greatestFiniteMagnitude
            lines += Array((j > 0 ? ",{\"answer\":" : "{\"answer\":").utf8) + (try encoder.encode(alt.answer))
              + Array(",\"score\":\(s)}".utf8)
          }
          lines += Array("]}\n".utf8)
        }
        if metrics {
          let metric = Metric.primaryMetric(forTask: input.task)
          let score = Metric.score(metric, predictions: predictions.map(\.answer),
                                   references: prepared.examples.map { [$0.raw.answer] })
          perTask.append((input.task, metric, score))
        }
      }
      guard lead else { return }  // rank 0 writes the answers and the scores
      if stderrTerminal && total > 0 { note("") }
      let seconds = max(Date().timeIntervalSince(start), 1e-9)

      if let path = out {
        try AtomicFile.write(lines, to: path)
      } else {
        try Output.write(lines)
      }
      if metrics {
        // With --out, stdout is free for the scores; otherwise it holds the JSONL answers.
        let emit: (String) -> Void = out != nil ? { print($0) } : { note($0) }
        var scores: [String: Double] = [:]
        for t in perTask {
          emit(String(format: "%@ %@ %.2f", t.task, t.metric.rawValue, t.score))
          scores[t.task] = t.score
        }
        emit(String(format: "decaScore %.2f", Metric.decaScore(scores)))
      }
      note(String(format: "predicted %d examples in %.2fs: %.1f sentences/s, %.1f tokens/s", total, seconds,
                  Double(total) / seconds, Double(generated) / seconds))
      if let lo = shortlistSizes.min(), let hi = shortlistSizes.max() {
        note("shortlist: \(lo)...\(hi) of \(config.generativeVocab) words per batch "
             + "(mean \(shortlistSizes.reduce(0, +) / shortlistSizes.count)"
             + (comm.size > 1 ? "; rank 0's batches)" : ")"))
      }
    }
  }

  /// The shortlist of `--shortlist`: the checkpoint's answer words (a note when it has none).
  func loadShortlist(_ ck: Checkpoint, config: ModelConfig) throws -> Shortlist {
    guard let text = ck.extra[AnswerWords.metadataKey] else {
      note("--shortlist: \(checkpoint) has no answer_words (checkpoints of mqan train have them; mqan shortlist adds "
           + "them): the shortlist is the \(shortlist) most frequent words and each batch's words")
      return Shortlist(frequent: shortlist)
    }
    do {
      return Shortlist(frequent: shortlist, answerWords: try AnswerWords(json: text, generativeVocab: config.generativeVocab))
    } catch {
      throw CheckpointError.invalidMetadata(file: checkpoint, key: AnswerWords.metadataKey, reason: "\(error)")
    }
  }

  /// The examples of every requested task, in order.
  func loadInputs() throws -> [TaskInput] {
    let requested = try tasks.map(taskList)
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: data, isDirectory: &isDir) else {
      throw Failure(description: "\(data): no such file or folder")
    }
    if !isDir.boolValue {
      // One file: one task, named by --tasks or by the file's folder.
      let name: String
      if let r = requested {
        guard r.count == 1 else {
          throw Failure(description: "--tasks: \(data) is one file, give one task, got \(r.joined(separator: ","))")
        }
        name = r[0]
      } else {
        name = URL(fileURLWithPath: data).standardizedFileURL.deletingLastPathComponent().lastPathComponent
      }
      return [TaskInput(task: name, path: data, examples: try Self.read(data))]
    }
    let root = URL(fileURLWithPath: data)
    func file(_ task: String) -> String { root.appendingPathComponent(task).appendingPathComponent("validation.jsonl").path }
    let available = ((try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [])
      .filter { FileManager.default.fileExists(atPath: file($0)) }.sorted()
    let names = requested ?? available
    guard !names.isEmpty else { throw Failure(description: "\(data): no task folder with validation.jsonl") }
    var inputs: [TaskInput] = []
    for name in names {
      guard available.contains(name) else {
        throw Failure(description: "unknown task \"\(name)\": \(file(name)) does not exist (tasks in \(data): "
                      + "\(available.isEmpty ? "none" : available.joined(separator: ", ")))")
      }
      inputs.append(TaskInput(task: name, path: file(name), examples: try Self.read(file(name))))
    }
    return inputs
  }

  /// A data file's examples; an empty file is an error (it has nothing to answer or score).
  static func read(_ path: String) throws -> [Example] {
    let examples = try JSONLReader.read(path: path)
    guard !examples.isEmpty else { throw Failure(description: "\(path): no examples (the file is empty)") }
    return examples
  }

  static func oneLine(_ error: Error) -> String {
    "\(error)".split(separator: "\n").joined(separator: "; ")
  }
}
