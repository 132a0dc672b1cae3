import CKernels
import GraphIR

/// Data movement. Concat, slice and broadcast are all `mq_copy_blocks` (which moves bytes with
/// memmove, so i32 tensors go through it too): the tensor is viewed around the axis as
/// `outer x (extent * inner)` blocks, and threads split the outer rows.
enum ShapeKernels {
  /// Products of the dims before and after `axis`.
  static func around(_ shape: [Int], _ axis: Int) -> (outer: Int, inner: Int) {
    (elements(Array(shape[..<axis])), elements(Array(shape[(axis + 1)...])))
  }

  static func axis(_ s: KernelSite, rank: Int) throws(RuntimeError) -> Int {
    let a = try s.int("axis")
    try s.require(a >= 0 && a < rank, "axis \(a) is outside rank \(rank)")
    return a
  }

  /// `concat {axis}(x0, x1, ...)`: input i lands at column offset (sum of earlier extents) * inner.
  static func concat(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    let copy = s.reference ? mq_copy_blocks_ref : mq_copy_blocks
    try s.arity(inputs: 1...64, outputs: 1)
    let out = s.outShape(0)
    let ax = try axis(s, rank: out.count)
    let (outer, inner) = around(out, ax)
    var parts: [(buffer: Int, width: Int, offset: Int)] = []
    var offset = 0
    for (i, b) in s.step.inputs.enumerated() {
      var shape = s.inShape(i), expect = out
      try s.require(shape.count == out.count, "input \(i) \(shape) against output \(out)")
      shape[ax] = 0
      expect[ax] = 0
      try s.require(shape == expect, "input \(i) \(s.inShape(i)) against output \(out) off axis \(ax)")
      let width = s.inShape(i)[ax] * inner
      parts.append((b, width, offset))
      offset += width
    }
    try s.require(offset == out[ax] * inner, "inputs do not add up to output \(out) on axis \(ax)")
    let total = offset, p = s.ptrs, o = s.step.outputs[0]
    return { team in
      let (r0, r1) = team.share(outer)
      guard r0 < r1 else { return }
      for part in parts where part.width > 0 {
        copy(f32(p, o), Int64(total), Int64(part.offset), f32(p, part.buffer),
                       Int64(part.width), 0, Int64(part.width), Int64(r0), Int64(r1))
      }
    }
  }

  /// `slice {axis, start, length}(x)`: `length` (a dim; the output's extent) entries from `start`.
  static func slice(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    let copy = s.reference ? mq_copy_blocks_ref : mq_copy_blocks
    try s.arity(inputs: 1...1, outputs: 1)
    let x = s.inShape(0), out = s.outShape(0)
    let ax = try axis(s, rank: x.count)
    let start = try s.int("start")
    let length = try s.dim("length", default: out.count == x.count ? out[ax] : -1)
    var expect = x
    expect[ax] = length
    try s.require(out == expect, "output \(out) is not \(expect)")
    try s.require(start >= 0 && start + length <= x[ax],
                  "[\(start), \(start + length)) of axis \(ax) is outside \(x)")
    let (outer, inner) = around(x, ax)
    let width = length * inner, stride = x[ax] * inner, off = start * inner
    let p = s.ptrs, o = s.step.outputs[0], src = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(outer)
      if r0 < r1, width > 0 {
        copy(f32(p, o), Int64(width), 0, f32(p, src), Int64(stride), Int64(off), Int64(width),
                       Int64(r0), Int64(r1))
      }
    }
  }

  /// `transpose(x [..., M, N])` -> `[..., N, M]`: rows are the batch items.
  static func transpose(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let x = s.inShape(0)
    try s.require(x.count >= 2, "x \(x) has rank < 2")
    var t = x
    t.swapAt(x.count - 1, x.count - 2)
    try s.require(s.outShape(0) == t, "output \(s.outShape(0)) is not \(t)")
    let m = x[x.count - 2], n = x[x.count - 1], batch = elements(Array(x.dropLast(2)))
    let f = s.reference ? mq_transpose_ref : mq_transpose
    let p = s.ptrs, o = s.step.outputs[0], src = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(batch)
      if r0 < r1 { f(f32(p, o), f32(p, src), Int64(m), Int64(n), Int64(r0), Int64(r1)) }
    }
  }

  /// `broadcast {shape}(x)`: x right-aligned, each dim 1 or equal. The longest suffix where x and
  /// the output agree is copied as one contiguous block of `inner` floats; the dims before it are
  /// rows: the last of them with its own source stride (0 where x has 1), the others as groups
  /// whose source offset is computed per group.
  static func broadcast(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    let copy = s.reference ? mq_copy_blocks_ref : mq_copy_blocks
    try s.arity(inputs: 1...1, outputs: 1)
    let out = s.outShape(0), xr = s.inShape(0)
    try s.require(xr.count <= out.count, "x \(xr) has a higher rank than \(out)")
    let xs = Array(repeating: 1, count: out.count - xr.count) + xr
    for d in 0..<out.count {
      try s.require(xs[d] == out[d] || xs[d] == 1, "x \(xr) does not broadcast to \(out)")
    }
    var j = out.count
    while j > 0, xs[j - 1] == out[j - 1] { j -= 1 }
    let inner = elements(Array(out[j...]))
    // Element strides of x, 0 on broadcast dims.
    var stride = [Int](repeating: 0, count: out.count)
    var acc = 1
    for d in stride.indices.reversed() {
      stride[d] = xs[d] == 1 && out[d] != 1 ? 0 : acc
      acc *= xs[d]
    }
    let pd = j > 0 ? out[j - 1] : 1
    let lastStride = j > 0 ? stride[j - 1] : 0
    let groupDims = j > 1 ? Array(out[..<(j - 1)]) : []
    let groupStrides = j > 1 ? Array(stride[..<(j - 1)]) : []
    let rows = elements(groupDims) * pd
    let p = s.ptrs, o = s.step.outputs[0], src = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(rows)
      var r = r0
      while r < r1, inner > 0 {
        let g = r / pd, first = r % pd
        let end = min(r1, (g + 1) * pd)
        var off = 0, rest = g
        for d in groupDims.indices.reversed() {
          off += rest % groupDims[d] * groupStrides[d]
          rest /= groupDims[d]
        }
        copy(f32(p, o) + g * pd * inner, Int64(inner), 0, f32(p, src) + off, Int64(lastStride), 0,
                       Int64(inner), Int64(first), Int64(first + end - r))
        r = end
      }
    }
  }

  /// `embedding(table [Nv, E], ids [...])` -> `[..., E]`: rows are ids (validated before the run).
  static func embedding(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let table = s.inShape(0), ids = s.inShape(1)
    try s.require(table.count == 2, "table \(table) is not [Nv, E]")
    let e = table[1], rows = elements(ids)
    try s.require(s.outShape(0) == ids + [e], "output \(s.outShape(0)) is not \(ids + [e])")
    let f = s.reference ? mq_embedding_ref : mq_embedding
    let p = s.ptrs, o = s.step.outputs[0], tb = s.step.inputs[0], ib = s.step.inputs[1]
    return { team in
      let (r0, r1) = team.share(rows)
      if r0 < r1 { f(f32(p, o), f32(p, tb), i32(p, ib), Int64(e), Int64(r0), Int64(r1)) }
    }
  }
}
