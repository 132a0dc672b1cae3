/// decaNLP's state_dict for a config: every key and shape, in decaNLP's module order (docs/MQAN.md,
/// section 1).
///
/// The table includes the two `linear_in` weights that decaNLP creates but never uses, because
/// decaNLP counts them (14,469,902 parameters at the default size); the graph uses the others.
public enum MQANParameters {
  public static func table(_ c: ModelConfig) -> [(name: String, shape: [Int])] {
    let d = c.dimension, h = d / 2, hid = c.transformerHidden
    var t: [(String, [Int])] = []
    func linear(_ p: String, _ out: Int, _ inp: Int, bias: Bool = true) {
      t.append(("\(p).weight", [out, inp]))
      if bias { t.append(("\(p).bias", [out])) }
    }
    func bilstm(_ p: String, _ inp: Int) {
      for suffix in ["", "_reverse"] {
        t.append(("\(p).rnn.weight_ih_l0\(suffix)", [4 * h, inp]))
        t.append(("\(p).rnn.weight_hh_l0\(suffix)", [4 * h, h]))
        t.append(("\(p).rnn.bias_ih_l0\(suffix)", [4 * h]))
        t.append(("\(p).rnn.bias_hh_l0\(suffix)", [4 * h]))
      }
    }
    func layerNorm(_ p: String) {
      t.append(("\(p).gamma", [d]))
      t.append(("\(p).beta", [d]))
    }
    func multiHead(_ p: String) {
      for w in ["wq", "wk", "wv"] { t.append(("\(p).layer.\(w).weight", [d, d])) }
      layerNorm("\(p).layernorm")
    }
    func feedForward(_ p: String) {
      linear("\(p).layer.feedforward.linear", hid, d)
      linear("\(p).layer.linear", d, hid)
      layerNorm("\(p).layernorm")
    }
    func encoder(_ p: String) {
      for l in 0..<c.transformerLayers {
        multiHead("\(p).layers.\(l).selfattn")
        feedForward("\(p).layers.\(l).feedforward")
      }
    }
    linear("encoder_embeddings.projection.linear", d, c.embeddingDim)
    linear("decoder_embeddings.projection.linear", d, c.embeddingDim)
    bilstm("bilstm_before_coattention", d)
    linear("coattention.proj.linear", d, d)
    t.append(("coattention.embed_sentinel.weight", [2, d]))
    bilstm("context_bilstm_after_coattention", 4 * d)
    encoder("self_attentive_encoder_context")
    bilstm("bilstm_context", d)
    bilstm("question_bilstm_after_coattention", 4 * d)
    encoder("self_attentive_encoder_question")
    bilstm("bilstm_question", d)
    for l in 0..<c.transformerLayers {
      let p = "self_attentive_decoder.layers.\(l)"
      multiHead("\(p).selfattn")
      multiHead("\(p).attention")
      feedForward("\(p).feedforward")
    }
    let r = "dual_ptr_rnn_decoder"
    t.append(("\(r).rnn.layers.0.weight_ih", [4 * d, 2 * d]))
    t.append(("\(r).rnn.layers.0.weight_hh", [4 * d, d]))
    t.append(("\(r).rnn.layers.0.bias_ih", [4 * d]))
    t.append(("\(r).rnn.layers.0.bias_hh", [4 * d]))
    for a in ["context_attn", "question_attn"] {
      linear("\(r).\(a).linear_in", d, d, bias: false)
      linear("\(r).\(a).linear_out", d, 2 * d, bias: false)
    }
    linear("\(r).vocab_pointer_switch.0.linear", 1, 4 * d)
    linear("\(r).context_question_switch.0.linear", 1, 4 * d)
    linear("out", c.generativeVocab, d)
    return t
  }

  /// decaNLP's parameter count (every entry of the state_dict).
  public static func count(_ c: ModelConfig) -> Int {
    table(c).reduce(0) { $0 + $1.shape.reduce(1, *) }
  }
}
