import GraphIR

/// Chooses, per GEMM step, how the runtime runs it, and records the choice in the step's
/// attributes:
///
/// - `gemm`: the target's path (`mqan-avx512`, ..., `openblas`); on every step that multiplies
///   matrices (`linear`, `linear_grad_input`, `linear_grad_weight`, `matmul`) and on the attention
///   kernels, whose inner GEMMs follow it.
/// - `kc`, `nb`, `mb`: the path's cache blocking (mqan paths).
/// - `split`: `rows` or `columns`, how a team of threads shares the output. Columns when the output
///   has more columns than rows at the sample dims (decoding's 50,000-word output layer against a
///   few hypotheses; an LSTM step's 800 gate columns against 32 rows), so each thread reads only
///   its share of the weight; rows otherwise. `matmul` always splits its batch.
/// - `pack`: the weight is a parameter, packed once into the microkernel's panel layout when the
///   executor binds (and again only after the weights change), instead of on every call: `linear`
///   (x Wᵀ) and `linear_grad_input` (g W) with a `.param` weight.
///
/// Runs after the lowering, on every body plan too; changes no buffer and no step order.
public struct SelectGemm: PlanPass {
  public let name = "select-gemm"
  public let target: GemmTarget
  public let sampleDims: [String: Int]

  public init(target: GemmTarget, sampleDims: [String: Int] = GemmTarget.sampleDims) {
    self.target = target
    self.sampleDims = sampleDims
  }

  public func run(_ plan: Plan) throws(CompileError) -> Plan {
    var p = try plan.mappingBodies(run)
    for i in p.steps.indices {
      let st = p.steps[i]
      switch st.op {
      case .linear, .linearGradInput, .linearGradWeight, .matmul, .attention, .attentionGrad: break
      default: continue
      }
      var attrs = st.attrs.values
      attrs["gemm"] = .string(target.name)
      if !target.isOpenBLAS {
        attrs["kc"] = .int(target.kc)
        attrs["nb"] = .int(target.nb)
        attrs["mb"] = .int(target.mb)
      }
      if let (m, n) = outputRowsColumns(st, in: p) { attrs["split"] = .string(n > m ? "columns" : "rows") }
      if !target.isOpenBLAS, st.op == .linear || st.op == .linearGradInput, st.inputs.count > 1,
         case .param = p.buffers[p.rootBuffer(st.inputs[1])].storage {
        attrs["pack"] = .bool(true)
      }
      p.steps[i].attrs.values = attrs
    }
    return p
  }

  /// The output's rows and columns at the sample dims, as the kernel multiplies them (nil for
  /// matmul and attention, which split their batch, and when a dim has no sample value).
  func outputRowsColumns(_ st: Step, in p: Plan) -> (Int, Int)? {
    func shape(_ b: Int) -> [Int]? {
      guard b >= 0, b < p.buffers.count else { return nil }
      var out: [Int] = []
      for d in p.buffers[b].type.shape {
        guard let v = try? d.evaluate(sampleDims) else { return nil }
        out.append(v)
      }
      return out
    }
    guard st.inputs.count >= 2, let a = shape(st.inputs[0]), let w = shape(st.inputs[1]),
          let am = a.last, !w.isEmpty else { return nil }
    let rows = a.dropLast().reduce(1, *)
    switch st.op {
    case .linear: return (rows, w[0])                      // x [M, K] W[N, K]ᵀ -> [M, N]
    case .linearGradInput: return w.count == 2 ? (rows, w[1]) : nil // g [M, N] W [N, K] -> [M, K]
    case .linearGradWeight: return (am, w.last ?? 0)       // gᵀ [N, M] x [M, K] -> [N, K]
    default: return nil
    }
  }
}
