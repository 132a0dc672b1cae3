import GraphIR

/// Everything bound for one set of dims: the arena, per-thread scratch, narrowed-input staging,
/// the bound plan tree and the value checks with their bounds evaluated.
final class Bucket {
  let arena: AlignedBuffer
  let arenaBytes: Int
  let scratch: AlignedBuffer
  let stagingMemory: AlignedBuffer
  /// Per input slot: where its I64 -> I32 copy goes (nil for f32 inputs).
  let staging: [UnsafeMutableRawPointer?]
  let barrier: BarrierArray
  let root: BoundPlan
  let checks: [BoundCheck]
  /// The GEMM backend each pool thread sets before running (attention's inner GEMMs).
  let gemm: (backend: Int32, path: Int32)
  /// The executor's run count when this bucket last ran (least recently run goes first).
  var lastRun: UInt64 = 0

  init(plan: Plan, env: [String: Int], layout: ArenaLayout, arena: AlignedBuffer, threads: Int,
       params: [String: UnsafeMutableRawPointer], options: ExecutorOptions, slots: [InputSlot], checks: [ValueCheck],
       profile: ProfileTable?, packed: PackedWeights, gemm: (backend: Int32, path: Int32),
       numerics: NumericsWatch?, costs: StepCosts) throws(RuntimeError) {
    self.arena = arena
    self.gemm = gemm
    arenaBytes = layout.arenaBytes
    let stride = (BoundPlan.scratchFloats(plan, env: env) + 15) / 16 * 16
    guard let scratchBytes = Limits.product([stride, 4, threads]) else {
      throw .allocation("attention scratch: \(stride) x 4 x \(threads) bytes overflow")
    }
    scratch = try AlignedBuffer(bytes: scratchBytes, what: "attention scratch")
    var offsets: [Int?] = []
    var total = 0
    for slot in slots {
      guard slot.type.dtype == .i32 else { offsets.append(nil); continue }
      var sizes: [Int] = [4]
      for d in slot.type.shape {
        do { sizes.append(try d.evaluate(env)) } catch { throw .dim(error, "input \"\(slot.name)\"") }
      }
      guard let n = Limits.product(sizes), n <= Int.max / 2 - total - 64 else {
        throw .allocation("input \"\(slot.name)\" staging: \(sizes.dropFirst()) elements overflow")
      }
      offsets.append(total)
      total += (n + 63) / 64 * 64
    }
    stagingMemory = try AlignedBuffer(bytes: total, what: "input staging")
    staging = offsets.map { [base = stagingMemory.base] in $0.map { base + $0 } }
    barrier = BarrierArray(sizes: [threads])
    let context = BindContext(env: env, params: params, options: options,
                              scratch: scratch.base.assumingMemoryBound(to: Float.self), scratchStride: stride,
                              packed: packed, numerics: numerics)
    root = try BoundPlan(plan: plan, context: context, teamSize: threads, arena: arena.base, parent: nil,
                         profile: profile, layout: layout, costs: costs)
    self.checks = try ValueChecks.bind(checks, env: env)
  }
}
