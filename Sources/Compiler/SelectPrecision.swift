import GraphIR

/// Converts an inference plan's large linears to a reduced precision: each `linear` step with a
/// parameter weight that is decoding's output layer (its output is the logits a `mixture_top_k`
/// step reads) or has at least `target.minWeightElements` elements (or every one, with
/// `target.linears == .all`) gains `precision`
/// (`bf16` or `int8`) and `qpath` (the kernel path), which the runtime reads to convert the weight
/// once when the plan is bound and to run the reduced-precision kernel; `--emit kernels` shows
/// them. Other steps keep fp32. Weights read by anything other than such linears are left alone
/// (a weight shared with an fp32 step keeps its fp32 copy too).
///
/// Runs after `select-gemm` (it replaces that step's blocking and packing, and keeps its thread
/// split: rows or columns), on every body plan too; changes no buffer and no step order.
public struct SelectPrecision: PlanPass {
  public let name = "select-precision"
  public let target: PrecisionTarget

  public init(target: PrecisionTarget) { self.target = target }

  public func run(_ plan: Plan) throws(CompileError) -> Plan {
    var p = try plan.mappingBodies(run)
    guard target.precision != .fp32 else { return p }
    var logits = Set<Int>()
    for st in p.steps where st.op == .mixtureTopK { if let l = st.inputs.first { logits.insert(p.rootBuffer(l)) } }
    for i in p.steps.indices where p.steps[i].op == .linear && p.steps[i].inputs.count > 1 {
      let w = p.rootBuffer(p.steps[i].inputs[1])
      guard case .param = p.buffers[w].storage else { continue }
      var elements = 1
      for d in p.buffers[w].type.shape {
        guard let v = d.constant else { elements = 0; break }
        elements = elements.multipliedReportingOverflow(by: v).overflow ? Int.max : elements * v
      }
      let outputLayer = p.steps[i].outputs.contains { logits.contains(p.rootBuffer($0)) }
      guard target.linears == .all || outputLayer || elements >= target.minWeightElements else { continue }
      var attrs = p.steps[i].attrs.values
      for key in ["kc", "nb", "mb", "pack"] { attrs[key] = nil }
      attrs["precision"] = .string(target.precision.rawValue)
      attrs["qpath"] = .string(target.path)
      // select-gemm's split (rows when the output is taller than wide); columns when it made none.
      if attrs["split"] == nil { attrs["split"] = .string("columns") }
      p.steps[i].attrs.values = attrs
    }
    return p
  }
}
