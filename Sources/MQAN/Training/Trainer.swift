import Collective
import Compiler
import Foundation
import GraphIR
import Runtime

/// `mqan train`: decaNLP's training loop on mqan's compiled train plan.
///
/// Each step takes the next batch of the current task (round-robin over tasks, decaNLP's fully
/// joint strategy, after `jumpStart` steps on the first task alone), runs the train plan (forward,
/// loss, backward: outputs `loss` and `grad.<weight>`), then decaNLP's optimizer (global-norm clip
/// 1.0, Adam 0.9/0.98/1e-9, the transformer warmup schedule) updates the executor's weights in
/// place. Every `valEvery` steps each task is greedy-decoded and scored with decaNLP's metric; the
/// decaScore is their sum. Checkpoints are atomic and resume exactly.
public final class Trainer {
  public let options: TrainOptions
  public private(set) var config: ModelConfig
  public let vocabulary: Vocabulary
  /// The word-vector table: fed as an input, or (trainEmbeddings) a weight of the executor.
  let table: HostTensor
  var tasks: [TaskState]
  let executor: Executor
  let optimizer: AdamOptimizer
  /// decaNLP's Adam settings and schedule for this run (saved in checkpoints).
  let optimizerConfig: AdamConfig
  public private(set) var step = 0
  /// The train plan's graph after the compiler's passes (`mqan compile --plan train --emit ir`
  /// prints the same graph for the same config and dropout).
  public let trainGraph: Graph
  var best: Double?
  /// The ranks of a data-parallel run (`single`: one process). Rank 0 alone writes the log, the
  /// plot and the checkpoints, and validates.
  public let communicator: Communicator
  /// The summed gradients of a data-parallel step (allocated on its first step).
  lazy var exchange = GradientExchange(parameters: optimizer.parameters, executor: executor,
                                       communicator: communicator, overlap: options.overlapGradientSum)

  struct TaskState {
    var name: String
    var train: [EncodedExample]
    var validation: [Example]
    var iterator: BucketBatchIterator
  }

  public init(_ requested: TrainOptions, communicator: Communicator = .single,
              report: (TrainEvent) -> Void) throws {
    self.communicator = communicator
    var options = requested
    try Self.check(options)
    var config = options.config
    // The save folder first: a place that cannot hold the checkpoints fails before any work.
    try Self.makeFolder(options.save)
    // Data: every task's training and validation examples, one vocabulary over the training data.
    var counter = TokenCounter()
    var loaded: [(String, TaskData, TaskData)] = []
    for task in options.tasks {
      let train = try Self.trainingData(try TaskData.load(root: options.dataDir, task: task, split: "train"),
                                        report: report)
      let val = try Self.validationData(try TaskData.load(root: options.dataDir, task: task, split: "validation"),
                                        limit: options.valExamples, report: report)
      for ex in train.examples { counter.add(ex.context); counter.add(ex.question); counter.add(ex.answer) }
      loaded.append((task, train, val))
    }
    let resumeFrom = options.resume ? Self.latestCheckpoint(in: options.save) : nil
    if options.resume && resumeFrom == nil {
      throw TrainError.option("--resume", "\(options.save) holds no latest.safetensors to resume from "
                              + "(leave out --resume to start a new run)")
    }
    var checkpoint: Checkpoint?
    if let path = resumeFrom { checkpoint = try Checkpoint.read(path: path) }
    if let ck = checkpoint, let path = resumeFrom {
      if let name = ck.quantized.keys.sorted().first {
        throw TrainError.option("--resume", "\(path) holds weights converted by mqan quantize (\(name): "
                                + "\(ck.quantized[name]!.rawValue)); training resumes from an F32 checkpoint")
      }
      guard ck.step <= options.steps else {
        throw TrainError.option("--steps", "\(options.steps) is below step \(ck.step) of the checkpoint \(path) "
                                + "(give --steps above \(ck.step) to train on)")
      }
      vocabulary = try Vocabulary(jsonData: Data(ck.vocabulary.utf8), source: path)
      config = try ModelConfig.decode(Data(ck.modelConfig.utf8), source: "\(path): __metadata__ key \"model_config\"")
      // A resumed run continues the checkpoint's run exactly: its seed and schedule win.
      if options.seed != ck.seed {
        report(.prepared("resuming with the checkpoint's seed \(ck.seed) (not \(options.seed))"))
        options.seed = ck.seed
      }
      if case .transformer(_, let warmup)? = ck.optimizerConfig?.schedule, warmup != options.warmup {
        report(.prepared("resuming with the checkpoint's warmup \(warmup) (not \(options.warmup))"))
        options.warmup = warmup
      }
    } else {
      vocabulary = Vocabulary(counter: counter, maxSize: 1_000_000)
      config.generativeVocab = min(vocabulary.count, options.config.generativeVocab)
    }
    try config.checkMemory(tableRows: vocabulary.count, source: resumeFrom ?? options.save)
    // Embeddings: GloVe-format vectors for the vocabulary (zeros for missing words, as decaNLP),
    // or, when trained from scratch, N(0, 1) as torch's nn.Embedding; a resumed run takes the
    // table its checkpoint holds.
    var coverage = ""
    if let saved = checkpoint?.parameters["embeddings"] {
      table = saved
    } else if let vectorsPath = options.embeddings {
      let vectors = try WordVectors.load(path: vectorsPath)
      table = vectors.table(for: vocabulary)
      coverage = "; \(vectors.coverage(of: vocabulary))"
      config.embeddingDim = table.shape[1]
    } else if options.trainEmbeddings {
      var rng = SeededRandom(seed: options.seed &+ 17)
      let n = vocabulary.count * config.embeddingDim
      table = HostTensor(shape: [vocabulary.count, config.embeddingDim], floats: (0..<n).map { _ in rng.normal() })
    } else {
      throw TrainError.option("--embeddings", "give --embeddings FILE (GloVe text format) or --train-embeddings")
    }
    guard table.shape == [vocabulary.count, config.embeddingDim] else {
      throw TrainError.file(resumeFrom ?? options.embeddings ?? options.save, "the word-vector table is \(table.shape), "
                            + "the model needs [\(vocabulary.count), \(config.embeddingDim)]")
    }
    self.config = config
    report(.prepared("vocabulary \(vocabulary.count) words (generative \(config.generativeVocab))\(coverage)"
                     + (options.trainEmbeddings ? "; training the embedding table" : "")))

    // The train plan, the executor and the optimizer.
    var compileOptions = CompileOptions()
    compileOptions.gemm = options.gemm ?? Gemm.best
    let compilation = try MQANPlans.compile(kind: .train, config: config, options: .training(
      dropout: options.dropout, trainedEmbeddingRows: options.trainEmbeddings ? vocabulary.count : nil),
      compileOptions: compileOptions)
    trainGraph = compilation.graph
    let plan = compilation.plan
    var params = checkpoint?.parameters ?? ParameterInit.initialize(config, seed: options.seed)
    if options.trainEmbeddings { params["embeddings"] = table }
    for name in plan.paramNames where params[name] == nil {
      throw TrainError.file(resumeFrom ?? "checkpoint", "tensor \"\(name)\" is missing (a weight of the model)")
    }
    // decaNLP's two linear_in weights are never read; checkpoints hold what the model uses.
    let used = Set(plan.paramNames)
    params = params.filter { used.contains($0.key) }
    executor = try Executor(plan: plan, params: params, threads: options.threads,
                            options: ExecutorOptions(checkNumerics: options.checkNumerics))
    optimizerConfig = .decaNLP(dimension: config.dimension, warmup: options.warmup)
    optimizer = try AdamOptimizer(config: optimizerConfig, parameters: executor.parameterBuffers(),
                                  threads: options.threads)
    if let state = checkpoint?.optimizer { try optimizer.importState(state) }

    var positions: [String: BatchIteratorState] = [:]
    if let ck = checkpoint {
      let pos: DataPosition
      do { pos = try JSONDecoder().decode(DataPosition.self, from: Data(ck.dataPosition.utf8)) } catch {
        throw TrainError.file(resumeFrom ?? "checkpoint",
                              "__metadata__ key \"data_position\": \(ModelError.describe(decoding: error))")
      }
      positions = pos.iterators
      step = ck.step
      best = ck.bestScore
    }
    self.options = options
    tasks = []
    for (i, (name, train, val)) in loaded.enumerated() {
      let encoded = train.encoded(with: vocabulary)
      var it = try BucketBatchIterator(examples: encoded, batchTokens: options.batchTokens,
                                       seed: options.seed &+ UInt64(i) &* 7919)
      if let s = positions[name] {
        do { try it.restore(s) } catch {
          throw TrainError.file(resumeFrom ?? "checkpoint", "__metadata__ key \"data_position\": task \(name): \(error)")
        }
      }
      tasks.append(TaskState(name: name, train: encoded, validation: val.examples, iterator: it))
    }
  }

  /// Every task's training answer words, for `predict --shortlist` (the checkpoint's `answer_words`).
  func answerWords() -> AnswerWords {
    AnswerWords.learn(tasks.map { ($0.name, $0.train.map(\.answer)) }, generativeVocab: config.generativeVocab)
  }

  /// Where a run left its newest checkpoint.
  static func latestCheckpoint(in dir: String) -> String? {
    let path = (dir as NSString).appendingPathComponent("latest.safetensors")
    return FileManager.default.fileExists(atPath: path) ? path : nil
  }

  struct DataPosition: Codable {
    var iterators: [String: BatchIteratorState]
  }

  /// The task of a step: the first task during jump-start, then round-robin.
  func taskIndex(for step: Int) -> Int {
    step <= options.jumpStart ? 0 : (step - options.jumpStart - 1) % tasks.count
  }

  /// When this process started training (validation rows log time since then).
  var runStart = Date()

  public func run(report: (TrainEvent) -> Void) throws {
    let lead = communicator.rank == 0
    try Self.makeFolder(options.save)
    var log: TrainLog?
    if lead {
      (try? CheckpointDirectory(path: options.save, keepLast: 0))?.removeTemporaryFiles()  // a killed run's leftovers
      log = try TrainLog(directory: options.save, truncatingAfter: step)
    }
    let start = Date()
    runStart = start
    while step < options.steps {
      step += 1
      let t = taskIndex(for: step)
      guard let batch = tasks[t].iterator.next() else { continue }
      let t0 = Date()
      // Every rank draws the same global batch; each trains on its share.
      let result = communicator.size > 1 ? try dataParallelStep(batch.batch, task: t) : try localStep(batch.batch, task: t)
      let seconds = Date().timeIntervalSince(t0)
      let tps = Double(result.tokens) / max(seconds, 1e-9)
      var row: [String: Any] = ["step": step, "loss": result.loss, "lr": result.update.learningRate, "tokens_per_s": tps,
                                "tokens": result.tokens, "step_s": seconds, "task": tasks[t].name, "grad_norm": result.update.gradientNorm,
                                "elapsed_s": Date().timeIntervalSince(start)]
      if communicator.size > 1 {
        row["ranks"] = communicator.size
        row["wait_s"] = result.waitSeconds
        row["exchange_s"] = result.exchangeSeconds
        row["overlap"] = exchange.sum != nil
      }
      try log?.write(row)
      report(.step(step: step, task: tasks[t].name, loss: result.loss, lr: result.update.learningRate,
                   tokensPerSecond: tps, elapsed: Date().timeIntervalSince(start)))
      if step % options.valEvery == 0 || step == options.steps {
        try validate(log: log, report: report)  // every rank decodes its share; rank 0 scores
      }
      guard let log else { continue }
      if step % options.saveEvery == 0 || step == options.steps {
        try save(report: report, bestCandidate: nil)
        log.plot(to: options.save)
      }
    }
  }

  /// Greedy-decodes each task's validation examples, scores them with decaNLP's metric, logs the
  /// decaScore, and keeps the best checkpoint.
  /// Under MPI every rank decodes a share of the batches (as `mqan predict` does) and rank 0
  /// (`log` non-nil) scores, logs and saves.
  func validate(log: TrainLog?, report: (TrainEvent) -> Void) throws {
    let decoder = try MQANDecoder(config: config, params: executor.parameters(), mode: .consistent,
                                    threads: options.threads, gemm: options.gemm ?? Gemm.best,
                                    checkNumerics: options.checkNumerics)
    var perTask: [String: Double] = [:]
    for task in tasks {
      let predictions = try predict(task.validation, decoder: decoder)
      guard let log else { continue }
      let metric = Metric.primaryMetric(forTask: task.name)
      let score = Metric.score(metric, predictions: predictions, references: task.validation.map { [$0.raw.answer] })
      perTask[task.name] = score
      try log.write(["step": step, "task": task.name, "metric": metric.rawValue, "score": score,
                 "elapsed_s": Date().timeIntervalSince(runStart)])
      report(.validation(step: step, task: task.name, metric: metric.rawValue, score: score))
    }
    guard let log else { return }
    let deca = Metric.decaScore(perTask)
    try log.write(["step": step, "decascore": deca])
    report(.decaScore(step: step, score: deca))
    if best == nil || deca > best! {
      best = deca
      try save(report: report, bestCandidate: deca)
    }
  }

  /// The table as it stands (trained ones change every step).
  var currentTable: HostTensor {
    options.trainEmbeddings ? (executor.parameters()["embeddings"] ?? table) : table
  }

  /// Answers for examples, in order, as detokenized text (`Predictor`, batches of 64). Under MPI
  /// each rank decodes its share of the batches and rank 0 gets them all (the others get theirs).
  public func predict(_ examples: [Example], decoder: MQANDecoder) throws -> [String] {
    var predictor = Predictor(config: config, vocabulary: vocabulary, embeddings: currentTable,
                              maxOutput: options.maxOutput)
    predictor.shard = (communicator.rank, communicator.size)
    var (predictions, owned) = try predictor.predictShare(examples, decoder: decoder)
    if communicator.size > 1 {
      let shares = try communicator.gather(PredictionShards.encode(predictions, indices: owned))
      if communicator.rank == 0 { try PredictionShards.merge(shares, into: &predictions) }
    }
    return predictions.map(\.answer)
  }

  /// Writes `latest.safetensors` (and `best.safetensors` when `bestCandidate` is the new best).
  func save(report: (TrainEvent) -> Void, bestCandidate: Double?) throws {
    var params = executor.parameters()
    // The table goes into every checkpoint (fixed ones too), so a checkpoint alone can predict.
    if params["embeddings"] == nil { params["embeddings"] = table }
    var positions: [String: BatchIteratorState] = [:]
    for t in tasks { positions[t.name] = t.iterator.state }
    // Sorted keys: the same run writes the same bytes (a dictionary's order varies per process).
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let position = String(decoding: try encoder.encode(DataPosition(iterators: positions)), as: UTF8.self)
    let ck = Checkpoint(parameters: params, optimizer: optimizer.exportState(), optimizerConfig: optimizerConfig,
                        modelConfig: config.json(), vocabulary: String(decoding: vocabulary.jsonData(), as: UTF8.self),
                        decoderMode: DecoderMode.consistent.rawValue, step: step, dataPosition: position,
                        seed: options.seed, bestScore: best,
                        extra: [AnswerWords.metadataKey: answerWords().json()])
    let name = bestCandidate == nil ? "latest.safetensors" : "best.safetensors"
    let path = (options.save as NSString).appendingPathComponent(name)
    try ck.write(to: path)
    report(.checkpoint(step: step, path: path))
  }
}

extension Plan {
  /// Every weight name the plan reads, through scan bodies.
  var paramNames: [String] {
    var names: [String] = []
    for b in buffers { if case .param(let n) = b.storage, !names.contains(n) { names.append(n) } }
    for s in steps { for body in s.body { for n in body.paramNames where !names.contains(n) { names.append(n) } } }
    return names
  }
}
