/// A plan that breaks an invariant the runtime relies on, naming the plan, step and buffer.
public struct PlanError: Error, Equatable, CustomStringConvertible {
  public var plan: String
  public var problem: String
  public init(plan: String, problem: String) {
    self.plan = plan
    self.problem = problem
  }
  public var description: String { "plan \(plan): \(problem)" }
}

extension Plan {
  /// Checks the invariants the runtime relies on, recursively through scan body plans.
  ///
  /// Every buffer id exists; views alias a non-view; steps are ordered by stage, each stage's
  /// lanes are distinct; each step's op accepts its input buffers' types and gives its output
  /// buffers' types (the op table's shape rule); each arena buffer is written by one step, before
  /// (in an earlier stage) every step that reads it or a view of it, and is live from its
  /// producer's stage to its last reader's (to the last stage for outputs and for a body's pinned
  /// inputs); a scan step has one body plan and its own workspace buffer, live for its stage;
  /// `.outer(k)` appears only in bodies, within the scan's inputs. The compiler runs this after
  /// every plan pass in tests; the runtime runs it on every plan it loads from a file.
  /// - Parameter outerInputs: nil for a top-level plan; for a body plan, how many inputs its scan
  ///   step has.
  public func verify(outerInputs: Int? = nil) throws(PlanError) {
    try checkInvariants(of: self, outerInputs: outerInputs)
  }

  /// The buffer whose memory `b` uses: the base of a view, else `b` itself.
  public func rootBuffer(_ b: Int) -> Int {
    var root = b
    // Lowering makes views of roots only; the bound guards a hand-made cycle.
    for _ in 0..<buffers.count {
      guard root >= 0, root < buffers.count, case .view(let base) = buffers[root].storage, base >= 0,
            base < buffers.count else { break }
      root = base
    }
    return root
  }

  /// `b`, the buffer it is a view of, and so on to its root.
  public func viewChain(_ b: Int) -> [Int] {
    var chain = [b]
    var x = b
    for _ in 0..<buffers.count {
      guard x >= 0, x < buffers.count, case .view(let next) = buffers[x].storage, next >= 0, next < buffers.count else { break }
      chain.append(next)
      x = next
    }
    return chain
  }

  /// The step that writes each buffer (nil for inputs, params, views, consts, pinned inputs).
  public func producingSteps() throws(PlanError) -> [Int?] {
    var producers = [Int?](repeating: nil, count: buffers.count)
    for (i, s) in steps.enumerated() {
      for b in s.inputs + s.outputs where b < 0 || b >= buffers.count {
        throw PlanError(plan: name, problem: "step \(s.label) refers to missing buffer #\(b)")
      }
      if let w = s.workspace, w < 0 || w >= buffers.count {
        throw PlanError(plan: name, problem: "step \(s.label) has missing workspace buffer #\(w)")
      }
      for b in s.outputs {
        if let other = producers[b] {
          throw PlanError(plan: name, problem: "buffer #\(b) written by steps \(other) and \(i)")
        }
        producers[b] = i
      }
    }
    return producers
  }

  /// Runs each step's shape rule on its buffers' types (scan steps check their body's interface).
  func checkStepTypes() throws(PlanError) {
    for s in steps where s.op != .scan {
      let ctx = InferContext(node: 0, op: s.op, inputs: s.inputs.map { buffers[$0].type }, attrs: s.attrs.attrs)
      guard s.op.spec.arity.contains(s.inputs.count) else {
        throw PlanError(plan: name, problem: "step \(s.label) (\(s.op.rawValue)) has \(s.inputs.count) inputs")
      }
      let inferred: [TensorType]
      do { inferred = try s.op.spec.infer(ctx) } catch {
        throw PlanError(plan: name, problem: "step \(s.label): \(error)")
      }
      let stored = s.outputs.map { buffers[$0].type }
      guard inferred == stored else {
        throw PlanError(plan: name, problem: "step \(s.label) (\(s.op.rawValue)) writes \(stored.map(\.description)) "
                          + "but its inputs give \(inferred.map(\.description))")
      }
    }
  }
}

func checkInvariants(of plan: Plan, outerInputs: Int?) throws(PlanError) {
  func fail(_ problem: String) -> PlanError { PlanError(plan: plan.name, problem: problem) }
  let producers = try plan.producingSteps()
  try plan.checkStepTypes()
  // Every stage holds a step (a plan file that claims more stages is refused, not allocated).
  guard plan.stageCount >= 0, plan.stageCount <= max(plan.steps.count, 1) else {
    throw fail("\(plan.stageCount) stages for \(plan.steps.count) steps")
  }
  let lastStage = max(plan.stageCount - 1, 0)
  var lastRead = [Int](repeating: -1, count: plan.buffers.count)
  var lanesSeen: Set<[Int]> = []
  var previousStage = 0
  for (i, s) in plan.steps.enumerated() {
    guard s.stage >= previousStage, s.stage < plan.stageCount else {
      throw fail("step \(s.label) has stage \(s.stage) after stage \(previousStage) (of \(plan.stageCount))")
    }
    previousStage = s.stage
    // A NaN attribute (a hand-edited plan file) would surface only as NaN results; an infinity is
    // legal (the decoder's attention masks with -inf).
    for (key, value) in s.attrs.values.sorted(by: { $0.key < $1.key }) {
      if case .float(let x) = value, x.isNaN { throw fail("step \(s.label) (\(s.op.rawValue)): attribute \"\(key)\" is NaN") }
    }
    guard s.lane >= 0, lanesSeen.insert([s.stage, s.lane]).inserted else {
      throw fail("step \(s.label): lane \(s.lane) of stage \(s.stage) is taken twice")
    }
    for b in s.inputs {
      let root = plan.rootBuffer(b)
      lastRead[root] = max(lastRead[root], s.stage)
      if let p = producers[root], plan.steps[p].stage >= s.stage {
        throw fail("step \(s.label) (stage \(s.stage)) reads #\(b), written in stage \(plan.steps[p].stage)")
      }
    }
    for (k, b) in s.outputs.enumerated() {
      switch plan.buffers[b].storage {
      case .arena:
        continue
      case .view(let base) where (s.op.spec.inPlace[k] ?? []).contains(where: {
        $0 < s.inputs.count && plan.viewChain(s.inputs[$0]).contains(base)
      }):
        try verifyInPlace(step: i, output: b, base: plan.rootBuffer(base), in: plan)
      default:
        throw fail("step \(s.label) writes non-arena #\(b)")
      }
    }
    try verifyScanParts(of: s, at: i, in: plan)
  }
  for o in plan.outputs {
    guard o.buffer >= 0, o.buffer < plan.buffers.count else { throw fail("output \"\(o.name)\" has no buffer") }
    lastRead[plan.rootBuffer(o.buffer)] = lastStage
  }
  for (i, b) in plan.buffers.enumerated() {
    switch b.storage {
    case .arena(let first, let last):
      let expectedFirst = producers[i].map { plan.steps[$0].stage } ?? 0
      let expectedLast = producers[i] == nil ? lastStage : max(expectedFirst, lastRead[i])
      guard first == expectedFirst, last == expectedLast else {
        throw fail("#\(i) \(b.name) is live over stages \(first)...\(last), needs \(expectedFirst)...\(expectedLast)")
      }
    case .view(let base):
      guard base >= 0, base < plan.buffers.count, base != i else { throw fail("view #\(i) of missing #\(base)") }
      // A view of a view only through an output written in place (which is a view of its input).
      if case .view = plan.buffers[base].storage, producers[base] == nil { throw fail("view #\(i) aliases view #\(base)") }
    case .outer(let k):
      guard let n = outerInputs, k >= 0, k < n else { throw fail("#\(i) is outer input \(k) outside a scan's inputs") }
    case .workspace(let s, _, _):
      guard s >= 0, s < plan.steps.count, plan.steps[s].workspace == i else {
        throw fail("workspace #\(i) belongs to no step (names step \(s))")
      }
    case .input, .param:
      continue
    }
  }
}

/// An output written in place over `base` (the root of one of the step's inputs): every other step
/// that reads `base`'s memory without going through that output runs in an earlier stage, and every
/// step that reads the output (or a view of it) in a later one.
private func verifyInPlace(step i: Int, output: Int, base: Int, in plan: Plan) throws(PlanError) {
  func fail(_ problem: String) -> PlanError { PlanError(plan: plan.name, problem: problem) }
  let stage = plan.steps[i].stage
  func passesThrough(_ b: Int) -> Bool {
    var x = b
    for _ in 0..<plan.buffers.count {
      if x == output { return true }
      guard case .view(let next) = plan.buffers[x].storage else { return false }
      x = next
    }
    return false
  }
  guard case .arena = plan.buffers[base].storage else { throw fail("step \(plan.steps[i].label) writes #\(output) in place of non-arena #\(base)") }
  for (j, t) in plan.steps.enumerated() where j != i {
    for b in t.inputs where b >= 0 && b < plan.buffers.count && plan.rootBuffer(b) == base {
      if passesThrough(b) {
        if t.stage <= stage { throw fail("step \(t.label) reads #\(output), written in place in stage \(stage), in stage \(t.stage)") }
      } else if t.stage >= stage {
        throw fail("step \(t.label) (stage \(t.stage)) reads #\(base), which step \(plan.steps[i].label) overwrites in stage \(stage)")
      }
    }
  }
}

/// A scan step has exactly one body plan (itself valid) and a workspace live for its stage;
/// other steps have neither.
private func verifyScanParts(of s: Step, at index: Int, in plan: Plan) throws(PlanError) {
  func fail(_ problem: String) -> PlanError { PlanError(plan: plan.name, problem: problem) }
  guard s.op == .scan else {
    guard s.body.isEmpty, s.workspace == nil else { throw fail("step \(s.label) (\(s.op.rawValue)) has a body") }
    return
  }
  guard s.body.count == 1, let w = s.workspace, w >= 0, w < plan.buffers.count else {
    throw fail("scan step \(s.label) needs one body plan and a workspace buffer")
  }
  guard case .workspace(index, s.stage, s.stage) = plan.buffers[w].storage else {
    throw fail("scan step \(s.label): workspace #\(w) is \(plan.buffers[w].storage), not live in stage \(s.stage)")
  }
  try checkInvariants(of: s.body[0], outerInputs: s.inputs.count)
}
