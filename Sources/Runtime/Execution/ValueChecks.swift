import GraphIR

/// A range check on the values of one fed input, found by tracing an id operand (embedding ids,
/// mixture ids, nll targets, scan lengths) back through views, data movement and scan boundaries
/// to the input it comes from. Kernels never check ids: these run before any kernel does.
struct ValueCheck {
  let input: String
  /// Values must lie in [0, upper) (or [0, upper] when `inclusive`), or equal `ignore`.
  let upper: Dim
  let inclusive: Bool
  let ignore: Int?
  /// What the values are for: `ids of embedding step 3 "%12" (table rows)`.
  let what: String
}

/// A `ValueCheck` at one binding of the dims.
struct BoundCheck {
  let input: String
  let upper: Int
  let inclusive: Bool
  let ignore: Int?
  let what: String
}

enum ValueChecks {
  /// Every value check of a plan and its scan bodies.
  static func collect(_ plan: Plan) -> [ValueCheck] {
    var out: [ValueCheck] = []
    collect(plan, chain: [], into: &out)
    return out
  }

  private typealias Chain = [(plan: Plan, step: Step)]

  private static func collect(_ plan: Plan, chain: Chain, into out: inout [ValueCheck]) {
    let n = plan.buffers.count
    func add(_ operand: Int, _ i: Int, upper: Dim?, inclusive: Bool = false, ignore: Int? = nil, _ what: String) {
      let st = plan.steps[i]
      guard operand < st.inputs.count, st.inputs[operand] >= 0, st.inputs[operand] < n, let upper else { return }
      let label = "\(what) of \(st.op.rawValue) step \(i) \"\(st.label)\"\(chain.isEmpty ? "" : " in \(plan.name)")"
      for name in sources(st.inputs[operand], plan, chain, depth: 0) {
        out.append(ValueCheck(input: name, upper: upper, inclusive: inclusive, ignore: ignore, what: label))
      }
    }
    func dim(_ b: Int, _ axis: Int) -> Dim? {
      guard b >= 0, b < n else { return nil }
      let s = plan.buffers[b].type.shape
      return axis < 0 ? s.last : (axis < s.count ? s[axis] : nil)
    }
    for (i, st) in plan.steps.enumerated() {
      // The op table says which inputs hold ids and what bounds them.
      for id in st.op.spec.idOperands {
        if let flag = id.onlyWith, !st.attrs.bool(flag) { continue }
        let operand = id.input < 0 ? st.inputs.count + id.input : id.input
        guard operand >= 0 else { continue }
        let upper: Dim?
        switch id.bound {
        case .inputDim(let k, let axis): upper = k < st.inputs.count ? dim(st.inputs[k], axis) : nil
        case .attribute(let name): upper = st.attrs.dim(name)
        case .attributeOrOutputDim(let name, let k, let axis):
          upper = st.attrs.dim(name) ?? (k < st.outputs.count ? dim(st.outputs[k], axis) : nil)
        }
        add(operand, i, upper: upper, inclusive: id.inclusive, ignore: id.ignore.flatMap { st.attrs.int($0) }, id.what)
      }
      if st.op == .scan, st.body.count == 1 { collect(st.body[0], chain: chain + [(plan, st)], into: &out) }
    }
  }

  /// The fed inputs whose values end up in buffer `b` (empty when they are computed).
  private static func sources(_ b: Int, _ plan: Plan, _ chain: Chain, depth: Int) -> [String] {
    guard depth < 64, b >= 0, b < plan.buffers.count else { return [] }
    switch plan.buffers[b].storage {
    case .input(let name):
      return [name]
    case .view(let of):
      return sources(of, plan, chain, depth: depth + 1)
    case .outer(let k):
      guard let up = chain.last, k >= 0, k < up.step.inputs.count else { return [] }
      return sources(up.step.inputs[k], up.plan, Array(chain.dropLast()), depth: depth + 1)
    case .arena, .workspace, .param:
      // A scan body's sequence slice holds values of the scan's sequence input.
      if let up = chain.last, let pos = plan.inputs.firstIndex(of: b), pos < (up.step.attrs.int("nseq") ?? 0),
         pos < up.step.inputs.count {
        return sources(up.step.inputs[pos], up.plan, Array(chain.dropLast()), depth: depth + 1)
      }
      guard let producer = plan.steps.first(where: { $0.outputs.contains(b) }),
            [.slice, .concat, .transpose, .broadcast].contains(producer.op) else { return [] }
      var names: [String] = []
      for i in producer.inputs {
        for s in sources(i, plan, chain, depth: depth + 1) where !names.contains(s) { names.append(s) }
      }
      return names
    }
  }

  /// Evaluates the bounds at one binding, dropping repeats.
  static func bind(_ checks: [ValueCheck], env: [String: Int]) throws(RuntimeError) -> [BoundCheck] {
    var out: [BoundCheck] = []
    for c in checks {
      let upper: Int
      do { upper = try c.upper.evaluate(env) } catch { throw .dim(error, "bound of \(c.what)") }
      let repeated = out.contains {
        $0.input == c.input && $0.upper == upper && $0.inclusive == c.inclusive && $0.ignore == c.ignore
      }
      if repeated { continue }
      out.append(BoundCheck(input: c.input, upper: upper, inclusive: c.inclusive, ignore: c.ignore, what: c.what))
    }
    return out
  }

  /// Runs the checks on the fed tensors; the error names the input, the value and its position.
  static func run(_ checks: [BoundCheck], _ inputs: [String: HostTensor]) throws(RuntimeError) {
    for c in checks {
      guard let t = inputs[c.input] else { continue }
      let limit = c.inclusive ? c.upper + 1 : c.upper
      func bad(_ v: Int) -> Bool { (v < 0 || v >= limit) && v != c.ignore }
      var found: (Int, Int)?
      switch t.storage {
      case .i32(let a): if let i = a.firstIndex(where: { bad(Int($0)) }) { found = (i, Int(a[i])) }
      case .i64(let a): if let i = a.firstIndex(where: { bad(Int($0)) }) { found = (i, Int(a[i])) }
      case .i8(let a): if let i = a.firstIndex(where: { bad(Int($0)) }) { found = (i, Int(a[i])) }
      case .f32, .bf16: continue
      }
      if let (i, v) = found {
        let range = c.inclusive ? "[0, \(c.upper)]" : "[0, \(c.upper))"
        let ignore = c.ignore.map { " and is not the ignore value \($0)" } ?? ""
        let at = Bindings.position(i, in: t.shape)
        throw .valueOutOfRange(name: c.input, detail: "holds \(v) at \(at), outside \(range)\(ignore) (\(c.what))")
      }
    }
  }
}
