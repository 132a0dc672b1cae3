import CKernels
import GraphIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Backward-only ops that are elementwise, reductions or data movement. Every reduction is split
/// over its output columns (or table rows) and sums its rows in order, so results do not depend
/// on the thread count.
enum BackwardKernels {
  typealias ActivationGrad = @convention(c) (
    UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64
  ) -> Void

  /// `tanh_grad / sigmoid_grad / relu_grad (g, y)`: flat, each thread its share of the elements.
  static func activationGrad(_ s: KernelSite, _ f: ActivationGrad) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let n = elements(s.outShape(0))
    try s.require(elements(s.inShape(0)) == n && elements(s.inShape(1)) == n,
                  "g \(s.inShape(0)) and y \(s.inShape(1)) against output \(s.outShape(0))")
    let p = s.ptrs, o = s.step.outputs[0], g = s.step.inputs[0], y = s.step.inputs[1]
    return { team in
      let (r0, r1) = team.share(n)
      if r0 < r1 { f(f32(p, o), f32(p, g), f32(p, y), Int64(r0), Int64(r1)) }
    }
  }

  /// `sum_to {shape}(g)`: g viewed as [rows, width] with width = the output's element count;
  /// threads split the width.
  static func sumTo(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let g = s.inShape(0), out = s.outShape(0)
    try s.require(out.count <= g.count && Array(g.suffix(out.count)) == out, "output \(out) is not a suffix of g \(g)")
    let width = elements(out), rows = width > 0 ? elements(g) / width : 0
    let f = s.reference ? mq_sum_rows_ref : mq_sum_rows
    let p = s.ptrs, o = s.step.outputs[0], gb = s.step.inputs[0]
    return { team in
      let (c0, c1) = team.share(width)
      if c0 < c1 { f(f32(p, o), f32(p, gb), Int64(rows), Int64(width), Int64(c0), Int64(c1)) }
    }
  }

  /// `slice_grad {axis, start, full}(g)`: around the axis the output is `outer x (full * inner)`;
  /// each thread zeroes its outer rows, then copies g into the [start, start + len) window.
  static func sliceGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    let copy = s.reference ? mq_copy_blocks_ref : mq_copy_blocks
    try s.arity(inputs: 1...1, outputs: 1)
    let g = s.inShape(0), out = s.outShape(0)
    let ax = try ShapeKernels.axis(s, rank: g.count)
    let start = try s.int("start"), full = try s.dim("full", default: out.count == g.count ? out[ax] : -1)
    var expect = g
    expect[ax] = full
    try s.require(out == expect, "output \(out) is not \(expect)")
    try s.require(start >= 0 && start + g[ax] <= full, "[\(start), \(start + g[ax])) of axis \(ax) is outside \(full)")
    let (outer, inner) = ShapeKernels.around(g, ax)
    let width = g[ax] * inner, stride = full * inner, off = start * inner
    let p = s.ptrs, o = s.step.outputs[0], src = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(outer)
      guard r0 < r1, stride > 0 else { return }
      memset(f32(p, o) + r0 * stride, 0, (r1 - r0) * stride * 4)
      if width > 0 {
        copy(f32(p, o), Int64(stride), Int64(off), f32(p, src), Int64(width), 0, Int64(width), Int64(r0), Int64(r1))
      }
    }
  }

  /// `softmax_grad {scale = 1, eps = 0}(g, y)`: rows of the last axis.
  static func softmaxGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let y = s.inShape(1)
    try s.require(y.count >= 1 && s.inShape(0) == y && s.outShape(0) == y,
                  "g \(s.inShape(0)), y \(y) and output \(s.outShape(0)) differ")
    let n = y[y.count - 1], rows = n > 0 ? elements(y) / n : 0
    let scale = try s.float("scale", default: 1), eps = try s.float("eps", default: 0)
    let f = s.reference ? mq_softmax_backward_ref : mq_softmax_backward
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(rows)
      if r0 < r1 { f(f32(p, o), f32(p, ins[0]), f32(p, ins[1]), Int64(n), scale, eps, Int64(r0), Int64(r1)) }
    }
  }

  /// `length_mask {length}(lengths [B])` -> `[B, length]`: rows are batch items (lengths are
  /// not range-checked: any value gives a valid mask).
  static func lengthMask(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let len = s.inShape(0), out = s.outShape(0)
    let t = try s.dim("length", default: out.count == 2 ? out[1] : -1)
    try s.require(len.count == 1 && out == [len[0], t], "lengths \(len) and output \(out) are not [B] and [B, \(t)]")
    let f = s.reference ? mq_length_mask_ref : mq_length_mask
    let p = s.ptrs, o = s.step.outputs[0], lb = s.step.inputs[0], b = len[0]
    return { team in
      let (r0, r1) = team.share(b)
      if r0 < r1 { f(f32(p, o), i32(p, lb), Int64(t), Int64(r0), Int64(r1)) }
    }
  }

  /// `embedding_grad {rows}(g [..., E], ids [...])` -> `[rows, E]`: threads split the table rows;
  /// each reads every id and adds the g rows that land in its own table rows, in order.
  static func embeddingGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let g = s.inShape(0), ids = s.inShape(1), out = s.outShape(0)
    try s.require(g.count == ids.count + 1 && Array(g.dropLast()) == ids, "g \(g) against ids \(ids)")
    let e = g[g.count - 1], rows = try s.dim("rows", default: out.first ?? 0)
    try s.require(out == [rows, e], "output \(out) is not [\(rows), \(e)]")
    let n = elements(ids)
    let f = s.reference ? mq_embedding_backward_ref : mq_embedding_backward
    let p = s.ptrs, o = s.step.outputs[0], gb = s.step.inputs[0], ib = s.step.inputs[1]
    return { team in
      let (r0, r1) = team.share(rows)
      if r0 < r1 { f(f32(p, o), f32(p, gb), i32(p, ib), Int64(n), Int64(e), Int64(r0), Int64(r1)) }
    }
  }

  /// `nll_loss_grad {ignore}(g [], P [B, T, X], targets [B, T])` -> `dP`: every thread counts the
  /// kept targets of the whole batch (a cheap scan, so no barrier), then writes its rows.
  static func nllLossGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 3...3, outputs: 1)
    let pr = s.inShape(1), tg = s.inShape(2)
    try s.require(elements(s.inShape(0)) == 1, "g \(s.inShape(0)) is not a scalar")
    try s.require(pr.count == 3 && tg == Array(pr.prefix(2)) && s.outShape(0) == pr,
                  "targets \(tg) and output \(s.outShape(0)) against P \(pr)")
    let ignore = try s.int("ignore")
    try s.require(Int32(exactly: ignore) != nil, "ignore \(ignore) does not fit in i32")
    let rows = pr[0] * pr[1], x = pr[2], ignore32 = Int32(ignore)
    let f = s.reference ? mq_nll_backward_ref : mq_nll_backward
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      let targets = i32(p, ins[2])
      let count = keptTargets(targets, rows, ignore32)
      f(f32(p, o), f32(p, ins[1]), targets, Int64(x), ignore32, f32(p, ins[0]).pointee, count, Int64(r0), Int64(r1))
    }
  }
}
