import CKernels
import GraphIR

/// The reduced-precision formats this CPU runs, as `PrecisionTarget`s for the compiler.
public enum Precisions {
  /// The target for `--precision NAME`: fp32 (nil: nothing to convert), or bf16 / int8 on this
  /// CPU's fastest path, with a `note` for stderr when that is not the AVX-512 one: the AVX2 path
  /// (the same results; README's "Faster decoding" gives its speed), or the portable one (the CPU
  /// lacks the instructions; the answers are the same, the speed is not).
  /// - Throws: `RuntimeError.invalidPlan` for an unknown name.
  public static func target(named name: String) throws(RuntimeError)
    -> (target: PrecisionTarget?, note: String?)
  {
    guard let p = Precision(rawValue: name) else {
      throw .invalidPlan("unknown precision \"\(name)\" (choices: \(Precision.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    guard p != .fp32 else { return (nil, nil) }
    let id = cPrecision(p)
    let path = mq_qpath_best(id)
    let target = PrecisionTarget(precision: p, path: String(cString: mq_qpath_name(id, path)))
    let avx512 = String(cString: mq_qpath_needs(id, Int32(MQ_QPATH_AVX512)))
    switch path {
    case Int32(MQ_QPATH_AVX512):
      return (target, nil)
    case Int32(MQ_QPATH_AVX2):
      return (target, "this CPU lacks \(avx512): \(p.rawValue) runs on the AVX2 path, with the same results "
                + "(README's \"Faster decoding\" gives its speed there)")
    default:
      let avx2 = String(cString: mq_qpath_needs(id, Int32(MQ_QPATH_AVX2)))
      return (target, "this CPU lacks \(avx512) and \(avx2): \(p.rawValue) runs on the portable "
                + "(emulated) path, with the same results, far slower than fp32")
    }
  }

  static func cPrecision(_ p: Precision) -> Int32 {
    switch p {
    case .fp32: return Int32(MQ_PREC_FP32)
    case .bf16: return Int32(MQ_PREC_BF16)
    case .int8: return Int32(MQ_PREC_INT8)
    }
  }
}

/// `linear` with its weight in bf16 or int8 (`precision` and `qpath` from `select-precision`):
/// the weight converted into `mq_qlinear` panels when the plan is bound (again only after the
/// weights change, like packed GEMM weights); each thread converts the activation rows it needs
/// into its own scratch and computes its block: all rows and a share of whole panels of columns,
/// or (`split: rows`) a share of the rows and all columns. Reference mode runs `mq_qlinear_ref`.
enum QuantizedLinear {
  /// The step's reduced precision, or nil when it runs fp32.
  static func precision(_ s: KernelSite) throws(RuntimeError) -> Precision? {
    guard let name = s.step.attrs.string("precision") else { return nil }
    guard let p = Precision(rawValue: name) else {
      throw .invalidPlan("\(s.name): unknown precision \"\(name)\" (fp32, bf16 or int8)")
    }
    return p == .fp32 ? nil : p
  }

  static func kernel(_ s: KernelSite, precision p: Precision, m: Int, n: Int, k: Int, bias bb: Int,
                     residual rb: Int, act: Int32) throws(RuntimeError) -> Kernel {
    let prec = Precisions.cPrecision(p)
    let pathName = s.step.attrs.string("qpath") ?? String(cString: mq_qpath_name(prec, mq_qpath_best(prec)))
    let path: Int32
    switch pathName {
    case "portable": path = Int32(MQ_QPATH_PORTABLE)
    case "avx512-bf16" where p == .bf16, "avx512-vnni" where p == .int8: path = Int32(MQ_QPATH_AVX512)
    case "avx2": path = Int32(MQ_QPATH_AVX2)
    default: throw .invalidPlan("\(s.name): unknown \(p.rawValue) path \"\(pathName)\"")
    }
    guard mq_qpath_supported(prec, path) != 0 else {
      throw .invalidPlan("\(s.name): the plan was compiled for \(p.rawValue) on \(pathName), which needs "
                           + "\(String(cString: mq_qpath_needs(prec, path))), and this CPU lacks it; compile it again here")
    }
    try s.require(Int64(k) <= mq_qlinear_max_k(prec), "depth \(k) is over \(p.rawValue)'s \(mq_qlinear_max_k(prec))")
    let wb = s.step.inputs[1], xb = s.step.inputs[0], yb = s.step.outputs[0], ptrs = s.ptrs
    guard let name = s.paramName(wb), let source = ptrs[wb] else {
      throw .invalidPlan("\(s.name): a \(p.rawValue) linear needs a weight parameter")
    }
    if s.reference {
      return { team in
        let (r0, r1) = team.share(m)
        guard r0 < r1 else { return }
        var ep = mq_gemm_epilogue(bias: bb >= 0 ? UnsafePointer(f32(ptrs, bb)) : nil,
                                  residual: rb >= 0 ? UnsafePointer(f32(ptrs, rb) + r0 * n) : nil, ldr: Int64(n), act: act)
        mq_qlinear_ref(prec, Int64(r1 - r0), Int64(n), Int64(k), f32(ptrs, xb) + r0 * k, Int64(k), f32(ptrs, wb),
                       f32(ptrs, yb) + r0 * n, Int64(n), &ep)
      }
    }
    let entry = try s.packed.entry(name: name, source: UnsafePointer(source.assumingMemoryBound(to: Float.self)),
                                   n: n, k: k, transB: true, config: mq_gemm_config_for(mq_gemm_best_path()),
                                   precision: prec)
    let panels = Int(mq_qweight_panels(Int64(n)))
    let byRows = s.step.attrs.string("split") == "rows"
    return { team in
      // Columns: all rows, whole panels of this thread's share; rows: this thread's rows, all columns.
      var r0 = 0, r1 = m, c0 = 0, c1 = n
      if byRows {
        (r0, r1) = team.share(m)
      } else {
        let per = (panels + team.nth - 1) / team.nth
        c0 = min(per * team.ith * Int(MQ_QPANEL), n)
        c1 = min(c0 + per * Int(MQ_QPANEL), n)
      }
      guard r0 < r1, c0 < c1 else { return }
      let rows = r1 - r0
      let x = f32(ptrs, xb) + r0 * k, y = f32(ptrs, yb) + r0 * n
      var ep = mq_gemm_epilogue(bias: bb >= 0 ? UnsafePointer(f32(ptrs, bb)) : nil,
                                residual: rb >= 0 ? UnsafePointer(f32(ptrs, rb) + r0 * n) : nil, ldr: Int64(n), act: act)
      // mq_gemm_thread_scratch fails only when memory runs out: then the oracle computes the block.
      guard let scratch = mq_gemm_thread_scratch((Int(mq_qact_bytes(prec, Int64(rows), Int64(k))) + 3) / 4) else {
        for c in c0..<c1 {
          var one = mq_gemm_epilogue(bias: ep.bias.map { $0 + c }, residual: ep.residual.map { $0 + c }, ldr: Int64(n), act: act)
          mq_qlinear_ref(prec, Int64(rows), 1, Int64(k), x, Int64(k), f32(ptrs, wb) + c * k, y + c, Int64(n), &one)
        }
        return
      }
      mq_qact_convert(prec, Int64(rows), Int64(k), x, Int64(k), scratch)
      mq_qlinear(prec, path, Int64(rows), Int64(n), Int64(k), scratch, entry.raw, y, Int64(n), &ep, Int64(c0), Int64(c1))
    }
  }
}
