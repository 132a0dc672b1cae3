import CKernels
import GraphIR

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `scan {nseq, ncarry, reverse, masked}(seqs..., carries..., consts..., lengths?)` over a body plan.
///
/// The body plan's `inputs` name its input buffers in order: the sequence slices and the carries
/// (pinned `.arena` buffers the scan fills) and then the consts (`.outer(k)`, read in place). Its
/// `outputs` are the new carries, then the step outputs. Per time step t (T-1 down to 0 when
/// `reverse`), with barriers between the phases:
///
///     slices[k][b] = seq_k[b, t]                            (rows split over the team)
///     run the body's stages with the same team
///     for each row b (split): if !masked or t < len[b]:  carry[b] = newCarry[b]; out_k[b, t] = y_k[b]
///                             else:                      carry unchanged;     out_k[b, t] = 0
///
/// The initial carries are copied in before the loop and the final ones out after it. Copies move
/// bytes (memmove), so i32 sequences work as well as f32.
enum ScanKernel {
  static func make(_ s: KernelSite, body: BoundPlan) throws(RuntimeError) -> Kernel {
    let st = s.step, bp = body.plan
    let nseq = try s.int("nseq"), ncarry = try s.int("ncarry")
    let masked = st.attrs.bool("masked"), reverse = st.attrs.bool("reverse")
    let nconst = st.inputs.count - nseq - ncarry - (masked ? 1 : 0)
    try s.require(nseq >= 1 && ncarry >= 0 && nconst >= 0,
                  "\(st.inputs.count) inputs do not hold \(nseq) sequences and \(ncarry) carries")
    try s.require(bp.inputs.count == nseq + ncarry + nconst,
                  "body plan \(bp.name) lists \(bp.inputs.count) input buffers, "
                    + "the scan feeds \(nseq + ncarry + nconst)")
    let nout = st.outputs.count - ncarry
    try s.require(nout >= 0 && bp.outputs.count == ncarry + nout,
                  "body plan \(bp.name) has \(bp.outputs.count) outputs, the scan has \(st.outputs.count)")
    let last = bp.stageCount - 1
    for (k, b) in bp.inputs.prefix(nseq + ncarry).enumerated() {
      guard case .arena(let first, let l) = bp.buffers[b].storage, first == 0, k < nseq || l >= last else {
        throw .invalidPlan("\(s.name): body input \(k) (buffer \(b)) must be an arena buffer pinned over the body")
      }
    }
    let seq0 = s.inShape(0)
    try s.require(seq0.count >= 2, "sequence 0 \(seq0) is not [B, T, ...]")
    let batch = seq0[0], time = seq0[1]
    func rowWidth(_ shape: [Int], _ what: String) throws(RuntimeError) -> Int {
      try s.require(shape.first == batch, "\(what) \(shape) is not [\(batch), ...]")
      return elements(Array(shape.dropFirst()))
    }
    // (parent buffer, body buffer, elements per batch row and time step)
    var seqs: [(src: Int, dst: Int, width: Int)] = []
    for k in 0..<nseq {
      let outer = s.inShape(k)
      try s.require(outer.count >= 2 && outer[1] == time, "sequence \(k) \(outer) is not [\(batch), \(time), ...]")
      var slice = outer
      slice.remove(at: 1)
      try s.require(body.shapes[bp.inputs[k]] == slice, "body slice \(k) \(body.shapes[bp.inputs[k]]) is not \(slice)")
      seqs.append((st.inputs[k], bp.inputs[k], try rowWidth(slice, "sequence \(k)")))
    }
    // The last `nacc` carries are accumulators (autodiff's sums of weight gradients over time):
    // any shape, never masked, copied whole each step.
    let nacc = st.attrs.int("nacc") ?? 0
    try s.require(nacc >= 0 && nacc <= ncarry, "nacc \(nacc) is not within the \(ncarry) carries")
    var accs: [(initial: Int, state: Int, next: Int, final: Int, count: Int)] = []
    for k in (ncarry - nacc)..<ncarry {
      let shape = s.inShape(nseq + k), state = bp.inputs[nseq + k], next = bp.outputs[k].buffer
      try s.require(body.shapes[state] == shape && body.shapes[next] == shape && s.outShape(k) == shape,
                    "accumulator \(k) \(shape) against the body's \(body.shapes[state]) -> \(body.shapes[next])")
      accs.append((st.inputs[nseq + k], state, next, st.outputs[k], elements(shape)))
    }
    var carries: [(initial: Int, state: Int, next: Int, final: Int, width: Int)] = []
    for k in 0..<(ncarry - nacc) {
      let shape = s.inShape(nseq + k), state = bp.inputs[nseq + k], next = bp.outputs[k].buffer
      try s.require(body.shapes[state] == shape && body.shapes[next] == shape && s.outShape(k) == shape,
                    "carry \(k) \(shape) against the body's \(body.shapes[state]) -> \(body.shapes[next])")
      carries.append((st.inputs[nseq + k], state, next, st.outputs[k], try rowWidth(shape, "carry \(k)")))
    }
    var outs: [(y: Int, out: Int, width: Int)] = []
    for k in 0..<nout {
      let y = bp.outputs[ncarry + k].buffer
      var stacked = body.shapes[y]
      try s.require(!stacked.isEmpty, "step output \(k) \(stacked) is a scalar")
      stacked.insert(time, at: 1)
      try s.require(s.outShape(ncarry + k) == stacked,
                    "output \(ncarry + k) \(s.outShape(ncarry + k)) is not \(stacked)")
      outs.append((y, st.outputs[ncarry + k], try rowWidth(body.shapes[y], "step output \(k)")))
    }
    // Carries are updated one after another, so a new carry must not be another carry's state (a swap).
    for (j, c) in carries.enumerated() {
      for (k, other) in carries.enumerated() where k != j && body.ptrs[c.next] == body.ptrs[other.state] {
        throw .invalidPlan("\(s.name): the body's new carry \(j) is carry \(k)'s state buffer (a swap needs a copy)")
      }
    }
    let lengths = masked ? st.inputs[st.inputs.count - 1] : -1
    if masked { try s.require(s.shapes[lengths] == [batch], "lengths \(s.shapes[lengths]) are not [\(batch)]") }
    let p = s.ptrs, q = body.ptrs

    /// Whole-tensor copies of the accumulators, split over the team by elements.
    func copyAccumulators(_ team: Team, _ pairs: [(dst: UnsafeMutableRawPointer, src: UnsafeMutableRawPointer, count: Int)]) {
      for a in pairs {
        let (e0, e1) = team.share(a.count)
        copyRows(a.dst, 0, 0, a.src, 0, 0, e1 - e0, 0, 1, offset: e0)
      }
    }
    return { team in
      let (b0, b1) = team.share(batch)
      for c in carries { copyRows(q[c.state]!, 0, c.width, p[c.initial]!, 0, c.width, c.width, b0, b1) }
      copyAccumulators(team, accs.map { (q[$0.state]!, p[$0.initial]!, $0.count) })
      if time > 0 {
        let t0 = reverse ? time - 1 : 0
        for sq in seqs {
          copyRows(q[sq.dst]!, 0, sq.width, p[sq.src]!, t0 * sq.width, time * sq.width, sq.width, b0, b1)
        }
      }
      team.sync()
      for i in 0..<time {
        let t = reverse ? time - 1 - i : i
        body.execute(team)
        // Step outputs first: one may alias a carry's state, which it must show as the body saw it.
        if !masked {
          for o in outs { copyRows(p[o.out]!, t * o.width, time * o.width, q[o.y]!, 0, o.width, o.width, b0, b1) }
          for c in carries { copyRows(q[c.state]!, 0, c.width, q[c.next]!, 0, c.width, c.width, b0, b1) }
        } else {
          let len = i32(p, lengths)
          for b in b0..<b1 {
            let live = t < Int(len[b])
            for o in outs {
              if live {
                copyRows(p[o.out]!, t * o.width, time * o.width, q[o.y]!, 0, o.width, o.width, b, b + 1)
              } else {
                memset(p[o.out]! + 4 * ((b * time + t) * o.width), 0, 4 * o.width)
              }
            }
            for c in carries where live {
              copyRows(q[c.state]!, 0, c.width, q[c.next]!, 0, c.width, c.width, b, b + 1)
            }
          }
        }
        copyAccumulators(team, accs.map { (q[$0.state]!, q[$0.next]!, $0.count) })
        if i + 1 < time {
          let tn = reverse ? t - 1 : t + 1
          for sq in seqs {
            copyRows(q[sq.dst]!, 0, sq.width, p[sq.src]!, tn * sq.width, time * sq.width, sq.width, b0, b1)
          }
        }
        team.sync()
      }
      for c in carries { copyRows(p[c.final]!, 0, c.width, q[c.state]!, 0, c.width, c.width, b0, b1) }
      copyAccumulators(team, accs.map { (p[$0.final]!, q[$0.state]!, $0.count) })
    }
  }

  /// Copies rows [b0, b1): `width` 4-byte elements from src + b * srcStride + srcOff to
  /// dst + b * dstStride + dstOff (element units).
  /// `offset` (elements) shifts both pointers first.
  @inline(__always)
  static func copyRows(_ dst: UnsafeMutableRawPointer, _ dstOff: Int, _ dstStride: Int,
                       _ src: UnsafeMutableRawPointer, _ srcOff: Int, _ srcStride: Int, _ width: Int,
                       _ b0: Int, _ b1: Int, offset: Int = 0) {
    guard b0 < b1, width > 0, dst != src || dstOff != srcOff || dstStride != srcStride else { return }
    mq_copy_blocks(dst.assumingMemoryBound(to: Float.self) + offset, Int64(dstStride), Int64(dstOff),
                   src.assumingMemoryBound(to: Float.self) + offset, Int64(srcStride), Int64(srcOff), Int64(width),
                   Int64(b0), Int64(b1))
  }
}
