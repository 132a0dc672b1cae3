import CKernels
import GraphIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Elementwise ops and sources: every thread takes its share of the flat element range.
enum ElementwiseKernels {
  typealias Binary = @convention(c) (
    UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64
  ) -> Void
  typealias Unary = @convention(c) (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64, Int64) -> Void

  /// `add/sub/mul(a, b)`: `b` equal-shaped or a suffix of `a`, so `bn` = b's element count.
  static func binary(_ s: KernelSite, _ f: Binary) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let n = elements(s.outShape(0)), bn = elements(s.inShape(1))
    try s.require(elements(s.inShape(0)) == n, "lhs \(s.inShape(0)) against output \(s.outShape(0))")
    try s.require(bn > 0 ? n % bn == 0 : n == 0, "rhs \(s.inShape(1)) does not tile lhs \(s.inShape(0))")
    let p = s.ptrs, o = s.step.outputs[0], a = s.step.inputs[0], b = s.step.inputs[1]
    return { team in
      let (r0, r1) = team.share(n)
      if r0 < r1 { f(f32(p, o), f32(p, a), f32(p, b), Int64(bn), Int64(r0), Int64(r1)) }
    }
  }

  /// `add_n(x0, ..., xk)`: each thread walks its element share in blocks that stay in the L1
  /// cache, summing the inputs left to right into the output (the floats of a chain of adds).
  static func addN(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.require(s.step.inputs.count >= 2 && s.step.outputs.count == 1, "takes 2 or more inputs and one output")
    let n = elements(s.outShape(0))
    for i in s.step.inputs.indices {
      try s.require(s.inShape(i) == s.outShape(0), "input \(i) \(s.inShape(i)) against output \(s.outShape(0))")
    }
    let f: Binary = s.reference ? mq_add_ref : mq_add
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    let block = 2048
    return { team in
      let (r0, r1) = team.share(n)
      var b0 = r0
      while b0 < r1 {
        let b1 = min(b0 + block, r1)
        f(f32(p, o), f32(p, ins[0]), f32(p, ins[1]), Int64(n), Int64(b0), Int64(b1))
        for i in 2..<ins.count { f(f32(p, o), f32(p, o), f32(p, ins[i]), Int64(n), Int64(b0), Int64(b1)) }
        b0 = b1
      }
    }
  }

  static func unary(_ s: KernelSite, _ f: Unary) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let n = elements(s.outShape(0))
    try s.require(elements(s.inShape(0)) == n, "input \(s.inShape(0)) against output \(s.outShape(0))")
    let p = s.ptrs, o = s.step.outputs[0], x = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(n)
      if r0 < r1 { f(f32(p, o), f32(p, x), Int64(r0), Int64(r1)) }
    }
  }

  /// `affine {alpha, beta}`: alpha * x + beta.
  static func affine(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let alpha = try s.float("alpha"), beta = try s.float("beta", default: 0)
    let n = elements(s.outShape(0))
    try s.require(elements(s.inShape(0)) == n, "input \(s.inShape(0)) against output \(s.outShape(0))")
    let f = s.reference ? mq_affine_ref : mq_affine
    let p = s.ptrs, o = s.step.outputs[0], x = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(n)
      if r0 < r1 { f(f32(p, o), f32(p, x), alpha, beta, Int64(r0), Int64(r1)) }
    }
  }

  /// `zeros {shape}`: memset of the thread's share.
  static func zeros(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 0...0, outputs: 1)
    let n = elements(s.outShape(0))
    let p = s.ptrs, o = s.step.outputs[0]
    return { team in
      let (r0, r1) = team.share(n)
      if r0 < r1 { memset(f32(p, o) + r0, 0, (r1 - r0) * 4) }
    }
  }

  /// `positional_encoding {shape: [T, D]}`: rows are positions, copied from the shared table of
  /// width D (`PositionalEncodingTable`); reference mode computes them.
  static func positionalEncoding(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 0...0, outputs: 1)
    let shape = s.outShape(0)
    try s.require(shape.count == 2, "output \(shape) is not [T, D]")
    let rows = shape[0], d = shape[1]
    let p = s.ptrs, o = s.step.outputs[0]
    if s.reference {
      return { team in
        let (r0, r1) = team.share(rows)
        if r0 < r1 { mq_positional_encoding_ref(f32(p, o), Int64(d), Int64(r0), Int64(r1)) }
      }
    }
    let table = PositionalEncodingTable.shared(rows: rows, width: d)
    return { team in
      let (r0, r1) = team.share(rows)
      if r0 < r1 { (f32(p, o) + r0 * d).update(from: table.values + r0 * d, count: (r1 - r0) * d) }
    }
  }

  /// `dropout_mask {p, salt, shape}(seed)`: the mask is a function of (seed, salt, index), so the
  /// threads' shares need no coordination.
  static func dropoutMask(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let prob = try s.float("p")
    let salt = UInt64(truncatingIfNeeded: try s.int("salt"))
    try s.require(elements(s.inShape(0)) >= 1, "seed \(s.inShape(0)) is empty")
    let n = elements(s.outShape(0))
    let f = s.reference ? mq_dropout_mask_ref : mq_dropout_mask
    let p = s.ptrs, o = s.step.outputs[0], seed = s.step.inputs[0]
    return { team in
      let (r0, r1) = team.share(n)
      let sd = UInt64(UInt32(bitPattern: i32(p, seed)[0]))
      if r0 < r1 { f(f32(p, o), prob, sd, salt, Int64(r0), Int64(r1)) }
    }
  }

  /// `pad_mask {pad}(ids)`: 1 where ids == pad.
  static func padMask(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 1...1, outputs: 1)
    let pad = try s.int("pad")
    try s.require(Int32(exactly: pad) != nil, "pad \(pad) does not fit in i32")
    let n = elements(s.outShape(0))
    try s.require(elements(s.inShape(0)) == n, "ids \(s.inShape(0)) against output \(s.outShape(0))")
    let f = s.reference ? mq_pad_mask_ref : mq_pad_mask
    let p = s.ptrs, o = s.step.outputs[0], ids = s.step.inputs[0], pad32 = Int32(pad)
    return { team in
      let (r0, r1) = team.share(n)
      if r0 < r1 { f(f32(p, o), i32(p, ids), pad32, Int64(r0), Int64(r1)) }
    }
  }
}
