import Foundation
import GraphIR

/// MQAN's teacher-forced decoder: transformer decoder, dual-pointer LSTM decoder, output mixture
/// (docs/MQAN.md, section 4).
extension MQANGraph {
  struct Decoded {
    var probs: Value
  }

  mutating func decode(_ io: Inputs, _ enc: Encoded, mode: DecoderMode) throws(GraphError) -> Decoded {
    typealias D = MQANDims
    guard let answer = io.answer else { throw GraphError.graph("the decoder needs the answer input") }
    let dd = config.dimension
    let steps = D.Ta - Dim(1)
    let greedy = mode == .decanlp
    // Decoder-side masks come from the limited ids (decaNLP: context_limited == pad).
    let padC = try b.padMask(io.contextLimited, pad: config.pad)
    let padQ = try b.padMask(io.questionLimited, pad: config.pad)

    let answerEmbedded = try embed(io.embeddings, answer, "decoder_embeddings")      // [B, Ta, d]
    record("answer_embedded", answerEmbedded)
    var y = try b.slice(answerEmbedded, axis: 1, start: 0, length: steps)
    if greedy { y = try b.affine(y, alpha: Float(Double(dd).squareRoot())) }
    var x = try drop(b.add(y, b.positionalEncoding(steps, d)))
    let answerPad: Value?
    if !greedy, let limited = io.answerLimited {
      answerPad = try b.padMask(b.slice(limited, axis: 1, start: 0, length: steps), pad: config.pad)
    } else {
      answerPad = nil
    }
    for l in 0..<config.transformerLayers {
      let p = "self_attentive_decoder.layers.\(l)"
      // Training attends encoder output l+1 with the context mask; decaNLP's greedy attends
      // output l with no mask (docs/MQAN.md, section 5).
      let memory = enc.selfAttendedContext[greedy ? l : l + 1]
      x = try multiHeadBlock(x, x, "\(p).selfattn", keyPadding: answerPad, causal: true)
      x = try multiHeadBlock(x, memory, "\(p).attention", keyPadding: greedy ? nil : padC, causal: false)
      x = try feedForwardBlock(x, "\(p).feedforward")
    }
    record(greedy ? "greedy_decoder_input" : "self_attended_decoded", x)

    let out = try dualPointerDecoder(x, enc, padC: padC, padQ: padQ)
    record(greedy ? "greedy_rnn_output" : "rnn_output", out.output)
    if !greedy {
      record("context_attention", out.contextAttention)
      record("question_attention", out.questionAttention)
      record("vocab_pointer_switch", out.vocabSwitch)
      record("context_question_switch", out.questionSwitch)
    }
    let logits = try linear(out.output, "out", out: config.generativeVocab, in: dd)
    let pVocab = try b.softmax(logits)
    let probs = try b.node(.mixture, [pVocab, out.vocabSwitch, out.questionSwitch, out.contextAttention,
                                      io.contextLimited, out.questionAttention, io.questionLimited],
                           ["extended": .dim(D.X)])[0]
    if greedy { record("greedy_probs", probs) }
    return Decoded(probs: probs)
  }

  struct PointerOutputs {
    var output: Value, contextAttention: Value, questionAttention: Value, vocabSwitch: Value, questionSwitch: Value
  }

  /// `DualPtrRNNDecoder` as one scan with input feeding: carries (h, c, o), per-step outputs o_t,
  /// both attentions and both switches, stacked over time.
  func dualPointerDecoder(_ u: Value, _ enc: Encoded, padC: Value, padQ: Value) throws(GraphError) -> PointerOutputs {
    typealias D = MQANDims
    let dd = config.dimension
    let r = "dual_ptr_rnn_decoder"
    let o0 = try b.zeros([D.B, d])
    // Dropout masks for every step, drawn outside the scan and fed in as sequences: the fed-back
    // output, the LSTM input, the two switches' inputs and the emitted output.
    let steps = u.shape[1]
    var masks: [Value] = []
    for width in [dd, 2 * dd, 4 * dd, 4 * dd, dd] {
      if let m = try dropoutMask([D.B, steps, Dim(width)], dropoutRate) { masks.append(m) }
    }
    let res = try b.scan(name: r, seqs: [u] + masks, carries: [enc.initH, enc.initC, o0],
                         consts: [enc.finalContext, enc.finalQuestion, padC, padQ]) { body, s throws(GraphError) in
      let step = try pointerStep(body, input: s.seqs[0], h: s.carries[0], c: s.carries[1], o: s.carries[2],
                                 context: s.consts[0], question: s.consts[1], contextPad: s.consts[2],
                                 questionPad: s.consts[3], dropoutMasks: Array(s.seqs.dropFirst()),
                                 items: D.B, perItem: Dim(1))
      return ([step.h, step.c, step.output],
              [step.output, step.contextAttention, step.questionAttention, step.vocabSwitch, step.questionSwitch])
    }
    return PointerOutputs(output: res.outputs[0], contextAttention: res.outputs[1], questionAttention: res.outputs[2],
                          vocabSwitch: res.outputs[3], questionSwitch: res.outputs[4])
  }

  /// One step of `DualPtrRNNDecoder`, written once: the scan body of training and the pointer part
  /// of the `decode-step` plan. Rows are `items * perItem` hypotheses (batch item `i` owns rows
  /// `i * perItem ..< (i + 1) * perItem`); `context`/`question` and their pad masks are per item.
  /// `dropoutMasks` are the 5 per-step masks (fed output, LSTM input, two switch inputs, emitted
  /// output) or empty.
  func pointerStep(_ body: GraphBuilder, input u: Value, h: Value, c: Value, o: Value, context fc: Value,
                   question fq: Value, contextPad mc: Value, questionPad mq: Value, dropoutMasks: [Value],
                   items: Dim, perItem: Dim) throws(GraphError) -> PointerStep
  {
    let dd = config.dimension
    let r = "dual_ptr_rnn_decoder"
    func w(_ name: String, _ shape: [Int]) throws(GraphError) -> Value { try body.param(name, shape.map { Dim($0) }) }
    func drop(_ x: Value, _ k: Int) throws(GraphError) -> Value {
      dropoutMasks.isEmpty ? x : try body.mul(x, dropoutMasks[k])
    }
    let e = try body.concat([u, drop(o, 0)], axis: -1)                                // input feeding [R, 2d]
    let gates = try body.add(body.linear(drop(e, 1), w("\(r).rnn.layers.0.weight_ih", [4 * dd, 2 * dd]),
                                         w("\(r).rnn.layers.0.bias_ih", [4 * dd])),
                             body.linear(h, w("\(r).rnn.layers.0.weight_hh", [4 * dd, dd]),
                                         w("\(r).rnn.layers.0.bias_hh", [4 * dd])))
    let cell = try body.lstmCell(gates: gates, c: c)
    let ctx = try pointerAttention(body, cell.h, fc, mc, "\(r).context_attn", items: items, perItem: perItem)
    let qst = try pointerAttention(body, cell.h, fq, mq, "\(r).question_attn", items: items, perItem: perItem)
    let gamma = try body.sigmoid(body.linear(drop(body.concat([cell.h, ctx.out, e], axis: -1), 2),
                                             w("\(r).vocab_pointer_switch.0.linear.weight", [1, 4 * dd]),
                                             w("\(r).vocab_pointer_switch.0.linear.bias", [1])))
    let lambda = try body.sigmoid(body.linear(drop(body.concat([cell.h, qst.out, e], axis: -1), 3),
                                              w("\(r).context_question_switch.0.linear.weight", [1, 4 * dd]),
                                              w("\(r).context_question_switch.0.linear.bias", [1])))
    return PointerStep(h: cell.h, c: cell.c, output: try drop(ctx.out, 4), contextAttention: ctx.attention,
                       questionAttention: qst.attention, vocabSwitch: gamma, questionSwitch: lambda)
  }

  struct PointerStep {
    var h: Value, c: Value, output: Value, contextAttention: Value, questionAttention: Value
    var vocabSwitch: Value, questionSwitch: Value
  }

  /// `LSTMDecoderAttention(dot=True)`: scores M h, -inf mask, softmax + 1e-10, read-out, then
  /// tanh(W_out [h ; m̂]). `h` is `[items * perItem, d]`, `memory` `[items, L, d]`, `mask`
  /// `[items, L]`. Returns the output `[items * perItem, d]` and the attention `[items * perItem, L]`.
  func pointerAttention(_ body: GraphBuilder, _ h: Value, _ memory: Value, _ mask: Value, _ prefix: String,
                        items: Dim, perItem: Dim) throws(GraphError) -> (out: Value, attention: Value)
  {
    let dd = config.dimension
    let len = memory.shape[1]
    let h3 = try body.reshape(h, [items, perItem, d])
    let scores = try body.matmul(h3, memory, transB: true)                            // [items, perItem, L]
    let a = try body.softmax(scores, mask: mask, fill: -Float.infinity, eps: 1e-10)
    let readout = try body.reshape(body.matmul(a, memory), [items * perItem, d])
    let wOut = try body.param("\(prefix).linear_out.weight", [d, Dim(2 * dd)])
    let out = try body.tanh(body.linear(body.concat([h, readout], axis: -1), wOut))
    return (out, try body.reshape(a, [items * perItem, len]))
  }
}
