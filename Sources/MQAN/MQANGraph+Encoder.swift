import GraphIR

/// MQAN's encoder (MultitaskQuestionAnsweringNetwork.forward up to the decoder; docs/MQAN.md, section 3).
extension MQANGraph {
  struct Encoded {
    var selfAttendedContext: [Value]
    var finalContext: Value
    var finalQuestion: Value
    /// The decoder's initial state [B, d]: [forward ; backward] final state of the context BiLSTM.
    var initH: Value, initC: Value
  }

  mutating func encode(_ io: Inputs) throws(GraphError) -> Encoded {
    typealias D = MQANDims
    let xc = try embed(io.embeddings, io.context, "encoder_embeddings")
    let xq = try embed(io.embeddings, io.question, "encoder_embeddings")
    record("context_embedded", xc)
    record("question_embedded", xq)
    // One BiLSTM for both (shared weights: CSE merges the param nodes).
    let hc = try bilstm(xc, lengths: io.contextLengths, "bilstm_before_coattention").out
    let hq = try bilstm(xq, lengths: io.questionLengths, "bilstm_before_coattention").out
    record("context_encoded", hc)
    record("question_encoded", hq)
    let padC = try b.padMask(io.context, pad: config.pad)
    let padQ = try b.padMask(io.question, pad: config.pad)
    let (cc, cq) = try coattention(hc, hq, padC: padC, padQ: padQ)
    record("coattended_context", cc)
    record("coattended_question", cq)

    let uc = try bilstm(b.concat([cc, hc, xc], axis: -1), lengths: io.contextLengths,
                        "context_bilstm_after_coattention").out
    record("condensed_context", uc)
    let ec = try transformerEncoder(uc, "self_attentive_encoder_context", padding: padC)
    for (i, e) in ec.enumerated() { record("self_attended_context.\(i)", e) }
    let fc = try bilstm(ec.last ?? uc, lengths: io.contextLengths, "bilstm_context")
    record("final_context", fc.out)

    let uq = try bilstm(b.concat([cq, hq, xq], axis: -1), lengths: io.questionLengths,
                        "question_bilstm_after_coattention").out
    record("condensed_question", uq)
    let eq = try transformerEncoder(uq, "self_attentive_encoder_question", padding: padQ)
    for (i, e) in eq.enumerated() { record("self_attended_question.\(i)", e) }
    let fq = try bilstm(eq.last ?? uq, lengths: io.questionLengths, "bilstm_question").out
    record("final_question", fq)

    // reshape_rnn_state: (2, B, d/2) -> (1, B, d), forward direction first.
    let h0 = try b.concat([fc.h.0, fc.h.1], axis: -1)
    let c0 = try b.concat([fc.c.0, fc.c.1], axis: -1)
    record("decoder_init_h", try b.reshape(h0, [1, D.B, d]))
    record("decoder_init_c", try b.reshape(c0, [1, D.B, d]))
    return Encoded(selfAttendedContext: ec, finalContext: fc.out, finalQuestion: fq, initH: h0, initC: c0)
  }

  /// `CoattentiveLayer`: sentinels, affinity, the two masked softmaxes and the four summaries.
  /// Returns Cc [B, Tc, 2d] and Cq [B, Tq, 2d].
  func coattention(_ c: Value, _ q: Value, padC: Value, padQ: Value) throws(GraphError) -> (Value, Value) {
    typealias D = MQANDims
    let dd = config.dimension
    let sentinels = try p("coattention.embed_sentinel.weight", [2, dd])
    let s0 = try b.broadcast(b.reshape(b.slice(sentinels, axis: 0, start: 0, length: 1), [d]), to: [D.B, 1, d])
    let s1 = try b.broadcast(b.reshape(b.slice(sentinels, axis: 0, start: 1, length: 1), [d]), to: [D.B, 1, d])
    let chat = try b.concat([s0, drop(c, coattentionRate)], axis: 1)               // [B, Tc+1, d]
    let qhat = try b.tanh(linear(b.concat([s1, q], axis: 1), "coattention.proj.linear", out: dd, in: dd))
    let never = try b.zeros([D.B, 1])
    let padC1 = try b.concat([never, padC], axis: 1)                                // sentinel never masked
    let padQ1 = try b.concat([never, padQ], axis: 1)
    let affinity = try b.matmul(chat, qhat, transB: true)                           // [B, Tc+1, Tq+1]
    // α: softmax over the context axis; held transposed as αᵀ [B, Tq+1, Tc+1].
    let alphaT = try b.softmax(b.transpose(affinity), mask: padC1)
    // β: softmax over the question axis; βᵀ [B, Tc+1, Tq+1].
    let betaT = try b.softmax(affinity, mask: padQ1)
    let sumC = try b.matmul(alphaT, chat)                                           // [B, Tq+1, d]
    let sumQ = try b.matmul(betaT, qhat)                                            // [B, Tc+1, d]
    let coC = try b.matmul(betaT, sumC)                                             // [B, Tc+1, d]
    let coQ = try b.matmul(alphaT, sumQ)                                            // [B, Tq+1, d]
    let cc = try b.slice(b.concat([coC, sumQ], axis: -1), axis: 1, start: 1, length: D.Tc)
    let cq = try b.slice(b.concat([coQ, sumC], axis: -1), axis: 1, start: 1, length: D.Tq)
    return (cc, cq)
  }
}
