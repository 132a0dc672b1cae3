/// A typed handle to a value while a graph is being built.
public struct Value: Sendable {
  public var ref: ValueRef
  public var type: TensorType
  public var shape: [Dim] { type.shape }
}

/// Builds a graph node by node, inferring each node's type through the op table as it goes.
///
/// ```swift
/// let b = GraphBuilder(name: "tiny")
/// let x = try b.input("x", .f32, [.sym("B"), 4])
/// let w = try b.param("w", [3, 4])
/// try b.output("y", b.tanh(b.linear(x, w)))
/// let g = b.finish()
/// ```
public final class GraphBuilder {
  public private(set) var graph: Graph
  /// Symbols that body builders create inputs under (`x0`, `carry0`, ...).
  private var inputCounter = 0

  public init(name: String) { graph = Graph(name: name) }
  /// Continues building on an existing graph (autodiff appends the backward pass this way).
  public init(graph: Graph) { self.graph = graph }

  /// The value of an existing node output, typed.
  public func value(_ ref: ValueRef) -> Value { Value(ref: ref, type: graph.type(of: ref)) }

  public func finish() -> Graph { graph }

  /// Appends a node after running its shape rule; returns its outputs.
  @discardableResult
  public func node(_ op: OpKind, _ inputs: [Value], _ attrs: Attrs = [:]) throws(GraphError) -> [Value] {
    var n = Node(op: op, inputs: inputs.map(\.ref), attrs: attrs, types: [])
    let index = graph.nodes.count
    n.types = try graph.inferTypes(of: n, at: index)
    graph.nodes.append(n)
    return n.types.enumerated().map { Value(ref: ValueRef(index, $0.offset), type: $0.element) }
  }
  func one(_ op: OpKind, _ inputs: [Value], _ attrs: Attrs = [:]) throws(GraphError) -> Value {
    try node(op, inputs, attrs)[0]
  }

  /// Replaces node `index` (same op family, possibly more outputs), re-inferring its types.
  /// Existing references to its outputs stay valid when outputs are only appended.
  public func replace(_ index: Int, with node: Node) throws(GraphError) {
    var n = node
    n.types = try graph.inferTypes(of: n, at: index)
    graph.nodes[index] = n
  }

  public func output(_ name: String, _ v: Value) throws(GraphError) {
    if graph.outputs.contains(where: { $0.name == name }) {
      throw .graph("graph \(graph.name): duplicate output name \"\(name)\"")
    }
    graph.outputs.append(GraphOutput(name, v.ref))
  }

  // Sources
  public func input(_ name: String, _ dtype: DType, _ shape: [Dim]) throws(GraphError) -> Value {
    try one(.input, [], ["name": .string(name), "dtype": .string(dtype.rawValue), "shape": .dims(shape)])
  }
  public func param(_ name: String, _ shape: [Dim]) throws(GraphError) -> Value {
    try one(.param, [], ["name": .string(name), "shape": .dims(shape)])
  }
  public func zeros(_ shape: [Dim]) throws(GraphError) -> Value { try one(.zeros, [], ["shape": .dims(shape)]) }
  public func positionalEncoding(_ t: Dim, _ d: Dim) throws(GraphError) -> Value {
    try one(.positionalEncoding, [], ["shape": .dims([t, d])])
  }

  // Elementwise
  public func add(_ a: Value, _ b: Value) throws(GraphError) -> Value { try one(.add, [a, b]) }
  public func sub(_ a: Value, _ b: Value) throws(GraphError) -> Value { try one(.sub, [a, b]) }
  public func mul(_ a: Value, _ b: Value) throws(GraphError) -> Value { try one(.mul, [a, b]) }
  public func affine(_ x: Value, alpha: Float, beta: Float = 0) throws(GraphError) -> Value {
    try one(.affine, [x], ["alpha": .float(alpha), "beta": .float(beta)])
  }
  public func tanh(_ x: Value) throws(GraphError) -> Value { try one(.tanh, [x]) }
  public func sigmoid(_ x: Value) throws(GraphError) -> Value { try one(.sigmoid, [x]) }
  public func relu(_ x: Value) throws(GraphError) -> Value { try one(.relu, [x]) }

  // Linear algebra
  public func linear(_ x: Value, _ w: Value, _ b: Value? = nil) throws(GraphError) -> Value {
    try one(.linear, b.map { [x, w, $0] } ?? [x, w])
  }
  public func matmul(_ a: Value, _ b: Value, transA: Bool = false, transB: Bool = false) throws(GraphError) -> Value {
    var attrs: Attrs = [:]
    if transA { attrs["transA"] = .bool(true) }
    if transB { attrs["transB"] = .bool(true) }
    return try one(.matmul, [a, b], attrs)
  }

  // Data movement
  public func concat(_ xs: [Value], axis: Int) throws(GraphError) -> Value {
    try one(.concat, xs, ["axis": .int(axis < 0 ? xs[0].type.rank + axis : axis)])
  }
  public func slice(_ x: Value, axis: Int, start: Int, length: Dim) throws(GraphError) -> Value {
    try one(.slice, [x], ["axis": .int(axis < 0 ? x.type.rank + axis : axis), "start": .int(start),
                          "length": .dim(length)])
  }
  public func reshape(_ x: Value, _ shape: [Dim]) throws(GraphError) -> Value {
    try one(.reshape, [x], ["shape": .dims(shape)])
  }
  public func transpose(_ x: Value) throws(GraphError) -> Value { try one(.transpose, [x]) }
  public func broadcast(_ x: Value, to shape: [Dim]) throws(GraphError) -> Value {
    try one(.broadcast, [x], ["shape": .dims(shape)])
  }
  public func embedding(_ table: Value, _ ids: Value) throws(GraphError) -> Value { try one(.embedding, [table, ids]) }
  public func padMask(_ ids: Value, pad: Int) throws(GraphError) -> Value { try one(.padMask, [ids], ["pad": .int(pad)]) }

  // Normalization and attention
  public func softmax(_ x: Value, mask: Value? = nil, scale: Float = 1, fill: Float = -1e10, eps: Float = 0,
                      causal: Bool = false) throws(GraphError) -> Value {
    var attrs: Attrs = ["scale": .float(scale), "fill": .float(fill), "eps": .float(eps)]
    if causal { attrs["causal"] = .bool(true) }
    return try one(.softmax, mask.map { [x, $0] } ?? [x], attrs)
  }
  /// `dropout`: decaNLP's dropout on the attention weights, drawn from (seed, salt).
  public func attention(q: Value, k: Value, v: Value, keyPadding: Value?, heads: Int, scale: Float,
                        fill: Float = -1e10, causal: Bool = false,
                        dropout: (p: Float, salt: Int, seed: Value)? = nil) throws(GraphError) -> Value {
    var attrs: Attrs = ["heads": .int(heads), "scale": .float(scale), "fill": .float(fill)]
    if causal { attrs["causal"] = .bool(true) }
    var inputs = [q, k, v] + (keyPadding.map { [$0] } ?? [])
    if let dropout {
      attrs["dropout"] = .float(dropout.p)
      attrs["salt"] = .int(dropout.salt)
      inputs.append(dropout.seed)
    }
    return try one(.attention, inputs, attrs)
  }
  public func layerNorm(_ x: Value, gamma: Value, beta: Value, eps: Float) throws(GraphError) -> Value {
    try one(.layerNorm, [x, gamma, beta], ["eps": .float(eps)])
  }

  // Recurrence
  public func lstmCell(gates: Value, c: Value) throws(GraphError) -> (h: Value, c: Value) {
    let out = try node(.lstmCell, [gates, c])
    return (out[0], out[1])
  }

  /// The values a scan body receives at one step.
  public struct ScanStep {
    public var seqs: [Value]
    public var carries: [Value]
    public var consts: [Value]
  }

  /// Adds a `scan` whose body `step` builds: it gets the step's slices, carries and consts and
  /// returns the new carries and the step outputs. Returns the final carries and stacked outputs.
  public func scan(name: String, seqs: [Value], carries: [Value], consts: [Value] = [], lengths: Value? = nil,
                   reverse: Bool = false, accumulators: Int = 0,
                   _ step: (GraphBuilder, ScanStep) throws(GraphError) -> (carries: [Value], outputs: [Value]))
    throws(GraphError) -> (carries: [Value], outputs: [Value])
  {
    let body = GraphBuilder(name: name)
    var s = ScanStep(seqs: [], carries: [], consts: [])
    for (i, x) in seqs.enumerated() {
      var shape = x.shape
      shape.remove(at: 1)
      s.seqs.append(try body.input("x\(i)", x.type.dtype, shape))
    }
    for (i, h) in carries.enumerated() { s.carries.append(try body.input("carry\(i)", h.type.dtype, h.shape)) }
    for (i, c) in consts.enumerated() { s.consts.append(try body.input("const\(i)", c.type.dtype, c.shape)) }
    let (newCarries, outputs) = try step(body, s)
    for (i, v) in newCarries.enumerated() { try body.output("carry\(i)", v) }
    for (i, v) in outputs.enumerated() { try body.output("y\(i)", v) }
    var attrs: Attrs = ["nseq": .int(seqs.count), "ncarry": .int(carries.count), "body": .graph(body.finish())]
    if reverse { attrs["reverse"] = .bool(true) }
    if lengths != nil { attrs["masked"] = .bool(true) }
    if accumulators > 0 { attrs["nacc"] = .int(accumulators) }
    let all = seqs + carries + consts + (lengths.map { [$0] } ?? [])
    let out = try node(.scan, all, attrs)
    return (Array(out.prefix(carries.count)), Array(out.dropFirst(carries.count)))
  }
}
