/// What one step of a plan costs, from the op table: the same FLOP rule the compiler sums into
/// `PlanStats.flops`, and the bytes its inputs and outputs occupy.
extension Plan {
  /// FLOPs and bytes of one execution of step `i` (a scan: its body's cost times the time
  /// steps; a view: nothing).
  public func stepCost(_ i: Int) -> Cost {
    guard i >= 0, i < steps.count else { return .zero }
    let st = steps[i]
    func type(_ b: Int) -> TensorType? { b >= 0 && b < buffers.count ? buffers[b].type : nil }
    let inputs = st.inputs.compactMap(type), outputs = st.outputs.compactMap(type)
    if st.op == .scan {
      guard let body = st.body.first, let t = inputs.first?.shape.dropFirst().first else { return .zero }
      var total = Cost.zero
      for j in body.steps.indices { total = total + body.stepCost(j) }
      return total * t
    }
    if st.op.spec.isView { return .zero }
    let ctx = InferContext(node: i, op: st.op, inputs: inputs, attrs: st.attrs.attrs)
    var bytes = Dim(0)
    for t in inputs + outputs { bytes += t.byteCount }
    return Cost(flops: st.op.spec.flops(ctx, outputs), bytes: bytes)
  }

  /// The step `path` names (`train/12/3`: step 3 of the body of step 12 of plan `train`), and
  /// the plan that holds it.
  public func step(atPath path: String) -> (plan: Plan, index: Int)? {
    let parts = path.split(separator: "/").dropFirst().compactMap { Int($0) }
    var plan = self
    for (k, i) in parts.enumerated() {
      guard i >= 0, i < plan.steps.count else { return nil }
      if k == parts.count - 1 { return (plan, i) }
      guard let body = plan.steps[i].body.first else { return nil }
      plan = body
    }
    return nil
  }

  /// The steps of a training plan that belong to its backward pass: the backward ops autodiff
  /// emits and every step that reads what they (transitively) produce. Scan bodies follow
  /// their scan.
  public var backwardSteps: Set<Int> {
    let roots = buffers.indices.map(rootBuffer)
    var gradient = Set<Int>()
    var out = Set<Int>()
    for (i, st) in steps.enumerated() {
      let readsGradient = st.inputs.contains { $0 >= 0 && $0 < buffers.count && gradient.contains(roots[$0]) }
      if st.op.spec.isGradient || readsGradient {
        out.insert(i)
        for o in st.outputs { gradient.insert(o) }
      }
    }
    return out
  }
}
