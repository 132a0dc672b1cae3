import CKernels
import GraphIR

/// Incremental decoding: the key/value cache update and row-wise top-k.
enum DecodingKernels {
  /// `cache_update(cache [R, S, D], reorder [R], row [R, 1, D], step [1])` -> `[R, S, D]`, rows
  /// split over the team. `step` is read when the step runs (it changes every decoding step);
  /// its range was checked before the run.
  static func cacheUpdate(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 4...4, outputs: 1)
    let cache = s.inShape(0)
    try s.require(cache.count == 3 && s.outShape(0) == cache, "output \(s.outShape(0)) against cache \(cache)")
    let r = cache[0], slots = cache[1], d = cache[2]
    try s.require(s.inShape(1) == [r] && s.inShape(2) == [r, 1, d] && s.inShape(3) == [1],
                  "reorder \(s.inShape(1)), row \(s.inShape(2)), step \(s.inShape(3)) against cache \(cache)")
    let f = s.reference ? mq_cache_update_ref : mq_cache_update
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(r)
      guard r0 < r1 else { return }
      let t = Int64(i32(p, ins[3]).pointee)
      f(f32(p, o), f32(p, ins[0]), i32(p, ins[1]), f32(p, ins[2]), Int64(slots), Int64(d), t, Int64(r0), Int64(r1))
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
}
