import CKernels
import GraphIR

/// The GEMM paths this CPU runs, as `GemmTarget`s for the compiler, and the per-step choice the
/// compiler recorded, for the kernels.
public enum Gemm {
  /// The names `--gemm` takes: `mqan` (the best path this CPU runs), one path, or `openblas`.
  public static let choices = ["mqan", "mqan-avx512", "mqan-avx2", "mqan-portable", "openblas"]

  /// The target for a `--gemm` name, with the blocking derived from this CPU's caches.
  /// - Throws: `RuntimeError.invalidPlan` for an unknown name or a path this CPU cannot run
  ///   (naming the missing instruction set).
  public static func target(named name: String) throws(RuntimeError) -> GemmTarget {
    if name == "openblas" { return .openblas }
    let path: Int32
    switch name {
    case "mqan": path = mq_gemm_best_path()
    case "mqan-avx512": path = Int32(MQ_GEMM_AVX512)
    case "mqan-avx2": path = Int32(MQ_GEMM_AVX2)
    case "mqan-portable": path = Int32(MQ_GEMM_PORTABLE)
    default:
      throw .invalidPlan("unknown GEMM \"\(name)\" (choices: \(choices.joined(separator: ", ")))")
    }
    return try target(path: path)
  }

  /// The best path this CPU runs.
  public static var best: GemmTarget { (try? target(path: mq_gemm_best_path())) ?? .openblas }

  static func target(path: Int32) throws(RuntimeError) -> GemmTarget {
    let name = String(cString: mq_gemm_path_name(path))
    guard mq_gemm_path_supported(path) != 0 else {
      let need = path == Int32(MQ_GEMM_AVX512) ? "AVX-512F (with the OS saving zmm state)" : "AVX2 and FMA"
      throw .invalidPlan("GEMM \(name) needs \(need), which this CPU does not have; "
                           + "use --gemm mqan (the best path it runs: \(String(cString: mq_gemm_path_name(mq_gemm_best_path())))) or --gemm openblas")
    }
    let c = mq_gemm_config_for(path)
    return GemmTarget(name: name, mr: Int(c.mr), nr: Int(c.nr), kc: Int(c.kc), nb: Int(c.nb), mb: Int(c.mb))
  }

  /// `mqan-avx512`, or `openblas Cooperlake` (OpenBLAS's core for this CPU).
  public static func describe(_ t: GemmTarget) -> String {
    t.isOpenBLAS ? "openblas \(String(cString: mq_openblas_core()))" : t.name
  }

  /// The path id of a target name (nil for openblas or an unknown name).
  static func pathID(_ name: String) -> Int32? {
    switch name {
    case "mqan-avx512": return Int32(MQ_GEMM_AVX512)
    case "mqan-avx2": return Int32(MQ_GEMM_AVX2)
    case "mqan-portable": return Int32(MQ_GEMM_PORTABLE)
    default: return nil
    }
  }
}

/// How one step runs its GEMM: read from the attributes `select-gemm` recorded (a plan without
/// them runs the best path with this CPU's blocking, splitting by rows unless the output is wider
/// than tall).
struct GemmChoice {
  let openblas: Bool
  var config: mq_gemm_config
  /// Threads share the output's columns (else its rows).
  let columns: Bool
  /// The weight comes packed ahead (`PackedWeights`).
  let pack: Bool

  init(_ s: KernelSite, rows m: Int, columns n: Int) throws(RuntimeError) {
    let name = s.step.attrs.string("gemm")
    openblas = name == "openblas"
    let path: Int32
    if let name, !openblas {
      guard let id = Gemm.pathID(name) else { throw .invalidPlan("\(s.name): unknown GEMM \"\(name)\"") }
      guard mq_gemm_path_supported(id) != 0 else {
        throw .invalidPlan("\(s.name): the plan was compiled for GEMM \(name), which this CPU cannot run; "
                             + "compile it again here (--gemm mqan) or with --gemm openblas")
      }
      path = id
    } else {
      path = mq_gemm_best_path()
    }
    config = mq_gemm_config_for(path)
    for (key, limit) in [("kc", 1 << 14), ("nb", 1 << 20), ("mb", 1 << 20)] {
      guard let v = s.step.attrs.int(key) else { continue }
      try s.require(v > 0 && v <= limit, "GEMM blocking \(key) = \(v) is outside 1...\(limit)")
      switch key {
      case "kc": config.kc = Int64(v)
      case "nb":
        try s.require(v % Int(config.nr) == 0, "GEMM blocking nb = \(v) is not a multiple of the tile's \(config.nr) columns")
        config.nb = Int64(v)
      default:
        try s.require(v % Int(config.mr) == 0, "GEMM blocking mb = \(v) is not a multiple of the tile's \(config.mr) rows")
        config.mb = Int64(v)
      }
    }
    switch s.step.attrs.string("split") {
    case "columns": columns = true
    case "rows": columns = false
    case nil: columns = n > m
    case let other?: throw .invalidPlan("\(s.name): unknown GEMM split \"\(other)\" (rows or columns)")
    }
    pack = !openblas && !s.reference && s.step.attrs.bool("pack")
  }

  /// This thread's output block: all rows and its share of the columns (multiples of the tile's
  /// width, so packed panels and cache lines are never shared), or its share of the rows.
  func block(_ team: Team, rows m: Int, columns n: Int) -> (r0: Int, r1: Int, c0: Int, c1: Int) {
    if team.nth == 1 { return (0, m, 0, n) }
    if columns {
      let nr = Int(config.nr)
      let panels = (n + nr - 1) / nr
      let per = (panels + team.nth - 1) / team.nth
      let c0 = min(per * nr * team.ith, n)
      return (0, m, c0, min(c0 + per * nr, n))
    }
    let (r0, r1) = team.share(m)
    return (r0, r1, 0, n)
  }

  /// Scratch for one call with these dims, on the calling thread (grown once, kept for later calls).
  func scratch(_ m: Int, _ n: Int, _ k: Int) -> UnsafeMutablePointer<Float>? {
    var c = config
    return mq_gemm_thread_scratch(mq_gemm_scratch_floats(&c, Int64(m), Int64(n), Int64(k)))
  }
}
