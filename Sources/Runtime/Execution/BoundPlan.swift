import CKernels
import GraphIR

/// One stage of a bound plan: its steps in lane order, and one barrier per step's sub-team when
/// the stage has more than one step.
struct BoundStage {
  var steps: [Int]
  var barriers: BarrierArray?
  /// Arena regions whose liveness ends at this stage (filled with NaN when poisoning).
  var poison: [(base: UnsafeMutableRawPointer, bytes: Int)]
}

/// What every bound plan of one bucket shares.
struct BindContext {
  let env: [String: Int]
  let params: [String: UnsafeMutableRawPointer]
  let options: ExecutorOptions
  let scratch: UnsafeMutablePointer<Float>
  let scratchStride: Int
  let packed: PackedWeights
  /// Set under `ExecutorOptions.checkNumerics`.
  let numerics: NumericsWatch?
}

/// A plan at one binding of the dims, for a team of a fixed size: concrete shapes, buffer
/// addresses, one kernel per step, the stage schedule with its barriers, and the bound bodies of
/// its scans (each living in its scan's workspace). Built once per shape bucket.
final class BoundPlan {
  let plan: Plan
  let shapes: [[Int]]
  /// Buffer addresses (owned by `table`, which frees them even when init throws).
  let ptrs: PointerTable
  private let table: OwnedPointerTable
  let teamSize: Int
  let stages: [BoundStage]
  let poisonFreed: Bool
  let numerics: NumericsWatch?
  /// Per stage, the f32 outputs `checkNumerics` scans (empty unless `numerics`).
  let numericsChecks: [[NumericsCheck]]
  let profile: ProfileTable?
  private(set) var kernels: [Kernel] = []
  private(set) var bodies: [BoundPlan?]
  /// The watch's key of the stage being checked (written by thread 0 between barriers).
  var numericsKey = 0
  /// Called by thread 0 after each stage of the root plan (its index), while the other threads
  /// wait at the next barrier; set for one run (`Executor.run(_:external:dims:afterStage:)`).
  var stageHook: ((Int) -> Void)?
  /// Per buffer: the buffer a view finally aliases (itself for non-views).
  private let roots: [Int]
  /// Inside a scan body: (body buffer, parent buffer) for every `.outer(k)` buffer.
  private let outers: [(buffer: Int, parent: Int)]
  private let parentPtrs: PointerTable?

  /// - Parameters:
  ///   - arena: where this plan's arena (or, for a body, its scan's workspace) starts.
  ///   - parent: for a scan body, the parent's pointer table and the scan step.
  ///   - costs: the plan's step costs, kept across bindings (the executor's, or its scan body's).
  init(plan: Plan, context c: BindContext, teamSize: Int, arena: UnsafeMutableRawPointer,
       parent: (ptrs: PointerTable, step: Step)?, profile: ProfileTable?,
       layout known: ArenaLayout? = nil, costs: StepCosts) throws(RuntimeError) {
    self.plan = plan
    self.teamSize = teamSize
    self.poisonFreed = c.options.poisonFreed
    self.numerics = c.numerics
    self.profile = profile
    let n = plan.buffers.count
    var shapes: [[Int]] = []
    for (i, b) in plan.buffers.enumerated() {
      var s: [Int] = []
      for d in b.type.shape {
        do { s.append(try d.evaluate(c.env)) } catch {
          throw .dim(error, "plan \(plan.name) buffer \(i) \"\(b.name)\" \(b.type)")
        }
      }
      try BoundPlan.check(s.allSatisfy { $0 >= 0 }, "plan \(plan.name) buffer \(i) \"\(b.name)\" has shape \(s)")
      shapes.append(s)
    }
    self.shapes = shapes
    let layout: ArenaLayout
    if let known { layout = known } else {
      do { layout = try plan.layout(c.env) } catch { throw .dim(error, "layout of plan \(plan.name)") }
    }
    let table = OwnedPointerTable(count: n)
    self.table = table
    let ptrs = table.ptrs
    self.ptrs = ptrs
    var outers: [(Int, Int)] = []
    for (i, b) in plan.buffers.enumerated() {
      switch b.storage {
      case .arena, .workspace:
        ptrs[i] = arena + (layout.offsets[i] ?? 0)
      case .param(let name):
        ptrs[i] = c.params[name]
        try BoundPlan.check(ptrs[i] != nil, "plan \(plan.name) buffer \(i): weight \"\(name)\" was not loaded")
      case .input:
        try BoundPlan.check(parent == nil, "scan body \(plan.name) buffer \(i) \"\(b.name)\" is a graph input")
      case .view:
        break
      case .outer(let k):
        guard let parent, k >= 0, k < parent.step.inputs.count else {
          throw .invalidPlan("plan \(plan.name) buffer \(i) \"\(b.name)\" is outer input \(k) outside a scan's inputs")
        }
        outers.append((i, parent.step.inputs[k]))
      }
    }
    self.outers = outers
    self.parentPtrs = parent?.ptrs
    for o in plan.outputs.map(\.buffer) + plan.inputs {
      try BoundPlan.check(o >= 0 && o < n, "plan \(plan.name) names buffer \(o) of \(n) as an input or output")
    }
    let roots = try BoundPlan.viewRoots(plan)
    self.roots = roots
    bodies = Array(repeating: nil, count: plan.steps.count)

    // Schedule: steps by stage in lane order; sub-team sizes as `execute` will form them.
    var stageSteps = [[Int]](repeating: [], count: max(plan.stageCount, 0))
    for (i, st) in plan.steps.enumerated() {
      try BoundPlan.check(st.stage >= 0 && st.stage < plan.stageCount,
                     "plan \(plan.name) step \(i) \(st.label) is in stage \(st.stage) of \(plan.stageCount)")
      try BoundPlan.checkIndices(plan, step: i)
      stageSteps[st.stage].append(i)
    }
    var teams = [Int](repeating: teamSize, count: plan.steps.count)
    var stages: [BoundStage] = []
    let excluded = Set(plan.outputs.map { roots[$0.buffer] } + plan.outputs.map(\.buffer) + plan.inputs)
    for (si, var list) in stageSteps.enumerated() {
      list.sort { (plan.steps[$0].lane, $0) < (plan.steps[$1].lane, $1) }
      // More steps than threads, not a multiple (3 projections on 2 threads): rounds of one step
      // per thread, the largest first by the op table's cost rule at this binding, and the
      // leftover steps with the team split among them, instead of some threads running two
      // steps while the others wait. (A step that dwarfs its stage already has a stage of its
      // own: `ScheduleSteps` splits it off at compile time.)
      var groups = [list]
      if teamSize > 1, list.count > teamSize, list.count % teamSize != 0 {
        let work = Dictionary(uniqueKeysWithValues: list.map { ($0, costs.flops(step: $0, env: c.env)) })
        let ranked = list.sorted { (work[$0]!, $1) > (work[$1]!, $0) }
        let full = list.count / teamSize * teamSize
        groups = stride(from: 0, to: full, by: teamSize).map { Array(ranked[$0..<($0 + teamSize)]).sorted() }
          + [Array(ranked[full...]).sorted()]
      }
      for (gi, group) in groups.enumerated() {
      var stage = BoundStage(steps: group, barriers: nil, poison: [])
      let k = group.count
      if k > 1 {
        let sizes = (0..<k).map { j in BoundPlan.subTeamSize(position: j, steps: k, team: teamSize) }
        for (j, step) in group.enumerated() { teams[step] = sizes[j] }
        stage.barriers = BarrierArray(sizes: sizes)
      }
      if c.options.poisonFreed, gi == groups.count - 1 {
        for (i, b) in plan.buffers.enumerated() where !excluded.contains(i) {
          switch b.storage {
          case .arena(_, let last) where last == si, .workspace(_, _, let last) where last == si:
            if layout.sizes[i] > 0 { stage.poison.append((ptrs[i]!, layout.sizes[i])) }
          default: continue
          }
        }
      }
      stages.append(stage)
      }
    }
    self.stages = stages
    numericsChecks = c.numerics == nil ? [] : BoundPlan.numericsChecks(plan, stages, shapes)

    // Kernels (and scan bodies, bound for the sub-team that runs their scan).
    for (i, st) in plan.steps.enumerated() {
      var body: BoundPlan?
      if st.op == .scan, st.body.count == 1, let ws = st.workspace {
        try BoundPlan.check(ws >= 0 && ws < n, "plan \(plan.name) step \(i) \(st.label) has workspace \(ws)")
        body = try BoundPlan(plan: st.body[0], context: c, teamSize: teams[i], arena: ptrs[ws]!,
                             parent: (ptrs, st), profile: profile?.child(i), layout: layout.bodies[i],
                             costs: costs.body(i))
        bodies[i] = body
      }
      let site = KernelSite(step: st, index: i, shapes: shapes, ptrs: ptrs, env: c.env,
                            reference: c.options.useReference, teamSize: teams[i],
                            scratch: c.scratch, scratchStride: c.scratchStride, buffers: plan.buffers,
                            packed: c.packed)
      kernels.append(try makeKernel(site, body: body))
    }
  }


  /// Re-reads the addresses that can change between runs: outer buffers (from the parent) and
  /// views, then the same in every scan body. Inputs are set by the caller before this.
  func refresh() {
    if let parentPtrs {
      for o in outers { ptrs[o.buffer] = parentPtrs[o.parent] }
    }
    for (i, r) in roots.enumerated() where r != i { ptrs[i] = ptrs[r] }
    for case let body? in bodies { body.refresh() }
  }

  /// The buffer that owns buffer `b`'s memory (itself unless `b` is a view).
  func root(of b: Int) -> Int { roots[b] }

  /// Threads a stage's step `position` of `steps` gets out of a team of `team`: round-robin by
  /// lane, or one thread per step when there are more steps than threads.
  static func subTeamSize(position j: Int, steps k: Int, team n: Int) -> Int {
    k <= n ? (n - j + k - 1) / k : 1
  }

  static func check(_ ok: Bool, _ what: @autoclosure () -> String) throws(RuntimeError) {
    if !ok { throw .invalidPlan(what()) }
  }

  static func checkIndices(_ plan: Plan, step i: Int) throws(RuntimeError) {
    let st = plan.steps[i], n = plan.buffers.count
    for b in st.inputs + st.outputs {
      try check(b >= 0 && b < n, "plan \(plan.name) step \(i) \(st.label) refers to buffer \(b) of \(n)")
    }
  }

  /// The buffer that owns each buffer's memory (`Plan.rootBuffer`, which follows `.view(of:)`
  /// chains); a chain that ends in a view (a bad index or a cycle) is an error.
  static func viewRoots(_ plan: Plan) throws(RuntimeError) -> [Int] {
    let roots = plan.buffers.indices.map(plan.rootBuffer)
    for (i, r) in roots.enumerated() {
      if case .view(let of) = plan.buffers[r].storage {
        throw .invalidPlan("plan \(plan.name) buffer \(i) is a view of \(of) (bad or cyclic)")
      }
    }
    return roots
  }

  /// The largest attention scratch (floats) this plan or any scan body needs at this binding.
  static func scratchFloats(_ plan: Plan, env: [String: Int]) -> Int {
    var m = 0
    for st in plan.steps {
      // The kernels' own rule (attention: Tq*Tk, attention_grad: 2*Tq*Tk, mixture_top_k: a row), at this binding.
      if [.attention, .attentionGrad, .mixtureTopK].contains(st.op),
         st.inputs.allSatisfy({ $0 >= 0 && $0 < plan.buffers.count }) {
        let shapes = st.inputs.map { b in plan.buffers[b].type.shape.map { (try? $0.evaluate(env)) ?? 0 } }
        var byBuffer = [[Int]](repeating: [], count: plan.buffers.count)
        for (b, shape) in zip(st.inputs, shapes) { byBuffer[b] = shape }
        m = max(m, Runtime.scratchFloats(st, shapes: byBuffer, env: env))
      }
      for b in st.body { m = max(m, scratchFloats(b, env: env)) }
    }
    return m
  }
}

/// One pointer per buffer, freed with its owner.
final class OwnedPointerTable {
  let ptrs: PointerTable
  init(count: Int) {
    ptrs = PointerTable.allocate(capacity: max(count, 1))
    ptrs.initialize(repeating: nil, count: max(count, 1))
  }
  deinit { ptrs.deallocate() }
}

/// A plan's step FLOPs by the op table's cost rule (`Plan.stepCost`, the rule the compiler sums
/// into its statistics), as dims: worked out on first use and kept for every later binding (the
/// symbolic sums cost far more than evaluating them), and the same for its scan bodies.
final class StepCosts {
  private let plan: Plan
  private var flops: [Dim?]
  private var bodies: [Int: StepCosts] = [:]

  init(_ plan: Plan) {
    self.plan = plan
    flops = Array(repeating: nil, count: plan.steps.count)
  }

  /// Step `i`'s FLOPs at this binding; 0 when a dim is unbound.
  func flops(step i: Int, env: [String: Int]) -> Int {
    guard i >= 0, i < flops.count else { return 0 }
    if flops[i] == nil { flops[i] = plan.stepCost(i).flops }
    return (try? flops[i]!.evaluate(env)) ?? 0
  }

  /// The costs of scan step `i`'s body (the step must have one).
  func body(_ i: Int) -> StepCosts {
    if let c = bodies[i] { return c }
    let c = StepCosts(plan.steps[i].body[0])
    bodies[i] = c
    return c
  }
}
