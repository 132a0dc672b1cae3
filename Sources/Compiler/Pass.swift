import GraphIR

/// A graph-to-graph transformation: one method, a name that `--dump-after` and errors use.
///
/// A pass never mutates its input; it returns a new graph. Passes recurse into scan bodies
/// themselves, since what a body may lose or share depends on the pass.
public protocol GraphPass {
  /// The name the pipeline prints and `CompileOptions.dumpAfter` / `stopAfter` match (`cse`).
  var name: String { get }
  /// Transforms `g`; throws when the graph is invalid in a way the pass cannot work around.
  func run(_ g: Graph) throws(CompileError) -> Graph
}

extension GraphPass {
  /// Runs `body`, reporting a graph error as this pass's (`CompileError.inPass`).
  func reporting(_ body: () throws(GraphError) -> Graph) throws(CompileError) -> Graph {
    do {
      return try body()
    } catch {
      throw .inPass(pass: name, error)
    }
  }
}

/// A plan-to-plan transformation of the lowering (scheduling, memory planning).
public protocol PlanPass {
  /// The name the pipeline prints and `CompileOptions.dumpAfter` matches (`plan-memory`).
  var name: String { get }
  /// Transforms `plan`, recursing into the body plans of scan steps.
  func run(_ plan: Plan) throws(CompileError) -> Plan
}

/// Everything that can stop a compilation, each naming the pass and the node or buffer involved.
public enum CompileError: Error, Equatable, CustomStringConvertible {
  /// A pass found the graph invalid while transforming it (shape inference reports drifts here).
  case inPass(pass: String, GraphError)
  /// The graph a pass returned does not verify (a bug in that pass).
  case afterPass(pass: String, GraphError)
  /// `dumpAfter` or `stopAfter` names a pass the pipeline does not have.
  case unknownPass(String, known: [String])
  /// Lowering cannot express node `node` of graph `graph` as a plan.
  case lowering(graph: String, node: Int, problem: String)
  /// A plan breaks one of the invariants the runtime relies on (a bug in a plan pass).
  case invalidPlan(plan: String, problem: String)

  public var description: String {
    switch self {
    case .inPass(let pass, let e):
      return "in pass \(pass): \(e)"
    case .afterPass(let pass, let e):
      return "after pass \(pass): \(e)"
    case .unknownPass(let name, let known):
      return "unknown pass \"\(name)\" (passes: \(known.joined(separator: ", ")))"
    case .lowering(let graph, let node, let problem):
      return "lowering graph \(graph): node %\(node): \(problem)"
    case .invalidPlan(let plan, let problem):
      return "invalid plan @\(plan): \(problem)"
    }
  }
}

extension Node {
  /// Returns this node with `transform` applied to its scan body, if it has one.
  ///
  /// Errors from the body come back wrapped as `GraphError.inBody(scanNode: index, ...)`, so a
  /// message reads "in the body of scan %14: node %3 (linear): ...".
  func mappingBody(at index: Int, _ transform: (Graph) throws(GraphError) -> Graph) throws(GraphError) -> Node {
    guard let body = attrs.graph("body") else { return self }
    var node = self
    do {
      node.attrs["body"] = .graph(try transform(body))
    } catch {
      throw .inBody(scanNode: index, error)
    }
    return node
  }
}

extension Graph {
  /// A peephole rewrite, as the fusion passes do it: each node (scan bodies too, recursively) is
  /// offered to `rewrite` with the use counts of this graph; a returned node replaces it in
  /// place (same outputs), nil keeps it. What a replacement stops reading is left for `dce`.
  func rewritingNodes(_ rewrite: (Graph, Int, Node, [ValueRef: Int]) throws(GraphError) -> Node?)
    throws(GraphError) -> Graph
  {
    var out = self
    let uses = useCounts()
    for (j, n) in nodes.enumerated() {
      if n.op == .scan {
        out.nodes[j] = try n.mappingBody(at: j) { body throws(GraphError) in try body.rewritingNodes(rewrite) }
      } else if let replacement = try rewrite(self, j, n, uses) {
        out.nodes[j] = replacement
      }
    }
    return out
  }

  /// Throws unless every input of node `index` refers to an existing output of an earlier node.
  func checkReferences(of index: Int) throws(GraphError) {
    for r in nodes[index].inputs {
      guard r.node >= 0, r.node < index else {
        throw .badReference(node: index, ref: r, problem: "does not refer to an earlier node")
      }
      guard r.index >= 0, r.index < nodes[r.node].types.count else {
        throw .badReference(node: index, ref: r, problem: "node %\(r.node) has \(nodes[r.node].types.count) outputs")
      }
    }
  }

  /// Throws unless every graph output refers to an existing value and output names are unique.
  func checkOutputs() throws(GraphError) {
    var seen = Set<String>()
    for o in outputs {
      guard o.value.node >= 0, o.value.node < nodes.count, o.value.index >= 0,
            o.value.index < nodes[o.value.node].types.count
      else {
        throw .graph("graph \(name): output \"\(o.name)\" refers to missing value \(o.value)")
      }
      guard seen.insert(o.name).inserted else { throw .graph("graph \(name): duplicate output name \"\(o.name)\"") }
    }
  }
}

extension Plan {
  /// This plan with every scan step's body plan replaced by `transform(body)`: plan passes treat
  /// body plans as they treat the plan itself.
  func mappingBodies(_ transform: (Plan) throws(CompileError) -> Plan) throws(CompileError) -> Plan {
    var p = self
    for i in p.steps.indices {
      var bodies: [Plan] = []
      for b in p.steps[i].body { bodies.append(try transform(b)) }
      p.steps[i].body = bodies
    }
    return p
  }
}
