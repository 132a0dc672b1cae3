import CKernels
import GraphIR

/// One stage of a bound plan (a plan stage, or one round of it): its steps, largest first (in lane
/// order on a one-thread team), and one barrier per step's sub-team when it has more than one.
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

    // Schedule: steps by stage in lane order, then rounds; sub-team sizes as `execute` will form them.
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
      // A stage's steps run in rounds (`BoundPlan.rounds`): the grouping by the op table's cost
      // at this binding that leaves the fewest threads idle, so a long context chain next to a
      // short question chain (or 3 projections on 2 threads) does not leave a thread waiting.
      // (A step that dwarfs its stage already has a stage of its own: `ScheduleSteps` splits it
      // off at compile time.)
      let groups = teamSize > 1 && list.count > 1
        ? BoundPlan.rounds(list.map { (step: $0, work: costs.work(step: $0, env: c.env)) }, team: teamSize)
        : [list]
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

  /// Splits one stage's independent steps into rounds run one after another, each round's
  /// steps side by side on sub-teams (`subTeamSize`, its first step the largest sub-team).
  ///
  /// The steps are ranked by work, largest first, and cut into consecutive rounds of at most
  /// `team` steps, choosing the cuts (dynamic programming over the ranked list) that minimise the
  /// modelled time: a round takes as long as its slowest step, a step's work divided by its
  /// threads, a shared step paying `sharedEfficiency` for the split and every round a barrier's
  /// `roundWork`. Two long chains and two short ones on 2 threads become two rounds of pairs; a
  /// long step beside a short one runs on the whole team, then the short one.
  static func rounds(_ steps: [(step: Int, work: Int)], team n: Int) -> [[Int]] {
    let ranked = steps.sorted { ($0.work, $1.step) > ($1.work, $0.step) }
    let k = ranked.count
    func time(_ r: Range<Int>) -> Double {
      var slowest = 0.0
      for (j, i) in r.enumerated() {
        let t = subTeamSize(position: j, steps: r.count, team: n)
        slowest = max(slowest, Double(ranked[i].work) / (t > 1 ? Double(t) * sharedEfficiency : 1))
      }
      return slowest + roundWork
    }
    // best[i]: the least time for ranked[i...]; cut[i]: the length of its first round.
    var best = [Double](repeating: .infinity, count: k + 1), cut = [Int](repeating: 1, count: k + 1)
    best[k] = 0
    for i in stride(from: k - 1, through: 0, by: -1) {
      // Larger rounds first: a tie goes to the fewer barriers, the longer steps side by side.
      for g in stride(from: min(n, k - i), through: 1, by: -1) {
        let t = time(i..<(i + g)) + best[i + g]
        if t < best[i] { (best[i], cut[i]) = (t, g) }
      }
    }
    var rounds: [[Int]] = [], i = 0
    while i < k {
      rounds.append(ranked[i..<(i + cut[i])].map(\.step))
      i += cut[i]
    }
    return rounds
  }

  /// The share of ideal speed-up a step split over several threads is counted with in `rounds`.
  static let sharedEfficiency = 0.85
  /// A round's barrier in `rounds`' units of work (FLOPs): about 2 µs of a core.
  static let roundWork = 50_000.0

  /// Threads the step at `position` of a round of `steps` gets out of a team of `team` (thread
  /// `ith` joins position `ith % steps`, so the first positions get one more when the steps do
  /// not divide the team), or one thread per step when there are more steps than threads.
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

/// A plan's step costs by the op table's cost rule (`Plan.stepCost`, the rule the compiler sums
/// into its statistics), as dims: worked out on first use and kept for every later binding (the
/// symbolic sums cost far more than evaluating them), and the same for its scan bodies.
final class StepCosts {
  private let plan: Plan
  private var costs: [Cost?]
  private var bodies: [Int: StepCosts] = [:]

  init(_ plan: Plan) {
    self.plan = plan
    costs = Array(repeating: nil, count: plan.steps.count)
  }

  /// Step `i`'s work at this binding, for sharing threads: its FLOPs, or 4 per byte its operands
  /// occupy when that is more (a copy or a decoding step's attention is bound by memory, about
  /// a quarter of a FLOP's time per byte on the machines measured); 0 when a dim is unbound.
  func work(step i: Int, env: [String: Int]) -> Int {
    guard i >= 0, i < costs.count else { return 0 }
    if costs[i] == nil { costs[i] = plan.stepCost(i) }
    let flops = (try? costs[i]!.flops.evaluate(env)) ?? 0
    let bytes = (try? costs[i]!.bytes.evaluate(env)) ?? 0
    return max(flops, bytes &* 4)
  }

  /// The costs of scan step `i`'s body (the step must have one).
  func body(_ i: Int) -> StepCosts {
    if let c = bodies[i] { return c }
    let c = StepCosts(plan.steps[i].body[0])
    bodies[i] = c
    return c
  }
}
