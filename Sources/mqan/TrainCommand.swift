import ArgumentParser
import Collective
import Foundation
import GraphIR
import MQAN

/// `mqan train`: train MQAN on decaNLP-format tasks.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train MQAN on one or more decaNLP tasks (round-robin), with validation and checkpoints.",
    discussion: """
      train compiles its own plans from the model config (it takes no --plan file): the train plan \
      is the graph `mqan compile --plan train` prints with the same --dropout, and validation \
      decodes with the encode and decode-step plans of `mqan compile --plan all`. Under mpirun (or \
      srun) N ranks train data-parallel: every rank draws the same global batch of --batch-tokens \
      and trains on its share (the budget is split across ranks, not per rank); the gradients are \
      summed in rank order, so N ranks follow one process's loss curve; rank 0 writes log.jsonl, \
      loss.svg and the checkpoints; --threads is per rank.
      """)

  @Option(help: "Folder with one folder per task holding train.jsonl and validation.jsonl.") var data: String
  @Option(help: "Tasks, comma-separated, each once (e.g. sst,squad,multi30k.en.de).") var tasks: String
  @OptionGroup var model: ModelOptions
  @OptionGroup var gemm: GemmOption
  @Option(help: "GloVe text-format word vectors (word v1 v2 ...); missing words get zeros.") var embeddings: String?
  @Flag(help: "Train the word-vector table too (from --embeddings, or from scratch without it).") var trainEmbeddings = false
  @Option(help: "Folder for checkpoints, log.jsonl and loss.svg (created if missing).") var save: String
  @Flag(help: "After each stage of every plan run, check its outputs for NaN and infinities; the first one is an error naming its plan step and IR node (costs about one more read of what each run writes).")
  var checkNumerics = false
  @Flag(help: "Continue from <save>/latest.safetensors (an error when there is none).") var resume = false
  @Option(help: "Training steps in all (with --resume: at least the checkpoint's step).") var steps = 1000
  @Option(help: "Checkpoint every N steps (and at the end).") var saveEvery = 500
  @Option(help: "Validate every N steps (and at the end).") var valEvery = 200
  @Option(help: "Validation examples per task, >= 1. (default: all)") var valExamples: Int?
  @Option(help: "Tokens per batch (decaNLP's budget; 1...1000000): the global batch, split across ranks under mpirun.") var batchTokens = 9000
  @Option(help: "Steps on the first task alone before round-robin (anti-curriculum).") var jumpStart = 0
  @Option(help: "Seed for initialisation and batching.") var seed: UInt64 = 123
  @Option(help: "Threads (1...256), per rank under mpirun.") var threads = 2
  @Option(help: "Learning-rate warmup steps.") var warmup = 800
  @Option(help: "Longest greedy answer at validation (1...1000).") var maxOutput = 50
  @Option(help: ArgumentHelp(
    "Under mpirun: sum each bucket of gradients over the ranks while the backward pass goes on (on), or after it "
      + "(off); the same results either way. auto: on where this host's ranks x threads leave a core free.",
    valueName: "auto|on|off"))
  var overlapGradientSum = "auto"
  @Option(help: "Dropout rate at decaNLP's sites, in [0, 1) (decaNLP's dropout_ratio; 0 turns dropout off). (default: 0.2)")
  var dropout: Float?

  func run() throws {
    for (name, v, r) in [("steps", steps, 1...Limits.count), ("save-every", saveEvery, 1...Limits.count),
                         ("val-every", valEvery, 1...Limits.count), ("batch-tokens", batchTokens, 1...Limits.batchTokens),
                         ("threads", threads, 1...Limits.threads), ("warmup", warmup, 1...Limits.count),
                         ("max-output", maxOutput, 1...Limits.maxOutput), ("jump-start", jumpStart, 0...Limits.count),
                         ("val-examples", valExamples ?? 1, 1...Limits.count)] {
      try checkRange(name, v, r)
    }
    let taskNames = try taskList(tasks)
    try reportingErrors {
      let comm = try JobPlacement.join(threads: threads)
      var (_, config) = try model.load()
      if model.preset == nil && model.config == nil { config = .default }
      var options = TrainOptions(dataDir: data, tasks: taskNames, config: config,
                                 save: save)
      options.embeddings = embeddings
      options.trainEmbeddings = trainEmbeddings
      options.resume = resume
      options.steps = steps
      options.saveEvery = saveEvery
      options.valEvery = valEvery
      options.valExamples = valExamples
      options.batchTokens = batchTokens
      options.jumpStart = jumpStart
      options.seed = seed
      options.gemm = try gemm.target()
      options.threads = threads
      options.checkNumerics = checkNumerics
      options.warmup = warmup
      options.maxOutput = maxOutput
      switch overlapGradientSum {
      case "on": options.overlapGradientSum = true
      case "off": options.overlapGradientSum = false
      case "auto":
        options.overlapGradientSum = JobPlacement.hasSpareCore(threads: threads, env: ProcessInfo.processInfo.environment,
                                                               hostCores: sysconf(Int32(_SC_NPROCESSORS_ONLN)))
      default: throw ValidationError("--overlap-gradient-sum: \"\(overlapGradientSum)\" is not auto, on or off")
      }
      if let p = dropout {
        guard p >= 0 && p < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(p)") }
        options.dropout = p
      }
      // mpirun hands its ranks a pseudo-terminal whatever its own stdout is: lines, not a progress bar.
      let terminal = isatty(1) != 0 && Communicator.launchedSize() == nil
      var lastPrint = Date.distantPast
      // Unbuffered, so a piped log shows progress as it happens (a failed write ends the run
      // with an error when it returns).
      func print(_ s: String, terminator: String = "\n") {
        Output.put(Array((s + terminator).utf8))
        try? Output.check()
      }
      let report: (TrainEvent) -> Void = { event in
        guard comm.rank == 0 else { return }  // one voice for the job
        switch event {
        case .prepared(let s):
          print(s)
        case .warning(let s):
          note("warning: " + s)
        case .step(let step, let task, let loss, let lr, let tps, let elapsed):
          let eta = elapsed / Double(step) * Double(max(steps - step, 0))
          let line = String(format: "step %d/%d %@ loss %.4f lr %.2e %.0f tok/s elapsed %.0fs eta %.0fs",
                            step, steps, task, loss, lr, tps, elapsed, eta)
          if terminal {
            print("\r\u{1B}[K" + line, terminator: "")
          } else if step == 1 || step % 10 == 0 || Date().timeIntervalSince(lastPrint) > 30 {
            print(line)
            lastPrint = Date()
          }
        case .validation(let step, let task, let metric, let score):
          print((terminal ? "\n" : "") + String(format: "validation step %d %@ %@ %.2f", step, task, metric, score))
        case .decaScore(let step, let score):
          print(String(format: "validation step %d decaScore %.2f", step, score))
        case .checkpoint(let step, let path):
          if !terminal { print("checkpoint step \(step): \(path)") }
        }
      }
      let trainer = try Trainer(options, communicator: comm, report: report)
      try trainer.run(report: report)
      if terminal { print("") }
    }
  }
}
