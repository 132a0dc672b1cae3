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
    // Also checks every step's buffer ids before they index arrays below.
    let producers = try p.producers()
    Self.planInPlace(&p, producers: producers)
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

  /// Lets a step write an output over one of its inputs (the output becomes a view of that
  /// input's memory) where the op table allows it (`OpSpec.inPlace`) and nothing else still needs
  /// the input: it is an arena buffer some step produced, of the output's size and type, neither
  /// a graph output nor a body's pinned input, and every other step that reads it (through any
  /// view) runs in an earlier stage. What autodiff saves for the backward pass has later readers,
  /// so it is never overwritten.
  static func planInPlace(_ p: inout Plan, producers: [Int?]) {
    var readers = [[Int]](repeating: [], count: p.buffers.count)
    for (i, s) in p.steps.enumerated() {
      for b in s.inputs where b >= 0 && b < p.buffers.count { readers[p.rootBuffer(b)].append(i) }
    }
    var protected = Set(p.inputs.map { p.rootBuffer($0) })
    for o in p.outputs where o.buffer >= 0 && o.buffer < p.buffers.count {
      protected.insert(o.buffer)
      protected.insert(p.rootBuffer(o.buffer))
    }
    for (i, s) in p.steps.enumerated() {
      for (output, candidates) in s.op.spec.inPlace.sorted(by: { $0.key < $1.key }) {
        guard output < s.outputs.count else { continue }
        let out = s.outputs[output]
        guard case .arena = p.buffers[out].storage, !protected.contains(out) else { continue }
        for k in candidates where k < s.inputs.count {
          let root = p.rootBuffer(s.inputs[k])
          guard case .arena = p.buffers[root].storage, !protected.contains(root), producers[root] != nil, p.buffers[root].type.dtype == p.buffers[out].type.dtype,
                p.buffers[root].type.elementCount == p.buffers[out].type.elementCount,
                readers[root].allSatisfy({ $0 == i || p.steps[$0].stage < s.stage })
          else { continue }
          // Readers of the output (and of its views, which stay views of it) now read the input's
          // memory. The output is a view of the nearest buffer some step wrote on the input's view
          // chain (its root, or an earlier in-place output), so the chain says which value it replaces.
          readers[root] += readers[out]
          var base = s.inputs[k]
          while case .view(let next) = p.buffers[base].storage, producers[base] == nil {
            base = next
          }
          p.buffers[out].storage = .view(of: base)
          break
        }
      }
    }
  }
}
