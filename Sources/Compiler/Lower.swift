import GraphIR

/// Turns a verified graph into an unscheduled plan: one buffer per value, one step per kernel node.
///
/// - Top-level `input` nodes become `.input(name)` buffers and `param` nodes `.param(name)`
///   buffers (one per name), with no step.
/// - `reshape` becomes a `.view(of:)` of the root buffer it reshapes, with no step.
/// - Every other node becomes one step (label `%<node id>`) whose outputs are arena buffers
///   named `%12`, `%12.1`.
/// - A `scan` step carries its body's plan (lowered recursively, see `asBody`) and a
///   `.workspace` buffer for that plan's arena.
///
/// The result is not runnable yet: every step has stage 0 and lane 0 and every arena interval
/// is `0...0`. `ScheduleSteps` and then `PlanMemory` fill those in; `lower(_:)` runs all three.
public struct LowerToPlan {
  public let name = "lower"
  public init() {}

  /// Lowers `g`; `nodesBefore` is the node count before the passes (for `PlanStats`).
  public func run(_ g: Graph, nodesBefore: Int? = nil) throws(CompileError) -> Plan {
    try Self.lower(g, asBody: nil, nodesBefore: nodesBefore ?? g.totalNodeCount)
  }

  /// Lowers one graph. `asBody` is nil at top level; for a scan body it is the number of body
  /// inputs the runtime copies in each iteration (`nseq + ncarry`): those become arena buffers
  /// (`PlanMemory` pins them for the whole body), the rest (the consts) `.outer(k)`.
  static func lower(_ g: Graph, asBody pinnedInputs: Int?, nodesBefore: Int) throws(CompileError) -> Plan {
    var state = LoweringState(graph: g)
    for i in g.nodes.indices {
      try state.lower(node: i, asBody: pinnedInputs)
    }
    var outputs: [PlanOutput] = []
    for o in g.outputs {
      guard let b = state.buffer(of: o.value) else {
        throw .lowering(graph: g.name, node: o.value.node, problem: "output \"\(o.name)\" has no buffer")
      }
      outputs.append(PlanOutput(name: o.name, buffer: b))
    }
    var parameterCount = 0
    for count in try collectParams(g).values { parameterCount += count }
    let stats = PlanStats(nodesBefore: nodesBefore, nodesAfter: g.totalNodeCount, flops: g.cost().flops,
                          parameterCount: parameterCount)
    return Plan(name: g.name, buffers: state.buffers, steps: state.steps, stageCount: 0, outputs: outputs,
                stats: stats, inputs: state.inputBuffers)
  }

  /// Element count of every distinct param name in `g` and its scan bodies (weights have
  /// constant shapes; one name has one type everywhere).
  static func collectParams(_ g: Graph) throws(CompileError) -> [String: Int] {
    var types: [String: TensorType] = [:]
    var counts: [String: Int] = [:]
    try collectParams(g, types: &types, counts: &counts)
    return counts
  }

  static func collectParams(_ g: Graph, types: inout [String: TensorType],
                            counts: inout [String: Int]) throws(CompileError) {
    for (i, n) in g.nodes.enumerated() {
      if n.op == .param {
        guard let name = n.attrs.string("name"), let type = n.types.first else {
          throw .lowering(graph: g.name, node: i, problem: "param without a name or type")
        }
        if let known = types[name], known != type {
          throw .lowering(graph: g.name, node: i, problem: "param \"\(name)\" is \(type) here but \(known) elsewhere")
        }
        guard let count = type.elementCount.constant else {
          throw .lowering(graph: g.name, node: i, problem: "param \"\(name)\" has a symbolic shape \(type)")
        }
        types[name] = type
        counts[name] = count
      }
      if let body = n.attrs.graph("body") { try collectParams(body, types: &types, counts: &counts) }
    }
  }
}

/// Lowers a graph all the way: `LowerToPlan`, `ScheduleSteps`, `PlanMemory`.
public func lower(_ g: Graph, nodesBefore: Int? = nil) throws(CompileError) -> Plan {
  let plan = try LowerToPlan().run(g, nodesBefore: nodesBefore)
  return try PlanMemory().run(try ScheduleSteps().run(plan))
}

/// The buffers and steps built so far while lowering one graph.
struct LoweringState {
  let graph: Graph
  var buffers: [Buffer] = []
  var steps: [Step] = []
  /// Buffer of each node output, by node index then output index.
  var valueBuffers: [[Int]] = []
  var paramBuffers: [String: Int] = [:]
  var inputNames: Set<String> = []
  var inputCount = 0
  /// Buffers of the `input` nodes, in order (`Plan.inputs`).
  var inputBuffers: [Int] = []

  init(graph: Graph) {
    self.graph = graph
    valueBuffers.reserveCapacity(graph.nodes.count)
  }

  func buffer(of v: ValueRef) -> Int? {
    guard v.node >= 0, v.node < valueBuffers.count, v.index >= 0, v.index < valueBuffers[v.node].count else {
      return nil
    }
    return valueBuffers[v.node][v.index]
  }

  mutating func add(_ name: String, _ type: TensorType, _ storage: Buffer.Storage) -> Int {
    buffers.append(Buffer(name: name, type: type, storage: storage))
    return buffers.count - 1
  }

  func fail(_ i: Int, _ problem: String) -> CompileError {
    .lowering(graph: graph.name, node: i, problem: problem)
  }

  mutating func lower(node i: Int, asBody pinnedInputs: Int?) throws(CompileError) {
    let n = graph.nodes[i]
    var inputs: [Int] = []
    for r in n.inputs {
      guard let b = buffer(of: r) else { throw fail(i, "input \(r) has no buffer") }
      inputs.append(b)
    }
    guard let type = n.types.first else { throw fail(i, "\(n.op.rawValue) node has no type") }
    switch n.op {
    case .input:
      guard let name = n.attrs.string("name") else { throw fail(i, "input without a name") }
      let k = inputCount
      inputCount += 1
      let storage: Buffer.Storage
      if let pinned = pinnedInputs {
        storage = k < pinned ? .arena(first: 0, last: 0) : .outer(k)
      } else {
        guard inputNames.insert(name).inserted else { throw fail(i, "a second input named \"\(name)\"") }
        storage = .input(name)
      }
      let b = add(name, type, storage)
      inputBuffers.append(b)
      valueBuffers.append([b])
    case .param:
      guard let name = n.attrs.string("name") else { throw fail(i, "param without a name") }
      if let b = paramBuffers[name] {
        guard buffers[b].type == type else { throw fail(i, "param \"\(name)\" is \(type) but also \(buffers[b].type)") }
        valueBuffers.append([b])
      } else {
        let b = add(name, type, .param(name))
        paramBuffers[name] = b
        valueBuffers.append([b])
      }
    case .reshape:
      // Views alias the root buffer directly, so no chain of views needs following later.
      guard let source = inputs.first else { throw fail(i, "reshape without an input") }
      var base = source
      if case .view(let root) = buffers[source].storage { base = root }
      valueBuffers.append([add(ValueRef(i).description, type, .view(of: base))])
    default:
      var outputs: [Int] = []
      for (k, t) in n.types.enumerated() {
        outputs.append(add(ValueRef(i, k).description, t, .arena(first: 0, last: 0)))
      }
      valueBuffers.append(outputs)
      var step = Step(op: n.op, attrs: PlanAttrs(n.attrs), inputs: inputs, outputs: outputs, stage: 0, lane: 0,
                      label: ValueRef(i).description)
      if n.op == .scan {
        guard let body = n.attrs.graph("body"), let nseq = n.attrs.int("nseq"), let ncarry = n.attrs.int("ncarry")
        else { throw fail(i, "scan without body, nseq or ncarry") }
        step.body = [try LowerToPlan.lower(body, asBody: nseq + ncarry, nodesBefore: body.totalNodeCount)]
        // The workspace's size comes from the body plan's layout, not from its type.
        step.workspace = add("\(ValueRef(i)).workspace", .f32([0]),
                             .workspace(step: steps.count, first: 0, last: 0))
      }
      steps.append(step)
    }
  }
}
