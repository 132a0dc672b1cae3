import Foundation
import GraphIR

/// decaNLP's building blocks (models/common.py; docs/MQAN.md, section 2), each a few builder calls.
extension MQANGraph {
  func p(_ name: String, _ shape: [Int]) throws(GraphError) -> Value { try b.param(name, shape.map { Dim($0) }) }

  /// `Feedforward` / `nn.Linear` with decaNLP's key `prefix.weight` (+ `.bias`).
  func linear(_ x: Value, _ prefix: String, out: Int, in inp: Int, bias: Bool = true) throws(GraphError) -> Value {
    let w = try p("\(prefix).weight", [out, inp])
    return try b.linear(x, w, bias ? try p("\(prefix).bias", [out]) : nil)
  }

  /// `Embedding(project=True)`: the fixed table's rows, projected to d.
  func embed(_ table: Value, _ ids: Value, _ prefix: String) throws(GraphError) -> Value {
    let rows = try b.embedding(table, ids)
    return try linear(drop(rows), "\(prefix).projection.linear", out: config.dimension, in: config.embeddingDim)
  }

  /// One direction of `PackedLSTM`: the input projection for all steps as one GEMM, then a masked
  /// scan over the recurrent cell. Returns outputs `[B, T, H]` (0 past each length) and the final
  /// (h, c) (after the last real token forward, after token 0 in reverse).
  func lstmDirection(_ x: Value, lengths: Value, _ prefix: String, suffix: String, reverse: Bool)
    throws(GraphError) -> (out: Value, h: Value, c: Value)
  {
    let h = config.dimension / 2, inp = x.shape.last?.constant ?? 0
    let wih = try p("\(prefix).rnn.weight_ih_l0\(suffix)", [4 * h, inp])
    let bih = try p("\(prefix).rnn.bias_ih_l0\(suffix)", [4 * h])
    let gx = try b.linear(x, wih, bih)
    let zero = try b.zeros([MQANDims.B, Dim(h)])
    let name = "\(prefix)\(reverse ? ".reverse" : ".forward")"
    let r = try b.scan(name: name, seqs: [gx], carries: [zero, zero], lengths: lengths, reverse: reverse) {
      body, s throws(GraphError) in
      let whh = try body.param("\(prefix).rnn.weight_hh_l0\(suffix)", [Dim(4 * h), Dim(h)])
      let bhh = try body.param("\(prefix).rnn.bias_hh_l0\(suffix)", [Dim(4 * h)])
      let gates = try body.add(s.seqs[0], body.linear(s.carries[0], whh, bhh))
      let cell = try body.lstmCell(gates: gates, c: s.carries[1])
      return ([cell.h, cell.c], [cell.h])
    }
    return (r.outputs[0], r.carries[0], r.carries[1])
  }

  /// `PackedLSTM(bidirectional=True)`: `[fwd ; bwd]` outputs and both directions' final states.
  func bilstm(_ x: Value, lengths: Value, _ prefix: String)
    throws(GraphError) -> (out: Value, h: (Value, Value), c: (Value, Value))
  {
    let f = try lstmDirection(x, lengths: lengths, prefix, suffix: "", reverse: false)
    let r = try lstmDirection(x, lengths: lengths, prefix, suffix: "_reverse", reverse: true)
    return (try b.concat([f.out, r.out], axis: -1), (f.h, r.h), (f.c, r.c))
  }

  func layerNorm(_ x: Value, _ prefix: String) throws(GraphError) -> Value {
    try b.layerNorm(x, gamma: p("\(prefix).gamma", [config.dimension]), beta: p("\(prefix).beta", [config.dimension]),
                    eps: 1e-6)
  }

  /// `ResidualBlock(MultiHead)`: LayerNorm(q + MultiHead(q, kv, kv)).
  func multiHeadBlock(_ q: Value, _ kv: Value, _ prefix: String, keyPadding: Value?, causal: Bool)
    throws(GraphError) -> Value
  {
    let (k, v) = try projectKeysValues(kv, prefix)
    return try attendBlock(q, keys: k, values: v, prefix, keyPadding: keyPadding, causal: causal)
  }

  /// MultiHead's key and value projections of `kv` (what a key/value cache holds).
  func projectKeysValues(_ kv: Value, _ prefix: String) throws(GraphError) -> (keys: Value, values: Value) {
    let d = config.dimension
    return (try linear(kv, "\(prefix).layer.wk", out: d, in: d, bias: false),
            try linear(kv, "\(prefix).layer.wv", out: d, in: d, bias: false))
  }

  /// `ResidualBlock(MultiHead)` over projected keys and values: LayerNorm(q + attention(W_q q, k, v)).
  func attendBlock(_ q: Value, keys kp: Value, values vp: Value, _ prefix: String, keyPadding: Value?, causal: Bool)
    throws(GraphError) -> Value
  {
    let d = config.dimension
    let qp = try linear(q, "\(prefix).layer.wq", out: d, in: d, bias: false)
    // decaNLP scales by sqrt(d_model), not sqrt(d_head).
    // decaNLP's Attention drops the attention weights too (0.2 in training).
    var weightDropout: (p: Float, salt: Int, seed: Value)?
    if let seed = dropoutSeed, dropoutRate > 0 {
      salts.next += 1
      weightDropout = (dropoutRate, salts.next, seed)
    }
    let a = try b.attention(q: qp, k: kp, v: vp, keyPadding: keyPadding, heads: config.transformerHeads,
                            scale: Float(1.0 / Double(d).squareRoot()), causal: causal, dropout: weightDropout)
    return try layerNorm(b.add(q, drop(a)), "\(prefix).layernorm")
  }

  /// `ResidualBlock(LinearReLU)`: LayerNorm(x + W2 relu(W1 x + b1) + b2).
  func feedForwardBlock(_ x: Value, _ prefix: String) throws(GraphError) -> Value {
    let d = config.dimension, hid = config.transformerHidden
    let h = try b.relu(linear(drop(x), "\(prefix).layer.feedforward.linear", out: hid, in: d))
    return try layerNorm(b.add(x, drop(linear(h, "\(prefix).layer.linear", out: d, in: hid))), "\(prefix).layernorm")
  }

  /// `TransformerEncoder`: returns [x0, x1, ..., xL], the input included.
  func transformerEncoder(_ input: Value, _ prefix: String, padding: Value) throws(GraphError) -> [Value] {
    let x = try drop(input)
    var out = [x]
    var h = x
    for l in 0..<config.transformerLayers {
      let p = "\(prefix).layers.\(l)"
      h = try multiHeadBlock(h, h, "\(p).selfattn", keyPadding: padding, causal: false)
      h = try feedForwardBlock(h, "\(p).feedforward")
      out.append(h)
    }
    return out
  }
}
