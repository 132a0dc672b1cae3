import GraphIR

/// Assigns each step a stage (ASAP level) and a lane, then orders the steps by stage and lane.
///
/// A step's stage is 1 + the largest stage of the steps that produce its inputs (0 when none
/// does): inputs, params and consts are no steps, and a view depends on whoever produces its
/// base. Steps of one stage are independent and run concurrently. Within a stage the lanes are
/// 0..<k; a step takes the lane of one of its producers when that lane is free, so a chain (the
/// context encoder vs the question encoder, the two directions of a BiLSTM) stays on one lane,
/// and the other steps fill the lowest free lanes. Body plans of scan steps are scheduled the
/// same way, each with its own stages. Workspace buffers follow their step to its new index.
///
/// A step that dwarfs the rest of its stage (the 50,000-word output layer beside two small
/// concats: at least 3/4 of the stage's FLOPs and at least 2^20, by the op table's cost rule at
/// `sampleDims`) gets a stage of its own right after the others, so the whole thread team runs
/// it instead of the share a stage's lane would get.
public struct ScheduleSteps: PlanPass {
  public let name = "schedule"
  public let sampleDims: [String: Int]
  public init(sampleDims: [String: Int] = GemmTarget.sampleDims) {
    self.sampleDims = sampleDims
  }

  public func run(_ plan: Plan) throws(CompileError) -> Plan {
    var p = try plan.mappingBodies(run)
    let producers = try p.producers()
    var stages = [Int](repeating: 0, count: p.steps.count)
    for (i, step) in p.steps.enumerated() {
      for b in step.inputs {
        guard let producer = producers[p.rootBuffer(b)] else { continue }
        guard producer < i else {
          throw .invalidPlan(plan: p.name, problem: "step \(step.label) reads #\(b) before step \(producer) writes it")
        }
        stages[i] = max(stages[i], stages[producer] + 1)
      }
    }
    splitDominantSteps(p, &stages)
    let stageCount = (stages.max() ?? -1) + 1
    var byStage = [[Int]](repeating: [], count: stageCount)
    for (i, s) in stages.enumerated() { byStage[s].append(i) }

    var lanes = [Int](repeating: 0, count: p.steps.count)
    for members in byStage {
      assignLanes(members, plan: p, producers: producers, lanes: &lanes)
    }

    // Execution order: by stage, then lane; old step index -> new index for workspaces.
    let order = p.steps.indices.sorted { (stages[$0], lanes[$0], $0) < (stages[$1], lanes[$1], $1) }
    var newIndex = [Int](repeating: 0, count: p.steps.count)
    for (new, old) in order.enumerated() { newIndex[old] = new }
    p.steps = order.map { old in
      var s = p.steps[old]
      s.stage = stages[old]
      s.lane = lanes[old]
      return s
    }
    for i in p.buffers.indices {
      if case .workspace(let s, let first, let last) = p.buffers[i].storage {
        guard s >= 0, s < newIndex.count else {
          throw .invalidPlan(plan: p.name, problem: "workspace #\(i) names missing step \(s)")
        }
        p.buffers[i].storage = .workspace(step: newIndex[s], first: first, last: last)
      }
    }
    p.stageCount = stageCount
    return p
  }

  /// Moves each stage's dominant step (if any) into a new stage right after it; later stages
  /// move up by one, so every step still comes after its producers.
  func splitDominantSteps(_ p: Plan, _ stages: inout [Int]) {
    let count = (stages.max() ?? -1) + 1
    var byStage = [[Int]](repeating: [], count: count)
    for (i, s) in stages.enumerated() { byStage[s].append(i) }
    var shift = 0
    var newStage = stages
    for (s, members) in byStage.enumerated() {
      for i in members { newStage[i] = s + shift }
      guard members.count > 1 else { continue }
      let flops = members.map { (try? p.stepCost($0).flops.evaluate(self.sampleDims)) ?? 0 }
      let total = flops.reduce(0) { $0 &+ $1 }
      guard let k = flops.indices.max(by: { flops[$0] < flops[$1] }), flops[k] >= 1 << 20,
            flops[k] >= total - total / 4 else { continue }
      shift += 1
      newStage[members[k]] = s + shift
    }
    stages = newStage
  }

  /// Gives the steps of one stage the lanes 0..<members.count: first each step that can take a
  /// producer's lane (producers in input order), then the rest in the lowest free lanes.
  func assignLanes(_ members: [Int], plan p: Plan, producers: [Int?], lanes: inout [Int]) {
    var taken = [Bool](repeating: false, count: members.count)
    var unplaced: [Int] = []
    for i in members {
      var placed = false
      for b in p.steps[i].inputs {
        guard let producer = producers[p.rootBuffer(b)] else { continue }
        let lane = lanes[producer]
        if lane < taken.count, !taken[lane] {
          taken[lane] = true
          lanes[i] = lane
          placed = true
          break
        }
      }
      if !placed { unplaced.append(i) }
    }
    var free = 0
    for i in unplaced {
      while taken[free] { free += 1 }
      taken[free] = true
      lanes[i] = free
    }
  }
}
