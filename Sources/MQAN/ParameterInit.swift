import Runtime

/// PyTorch's default initialisation of MQAN's parameters (decaNLP has no custom init; docs/MQAN.md,
/// section 1).
public enum ParameterInit {
  /// Linear weights and biases U(±1/√fan_in); LSTM weights and biases U(±1/√hidden); the
  /// coattention sentinels N(0, 1); LayerNorm γ = 1, β = 0.
  public static func initialize(_ config: ModelConfig, seed: UInt64) -> [String: HostTensor] {
    var rng = SeededRandom(seed: seed)
    var params: [String: HostTensor] = [:]
    var fanIn: [String: Int] = [:]
    let table = MQANParameters.table(config)
    for (name, shape) in table where name.hasSuffix(".weight") && shape.count == 2 {
      fanIn[String(name.dropLast(".weight".count))] = shape[1]
    }
    for (name, shape) in table {
      let n = shape.reduce(1, *)
      var v = [Float](repeating: 0, count: n)
      if name.hasSuffix(".gamma") {
        v = [Float](repeating: 1, count: n)
      } else if name.hasSuffix(".beta") {
        // zeros
      } else if name == "coattention.embed_sentinel.weight" {
        for i in 0..<n { v[i] = rng.normal() }
      } else {
        let bound: Float
        if name.contains(".rnn.") {
          // nn.LSTM / nn.LSTMCell: 1/sqrt(hidden); hidden is the second dim of weight_hh.
          let hidden = name.contains("dual_ptr_rnn_decoder") ? config.dimension : config.dimension / 2
          bound = 1 / Float(hidden).squareRoot()
        } else {
          let module = name.hasSuffix(".weight") ? String(name.dropLast(7)) : String(name.dropLast(5))
          bound = 1 / Float(fanIn[module] ?? shape.last ?? 1).squareRoot()
        }
        for i in 0..<n { v[i] = rng.uniform(-bound, bound) }
      }
      params[name] = HostTensor(shape: shape, floats: v)
    }
    return params
  }
}
