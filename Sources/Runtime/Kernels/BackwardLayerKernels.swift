import CKernels
import GraphIR

/// Backward of the layers: attention, layer norm, the LSTM gate update and the output mixture.
enum BackwardLayerKernels {
  /// `attention_grad {heads, scale, fill = -1e10, causal}(g, q, k, v, keypad?)` -> `dq, dk, dv`:
  /// rows are (batch item, head chunk) pairs, as the forward; each thread needs 2 Tq Tk floats of
  /// scratch (P and dP). When the executor's per-thread scratch is smaller (it sizes scratch from
  /// forward attention steps), the step brings its own, one slot per team member.
  static func attentionGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 4...6, outputs: 3)
    let g = s.inShape(0), q = s.inShape(1), k = s.inShape(2), v = s.inShape(3)
    try s.require(q.count == 3 && g == q && k.count == 3 && k == v && k[0] == q[0] && k[2] == q[2],
                  "g \(g), q \(q), k \(k), v \(v) are not [B, Tq, D] x2 and [B, Tk, D] x2")
    try s.require(s.outShape(0) == q && s.outShape(1) == k && s.outShape(2) == k,
                  "outputs \(s.outShape(0)), \(s.outShape(1)), \(s.outShape(2)) against q \(q) and k \(k)")
    let heads = try s.int("heads")
    try s.require(heads >= 1, "heads \(heads) < 1")
    let scale = try s.float("scale"), fill = try s.float("fill", default: -1e10)
    let causal: Int32 = s.step.attrs.bool("causal") ? 1 : 0
    let drop = try AttentionKernels.dropout(s)
    let keypad = s.step.inputs.count == (drop == nil ? 5 : 6)
    if keypad { try s.require(s.inShape(4) == [k[0], k[1]], "keypad \(s.inShape(4)) is not [\(k[0]), \(k[1])]") }
    let b = q[0], tq = q[1], tk = k[1], d = q[2]
    let rows = b * Int(mq_attention_chunks(Int64(d), Int64(heads)))
    let need = 2 * tq * tk
    let own = s.scratchStride >= need ? nil : try AlignedBuffer(bytes: need * 4 * max(s.teamSize, 1),
                                                                  what: "\(s.name) scratch")
    let f = s.reference ? mq_attention_backward_dropout_ref : mq_attention_backward_dropout
    let p = s.ptrs, outs = s.step.outputs, ins = s.step.inputs
    let scratch = s.scratch, stride = s.scratchStride
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      let work = own.map { $0.base.assumingMemoryBound(to: Float.self) + team.ith * need } ?? scratch + team.tid * stride
      let pad: UnsafeMutablePointer<Float>? = keypad ? f32(p, ins[4]) : nil
      let seed = drop.map { UInt64(UInt32(bitPattern: i32(p, $0.seed)[0])) } ?? 0
      f(f32(p, outs[0]), f32(p, outs[1]), f32(p, outs[2]), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]),
        f32(p, ins[3]), pad, Int64(tq), Int64(tk), Int64(d), Int64(heads), scale, fill, causal, drop?.p ?? 0, seed,
        drop?.salt ?? 0, work, Int64(r0), Int64(r1))
    }
  }

  /// `layer_norm_grad {eps}(g, x, gamma)` -> `dx, dgamma, dbeta`, in two phases around the team's
  /// barrier: rows (dx, and each row's mean and std + eps into the step's stats buffer), then
  /// columns (dgamma, dbeta summed over all rows in order: the same bits at any thread count).
  static func layerNormGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 3...3, outputs: 3)
    let x = s.inShape(1)
    try s.require(x.count >= 1 && s.inShape(0) == x && s.outShape(0) == x, "g \(s.inShape(0)) and dx against x \(x)")
    let d = x[x.count - 1], rows = d > 0 ? elements(x) / d : 0
    try s.require(s.inShape(2) == [d] && s.outShape(1) == [d] && s.outShape(2) == [d],
                  "gamma \(s.inShape(2)), dgamma, dbeta against x \(x)")
    let eps = try s.float("eps")
    let stats = try AlignedBuffer(bytes: rows * 2 * 4, what: "\(s.name) row statistics")
    let rowsFn = s.reference ? mq_layernorm_backward_ref : mq_layernorm_backward
    let colsFn = s.reference ? mq_layernorm_backward_params_ref : mq_layernorm_backward_params
    let p = s.ptrs, outs = s.step.outputs, ins = s.step.inputs
    return { team in
      let st = stats.base.assumingMemoryBound(to: Float.self)
      let (r0, r1) = team.share(rows)
      if r0 < r1 {
        rowsFn(f32(p, outs[0]), st, f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), Int64(d), eps, Int64(r0), Int64(r1))
      }
      team.sync()
      let (c0, c1) = team.share(d)
      if c0 < c1 {
        colsFn(f32(p, outs[1]), f32(p, outs[2]), f32(p, ins[0]), f32(p, ins[1]), st, Int64(rows), Int64(d),
               Int64(c0), Int64(c1))
      }
    }
  }

  /// `lstm_cell_grad(dh, dc, gates, c_prev, c_new)` -> `dgates [B, 4H], dc_prev [B, H]`: rows are
  /// batch items.
  static func lstmCellGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 5...5, outputs: 2)
    let dh = s.inShape(0), gates = s.inShape(2)
    try s.require(dh.count == 2 && gates == [dh[0], 4 * dh[1]], "dh \(dh) and gates \(gates) are not [B, H] and [B, 4H]")
    for i in [1, 3, 4] { try s.require(s.inShape(i) == dh, "input \(i) \(s.inShape(i)) against dh \(dh)") }
    try s.require(s.outShape(0) == gates && s.outShape(1) == dh, "outputs against gates \(gates) and dh \(dh)")
    let b = dh[0], h = dh[1]
    let f = s.reference ? mq_lstm_cell_backward_ref : mq_lstm_cell_backward
    let p = s.ptrs, outs = s.step.outputs, ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(b)
      guard r0 < r1 else { return }
      f(f32(p, outs[0]), f32(p, outs[1]), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), f32(p, ins[3]),
        f32(p, ins[4]), Int64(h), Int64(r0), Int64(r1))
    }
  }

  /// `mixture_grad(dP, pvocab, gamma, lambda, ac, cids, aq, qids)` -> `dpvocab, dgamma, dlambda,
  /// dac, daq`: rows are the B * T positions (ids were range-checked before the run).
  static func mixtureGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 8...8, outputs: 5)
    let dp = s.inShape(0), pv = s.inShape(1), ac = s.inShape(4), aq = s.inShape(6)
    try s.require(dp.count == 3 && pv.count == 3 && ac.count == 3 && aq.count == 3,
                  "dP \(dp), pvocab \(pv), ac \(ac), aq \(aq) are not rank 3")
    let b = pv[0], t = pv[1], v = pv[2], x = dp[2], lc = ac[2], lq = aq[2]
    try s.require(Array(dp.prefix(2)) == [b, t] && x >= v, "dP \(dp) against pvocab \(pv)")
    try s.require(s.inShape(2) == [b, t, 1] && s.inShape(3) == [b, t, 1], "gamma and lambda are not [\(b), \(t), 1]")
    try s.require(Array(ac.prefix(2)) == [b, t] && s.inShape(5) == [b, lc], "ac \(ac) and cids \(s.inShape(5))")
    try s.require(Array(aq.prefix(2)) == [b, t] && s.inShape(7) == [b, lq], "aq \(aq) and qids \(s.inShape(7))")
    let want = [pv, [b, t, 1], [b, t, 1], ac, aq]
    for (i, w) in want.enumerated() { try s.require(s.outShape(i) == w, "output \(i) \(s.outShape(i)) is not \(w)") }
    let f = s.reference ? mq_pointer_mixture_backward_ref : mq_pointer_mixture_backward
    let p = s.ptrs, o = s.step.outputs, ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(b * t)
      guard r0 < r1 else { return }
      f(f32(p, o[0]), f32(p, o[1]), f32(p, o[2]), f32(p, o[3]), f32(p, o[4]), f32(p, ins[0]), f32(p, ins[1]),
        f32(p, ins[2]), f32(p, ins[3]), f32(p, ins[4]), i32(p, ins[5]), f32(p, ins[6]), i32(p, ins[7]),
        Int64(t), Int64(v), Int64(x), Int64(lc), Int64(lq), Int64(r0), Int64(r1))
    }
  }
}
