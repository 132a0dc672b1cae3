import GraphIR

/// Gives every arena buffer its live interval in stages; `Plan.layout` then places them.
///
/// Liveness is measured in stages, not steps, because the steps of one stage run at the same
/// time: a buffer is live from its producer's stage to the last stage of any step that reads it
/// or reads a view of it. Graph outputs (through views too) stay live to the last stage, so no
/// later step overwrites a result. An arena buffer that no step produces is a scan body's
/// sequence slice or carry, which the runtime writes before and after each iteration: it is
/// pinned over the whole body. A scan's workspace is live for its step's stage only. Body plans
/// are planned the same way, each over its own stages.
public struct PlanMemory: PlanPass {
  public let name = "plan-memory"
  public init() {}

  public func run(_ plan: Plan) throws(CompileError) -> Plan {
    var p = try plan.mappingBodies(run)
    _ = try p.producers()  // checks every step's buffer ids before they index arrays below
    let lastStage = max(p.stageCount - 1, 0)
    var first = [Int?](repeating: nil, count: p.buffers.count)
    var last = [Int](repeating: 0, count: p.buffers.count)
    for s in p.steps {
      for b in s.outputs {
        first[b] = min(first[b] ?? s.stage, s.stage)
        last[b] = max(last[b], s.stage)
      }
      for b in s.inputs {
        let root = p.rootBuffer(b)
        last[root] = max(last[root], s.stage)
      }
    }
    for o in p.outputs {
      guard o.buffer >= 0, o.buffer < p.buffers.count else {
        throw .invalidPlan(plan: p.name, problem: "output \"\(o.name)\" refers to missing buffer #\(o.buffer)")
      }
      last[p.rootBuffer(o.buffer)] = lastStage
    }
    for i in p.buffers.indices {
      switch p.buffers[i].storage {
      case .arena:
        if let f = first[i] {
          p.buffers[i].storage = .arena(first: f, last: max(f, last[i]))
        } else {
          p.buffers[i].storage = .arena(first: 0, last: lastStage)
        }
      case .workspace(let s, _, _):
        guard s >= 0, s < p.steps.count else {
          throw .invalidPlan(plan: p.name, problem: "workspace #\(i) names missing step \(s)")
        }
        p.buffers[i].storage = .workspace(step: s, first: p.steps[s].stage, last: p.steps[s].stage)
      case .input, .param, .view, .outer:
        continue
      }
    }
    return p
  }
}
