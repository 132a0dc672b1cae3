import CKernels
import GraphIR

/// Incremental decoding: the key/value cache update and row-wise top-k.
enum DecodingKernels {
  /// `cache_update(cache [R, S, D], reorder [R], row [R, 1, D], step [1] or [R])` -> `[R, S, D]`,
  /// rows split over the team. `step` is read when the step runs (it changes every decoding step);
  /// its range was checked before the run.
  static func cacheUpdate(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 4...4, outputs: 1)
    let cache = s.inShape(0)
    try s.require(cache.count == 3 && s.outShape(0) == cache, "output \(s.outShape(0)) against cache \(cache)")
    let r = cache[0], slots = cache[1], d = cache[2]
    try s.require(s.inShape(1) == [r] && s.inShape(2) == [r, 1, d] && (s.inShape(3) == [1] || s.inShape(3) == [r]),
                  "reorder \(s.inShape(1)), row \(s.inShape(2)), step \(s.inShape(3)) against cache \(cache)")
    let stepStride: Int64 = s.inShape(3) == [1] ? 0 : 1
    let f = s.reference ? mq_cache_update_ref : mq_cache_update
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(r)
      guard r0 < r1 else { return }
      f(f32(p, o), f32(p, ins[0]), i32(p, ins[1]), f32(p, ins[2]), Int64(slots), Int64(d), i32(p, ins[3]), stepStride,
        Int64(r0), Int64(r1))
    }
  }

  /// `top_k {k, log}(x [..., N])` -> values, indices `[..., k]`, rows split over the team.
  static func topK(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 2)
    let x = s.inShape(0)
    let k = try s.dim("k")
    try s.require(!x.isEmpty && k >= 1, "x \(x), k \(k)")
    let n = x.last!, rows = elements(Array(x.dropLast()))
    try s.require(s.outShape(0) == Array(x.dropLast()) + [k] && s.outShape(1) == s.outShape(0),
                  "outputs \(s.outShape(0)), \(s.outShape(1)) against x \(x) and k \(k)")
    let takeLog: Int32 = s.step.attrs.bool("log") == true ? 1 : 0
    let f = s.reference ? mq_topk_rows_ref : mq_topk_rows
    let p = s.ptrs, xb = s.step.inputs[0], vb = s.step.outputs[0], ib = s.step.outputs[1]
    return { team in
      let (r0, r1) = team.share(rows)
      if r0 < r1 { f(f32(p, xb), Int64(n), Int64(k), takeLog, f32(p, vb), i32(p, ib), Int64(r0), Int64(r1)) }
    }
  }

  /// `scatter_columns {columns, fill}(x [..., S], ids [S])` -> `[..., columns]`: rows split over
  /// the team (ids were range-checked before the run).
  static func scatterColumns(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let x = s.inShape(0), out = s.outShape(0)
    let v = try s.dim("columns"), fill = try s.float("fill", default: 0)
    try s.require(!x.isEmpty && s.inShape(1) == [x.last!], "x \(x) against ids \(s.inShape(1))")
    try s.require(out == Array(x.dropLast()) + [v], "output \(out) is not \(Array(x.dropLast()) + [v])")
    let rows = elements(Array(x.dropLast())), n = x.last!
    let f = s.reference ? mq_scatter_columns_ref : mq_scatter_columns
    let p = s.ptrs, xb = s.step.inputs[0], ib = s.step.inputs[1], ob = s.step.outputs[0]
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      f(f32(p, ob), f32(p, xb), i32(p, ib), Int64(n), Int64(v), fill, Int64(r0), Int64(r1))
    }
  }

  /// `mixture_top_k {extended, k, log}(logits [..., V], gamma, lambda [B, T, 1], ac [B, T, Lc],
  /// cids [B, Lc], aq [B, T, Lq], qids [B, Lq])` -> values, indices `[B, T, k]`: rows (the B * T
  /// positions) split over the team, each thread with its own scratch row.
  static func mixtureTopK(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 7...8, outputs: 2)
    let logits = s.inShape(0), ac = s.inShape(3), aq = s.inShape(5), out = s.outShape(0)
    try s.require(!logits.isEmpty && ac.count == 3 && aq.count == 3, "logits \(logits), ac \(ac), aq \(aq)")
    let shortlisted = s.step.inputs.count == 8
    let b = ac[0], t = ac[1], n = logits.last!, lc = ac[2], lq = aq[2]
    let v = shortlisted ? try s.dim("vocab") : n
    if shortlisted { try s.require(s.inShape(7) == [n] && n <= v, "shortlist \(s.inShape(7)) against logits \(logits), V \(v)") }
    let x = try s.dim("extended", default: v)
    let k = try s.dim("k")
    try s.require(elements(logits) == b * t * n && x >= v, "logits \(logits) are not \(b * t) rows of \(n), or X \(x) < V")
    try s.require(out == [b, t, k] && s.outShape(1) == out, "outputs \(out), \(s.outShape(1)) are not [\(b), \(t), \(k)]")
    try s.require(s.inShape(1) == [b, t, 1] && s.inShape(2) == [b, t, 1], "gamma and lambda are not [\(b), \(t), 1]")
    try s.require(s.inShape(4) == [b, lc] && s.inShape(6) == [b, lq], "cids \(s.inShape(4)), qids \(s.inShape(6))")
    let need = shortlisted
      ? (s.reference ? 2 * v + x + n : Int(mq_mixture_topk_shortlist_scratch(Int64(v), Int64(n), Int64(lc), Int64(lq))))
      : (s.reference ? v + x : Int(mq_mixture_topk_scratch(Int64(v), Int64(lc), Int64(lq))))
    try s.require(s.scratchStride >= need, "scratch of \(s.scratchStride) floats, needs \(need)")
    let takeLog: Int32 = s.step.attrs.bool("log") == true ? 1 : 0
    let p = s.ptrs, ins = s.step.inputs, vb = s.step.outputs[0], ib = s.step.outputs[1]
    let scratch = s.scratch, stride = s.scratchStride
    let rowsKernel: Kernel
    if shortlisted {
      let f = s.reference ? mq_mixture_topk_shortlist_ref : mq_mixture_topk_shortlist
      rowsKernel = { team in
        let (r0, r1) = team.share(b * t)
        guard r0 < r1 else { return }
        f(f32(p, vb), i32(p, ib), f32(p, ins[0]), i32(p, ins[7]), Int64(n), f32(p, ins[1]), f32(p, ins[2]),
          f32(p, ins[3]), i32(p, ins[4]), f32(p, ins[5]), i32(p, ins[6]), Int64(t), Int64(v), Int64(x), Int64(lc),
          Int64(lq), Int64(k), takeLog, scratch + team.tid * stride, Int64(r0), Int64(r1))
      }
    } else {
      let f = s.reference ? mq_mixture_topk_ref : mq_mixture_topk
      rowsKernel = { team in
        let (r0, r1) = team.share(b * t)
        guard r0 < r1 else { return }
        f(f32(p, vb), i32(p, ib), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), f32(p, ins[3]), i32(p, ins[4]),
          f32(p, ins[5]), i32(p, ins[6]), Int64(t), Int64(v), Int64(x), Int64(lc), Int64(lq), Int64(k), takeLog,
          scratch + team.tid * stride, Int64(r0), Int64(r1))
      }
    }
    // One row (batch-1 greedy): split by columns over the team instead of left to one thread.
    guard b * t == 1 && !s.reference else { return rowsKernel }
    let shared = try AlignedBuffer(bytes: (n + 64) * MemoryLayout<Float>.size, what: "\(s.name) shared row")
    let ids: Int? = shortlisted ? ins[7] : nil
    return { team in
      guard team.nth > 1 && team.nth < 64 else { return rowsKernel(team) }
      mq_mixture_topk_team(Int32(team.ith), Int32(team.nth), team.barrier,
                           shared.base.assumingMemoryBound(to: Float.self), f32(p, vb), i32(p, ib),
                           f32(p, ins[0]), ids.map { i32(p, $0) }, Int64(n), f32(p, ins[1]), f32(p, ins[2]),
                           f32(p, ins[3]), i32(p, ins[4]), f32(p, ins[5]), i32(p, ins[6]), Int64(t), Int64(v),
                           Int64(x), Int64(lc), Int64(lq), Int64(k), takeLog, scratch + team.tid * stride, 0)
    }
  }
}
