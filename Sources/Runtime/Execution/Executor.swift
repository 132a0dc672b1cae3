import CKernels
import GraphIR

/// How an `Executor` runs, beyond the plan.
public struct ExecutorOptions: Sendable, Hashable {
  /// After each stage, fill every arena buffer whose liveness ends there (outputs and a scan
  /// body's inputs excepted) with NaN, so a memory plan that overlaps live buffers shows up as
  /// NaN in the results. For tests.
  public var poisonFreed: Bool
  /// Run the naive `_ref` twin of every C kernel (and a naive GEMM), as ggml's `use_ref`.
  public var useReference: Bool
  /// Record per-step wall time and call counts (`Executor.profile`).
  public var profile: Bool
  /// Record every kernel execution on every thread (`Executor.trace`), up to this many events
  /// per thread between resets (0: off). Implies `profile`.
  public var traceCapacity: Int
  /// After each stage, check every f32 output of its steps for NaN and infinities; `run` throws
  /// `RuntimeError.nonFinite` naming the first one (step, IR node, output, index). Costs about
  /// one more read of everything a run writes. `--check-numerics`.
  public var checkNumerics: Bool
  /// Shape buckets kept bound at most; past it, the one run least recently goes. A bucket holds
  /// shapes, addresses and kernels but no arena (that is shared), so a server whose groups come
  /// in many shapes can keep each bound.
  public var maxBuckets: Int

  public init(poisonFreed: Bool = false, useReference: Bool = false, profile: Bool = false, traceCapacity: Int = 0,
              checkNumerics: Bool = false, maxBuckets: Int = 1024) {
    self.checkNumerics = checkNumerics
    self.maxBuckets = max(maxBuckets, 1)
    self.poisonFreed = poisonFreed
    self.useReference = useReference
    self.profile = profile || traceCapacity > 0
    self.traceCapacity = max(traceCapacity, 0)
  }
}

/// Runs a `Plan` on a pool of exactly `threads` threads.
///
/// The weights are checked against the plan and copied into one aligned block at init. Each
/// `run` binds the dim symbols from the fed tensors' shapes, and for each new binding (a shape
/// bucket) lays out and allocates the arena once; later runs of the same bucket allocate no
/// arena, scratch or schedule. A run is one `mq_pool_run`: every thread walks the same stages,
/// with a barrier between stages (see `BoundPlan.execute`).
///
/// ```swift
/// let ex = try Executor(plan: plan, params: weights, threads: 4)
/// let out = try ex.run(["x": HostTensor(shape: [2, 5], floats: xs)])
/// let y = try out["y"]!.floats
/// ```
///
/// One run at a time per executor: `run` is not reentrant.
public final class Executor {
  public let plan: Plan
  public let threads: Int
  public let options: ExecutorOptions
  private let pool: ThreadPool
  private let weights: AlignedBuffer
  let params: [String: UnsafeMutableRawPointer]
  private let slots: [InputSlot]
  /// The plan's output names (an external tensor under one of them is an output).
  private let outputNames: Set<String>
  private let checks: [ValueCheck]
  private let profileTable: ProfileTable?
  /// Weights packed for the GEMM microkernels (what the plan's `pack` steps read).
  let packed = PackedWeights()
  /// Set under `options.checkNumerics`.
  private let numerics: NumericsWatch?
  /// The GEMM the plan's attention kernels use (MQ_BACKEND_*, path), set on each pool thread.
  private let gemmBackend: (backend: Int32, path: Int32)
  /// The plan's step costs (scheduling inputs of every binding), worked out once.
  private let costs: StepCosts
  private var buckets: [[String: Int]: Bucket] = [:]
  /// One arena for every bucket, grown to the largest layout seen: batches of new shapes (every
  /// training batch may have its own) reuse it instead of holding an arena each.
  private var sharedArena: AlignedBuffer?
  /// Runs so far, for `Bucket.lastRun`.
  private var runs: UInt64 = 0

  /// - Parameters:
  ///   - params: the weights by state_dict key; every `.param` buffer of the plan (and of its scan
  ///     bodies) must be here as F32 with exactly the plan's shape. Extra tensors are ignored.
  ///   - threads: the size of the thread pool (the caller's thread counts as one).
  /// - Throws: `RuntimeError` naming a missing or mismatched weight, or a malformed plan.
  public init(plan: Plan, params: [String: HostTensor], threads: Int,
              options: ExecutorOptions = .init()) throws(RuntimeError) {
    guard threads >= 1, threads <= Limits.threads else {
      throw .invalidPlan("threads must be in 1...\(Limits.threads), got \(threads)")
    }
    self.plan = plan
    self.threads = threads
    self.options = options
    var declared: [(name: String, shape: [Int])] = []
    var seen: [String: TensorType] = [:]
    try Executor.collectParams(plan, &declared, &seen)
    var offsets: [Int] = []
    var total = 0
    for d in declared {
      guard let t = params[d.name] else { throw .missingParam(name: d.name, expected: "\(d.shape)") }
      guard t.dtype == .f32, t.shape == d.shape else {
        throw .paramMismatch(name: d.name, expected: "F32 \(d.shape)", actual: "\(t.dtype) \(t.shape)")
      }
      offsets.append(total)
      total += (t.count * 4 + 63) / 64 * 64
    }
    weights = try AlignedBuffer(bytes: total, what: "weights (\(declared.count) tensors)")
    var pointers: [String: UnsafeMutableRawPointer] = [:]
    for (d, off) in zip(declared, offsets) {
      let dst = weights.base + off
      if case .f32(let a) = params[d.name]!.storage {
        a.withUnsafeBytes { src in if let s = src.baseAddress { dst.copyMemory(from: s, byteCount: src.count) } }
      }
      pointers[d.name] = dst
    }
    self.params = pointers
    slots = try Bindings.slots(of: plan)
    outputNames = Set(plan.outputs.map(\.name))
    checks = ValueChecks.collect(plan)
    let trace = options.traceCapacity > 0 ? TraceRecorder(threads: threads, capacity: options.traceCapacity) : nil
    profileTable = options.profile ? ProfileTable(plan: plan, trace: trace) : nil
    numerics = options.checkNumerics ? NumericsWatch() : nil
    gemmBackend = Executor.gemmBackend(of: plan)
    costs = StepCosts(plan)
    pool = try ThreadPool(threads: threads)
  }

  /// The GEMM named by the plan's steps (`select-gemm`): OpenBLAS if any step asks for it, else
  /// the first mqan path named, else this CPU's best path.
  private static func gemmBackend(of plan: Plan) -> (backend: Int32, path: Int32) {
    var found: String?
    func walk(_ p: Plan) {
      for st in p.steps {
        if found == nil || found != "openblas", let g = st.attrs.string("gemm") {
          if found == nil || g == "openblas" { found = g }
        }
        for body in st.body { walk(body) }
      }
    }
    walk(plan)
    if found == "openblas" { return (Int32(MQ_BACKEND_OPENBLAS), mq_gemm_best_path()) }
    let path = found.flatMap(Gemm.pathID).flatMap { mq_gemm_path_supported($0) != 0 ? $0 : nil }
    return (Int32(MQ_BACKEND_MQAN), path ?? mq_gemm_best_path())
  }

  /// Runs the plan once.
  /// - Parameters:
  ///   - inputs: one tensor per plan input, by name (i32 inputs take I32 or I64 tensors).
  ///   - dims: symbols no input shape binds (rarely needed); checked against the inputs.
  /// - Returns: every plan output, by name.
  /// - Throws: `RuntimeError` naming the input (missing, unknown, wrong dtype or shape,
  ///   inconsistent dims, out-of-range ids) before any kernel runs.
  public func run(_ inputs: [String: HostTensor],
                  dims: [String: Int] = [:]) throws(RuntimeError) -> [String: HostTensor] {
    try run(inputs, external: [:], dims: dims)
  }

  /// Runs the plan once with some f32 inputs and outputs in caller-owned memory (no copies):
  /// a decoder's key/value caches and states, written in place step after step.
  ///
  /// - Parameters:
  ///   - external: by plan input or output name, memory of exactly that tensor's shape. An input
  ///     is read from it; an output is computed into it (and not returned). An output may share
  ///     memory with an input only where the op that writes it allows (`cache_update` with an
  ///     identity reorder). The memory must stay valid and unchanged by others during the call.
  /// - Returns: the plan outputs not bound in `external`, by name.
  ///   - afterStage: called on one thread after each stage of the plan with the stage's index,
  ///     once every step of it has written its outputs; it must return quickly (the next stage
  ///     waits for it). `finalStages` says after which stage each output is complete.
  public func run(_ inputs: [String: HostTensor], external: [String: ExternalTensor],
                  dims: [String: Int] = [:], afterStage: ((Int) -> Void)? = nil) throws(RuntimeError) -> [String: HostTensor] {
    let start = profileTable == nil ? 0 : monotonicNanoseconds()
    defer { if profileTable != nil { wallNanoseconds &+= monotonicNanoseconds() &- start; wallRuns += 1 } }
    var externalInputs: [String: [Int]] = [:]
    for (name, t) in external where !outputNames.contains(name) {
      if inputs[name] != nil {
        throw .inputShape(name: name, detail: "fed both as a tensor and as external memory")
      }
      externalInputs[name] = t.shape
    }
    let env = try Bindings.bind(inputs, slots: slots, external: externalInputs, extra: dims)
    let bucket = try self.bucket(env)
    try ValueChecks.run(bucket.checks, inputs)
    for (k, slot) in slots.enumerated() where bucket.staging[k] != nil {
      if case .i64(let a) = inputs[slot.name]!.storage {
        try Bindings.narrow(slot.name, a, shape: inputs[slot.name]!.shape,
                            into: bucket.staging[k]!.assumingMemoryBound(to: Int32.self))
      }
    }
    // Outputs computed straight into caller memory: their root buffers point there for this run.
    var redirected: [(buffer: Int, saved: UnsafeMutableRawPointer?)] = []
    defer { for r in redirected.reversed() { bucket.root.ptrs[r.buffer] = r.saved } }
    for o in plan.outputs {
      guard let t = external[o.name] else { continue }
      let root = bucket.root.root(of: o.buffer)
      switch plan.buffers[root].storage {
      case .arena, .workspace: break
      case .input, .param, .view, .outer:
        throw .inputShape(name: o.name, detail: "output is not computed by a step (it is \(plan.buffers[root].storage)), "
                              + "so it cannot be written into external memory")
      }
      guard plan.buffers[root].type.dtype == .f32, bucket.root.shapes[root] == t.shape else {
        throw .inputShape(name: o.name, detail: "external output memory has shape \(t.shape), "
                            + "the plan computes \(plan.buffers[root].type.dtype) \(bucket.root.shapes[root])")
      }
      redirected.append((root, bucket.root.ptrs[root]))
      bucket.root.ptrs[root] = t.base
    }
    var result: [String: HostTensor] = [:]
    numerics?.reset()
    packed.refresh(pool)
    bucket.root.stageHook = afterStage
    defer { bucket.root.stageHook = nil }
    withInputs(0, inputs, external, bucket) {
      bucket.root.refresh()
      pool.run({ ctx, ith, nth in
        let b = Unmanaged<Bucket>.fromOpaque(ctx!).takeUnretainedValue()
        mq_gemm_set_backend(b.gemm.backend, b.gemm.path)
        b.root.execute(Team(ith: Int(ith), nth: Int(nth), tid: Int(ith), barrier: b.barrier[0]))
      }, Unmanaged.passUnretained(bucket).toOpaque())
      result = collectOutputs(bucket.root, skipping: external)
    }
    if let finding = numerics?.finding { throw .nonFinite(finding) }
    return result
  }

  /// Per-step wall time and call counts since init (or `resetProfile`); empty unless
  /// `options.profile`.
  public var profile: [StepProfile] { profileTable?.records(path: plan.name) ?? [] }

  /// Wall time of all runs (binding, value checks and output copies included) and their count
  /// since init or `resetProfile`, when profiling.
  public private(set) var wallNanoseconds: UInt64 = 0
  public private(set) var wallRuns = 0

  /// Resets the profile, the wall time and the trace.
  public func resetProfile() {
    profileTable?.reset()
    wallNanoseconds = 0
    wallRuns = 0
  }

  /// Every kernel execution since init (or `resetProfile`), by thread then time, and how many
  /// were dropped past the capacity; empty unless `options.traceCapacity > 0`.
  public var trace: (events: [TraceEvent], dropped: Int) { profileTable?.trace?.collect() ?? ([], 0) }

  /// Shape buckets bound and cached.
  public var bucketCount: Int { buckets.count }

  /// Arena bytes the layout of the bucket for these dims needs, if it was bound.
  public func arenaBytes(dims: [String: Int]) -> Int? { buckets[dims]?.arenaBytes }

  /// Bytes of the shared arena (the largest layout bound so far).
  public var sharedArenaBytes: Int { sharedArena?.bytes ?? 0 }

  // MARK: - Internals

  /// Sizes the arena for the largest dims `env` (every dim the plan uses) a caller will run, so
  /// smaller runs never grow it nor drop bound shapes (a server's batch changes at every step).
  public func reserve(_ env: [String: Int]) throws(RuntimeError) { _ = try arenaLayout(env, headroom: false) }

  /// `env`'s layout, with the arena grown to hold it (with headroom: 5/4 of the old size at
  /// least, so a run of slightly larger batches does not reallocate each time). Bound buckets
  /// point into the old arena, so they are dropped before it goes.
  private func arenaLayout(_ env: [String: Int], headroom: Bool) throws(RuntimeError) -> ArenaLayout {
    let layout: ArenaLayout
    do { layout = try plan.layout(env) } catch { throw .dim(error, "layout of plan \(plan.name)") }
    if sharedArena == nil || sharedArena!.bytes < layout.arenaBytes {
      let bytes = max(layout.arenaBytes, headroom ? (sharedArena?.bytes ?? 0) * 5 / 4 : 0)
      buckets.removeAll()
      sharedArena = nil
      let dims = env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
      sharedArena = try AlignedBuffer(bytes: bytes, what: "the \(plan.name) plan's arena at \(dims)")
    }
    return layout
  }

  private func bucket(_ env: [String: Int]) throws(RuntimeError) -> Bucket {
    runs &+= 1
    if let b = buckets[env] {
      b.lastRun = runs
      return b
    }
    let layout = try arenaLayout(env, headroom: true)
    // Full: the bucket run least recently goes (a server's shapes come and go with its traffic).
    if buckets.count >= options.maxBuckets, let oldest = buckets.min(by: { $0.value.lastRun < $1.value.lastRun }) {
      buckets[oldest.key] = nil
    }
    let b = try Bucket(plan: plan, env: env, layout: layout, arena: sharedArena!, threads: threads, params: params,
                       options: options, slots: slots, checks: checks, profile: profileTable, packed: packed,
                       gemm: gemmBackend, numerics: numerics, costs: costs)
    b.lastRun = runs
    buckets[env] = b
    return b
  }

  /// Points the plan's input buffers at the fed tensors' storage (or at their narrowed copies) for
  /// the duration of `body`, one nested `withUnsafeBufferPointer` per input.
  private func withInputs(_ k: Int, _ inputs: [String: HostTensor], _ external: [String: ExternalTensor],
                          _ bucket: Bucket, _ body: () -> Void) {
    guard k < slots.count else { return body() }
    let slot = slots[k]
    func bind(_ p: UnsafeRawPointer?) {
      let ptr = UnsafeMutableRawPointer(mutating: p) ?? bucket.arena.base
      for b in slot.buffers { bucket.root.ptrs[b] = ptr }
      withInputs(k + 1, inputs, external, bucket, body)
    }
    guard let fed = inputs[slot.name] else { return bind(UnsafeRawPointer(external[slot.name]!.base)) }
    switch fed.storage {
    case .f32(let a): a.withUnsafeBufferPointer { bind(UnsafeRawPointer($0.baseAddress)) }
    case .i32(let a): a.withUnsafeBufferPointer { bind(UnsafeRawPointer($0.baseAddress)) }
    case .i64: bind(UnsafeRawPointer(bucket.staging[k]))
    // `Bindings.checkDType` refuses these before a run binds anything.
    case .bf16, .i8: preconditionFailure("input \(slot.name): \(fed.dtype) passed the dtype check")
    }
  }

  private func collectOutputs(_ root: BoundPlan, skipping external: [String: ExternalTensor]) -> [String: HostTensor] {
    var out: [String: HostTensor] = [:]
    for o in plan.outputs where external[o.name] == nil {
      let shape = root.shapes[o.buffer], n = elements(shape)
      let p = root.ptrs[o.buffer] ?? weights.base
      switch plan.buffers[o.buffer].type.dtype {
      case .f32:
        let values = UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: n)
        out[o.name] = HostTensor(shape: shape, floats: Array(values))
      case .i32:
        let values = UnsafeBufferPointer(start: p.assumingMemoryBound(to: Int32.self), count: n)
        out[o.name] = HostTensor(shape: shape, int32s: Array(values))
      }
    }
    return out
  }

  /// Every weight the plan and its scan bodies read, with its constant shape, in first-use order.
  private static func collectParams(_ plan: Plan, _ out: inout [(name: String, shape: [Int])],
                                    _ seen: inout [String: TensorType]) throws(RuntimeError) {
    for b in plan.buffers {
      guard case .param(let name) = b.storage else { continue }
      if let t = seen[name] {
        if t != b.type { throw .invalidPlan("weight \"\(name)\" is declared as both \(t) and \(b.type)") }
        continue
      }
      let dims = b.type.shape.compactMap(\.constant)
      guard b.type.dtype == .f32, dims.count == b.type.rank else {
        throw .invalidPlan("weight \"\(name)\" must be f32 with a constant shape, the plan says \(b.type)")
      }
      seen[name] = b.type
      out.append((name, dims))
    }
    for st in plan.steps {
      for body in st.body { try collectParams(body, &out, &seen) }
    }
  }
}

/// Caller-owned f32 memory bound to a plan input or output for one `Executor.run`.
public struct ExternalTensor {
  public var base: UnsafeMutableRawPointer
  public var shape: [Int]
  public init(base: UnsafeMutableRawPointer, shape: [Int]) {
    self.base = base
    self.shape = shape
  }
}

