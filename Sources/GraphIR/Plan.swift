/// A compiled execution plan: the compiler's whole output and the runtime's whole input.
///
/// A plan is an ordered list of kernel launches (`steps`) over typed buffers. Steps with the same
/// `stage` are independent and may run concurrently (each on its `lane`); stages run in order with
/// a barrier between them. Buffer sizes stay formulas of the dims (`B`, `Tc`, ...): the runtime
/// binds them per batch and places arena buffers with `layout(_:)`, the same function the compiler
/// uses to report arena bytes. A `scan` step carries the plan of its body.
public struct Plan: Hashable, Sendable, Codable {
  public var name: String
  public var buffers: [Buffer]
  public var steps: [Step]
  public var stageCount: Int
  public var outputs: [PlanOutput]
  public var stats: PlanStats
  /// The buffers of the graph's `input` nodes, in order. In a scan body these are the sequence
  /// slices and carries (pinned `.arena` buffers the runtime fills each step) and then the consts
  /// (`.outer(k)`).
  public var inputs: [Int]

  public init(name: String, buffers: [Buffer], steps: [Step], stageCount: Int, outputs: [PlanOutput],
              stats: PlanStats, inputs: [Int] = []) {
    self.name = name
    self.inputs = inputs
    self.buffers = buffers
    self.steps = steps
    self.stageCount = stageCount
    self.outputs = outputs
    self.stats = stats
  }

  /// Steps grouped by stage, in stage order.
  public var stages: [[Int]] {
    var s = [[Int]](repeating: [], count: stageCount)
    for (i, st) in steps.enumerated() { s[st.stage].append(i) }
    return s
  }
}

/// One tensor of a plan and where its memory comes from.
public struct Buffer: Hashable, Sendable, Codable {
  public enum Storage: Hashable, Sendable, Codable {
    /// Fed by the caller under this name.
    case input(String)
    /// A weight, by its state_dict key (resolved globally, also inside scan bodies).
    case param(String)
    /// A region of the arena, live over stages `first...last`.
    case arena(first: Int, last: Int)
    /// Same memory as another buffer (reshape): no copy.
    case view(of: Int)
    /// Inside a scan body: the scan step's input number `k` (a loop-invariant const).
    case outer(Int)
    /// Scratch for a scan step's body plan, live over stages `first...last`; sized by the body.
    case workspace(step: Int, first: Int, last: Int)
  }

  public var name: String
  public var type: TensorType
  public var storage: Storage
  public init(name: String, type: TensorType, storage: Storage) {
    self.name = name
    self.type = type
    self.storage = storage
  }
}

/// One kernel launch.
public struct Step: Hashable, Sendable, Codable {
  public var op: OpKind
  /// The op's attributes, without a scan's body (that is `body`).
  public var attrs: PlanAttrs
  public var inputs: [Int]
  public var outputs: [Int]
  public var stage: Int
  public var lane: Int
  /// The IR node this step runs (`%17`), or the nodes a fused step runs.
  public var label: String
  /// A scan's body plan (exactly one), empty for every other step.
  public var body: [Plan]
  /// A scan's `.workspace` buffer, where its body plan's arena lives.
  public var workspace: Int?

  public init(op: OpKind, attrs: PlanAttrs, inputs: [Int], outputs: [Int], stage: Int, lane: Int, label: String,
              body: [Plan] = [], workspace: Int? = nil) {
    self.op = op
    self.attrs = attrs
    self.inputs = inputs
    self.outputs = outputs
    self.stage = stage
    self.lane = lane
    self.label = label
    self.body = body
    self.workspace = workspace
  }
}

public struct PlanOutput: Hashable, Sendable, Codable {
  public var name: String
  public var buffer: Int
  public init(name: String, buffer: Int) {
    self.name = name
    self.buffer = buffer
  }
}

/// What the compiler reports about a plan.
public struct PlanStats: Hashable, Sendable, Codable {
  /// IR nodes (counting scan bodies) before and after the passes.
  public var nodesBefore: Int
  public var nodesAfter: Int
  /// FLOPs of one execution, as a formula of the dims.
  public var flops: Dim
  /// Trainable parameter elements (distinct `param` names).
  public var parameterCount: Int
  public init(nodesBefore: Int, nodesAfter: Int, flops: Dim, parameterCount: Int) {
    self.nodesBefore = nodesBefore
    self.nodesAfter = nodesAfter
    self.flops = flops
    self.parameterCount = parameterCount
  }
}

/// Step attributes in a plan: the IR's attributes minus graphs, so plans are plain Codable data.
public struct PlanAttrs: Hashable, Sendable, Codable {
  public var values: [String: PlanAttr]
  public init(_ attrs: Attrs) {
    var v: [String: PlanAttr] = [:]
    for (k, a) in attrs {
      switch a {
      case .int(let x): v[k] = .int(x)
      case .float(let x): v[k] = .float(x)
      case .bool(let x): v[k] = .bool(x)
      case .string(let x): v[k] = .string(x)
      case .dims(let x): v[k] = .dims(x)
      case .dim(let x): v[k] = .dim(x)
      case .graph: continue
      }
    }
    values = v
  }
  /// Back to IR attributes (for shape rules and costs).
  public var attrs: Attrs { values.mapValues(\.attr) }
  /// Attribute `k` alone as IR attributes: the accessors below read it with `Attrs`' rules (a
  /// float may be written as an integer, a dim as a constant) without converting every attribute
  /// (kernels read them each time a shape is bound).
  private func ir(_ k: String) -> Attrs { values[k].map { [k: $0.attr] } ?? [:] }
  public func int(_ k: String) -> Int? { ir(k).int(k) }
  public func float(_ k: String) -> Float? { ir(k).float(k) }
  public func bool(_ k: String) -> Bool { ir(k).bool(k) ?? false }
  public func string(_ k: String) -> String? { ir(k).string(k) }
  public func dim(_ k: String) -> Dim? { ir(k).dim(k) }
  public func dims(_ k: String) -> [Dim]? { ir(k).dims(k) }
}

public enum PlanAttr: Hashable, Sendable, Codable {
  case int(Int), float(Float), bool(Bool), string(String), dims([Dim]), dim(Dim)

  /// The IR attribute it came from.
  public var attr: Attr {
    switch self {
    case .int(let x): return .int(x)
    case .float(let x): return .float(x)
    case .bool(let x): return .bool(x)
    case .string(let x): return .string(x)
    case .dims(let x): return .dims(x)
    case .dim(let x): return .dim(x)
    }
  }
}
