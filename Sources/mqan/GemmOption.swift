import ArgumentParser
import GraphIR
import Runtime

/// `--gemm mqan|mqan-avx512|mqan-avx2|mqan-portable|openblas`: the GEMM the plans are compiled
/// for. `mqan` (the default) is this CPU's best path of mqan's own kernels.
struct GemmOption: ParsableArguments {
  @Option(help: ArgumentHelp(
    "GEMM kernels: mqan (this CPU's best path of mqan's own), mqan-avx512, mqan-avx2, mqan-portable or openblas.",
    valueName: "gemm"))
  var gemm: String = "mqan"

  /// The target, or a one-line error naming the option (an unknown name, or a path this CPU lacks).
  func target() throws -> GemmTarget {
    do { return try Gemm.target(named: gemm) } catch { throw ValidationError("--gemm: \(error)") }
  }
}
