import CKernels
import GraphIR

/// MQAN's output layer: the pointer-generator mixture and the NLL loss.
enum OutputKernels {
  /// `mixture {extended}(pvocab [B, T, V], gamma, lambda [B, T, 1], ac [B, T, Lc], cids [B, Lc],
  /// aq [B, T, Lq], qids [B, Lq])` -> `[B, T, X]`: rows are the B * T positions.
  static func mixture(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 7...7, outputs: 1)
    let pv = s.inShape(0), ac = s.inShape(3), aq = s.inShape(5), out = s.outShape(0)
    try s.require(pv.count == 3 && ac.count == 3 && aq.count == 3, "pvocab \(pv), ac \(ac), aq \(aq) are not rank 3")
    let b = pv[0], t = pv[1], v = pv[2], lc = ac[2], lq = aq[2]
    let x = try s.dim("extended", default: out.last ?? 0)
    try s.require(out == [b, t, x] && x >= v, "output \(out) is not [\(b), \(t), \(x)] with \(x) >= V = \(v)")
    try s.require(s.inShape(1) == [b, t, 1] && s.inShape(2) == [b, t, 1], "gamma and lambda are not [\(b), \(t), 1]")
    try s.require(Array(ac.prefix(2)) == [b, t] && s.inShape(4) == [b, lc], "ac \(ac) and cids \(s.inShape(4))")
    try s.require(Array(aq.prefix(2)) == [b, t] && s.inShape(6) == [b, lq], "aq \(aq) and qids \(s.inShape(6))")
    let f = s.reference ? mq_pointer_mixture_ref : mq_pointer_mixture
    let p = s.ptrs, o = s.step.outputs[0], ins = s.step.inputs
    return { team in
      let (r0, r1) = team.share(b * t)
      guard r0 < r1 else { return }
      f(f32(p, o), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), f32(p, ins[3]), i32(p, ins[4]),
        f32(p, ins[5]), i32(p, ins[6]), Int64(t), Int64(v), Int64(x), Int64(lc), Int64(lq),
        Int64(r0), Int64(r1))
    }
  }

  /// `nll_loss {ignore}(P [B, T, X], targets [B, T])` -> `f32[]`: each thread sums its rows into its
  /// own slot; after the team's barrier thread 0 adds the slots in order: loss = sum / count
  /// (0 when every target is `ignore`).
  static func nllLoss(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 2...2, outputs: 1)
    let pr = s.inShape(0), tg = s.inShape(1)
    try s.require(pr.count == 3 && tg == Array(pr.prefix(2)), "targets \(tg) against P \(pr)")
    try s.require(elements(s.outShape(0)) == 1, "output \(s.outShape(0)) is not a scalar")
    let ignore = try s.int("ignore")
    try s.require(Int32(exactly: ignore) != nil, "ignore \(ignore) does not fit in i32")
    let rows = pr[0] * pr[1], x = pr[2], ignore32 = Int32(ignore)
    let slots = try LossSlots(s)
    let f = s.reference ? mq_nll_ref : mq_nll
    let p = s.ptrs, o = s.step.outputs[0], pb = s.step.inputs[0], tb = s.step.inputs[1]
    return { team in
      let (r0, r1) = team.share(rows)
      let (sum, count) = slots.start(team)
      if r0 < r1 { f(sum, count, f32(p, pb), i32(p, tb), Int64(x), ignore32, Int64(r0), Int64(r1)) }
      slots.finish(team, into: f32(p, o))
    }
  }

  /// The shapes both fused output-layer kernels check: B, T, V, Lc, Lq of
  /// `(logits, gamma, lambda, ac, cids, aq, qids, targets)` starting at input `first`.
  static func outputLayerShapes(_ s: KernelSite, first f: Int) throws(RuntimeError)
    -> (b: Int, t: Int, v: Int, lc: Int, lq: Int)
  {
    let logits = s.inShape(f), ac = s.inShape(f + 3), aq = s.inShape(f + 5)
    try s.require(!logits.isEmpty && ac.count == 3 && aq.count == 3, "logits \(logits), ac \(ac), aq \(aq)")
    let b = ac[0], t = ac[1], v = logits.last!, lc = ac[2], lq = aq[2]
    try s.require(elements(logits) == b * t * v, "logits \(logits) are not \(b * t) rows")
    try s.require(s.inShape(f + 1) == [b, t, 1] && s.inShape(f + 2) == [b, t, 1], "gamma and lambda are not [\(b), \(t), 1]")
    try s.require(s.inShape(f + 4) == [b, lc] && s.inShape(f + 6) == [b, lq] && s.inShape(f + 7) == [b, t],
                  "cids \(s.inShape(f + 4)), qids \(s.inShape(f + 6)), targets \(s.inShape(f + 7))")
    return (b, t, v, lc, lq)
  }

  static func ignore(_ s: KernelSite) throws(RuntimeError) -> Int32 {
    let ignore = try s.int("ignore")
    guard let v = Int32(exactly: ignore) else { throw .invalidPlan("\(s.name): ignore \(ignore) does not fit in i32") }
    return v
  }

  /// `mixture_nll {ignore}(logits, gamma, lambda, ac, cids, aq, qids, targets)` -> `loss []`,
  /// `stats [B, T, 3]`: rows split over the team, each thread's sum in its own slot, added in
  /// thread order after the barrier (as `nll_loss`).
  static func mixtureNll(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 8...8, outputs: 2)
    let (b, t, v, lc, lq) = try outputLayerShapes(s, first: 0)
    try s.require(elements(s.outShape(0)) == 1 && s.outShape(1) == [b, t, 3], "outputs \(s.outShape(0)), \(s.outShape(1))")
    let ignore = try Self.ignore(s)
    let slots = try LossSlots(s)
    let f = s.reference ? mq_mixture_nll_ref : mq_mixture_nll
    let p = s.ptrs, ins = s.step.inputs, lb = s.step.outputs[0], sb = s.step.outputs[1]
    return { team in
      let (r0, r1) = team.share(b * t)
      let (sum, count) = slots.start(team)
      if r0 < r1 {
        f(sum, count, f32(p, sb), f32(p, ins[0]), f32(p, ins[1]), f32(p, ins[2]), f32(p, ins[3]), i32(p, ins[4]),
          f32(p, ins[5]), i32(p, ins[6]), i32(p, ins[7]), Int64(t), Int64(v), Int64(lc), Int64(lq), ignore, Int64(r0),
          Int64(r1))
      }
      slots.finish(team, into: f32(p, lb))
    }
  }

  /// `mixture_nll_grad {ignore}(g, logits, gamma, lambda, ac, cids, aq, qids, targets, stats)` ->
  /// `dlogits, dgamma, dlambda, dac, daq`, rows split over the team (each thread counts the kept
  /// targets itself).
  static func mixtureNllGrad(_ s: KernelSite) throws(RuntimeError) -> Kernel {
    try s.arity(inputs: 10...10, outputs: 5)
    let (b, t, v, lc, lq) = try outputLayerShapes(s, first: 1)
    try s.require(elements(s.inShape(0)) == 1 && s.inShape(9) == [b, t, 3], "g \(s.inShape(0)), stats \(s.inShape(9))")
    try s.require(elements(s.outShape(0)) == b * t * v && s.outShape(1) == [b, t, 1] && s.outShape(2) == [b, t, 1]
                    && s.outShape(3) == [b, t, lc] && s.outShape(4) == [b, t, lq],
                  "outputs \((0..<5).map { s.outShape($0) })")
    let ignore = try Self.ignore(s)
    let f = s.reference ? mq_mixture_nll_backward_ref : mq_mixture_nll_backward
    let p = s.ptrs, ins = s.step.inputs, outs = s.step.outputs
    let rows = b * t
    return { team in
      let (r0, r1) = team.share(rows)
      guard r0 < r1 else { return }
      let targets = i32(p, ins[8])
      let count = keptTargets(targets, rows, ignore)
      f(f32(p, outs[0]), f32(p, outs[1]), f32(p, outs[2]), f32(p, outs[3]), f32(p, outs[4]), f32(p, ins[0]).pointee,
        count, f32(p, ins[1]), f32(p, ins[2]), f32(p, ins[3]), f32(p, ins[4]), i32(p, ins[5]), f32(p, ins[6]),
        i32(p, ins[7]), targets, f32(p, ins[9]), Int64(t), Int64(v), Int64(lc), Int64(lq), ignore, Int64(r0),
        Int64(r1))
    }
  }
}

/// Targets that are not `ignore` among the first `rows` (the loss's denominator, counted by each
/// thread of a backward step itself).
func keptTargets(_ targets: UnsafeMutablePointer<Int32>, _ rows: Int, _ ignore: Int32) -> Int64 {
  var count: Int64 = 0
  for r in 0..<rows where targets[r] != ignore { count += 1 }
  return count
}

/// Per-thread partial sums of a mean loss: one cache line per thread (a double sum, then an
/// Int64 count); after the team's barrier thread 0 adds them in thread order, so the result does
/// not depend on timing.
struct LossSlots {
  let memory: AlignedBuffer

  init(_ s: KernelSite) throws(RuntimeError) {
    memory = try AlignedBuffer(bytes: 64 * s.teamSize, what: "\(s.name) loss slots")
  }

  /// This thread's zeroed sum and count.
  func start(_ team: Team) -> (sum: UnsafeMutablePointer<Double>, count: UnsafeMutablePointer<Int64>) {
    let slot = memory.base + 64 * team.ith
    let sum = slot.assumingMemoryBound(to: Double.self), count = (slot + 8).assumingMemoryBound(to: Int64.self)
    sum.pointee = 0
    count.pointee = 0
    return (sum, count)
  }

  /// Waits for the team, then thread 0 writes sum / count (0 when nothing counted) to `loss`.
  func finish(_ team: Team, into loss: UnsafeMutablePointer<Float>) {
    team.sync()
    guard team.ith == 0 else { return }
    var total = 0.0, n: Int64 = 0
    for i in 0..<team.nth {
      total += (memory.base + 64 * i).load(as: Double.self)
      n += (memory.base + 64 * i + 8).load(as: Int64.self)
    }
    loss.pointee = n == 0 ? 0 : Float(total / Double(n))
  }
}
