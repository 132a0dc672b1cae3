/// The GEMM a plan is compiled for: mqan's own kernels on one instruction-set path, with that
/// path's microkernel tile and cache blocking, or OpenBLAS's `cblas_sgemm`.
///
/// The compiler does not look at the CPU (it imports only GraphIR): the caller describes the
/// target (the CLI asks the runtime, which reads cpuid and the cache sizes) and the `select-gemm`
/// pass records the choice in every GEMM step (`gemm`, `kc`, `nb`, `mb`, `split`, `pack`), where
/// `--emit kernels` shows it and the runtime executes it.
public struct GemmTarget: Sendable, Hashable, Codable {
  /// `mqan-avx512`, `mqan-avx2`, `mqan-portable` or `openblas`.
  public var name: String
  /// The microkernel's tile: rows (broadcasts) x columns (vector lanes); 0 for OpenBLAS.
  public var mr: Int
  public var nr: Int
  /// Cache blocking: depth of a packed block, columns of B per L2 block, rows of A per block.
  public var kc: Int
  public var nb: Int
  public var mb: Int

  public init(name: String, mr: Int, nr: Int, kc: Int, nb: Int, mb: Int) {
    self.name = name
    self.mr = mr
    self.nr = nr
    self.kc = kc
    self.nb = nb
    self.mb = mb
  }

  /// OpenBLAS's `cblas_sgemm` (its own blocking and kernels, whatever core it detects).
  public static let openblas = GemmTarget(name: "openblas", mr: 0, nr: 0, kc: 0, nb: 0, mb: 0)

  public var isOpenBLAS: Bool { name == GemmTarget.openblas.name }

  /// The dims at which the compiler sizes its per-step choices (rows or columns), as `mqan compile
  /// --shape` shows them: a training batch of 32 x (256, 16, 32), decoding 4 hypotheses.
  public static let sampleDims: [String: Int] = [
    "B": 32, "Tc": 256, "Tq": 16, "Ta": 32, "X": 50_100, "Nv": 60_000, "K": 4, "S": 32,
  ]

  /// One line for reports: `mqan-avx512 (12x32, kc 512, nb 256, mb 4092)` or `openblas`.
  public var summary: String {
    isOpenBLAS ? name : "\(name) (\(mr)x\(nr), kc \(kc), nb \(nb), mb \(mb))"
  }
}
