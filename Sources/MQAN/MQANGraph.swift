import GraphIR

/// Which transformer-decoder computation a graph uses (docs/MQAN.md, sections 4 and 5, and the first
/// of its section 6's surprises).
public enum DecoderMode: String, Codable, Sendable, CaseIterable {
  /// decaNLP's greedy decoding: embeddings scaled by sqrt(d), layer l attends encoder output l,
  /// no context mask in the cross-attention.
  case decanlp
  /// The computation decaNLP trains with: no scaling, layer l attends encoder output l + 1, masked.
  case consistent
}

/// What a forward graph should return.
public struct ForwardOptions: Sendable {
  /// Teacher-forced decoder computation: `consistent` is decaNLP's training decoder.
  public var decoder: DecoderMode = .consistent
  /// Emit the loss (needs `answer_limited` targets).
  public var loss = true
  /// Emit the output mixture P `[B, Ta-1, V+N]`.
  public var probs = false
  /// Emit every named activation (the parity fixtures' `expected.act.*` names).
  public var activations = false
  /// Training-mode dropout at decaNLP's sites: this rate where decaNLP has `dropout_ratio` (0.2),
  /// 0.3 on the coattention's context (or 0 when this is 0). nil: evaluation, no dropout. The graph
  /// then takes an input `dropout_seed` (i32 [1]) that the trainer changes every step.
  public var dropout: Float? = nil
  /// Train the word-vector table: it becomes the weight `embeddings` of this many rows (the
  /// vocabulary) instead of the input of that name.
  public var trainedEmbeddingRows: Int? = nil
  public init(decoder: DecoderMode = .consistent, loss: Bool = true, probs: Bool = false, activations: Bool = false) {
    self.decoder = decoder
    self.loss = loss
    self.probs = probs
    self.activations = activations
  }
}

/// The symbolic dims of MQAN's graphs.
public enum MQANDims {
  /// Batch size.
  public static let B = Dim.sym("B")
  /// Padded context, question and answer lengths (counting `<init>` and `<eos>`).
  public static let Tc = Dim.sym("Tc"), Tq = Dim.sym("Tq"), Ta = Dim.sym("Ta")
  /// The extended vocabulary of a batch: V generative words + the batch's OOV words.
  public static let X = Dim.sym("X")
  /// Rows of the fixed embedding table (the full vocabulary).
  public static let Nv = Dim.sym("Nv")
  /// Decoding: hypotheses per batch item (the beam width) and the key/value cache's slots (the
  /// most output tokens).
  public static let K = Dim.sym("K"), S = Dim.sym("S")
  /// Decoding with a vocabulary shortlist: the words the output layer computes.
  public static let N = Dim.sym("N")
}

/// MQAN described once with the graph builder, exactly as docs/MQAN.md gives decaNLP's computation.
public struct MQANGraph {
  public let config: ModelConfig
  let b: GraphBuilder
  var activations: [(String, Value)] = []
  let recordActivations: Bool
  /// Dropout: the seed input, the rate at decaNLP's 0.2 sites, and a counter telling sites apart.
  var dropoutSeed: Value?
  var dropoutRate: Float = 0
  let salts = SaltCounter()

  final class SaltCounter { var next = 0 }

  init(config: ModelConfig, name: String, recordActivations: Bool) {
    self.config = config
    self.b = GraphBuilder(name: name)
    self.recordActivations = recordActivations
  }

  /// A dropout mask of `shape` (1/(1-p) kept, 0 dropped), or nil when dropout is off.
  func dropoutMask(_ shape: [Dim], _ p: Float) throws(GraphError) -> Value? {
    guard let seed = dropoutSeed, p > 0 else { return nil }
    salts.next += 1
    return try b.node(.dropoutMask, [seed], ["p": .float(p), "salt": .int(salts.next), "shape": .dims(shape)])[0]
  }

  /// decaNLP's inverted dropout on x (identity when dropout is off).
  func drop(_ x: Value, _ p: Float? = nil) throws(GraphError) -> Value {
    guard let mask = try dropoutMask(x.shape, p ?? dropoutRate) else { return x }
    return try b.mul(x, mask)
  }

  /// The coattention's context dropout: 0.3 in decaNLP, off when the rate is set to 0.
  var coattentionRate: Float { dropoutRate > 0 ? 0.3 : 0 }

  var d: Dim { Dim(config.dimension) }
  var half: Dim { Dim(config.dimension / 2) }

  /// The teacher-forced forward pass (the `train` graph until autodiff adds the backward pass).
  ///
  /// Inputs: `embeddings [Nv, E]`, `context`/`question`/`answer` full ids, `*_lengths` for context
  /// and question, `*_limited` decoder ids; `limited_to_full [X]`; outputs as `options` asks.
  public static func forward(_ config: ModelConfig, options: ForwardOptions = .init(),
                             name: String = "train") throws(ModelError) -> Graph {
    try config.validate()
    var m = MQANGraph(config: config, name: name, recordActivations: options.activations)
    if let rate = options.dropout, !(rate >= 0 && rate < 1) {
      throw ModelError.config(field: "dropout", problem: "must be in [0, 1), got \(rate)")
    }
    do {
      if let rate = options.dropout, rate > 0 {
        m.dropoutRate = rate
        m.dropoutSeed = try m.b.input("dropout_seed", .i32, [1])
      }
      try m.buildForward(options)
    } catch {
      throw ModelError.graph(error.description)
    }
    return m.b.finish()
  }

  /// The encoder alone (the `encode` plan): final context and question, the transformer
  /// encoder's outputs the decoder attends, and the decoder's initial LSTM state.
  public static func encoder(_ config: ModelConfig, name: String = "encode") throws(ModelError) -> Graph {
    try config.validate()
    var m = MQANGraph(config: config, name: name, recordActivations: false)
    do {
      let io = try m.inputs(answer: false)
      let enc = try m.encode(io)
      for (i, e) in enc.selfAttendedContext.enumerated() { try m.b.output("self_attended_context.\(i)", e) }
      try m.b.output("final_context", enc.finalContext)
      try m.b.output("final_question", enc.finalQuestion)
      try m.b.output("decoder_init_h", enc.initH)
      try m.b.output("decoder_init_c", enc.initC)
    } catch {
      throw ModelError.graph(error.description)
    }
    return m.b.finish()
  }

  /// The decoder alone, over the encoder's outputs (fed as inputs, as `encoder(_:)` returns them):
  /// the teacher-forced decoder on an answer prefix, returning the mixture P `[B, Ta-1, X]`.
  /// `PrefixDecoder` runs it on a growing prefix: the slow, exact reference twin of the
  /// `decode-step` plan with key/value caches (`decodeStep(_:mode:)`) that decoding runs.
  public static func decoder(_ config: ModelConfig, mode: DecoderMode, name: String = "decode") throws(ModelError) -> Graph {
    try config.validate()
    var m = MQANGraph(config: config, name: name, recordActivations: false)
    do {
      typealias D = MQANDims
      let b = m.b, d = m.d
      let emb = try b.input("embeddings", .f32, [D.Nv, Dim(config.embeddingDim)])
      let cli = try b.input("context_limited", .i32, [D.B, D.Tc])
      let qli = try b.input("question_limited", .i32, [D.B, D.Tq])
      let answer = try b.input("answer", .i32, [D.B, D.Ta])
      let l2f = try b.input("limited_to_full", .i32, [D.X])
      var attended: [Value] = []
      for l in 0...config.transformerLayers {
        attended.append(try b.input("self_attended_context.\(l)", .f32, [D.B, D.Tc, d]))
      }
      let enc = Encoded(selfAttendedContext: attended,
                        finalContext: try b.input("final_context", .f32, [D.B, D.Tc, d]),
                        finalQuestion: try b.input("final_question", .f32, [D.B, D.Tq, d]),
                        initH: try b.input("decoder_init_h", .f32, [D.B, d]),
                        initC: try b.input("decoder_init_c", .f32, [D.B, d]))
      // Full ids of context and question are not needed past the encoder; the limited ids mask
      // the pointers (their pad positions are the same).
      var io = Inputs(embeddings: emb, context: cli, contextLengths: cli, contextLimited: cli,
                      question: qli, questionLengths: qli, questionLimited: qli)
      io.answer = answer
      io.limitedToFull = l2f
      let dec = try m.decode(io, enc, mode: mode)
      try b.output("probs", dec.probs)
    } catch {
      throw ModelError.graph(error.description)
    }
    return m.b.finish()
  }

  mutating func record(_ name: String, _ v: Value) {
    if recordActivations { activations.append((name, v)) }
  }

  struct Inputs {
    var embeddings: Value
    var context: Value, contextLengths: Value, contextLimited: Value
    var question: Value, questionLengths: Value, questionLimited: Value
    var answer: Value?, answerLimited: Value?
    /// Decoder id -> full id `[X]`; it also fixes X, the extended vocabulary size.
    var limitedToFull: Value?
  }

  func inputs(answer: Bool, targets: Bool = true, trainedEmbeddingRows: Int? = nil) throws(GraphError) -> Inputs {
    typealias D = MQANDims
    let emb: Value
    if let rows = trainedEmbeddingRows {
      emb = try b.param("embeddings", [Dim(rows), Dim(config.embeddingDim)])
    } else {
      emb = try b.input("embeddings", .f32, [D.Nv, Dim(config.embeddingDim)])
    }
    let c = try b.input("context", .i32, [D.B, D.Tc])
    let cl = try b.input("context_lengths", .i32, [D.B])
    let cli = try b.input("context_limited", .i32, [D.B, D.Tc])
    let q = try b.input("question", .i32, [D.B, D.Tq])
    let ql = try b.input("question_lengths", .i32, [D.B])
    let qli = try b.input("question_limited", .i32, [D.B, D.Tq])
    var io = Inputs(embeddings: emb, context: c, contextLengths: cl, contextLimited: cli,
                    question: q, questionLengths: ql, questionLimited: qli)
    if answer {
      io.answer = try b.input("answer", .i32, [D.B, D.Ta])
      if targets { io.answerLimited = try b.input("answer_limited", .i32, [D.B, D.Ta]) }
      io.limitedToFull = try b.input("limited_to_full", .i32, [D.X])
    }
    return io
  }

  mutating func buildForward(_ options: ForwardOptions) throws(GraphError) {
    let io = try inputs(answer: true, targets: options.loss, trainedEmbeddingRows: options.trainedEmbeddingRows)
    let enc = try encode(io)
    let dec = try decode(io, enc, mode: options.decoder)
    if options.probs { try b.output("probs", dec.probs) }
    if options.loss, let targetsFull = io.answerLimited {
      let targets = try b.slice(targetsFull, axis: 1, start: 1, length: MQANDims.Ta - Dim(1))
      let loss = try b.node(.nllLoss, [dec.probs, targets], ["ignore": .int(config.pad)])[0]
      try b.output("loss", loss)
    }
    for (name, v) in activations { try b.output("act.\(name)", v) }
  }
}
