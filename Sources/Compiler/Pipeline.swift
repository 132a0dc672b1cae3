import GraphIR

/// How `compile` runs the pipeline.
public struct CompileOptions: Sendable {
  /// Run `graph.verify()` after every graph pass and check the final plan's invariants.
  public var verifyEach: Bool
  /// Record the graph's text after this pass (or the plan's text after a lowering stage).
  public var dumpAfter: String?
  /// Skip the graph passes after this one (its first occurrence); the lowering still runs, so the
  /// plan shows the graph as it stands.
  public var stopAfter: String?
  /// Differentiate this scalar output (`loss`): the plan then also outputs `grad.<weight>`.
  public var differentiate: String?
  /// Run the fusion passes (off: the unfused plan, for comparison).
  public var fuse = true
  /// The GEMM the plan is compiled for (`select-gemm` records it in every GEMM step); nil leaves
  /// the steps unannotated and the runtime runs its best mqan path with its own defaults.
  public var gemm: GemmTarget?
  /// Reduced precision for the large linears of an inference plan (`select-precision`); nil or
  /// fp32: every step stays fp32.
  public var precision: PrecisionTarget?

  public init(verifyEach: Bool = CompileOptions.verifyByDefault, dumpAfter: String? = nil,
              stopAfter: String? = nil, differentiate: String? = nil) {
    self.verifyEach = verifyEach
    self.differentiate = differentiate
    self.dumpAfter = dumpAfter
    self.stopAfter = stopAfter
  }

  /// True in DEBUG builds (tests), false in release builds.
  public static var verifyByDefault: Bool {
    #if DEBUG
      return true
    #else
      return false
    #endif
  }
}

/// What `compile` returns: the graph after the passes, its plan, and what was asked for on the way.
public struct Compilation {
  /// The graph after the graph passes (what was lowered).
  public var graph: Graph
  /// The scheduled, memory-planned plan of `graph`.
  public var plan: Plan
  /// Text recorded after `CompileOptions.dumpAfter`, once per occurrence of that pass.
  public var dumps: [(pass: String, text: String)]
  /// Wall time of each pipeline entry, in order.
  public var passTimings: [(pass: String, duration: Duration)]
}

/// One entry of the pipeline: a graph pass, the lowering, or a pass over the plan.
public enum PipelineEntry {
  /// A graph-to-graph pass.
  case graph(any GraphPass)
  /// `LowerToPlan`: graph -> unscheduled plan.
  case lower
  /// A plan-to-plan pass of the lowering.
  case plan(any PlanPass)

  /// The entry's pass name (`cse`, `lower`, `plan-memory`).
  public var name: String {
    switch self {
    case .graph(let p): return p.name
    case .lower: return LowerToPlan().name
    case .plan(let p): return p.name
    }
  }
}

/// The compiler's pipeline, in order.
public enum Pipeline {
  /// Every pass `compile` runs, in order; each entry says why it sits where it does.
  public static var entries: [PipelineEntry] { entries(differentiate: nil) }

  /// The pipeline, with autodiff when a loss is to be differentiated.
  public static func entries(differentiate loss: String?, fuse: Bool = true,
                             gemm: GemmTarget? = nil, precision: PrecisionTarget? = nil) -> [PipelineEntry] {
    var list: [PipelineEntry] = [
      // First: every later pass and the lowering trust stored types, so re-derive them from the
      // op table (a drift means a builder or parser disagrees with the table).
      .graph(InferShapes()),
      // Before CSE, so CSE neither hashes nor merges nodes nobody reads.
      .graph(EliminateDeadNodes()),
    ]
    if fuse {
      // Before autodiff: the fused loss brings its own gradient rule.
      list.append(.graph(FuseLoss()))
    }
    if let loss {
      // Before CSE and fusion, as glow differentiates before lowering: gradient rules see the
      // plain ops, and CSE then also merges what the forward and backward passes share.
      list.append(.graph(Autodiff(loss: loss)))
    }
    list += [
      // Merges shared weights (params by name) and duplicate pure nodes, so each becomes one
      // buffer and one step; it only redirects uses and leaves the duplicates unread.
      .graph(EliminateCommonSubexpressions()),
    ]
    if fuse {
      // After CSE, so a linear that CSE gave a second reader is not folded away from it.
      list.append(.graph(FuseEpilogues()))
      // Decoding's softmax + mixture + top-k as one pass over each row.
      list.append(.graph(FuseOutputTopK()))
    }
    list += [
      // Removes what CSE and fusion left unread, and renumbers.
      .graph(EliminateDeadNodes()),
      // The graph is final: one buffer per value, one step per kernel node.
      .lower,
    ]
    if let gemm {
      // Per GEMM step: the path, blocking, thread split and packed weights, from the shapes.
      list.append(.plan(SelectGemm(target: gemm)))
    }
    if let precision, precision.precision != .fp32 {
      // After select-gemm, whose choice it replaces in the linears it converts.
      list.append(.plan(SelectPrecision(target: precision)))
    }
    list += [
      // Stages before memory: liveness is measured in stages.
      .plan(ScheduleSteps()),
      // Last: live intervals for the arena, which `Plan.layout` places per dim binding.
      .plan(PlanMemory()),
    ]
    return list
  }

  /// Pipeline entry names in order without autodiff (`dce` appears twice).
  public static var passNames: [String] { entries.map(\.name) }
}

/// Runs the pipeline over `g`: graph passes, then the lowering to a plan.
///
/// ```swift
/// let c = try compile(graph, options: CompileOptions(dumpAfter: "cse"))
/// print(c.plan.text())
/// print(try c.plan.memoryReport(["B": 32, "Tc": 400]))
/// ```
/// - Throws: `CompileError`, naming the pass and the node (`after pass cse: node %12 (linear): ...`).
public func compile(_ g: Graph, options: CompileOptions = .init()) throws(CompileError) -> Compilation {
  let entries = Pipeline.entries(differentiate: options.differentiate, fuse: options.fuse, gemm: options.gemm,
                                   precision: options.precision)
  if let p = options.precision?.precision, p != .fp32, let loss = options.differentiate {
    throw .invalidPlan(plan: g.name, problem: "precision \(p.rawValue) is for inference plans; this one differentiates \(loss) "
                         + "(training runs fp32)")
  }
  let names = entries.map(\.name)
  for name in [options.dumpAfter, options.stopAfter].compactMap({ $0 }) where !names.contains(name) {
    throw .unknownPass(name, known: names)
  }
  let clock = ContinuousClock()
  var graph = g
  var plan: Plan?
  var dumps: [(pass: String, text: String)] = []
  var timings: [(pass: String, duration: Duration)] = []
  var stopped = false
  for entry in entries {
    let start = clock.now
    switch entry {
    case .graph(let pass):
      if stopped { continue }
      graph = try pass.run(graph)
      if options.verifyEach {
        do { try graph.verify() } catch { throw .afterPass(pass: pass.name, error) }
      }
      if options.dumpAfter == pass.name { dumps.append((pass.name, graph.text())) }
      if options.stopAfter == pass.name { stopped = true }
    case .lower:
      plan = try LowerToPlan().run(graph, nodesBefore: g.totalNodeCount)
    case .plan(let pass):
      guard let p = plan else { continue }
      plan = try pass.run(p)
    }
    timings.append((entry.name, clock.now - start))
    if case .graph = entry { continue }
    if options.dumpAfter == entry.name, let p = plan { dumps.append((entry.name, p.text())) }
  }
  guard let final = plan else {
    throw .invalidPlan(plan: g.name, problem: "the pipeline has no lowering entry")
  }
  if options.verifyEach { try verifyPlan(final) }
  return Compilation(graph: graph, plan: final, dumps: dumps, passTimings: timings)
}
