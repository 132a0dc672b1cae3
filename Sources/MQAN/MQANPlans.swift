import Compiler
import GraphIR

/// Which of MQAN's plans a graph is for.
public enum MQANPlanKind: String, CaseIterable, Sendable {
  /// The teacher-forced forward pass with the loss, and autodiff's backward pass (`grad.*`): what
  /// one training step runs before the optimizer.
  case train
  /// The teacher-forced forward pass alone (loss, probabilities or activations as asked): parity
  /// checks and forward-only profiling.
  case forward
  /// The encoder for decoding, with each decoder layer's cross-attention keys and values.
  case encode
  /// One decoding step over key/value caches.
  case decodeStep = "decode-step"
}

/// What a plan's graph is built with, beyond the model's config.
public struct MQANPlanOptions: Sendable {
  /// The transformer decoder's computation (train and forward are decaNLP's training computation,
  /// `consistent`, unless asked otherwise).
  public var decoder: DecoderMode = .consistent
  /// Training-mode dropout at decaNLP's sites (train and forward only); nil or 0: none.
  public var dropout: Float?
  /// Train the word-vector table: it becomes a weight of this many rows.
  public var trainedEmbeddingRows: Int?
  /// Forward only: which outputs besides the loss.
  public var loss = true, probs = false, activations = false
  /// The graph's name (forward only; nil: the kind's own name).
  public var name: String?
  /// Encode and decode-step: the output layer over a vocabulary shortlist (input `shortlist [N]`;
  /// the encoder gathers its rows once per batch).
  public var shortlist = false

  public init(decoder: DecoderMode = .consistent, dropout: Float? = nil) {
    self.decoder = decoder
    self.dropout = dropout
  }

  /// What `mqan train` runs: decaNLP's training computation with `dropout` (default decaNLP's
  /// `dropout_ratio`, `MQANPlans.trainingDropout`).
  public static func training(dropout: Float? = nil, trainedEmbeddingRows: Int? = nil) -> MQANPlanOptions {
    var o = MQANPlanOptions(decoder: .consistent, dropout: dropout ?? MQANPlans.trainingDropout)
    o.trainedEmbeddingRows = trainedEmbeddingRows
    return o
  }
}

/// The one place that says which graph each plan kind compiles from. `mqan compile`, `mqan
/// profile`, the trainer, the decoder, the parity check and the IR goldens all build their graphs
/// here, so a plan printed by `mqan compile` is the plan the other commands run.
public enum MQANPlans {
  /// decaNLP's `dropout_ratio`: the dropout `mqan train` runs with unless told otherwise.
  public static let trainingDropout: Float = 0.2

  /// The graph of a plan `kind` for `config`, before the compiler's passes.
  public static func graph(kind: MQANPlanKind, config: ModelConfig, options: MQANPlanOptions = .init())
    throws(ModelError) -> Graph
  {
    switch kind {
    case .train, .forward:
      var forward = ForwardOptions(decoder: options.decoder, loss: kind == .train || options.loss,
                                   probs: kind == .forward && options.probs,
                                   activations: kind == .forward && options.activations)
      forward.dropout = options.dropout
      forward.trainedEmbeddingRows = options.trainedEmbeddingRows
      return try MQANGraph.forward(config, options: forward, name: kind == .train ? "train" : options.name ?? "train")
    case .encode:
      return try MQANGraph.encoder(config, crossAttention: options.decoder, shortlist: options.shortlist)
    case .decodeStep:
      return try MQANGraph.decodeStep(config, mode: options.decoder, shortlist: options.shortlist)
    }
  }

  /// The compiler options a plan `kind` needs: the train plan differentiates its `loss`.
  public static func compileOptions(kind: MQANPlanKind, _ base: CompileOptions = CompileOptions()) -> CompileOptions {
    var options = base
    options.differentiate = kind == .train ? "loss" : nil
    // Reduced precision is for inference; training computes in fp32.
    if kind == .train { options.precision = nil }
    return options
  }

  /// The graph of `kind` through the compiler.
  public static func compile(kind: MQANPlanKind, config: ModelConfig, options: MQANPlanOptions = .init(),
                             compileOptions base: CompileOptions = CompileOptions()) throws -> Compilation {
    try Compiler.compile(graph(kind: kind, config: config, options: options),
                         options: compileOptions(kind: kind, base))
  }
}
