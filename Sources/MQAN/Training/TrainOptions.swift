import GraphIR
/// What `mqan train` was asked to do.
public struct TrainOptions: Sendable {
  public var dataDir: String
  public var tasks: [String]
  public var config: ModelConfig
  public var embeddings: String?
  /// Train the word-vector table too (from `embeddings`, or from scratch without a file).
  public var trainEmbeddings = false
  public var save: String
  public var resume = false
  public var steps = 1000
  public var saveEvery = 500
  public var valEvery = 200
  public var batchTokens = 9000
  public var jumpStart = 0
  public var seed: UInt64 = 123
  public var threads = 2
  /// `ExecutorOptions.checkNumerics` for the training step and validation: the first NaN or
  /// infinity stops training with an error naming its step, before any checkpoint is written.
  public var checkNumerics = false
  public var dropout: Float?
  /// Validation examples per task (nil: all), and the longest greedy answer.
  public var valExamples: Int?
  public var maxOutput = 50
  /// Learning-rate warmup (decaNLP: 800).
  public var warmup = 800
  /// The GEMM the train and decoding plans are compiled for (nil: this CPU's best mqan path).
  public var gemm: GemmTarget?
  /// Under mpirun: sum each bucket of gradients over the ranks as soon as the backward pass has
  /// finished it, on a thread of its own (false: after the whole backward pass). The same bits
  /// either way.
  public var overlapGradientSum = false

  public init(dataDir: String, tasks: [String], config: ModelConfig, save: String) {
    self.dataDir = dataDir
    self.tasks = tasks
    self.config = config
    self.save = save
  }
}

/// What the trainer reports as it goes (the CLI prints these; log.jsonl records them).
public enum TrainEvent: Sendable {
  case prepared(String)
  /// Something about the input the user should know (the CLI prints it on stderr).
  case warning(String)
  case step(step: Int, task: String, loss: Double, lr: Double, tokensPerSecond: Double, elapsed: Double)
  case validation(step: Int, task: String, metric: String, score: Double)
  case decaScore(step: Int, score: Double)
  case checkpoint(step: Int, path: String)
}
