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
public struct ScheduleSteps: PlanPass {
  public let name = "schedule"
  public init() {}

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
