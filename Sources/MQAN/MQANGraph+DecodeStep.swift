import Foundation
import GraphIR

/// Incremental decoding: the `encode` plan's inference outputs and the `decode-step` plan (decaNLP's
/// greedy loop, docs/MQAN.md section 5, with key/value caches and beams).
extension MQANGraph {
  /// Names of the decode-step plan's tensors (inputs, outputs and the encoder outputs it reads).
  public enum Step {
    /// Per layer l: the cross-attention keys and values of the encoder output that layer attends,
    /// projected once by the `encode` plan (`[B, Tc, d]`).
    public static func crossKeys(_ l: Int) -> String { "cross_keys.\(l)" }
    public static func crossValues(_ l: Int) -> String { "cross_values.\(l)" }
    /// Per layer l: the self-attention key/value cache `[B*K, S, d]` in, and updated out.
    public static func selfKeys(_ l: Int) -> String { "self_keys.\(l)" }
    public static func selfValues(_ l: Int) -> String { "self_values.\(l)" }
    public static func next(_ name: String) -> String { "next_\(name)" }
    /// The pointer LSTM's state and the input-fed output `[B*K, d]`, in and out.
    public static let states = ["h", "c", "o"]
  }

  /// The encoder for decoding: `encoder(_:)`'s outputs plus, per transformer-decoder layer, the
  /// cross-attention keys and values of the encoder output `mode` has that layer attend.
  ///
  /// With `shortlist`, input `shortlist [N]` and outputs `shortlist_weight [N, d]` and
  /// `shortlist_bias [N]`: the output layer's rows of those words, gathered once per batch for
  /// every decoding step.
  public static func encoder(_ config: ModelConfig, crossAttention mode: DecoderMode, shortlist: Bool = false,
                             name: String = "encode") throws(ModelError) -> Graph {
    try config.validate()
    var m = MQANGraph(config: config, name: name, recordActivations: false)
    do {
      let io = try m.inputs(answer: false)
      if shortlist {
        let (w, bias) = try m.shortlistRows(m.b.input("shortlist", .i32, [MQANDims.N]))
        try m.b.output("shortlist_weight", w)
        try m.b.output("shortlist_bias", bias)
      }
      let enc = try m.encode(io)
      try m.b.output("final_context", enc.finalContext)
      try m.b.output("final_question", enc.finalQuestion)
      try m.b.output("decoder_init_h", enc.initH)
      try m.b.output("decoder_init_c", enc.initC)
      for l in 0..<config.transformerLayers {
        let memory = enc.selfAttendedContext[mode == .decanlp ? l : l + 1]
        let kv = try m.projectKeysValues(memory, "self_attentive_decoder.layers.\(l).attention")
        try m.b.output(Step.crossKeys(l), kv.keys)
        try m.b.output(Step.crossValues(l), kv.values)
      }
    } catch {
      throw ModelError.graph(error.description)
    }
    return m.b.finish()
  }

  /// One decoding step for `B * K` hypotheses (K per batch item, row `b * K + k`), over the
  /// encoder's outputs: the transformer decoder layers on a key/value cache of `S` slots (each
  /// step projects only its own keys and values), then `pointerStep` (the training scan's body),
  /// the output layer and the mixture, and the K best next tokens of every row.
  ///
  /// Inputs: `embeddings`, `context_limited [B, Tc]`, `question_limited [B, Tq]`,
  /// `final_context`, `final_question`, `cross_keys.l`/`cross_values.l` (from
  /// `encoder(_:crossAttention:)`); `token [B*K]` (full id of each row's last token), `step [B*K]`
  /// (its position t: rows may be at different positions, as in a server whose requests join a
  /// running batch), `self_mask [B*K, S]` (1 for slots past the row's t), `reorder [B*K]` (the row of
  /// the previous step each row continues), the previous `h`, `c`, `o [B*K, d]` and caches
  /// `self_keys.l`/`self_values.l [B*K, S, d]`. Dims K and X (extended vocabulary) are given.
  ///
  /// Outputs: `next_h`, `next_c`, `next_o`, `next_self_keys.l`, `next_self_values.l` (the state
  /// after this step, in the new row order), `top_logp`/`top_ids [B, K, K]` (per row, the K
  /// largest log P over the extended vocabulary, best first), and `probs [B, K, X]` if asked.
  ///
  /// With `shortlist`, inputs `shortlist [N]` (distinct generative ids, ascending) and the
  /// encoder's `shortlist_weight [N, d]`, `shortlist_bias [N]`: the output layer computes those N
  /// words' logits only, placed among -inf for the other words, so the softmax and the mixture are
  /// exact over the N words and copying from context and question is unchanged (`fuse-output`
  /// then works on the N logits without the scatter).
  public static func decodeStep(_ config: ModelConfig, mode: DecoderMode, probs: Bool = false, shortlist: Bool = false,
                                name: String = "decode-step") throws(ModelError) -> Graph {
    try config.validate()
    var m = MQANGraph(config: config, name: name, recordActivations: false)
    do {
      try m.buildDecodeStep(mode: mode, probs: probs, shortlist: shortlist)
    } catch {
      throw ModelError.graph(error.description)
    }
    return m.b.finish()
  }

  mutating func buildDecodeStep(mode: DecoderMode, probs emitProbs: Bool, shortlist: Bool) throws(GraphError) {
    typealias D = MQANDims
    let dd = config.dimension
    let rows = D.B * D.K
    let emb = try b.input("embeddings", .f32, [D.Nv, Dim(config.embeddingDim)])
    let cli = try b.input("context_limited", .i32, [D.B, D.Tc])
    let qli = try b.input("question_limited", .i32, [D.B, D.Tq])
    let fc = try b.input("final_context", .f32, [D.B, D.Tc, d])
    let fq = try b.input("final_question", .f32, [D.B, D.Tq, d])
    let token = try b.input("token", .i32, [rows])
    let step = try b.input("step", .i32, [rows])
    let selfMask = try b.input("self_mask", .f32, [rows, D.S])
    let reorder = try b.input("reorder", .i32, [rows])
    var state: [Value] = []
    for n in Step.states { state.append(try b.embedding(b.input(n, .f32, [rows, d]), reorder)) }
    let padC = try b.padMask(cli, pad: config.pad)
    let padQ = try b.padMask(qli, pad: config.pad)

    // The new position's input: its token's embedding (scaled in decaNLP's greedy) + PE(t).
    var y = try embed(emb, b.reshape(token, [rows, Dim(1)]), "decoder_embeddings")        // [R, 1, d]
    if mode == .decanlp { y = try b.affine(y, alpha: Float(Double(dd).squareRoot())) }
    let pe = try b.embedding(b.positionalEncoding(D.S, d), step)                          // [R, d]
    var x = try b.add(y, b.reshape(pe, [rows, Dim(1), d]))
    for l in 0..<config.transformerLayers {
      let p = "self_attentive_decoder.layers.\(l)"
      let new = try projectKeysValues(x, "\(p).selfattn")
      let keys = try b.node(.cacheUpdate, [b.input(Step.selfKeys(l), .f32, [rows, D.S, d]), reorder, new.keys, step])[0]
      let values = try b.node(.cacheUpdate, [b.input(Step.selfValues(l), .f32, [rows, D.S, d]), reorder, new.values,
                                             step])[0]
      try b.output(Step.next(Step.selfKeys(l)), keys)
      try b.output(Step.next(Step.selfValues(l)), values)
      x = try attendBlock(x, keys: keys, values: values, "\(p).selfattn", keyPadding: selfMask, causal: false)
      // Cross-attention and feed-forward per batch item: its K rows are K queries.
      let xi = try b.reshape(x, [D.B, D.K, d])
      let crossK = try b.input(Step.crossKeys(l), .f32, [D.B, D.Tc, d])
      let crossV = try b.input(Step.crossValues(l), .f32, [D.B, D.Tc, d])
      let attended = try attendBlock(xi, keys: crossK, values: crossV, "\(p).attention",
                                     keyPadding: mode == .decanlp ? nil : padC, causal: false)
      x = try b.reshape(feedForwardBlock(attended, "\(p).feedforward"), [rows, Dim(1), d])
    }
    let u = try b.reshape(x, [rows, d])
    let s = try pointerStep(b, input: u, h: state[0], c: state[1], o: state[2], context: fc, question: fq,
                            contextPad: padC, questionPad: padQ, dropoutMasks: [], items: D.B, perItem: D.K)
    try b.output(Step.next("h"), s.h)
    try b.output(Step.next("c"), s.c)
    try b.output(Step.next("o"), s.output)
    let logits = shortlist ? try shortlistLogits(s.output, b.input("shortlist", .i32, [D.N]))
      : try linear(s.output, "out", out: config.generativeVocab, in: dd)
    func perItem(_ v: Value) throws(GraphError) -> Value { try b.reshape(v, [D.B, D.K, v.shape[1]]) }
    let pVocab = try b.softmax(logits)
    let probs = try b.node(.mixture, [perItem(pVocab), perItem(s.vocabSwitch), perItem(s.questionSwitch),
                                      perItem(s.contextAttention), cli, perItem(s.questionAttention), qli],
                           ["extended": .dim(D.X)])[0]
    if emitProbs { try b.output("probs", probs) }
    let top = try b.node(.topK, [probs], ["k": .dim(D.K), "log": .bool(true)])
    try b.output("top_logp", top[0])
    try b.output("top_ids", top[1])
  }

  /// The output layer's rows of the shortlisted words `ids [N]`: weight `[N, d]` and bias `[N]`.
  func shortlistRows(_ ids: Value) throws(GraphError) -> (weight: Value, bias: Value) {
    let v = config.generativeVocab, dd = config.dimension
    let w = try b.embedding(p("out.weight", [v, dd]), ids)
    let bias = try b.reshape(b.embedding(b.reshape(p("out.bias", [v]), [Dim(v), Dim(1)]), ids), [MQANDims.N])
    return (w, bias)
  }

  /// The output layer over the shortlisted words `ids [N]` (their rows from the encoder):
  /// `[rows, V]` logits, -inf outside them.
  func shortlistLogits(_ x: Value, _ ids: Value) throws(GraphError) -> Value {
    let w = try b.input("shortlist_weight", .f32, [MQANDims.N, Dim(config.dimension)])
    let bias = try b.input("shortlist_bias", .f32, [MQANDims.N])
    let logits = try b.linear(x, w, bias)                                                         // [R, N]
    return try b.node(.scatterColumns, [logits, ids], ["columns": .dim(Dim(config.generativeVocab)),
                                                       "fill": .float(-.infinity)])[0]
  }
}
