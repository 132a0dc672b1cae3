// mqan's own GEMM (mq_gemm.h) against OpenBLAS's cblas_sgemm at every GEMM shape of MQAN's default
// plans (d = 200, LSTM gates 4 x 200, FFN 150, V = 50,000; B·Tc = 8192 training rows), one thread.
//
// Legend: `gemm MxNxK kind variant`, C [M, N] = op(A) [M, K] · op(B) [K, N], row-major, beta = 0:
//   linear              y = x · Wᵀ (trans_b: W stored [N, K], a parameter)
//   linear_grad_input   dx = g · W (no transpose: W stored [N_out, K_in] is op(B) as it is)
//   linear_grad_weight  dW = gᵀ · x (trans_a: g stored [K, M]), depth = the 8192 rows
// Variants: `openblas` (cblas_sgemm, pinned to one thread by `mq_blas_single_thread` in the
// suite's entry point, as in the runtime), `mqan-avx512` and `mqan-avx2` (mq_gemm with
// mq_gemm_config_for(path), the whole C on the calling thread), each also `packed` where the
// runtime packs B ahead (the weight of linear and linear_grad_input; packing is in setup, not
// timed, as the runtime packs once per weight update). A path this CPU does not run is left out.
//
// Metric: `FLOP/s` (2·M·N·K a call, in M = 10^6), as the suite's other GEMMs. The plugin prints no
// ratio between two benchmarks of one run: `tools/gemm_compare.sh` runs these and prints
// shape | openblas GFLOP/s | each mqan variant's GFLOP/s and its ratio to OpenBLAS.

import Benchmark
import CKernels
import COpenBLAS

/// One GEMM of the default plans.
struct GemmShape {
  let m: Int, n: Int, k: Int
  let kind: String
  let transA: Bool, transB: Bool
  /// B is a weight the runtime packs ahead.
  let packable: Bool

  static func linear(_ m: Int, _ n: Int, _ k: Int) -> GemmShape {
    GemmShape(m: m, n: n, k: k, kind: "linear", transA: false, transB: true, packable: true)
  }
  static func gradInput(_ m: Int, _ n: Int, _ k: Int) -> GemmShape {
    GemmShape(m: m, n: n, k: k, kind: "linear_grad_input", transA: false, transB: false, packable: true)
  }
  static func gradWeight(_ m: Int, _ n: Int, _ k: Int) -> GemmShape {
    GemmShape(m: m, n: n, k: k, kind: "linear_grad_weight", transA: true, transB: false, packable: false)
  }

  var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
  var name: String { "\(m)x\(n)x\(k) \(kind)" }
  // Stored shapes and leading dimensions (dense).
  var lda: Int { transA ? m : k }
  var ldb: Int { transB ? k : n }
}

let gemmShapes: [GemmShape] = [
  // Training, teacher-forced rows B·Tc = 8192.
  .linear(8192, 200, 200),
  .linear(8192, 800, 200),   // LSTM input projection (4 gates x 200)
  .linear(8192, 600, 200),
  .linear(8192, 200, 400),
  .linear(8192, 150, 200),   // transformer FFN in
  .linear(8192, 200, 150),   // transformer FFN out
  // One LSTM step (B and B·K rows).
  .linear(32, 800, 200),
  .linear(64, 800, 200),
  // Decoding output layer over the vocabulary (64 and 256 hypotheses, one row).
  .linear(64, 50_000, 200),
  .linear(256, 50_000, 200),
  .linear(1, 50_000, 200),
  // Backward.
  .gradInput(8192, 200, 800),
  .gradWeight(800, 200, 8192),
  .gradWeight(200, 200, 8192),
]

/// One benchmark's buffers: A, B (and B packed for `cfg` when asked), C, the scratch.
final class GemmBench: @unchecked Sendable {
  let arena: Arena
  let shape: GemmShape
  let a, b, c: UnsafeMutablePointer<Float>
  var cfg: mq_gemm_config
  let packed: UnsafeMutablePointer<Float>?
  let scratch: UnsafeMutablePointer<Float>

  init(_ s: GemmShape, path: Int32, pack: Bool, seed: UInt64) {
    shape = s
    arena = Arena(seed: seed)
    a = arena.uniform(s.m * s.k)
    b = arena.uniform(s.k * s.n, -0.1, 0.1)
    c = arena.zeros(s.m * s.n)
    cfg = mq_gemm_config_for(path)
    if pack {
      let p = arena.zeros(Int(mq_gemm_packed_b_floats(&cfg, Int64(s.n), Int64(s.k))))
      let panels = (Int64(s.n) + Int64(cfg.nr) - 1) / Int64(cfg.nr)
      mq_gemm_pack_b(&cfg, s.transB ? 1 : 0, Int64(s.n), Int64(s.k), b, Int64(s.ldb), p, 0, panels)
      packed = p
    } else {
      packed = nil
    }
    scratch = arena.zeros(Int(mq_gemm_scratch_floats(&cfg, Int64(s.m), Int64(s.n), Int64(s.k))))
  }

  func runOpenBLAS() {
    let s = shape
    cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                blasint(s.m), blasint(s.n), blasint(s.k), 1, a, blasint(s.lda), b, blasint(s.ldb), 0, c, blasint(s.n))
  }

  func runMQ() {
    let s = shape
    mq_gemm(&cfg, s.transA ? 1 : 0, s.transB ? 1 : 0, Int64(s.m), Int64(s.n), Int64(s.k), 1, a, Int64(s.lda), b,
            Int64(s.ldb), packed, 0, c, Int64(s.n), nil, 0, Int64(s.m), 0, Int64(s.n), scratch)
  }
}

/// Registers the GEMM comparison (called from the suite's entry point, after OpenBLAS is pinned to
/// one thread).
func gemmBenchmarks() {
  for (i, s) in gemmShapes.enumerated() {
    let seed = UInt64(100 + i)
    let seconds = s.flops > 2e9 ? 2 : 1
    kernel("gemm \(s.name) openblas", .flops(s.flops), seconds: seconds,
           setup: { GemmBench(s, path: mq_gemm_best_path(), pack: false, seed: seed) }, body: { $0.runOpenBLAS() })
    for path in [Int32(MQ_GEMM_AVX512), Int32(MQ_GEMM_AVX2)] where mq_gemm_path_supported(path) != 0 {
      let pathName = String(cString: mq_gemm_path_name(path))
      for pack in s.packable ? [false, true] : [false] {
        kernel("gemm \(s.name) \(pathName)\(pack ? " packed" : "")", .flops(s.flops), seconds: seconds,
               setup: { GemmBench(s, path: path, pack: pack, seed: seed) }, body: { $0.runMQ() })
      }
    }
  }
}
