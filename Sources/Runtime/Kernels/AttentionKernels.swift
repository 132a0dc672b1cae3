import CKernels
import GraphIR

/// Softmax, multi-head attention, layer norm and the LSTM gate update: all split by rows.
enum AttentionKernels {
  /// `softmax {scale = 1, fill = -1e10, eps = 0, causal, causal_offset = 0}(x, mask [B, K]?)`: x
  /// is viewed as [rows, K]; with a mask, row r belongs to batch item r / q with q = rows / B;
  /// without one, q is x's second-to-last dim (the query index for `causal`).
  static func softmax(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...2, outputs: 1)
    let x = s.inShape(0)
    try s.require(x.count >= 1 && s.outShape(0) == x, "output \(s.outShape(0)) against x \(x)")
    let k = x[x.count - 1], rows = k > 0 ? elements(x) / k : 0
    let scale = try s.float("scale", default: 1), fill = try s.float("fill", default: -1e10)
    let eps = try s.float("eps", default: 0), causal: Int32 = s.step.attrs.bool("causal") ? 1 : 0
    let offset = try s.dim("causal_offset", default: 0)
    let masked = s.step.inputs.count == 2
    var q = x.count >= 2 ? x[x.count - 2] : max(rows, 1)
    if masked {
      let m = s.inShape(1)
      try s.require(m.count == 2 && m[1] == k && m[0] > 0 && rows % m[0] == 0,
                    "mask \(m) against x \(x)")
      q = rows / m[0]
      try s.require(causal == 0 || x.count < 2 || q == x[x.count - 2],
                    "a causal softmax with a mask needs x [B, Tq, K], got \(x)")
    }
    let f = s.reference ? mq_masked_softmax_ref : mq_masked_softmax
    let p = s.ptrs, o = s.step.outputs[0], xb = s.step.inputs[0], mb = masked ? s.step.inputs[1] : -1
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      let mask: UnsafeMutablePointer<Float>? = mb >= 0 ? f32(p, mb) : nil
      f(f32(p, o), f32(p, xb), mask, Int64(q), Int64(k), scale, fill, eps, causal, Int64(offset),
        Int64(r0), Int64(r1))
    }
  }

  /// `attention {heads, scale, fill = -1e10, causal}(q [B, Tq, D], k, v [B, Tk, D], keypad [B, Tk]?)`:
  /// rows are (batch item, head chunk) pairs; each thread uses its own Tq x Tk scratch.
  static func attention(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 3...5, outputs: 1)
    let q = s.inShape(0), k = s.inShape(1), v = s.inShape(2)
    try s.require(q.count == 3 && k.count == 3 && k == v && k[0] == q[0] && k[2] == q[2],
                  "q \(q), k \(k), v \(v) are not [B, Tq, D], [B, Tk, D], [B, Tk, D]")
    try s.require(s.outShape(0) == q, "output \(s.outShape(0)) against q \(q)")
    let heads = try s.int("heads")
    try s.require(heads >= 1, "heads \(heads) < 1")
    let scale = try s.float("scale"), fill = try s.float("fill", default: -1e10)
    let causal: Int32 = s.step.attrs.bool("causal") ? 1 : 0
    let drop = try AttentionKernels.dropout(s)
    let keypad = s.step.inputs.count == (drop == nil ? 4 : 5)
    if keypad { try s.require(s.inShape(3) == [k[0], k[1]], "keypad \(s.inShape(3)) is not [\(k[0]), \(k[1])]") }
    let b = q[0], tq = q[1], tk = k[1], d = q[2]
    let rows = b * Int(mq_attention_chunks(Int64(d), Int64(heads)))
    try s.require(s.scratchStride >= tq * tk, "scratch of \(s.scratchStride) floats < Tq * Tk")
    let f = s.reference ? mq_attention_dropout_ref : mq_attention_dropout
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    let scratch = s.scratch, stride = s.scratchStride
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      let pad: UnsafeMutablePointer<Float>? = keypad ? f32(p, ins[3]) : nil
      let seed = drop.map { UInt64(UInt32(bitPattern: i32(p, $0.seed)[0])) } ?? 0
      f(f32(p, o), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), pad, Int64(tq), Int64(tk), Int64(d),
        Int64(heads), scale, fill, causal, drop?.p ?? 0, seed, drop?.salt ?? 0, scratch + team.tid * stride,
        Int64(r0), Int64(r1))
    }
  }

  /// A step's attention dropout: the rate, its salt and the seed's buffer (the last input).
  static func dropout(_ s: KernelSite) throws(RuntimeError) -> (p: Float, salt: UInt64, seed: Int)? {
    guard s.step.attrs.values["dropout"] != nil else { return nil }
    let p = try s.float("dropout")
    try s.require(p >= 0 && p < 1, "dropout \(p) is not in [0, 1)")
    guard let seed = s.step.inputs.last else { return nil }
    return (p, UInt64(truncatingIfNeeded: try s.int("salt")), seed)
  }

  /// `layer_norm {eps}(x [..., D], gamma [D], beta [D])`: rows of D.
  static func layerNorm(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    let residual = s.step.attrs.bool("residual")
    try s.arity(inputs: residual ? 4...4 : 3...3, outputs: 1)
    let x = s.inShape(0)
    try s.require(x.count >= 1 && s.outShape(0) == x, "output \(s.outShape(0)) against x \(x)")
    let d = x[x.count - 1], rows = d > 0 ? elements(x) / d : 0
    let g = residual ? 2 : 1
    try s.require(s.inShape(g) == [d] && s.inShape(g + 1) == [d] && (!residual || s.inShape(1) == x),
                  "gamma \(s.inShape(g)) and beta \(s.inShape(g + 1)) (and residual) against x \(x)")
    let eps = try s.float("eps")
    let f = s.reference ? mq_layernorm_ref : mq_layernorm
    let add = s.reference ? mq_add_ref : mq_add
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      if residual {
        // The block's sum into the output rows, then the norm over them in place (as add, then
        // layer_norm: the same floats).
        add(f32(p, o), f32(p, ins[0]), f32(p, ins[1]), Int64(rows * d), Int64(r0 * d), Int64(r1 * d))
        f(f32(p, o), f32(p, o), f32(p, ins[2]), f32(p, ins[3]), Int64(d), eps, Int64(r0), Int64(r1))
      } else {
        f(f32(p, o), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), Int64(d), eps, Int64(r0), Int64(r1))
      }
    }
  }

  /// `lstm_cell(gates [B, 4H], c [B, H])` -> `h' [B, H], c' [B, H]`: rows are batch items.
  static func lstmCell(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 2)
    let g = s.inShape(0), c = s.inShape(1)
    try s.require(g.count == 2 && c.count == 2 && g[0] == c[0] && g[1] == 4 * c[1],
                  "gates \(g) and c \(c) are not [B, 4H] and [B, H]")
    try s.require(s.outShape(0) == c && s.outShape(1) == c, "outputs against c \(c)")
    let b = c[0], h = c[1]
    let f = s.reference ? mq_lstm_cell_ref : mq_lstm_cell
    let p = s.ptrs, outs = s.step.outputs, ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(b)
      if r0 < r1 { f(f32(p, outs[0]), f32(p, outs[1]), f32(p, ins[0]), f32(p, ins[1]), Int64(h), Int64(r0), Int64(r1)) }
    }
  }
}
