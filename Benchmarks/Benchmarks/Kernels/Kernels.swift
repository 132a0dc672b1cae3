// Leaf kernels at MQAN's default-preset shapes (d = 200, LSTM hidden 100 per direction,
// V = 50,000, B = 32, Tc = 256, Tq = 16, Ta = 32), each C kernel next to its `_ref` twin.
//
// Every benchmark runs its kernel over the whole tensor on one thread (r0 = 0, r1 = rows), as
// one lane of the runtime does; the GEMMs also run on a two-thread `mq_pool`, rows split as the
// runtime's `Team.share` splits them. OpenBLAS is pinned to one thread (`mq_blas_single_thread`),
// as in the runtime. Inputs are uniform random numbers from fixed seeds.
//
// Custom metrics: `FLOP/s` (GEMMs, attention) and `bytes/s` (the memory-bound kernels: bytes
// each must read and write once), both measured around the kernel call of each iteration.

import Benchmark
import CKernels
import COpenBLAS
import Dispatch
import MQAN

// MARK: - Shapes (MQAN's default preset)

let B = 32, Tc = 256, Tq = 16, Ta = 32
let D = 200, H = 100, V = 50_000, nOOV = 100
let X = V + nOOV
let heads = 3
let decRows = B * (Ta - 1)  // teacher-forced decoder rows: 992

// MARK: - Metrics and configuration

let flopsMetric = BenchmarkMetric.custom("FLOP/s", polarity: .prefersLarger, useScalingFactor: false)
let bytesMetric = BenchmarkMetric.custom("bytes/s", polarity: .prefersLarger, useScalingFactor: false)

/// Work one call does, for the custom rate metric.
enum Work {
  case flops(Double)
  case bytes(Double)
  case none
}

func configuration(_ work: Work, seconds: Int = 1, maxIterations: Int = 1_000) -> Benchmark.Configuration {
  // (No CPU-time metric: the kernel-level numbers are below its 10 ms resolution.)
  var metrics: [BenchmarkMetric] = [.wallClock, .throughput]
  switch work {
  case .flops: metrics.append(flopsMetric)
  case .bytes: metrics.append(bytesMetric)
  case .none: break
  }
  // Rates in M (10^6) for every benchmark, so a kernel and its `_ref` twin print in one unit.
  return .init(metrics: metrics, timeUnits: .automatic, units: [flopsMetric: .mega, bytesMetric: .mega],
               warmupIterations: 1, maxDuration: .seconds(seconds), maxIterations: maxIterations)
}

// MARK: - Buffers

/// 64-byte aligned blocks, freed together when the benchmark's state goes away.
final class Arena: @unchecked Sendable {
  private var blocks: [UnsafeMutableRawPointer] = []
  var rng: SeededRandom

  init(seed: UInt64) { rng = SeededRandom(seed: seed) }

  deinit { for b in blocks { b.deallocate() } }

  func raw(_ bytes: Int) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    blocks.append(p)
    return p
  }

  func zeros(_ n: Int) -> UnsafeMutablePointer<Float> {
    let p = raw(n * 4).bindMemory(to: Float.self, capacity: n)
    p.initialize(repeating: 0, count: n)
    return p
  }

  func uniform(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> UnsafeMutablePointer<Float> {
    let p = raw(n * 4).bindMemory(to: Float.self, capacity: n)
    for i in 0..<n { p[i] = rng.uniform(lo, hi) }
    return p
  }

  /// Ids uniform in [lo, hi).
  func ids(_ n: Int, _ lo: Int, _ hi: Int) -> UnsafeMutablePointer<Int32> {
    let p = raw(n * 4).bindMemory(to: Int32.self, capacity: n)
    for i in 0..<n { p[i] = Int32(lo + Int(rng.next() % UInt64(hi - lo))) }
    return p
  }
}

/// Holds a benchmark's state between its setup and teardown, so a suite never keeps the buffers of
/// benchmarks that already ran.
final class Slot<S>: @unchecked Sendable {
  var value: S?
}

@inline(__always) func nanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Registers one benchmark: `setup` builds the state (not timed), `body` is the timed call.
func kernel<S>(_ name: String, _ work: Work, seconds: Int = 1, maxIterations: Int = 1_000,
               setup: @escaping () -> S, body: @escaping (S) -> Void) {
  let slot = Slot<S>()
  Benchmark(name, configuration: configuration(work, seconds: seconds, maxIterations: maxIterations),
            closure: { benchmark in
              let state = slot.value!
              let t0 = nanoseconds()
              body(state)
              let ns = Double(max(nanoseconds() - t0, 1))
              switch work {
              case .flops(let f): benchmark.measurement(flopsMetric, Int(f / ns * 1e9))
              case .bytes(let b): benchmark.measurement(bytesMetric, Int(b / ns * 1e9))
              case .none: break
              }
            },
            setup: { slot.value = setup() },
            teardown: { slot.value = nil })
}

// MARK: - GEMM

/// One `y = x wᵀ` as the runtime's `linear` runs it: RowMajor, x [M, K] NoTrans, w [N, K] Trans.
struct GemmJob {
  var m: Int, n: Int, k: Int
  var a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
}

func sgemmRows(_ j: GemmJob, _ r0: Int, _ r1: Int) {
  guard r1 > r0 else { return }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(r1 - r0), blasint(j.n), blasint(j.k), 1,
              j.a + r0 * j.k, blasint(j.k), j.b, blasint(j.k), 0, j.c + r0 * j.n, blasint(j.n))
}

/// The runtime's row split (`Team.share`): ceil(rows / n) rows a thread.
func share(_ rows: Int, _ ith: Int, _ nth: Int) -> (Int, Int) {
  let dr = (rows + nth - 1) / nth
  let r0 = min(dr * ith, rows)
  return (r0, min(r0 + dr, rows))
}

let gemmTask: mq_task_fn = { ctx, ith, nth in
  let j = ctx!.assumingMemoryBound(to: GemmJob.self).pointee
  let (r0, r1) = share(j.m, Int(ith), Int(nth))
  sgemmRows(j, r0, r1)
}

final class GemmState: @unchecked Sendable {
  let arena: Arena
  let job: UnsafeMutablePointer<GemmJob>
  let pool: OpaquePointer?

  init(m: Int, n: Int, k: Int, threads: Int, seed: UInt64) {
    arena = Arena(seed: seed)
    let a = arena.uniform(m * k), b = arena.uniform(n * k, -0.1, 0.1), c = arena.zeros(m * n)
    job = .allocate(capacity: 1)
    job.initialize(to: GemmJob(m: m, n: n, k: k, a: a, b: b, c: c))
    pool = threads > 1 ? mq_pool_create(Int32(threads)) : nil
  }

  deinit {
    if let pool { mq_pool_destroy(pool) }
    job.deallocate()
  }

  func run() {
    if let pool {
      mq_pool_run(pool, gemmTask, UnsafeMutableRawPointer(job))
    } else {
      sgemmRows(job.pointee, 0, job.pointee.m)
    }
  }

  /// The runtime's GEMM oracle (`useReference`): one dot product per output, summed in k order.
  func runNaive() {
    let j = job.pointee
    for i in 0..<j.m {
      for o in 0..<j.n {
        var s: Float = 0
        let x = j.a + i * j.k, w = j.b + o * j.k
        for t in 0..<j.k { s += x[t] * w[t] }
        j.c[i * j.n + o] = s
      }
    }
  }
}

// MARK: - The suite

let benchmarks: @Sendable () -> Void = {
  mq_blas_single_thread()

  // [name, M, K, N]: y [M, N] = x [M, K] · w [N, K]ᵀ
  let gemms: [(String, Int, Int, Int)] = [
    ("input_proj", B * Tc, 800, 400),    // BiLSTM input projection, 4 gates x 100
    ("recurrent", B, H, 4 * H),          // one LSTM time step, h [B, 100] -> gates [B, 400]
    ("attn_proj", B * Tc, D, D),         // transformer / attention projections
    ("output", decRows, D, V),           // decoder output layer over the vocabulary
  ]
  for (name, m, k, n) in gemms {
    let flops = 2.0 * Double(m) * Double(n) * Double(k)
    let big = flops > 5e9
    for threads in [1, 2] {
      kernel("sgemm \(name) \(m)x\(k)x\(n) t\(threads)", .flops(flops), seconds: big ? 3 : 1,
             setup: { GemmState(m: m, n: n, k: k, threads: threads, seed: 11) }, body: { $0.run() })
    }
    // The naive oracle only where it finishes in well under a second.
    if flops < 1e9 {
      kernel("sgemm_naive \(name) \(m)x\(k)x\(n) t1", .flops(flops), seconds: 2, maxIterations: 50,
             setup: { GemmState(m: m, n: n, k: k, threads: 1, seed: 11) }, body: { $0.runNaive() })
    }
  }

  // Masked softmax over the decoder's vocabulary logits [B*(Ta-1), V] (no mask, as the output
  // layer's softmax): 31 query rows per batch item.
  for (name, f) in [("mq_masked_softmax", mq_masked_softmax), ("mq_masked_softmax_ref", mq_masked_softmax_ref)] {
    let rows = decRows, n = V
    kernel("\(name) \(rows)x\(n)", .bytes(Double(2 * rows * n * 4)), seconds: 2,
           setup: { () -> (Arena, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) in
             let a = Arena(seed: 21)
             return (a, a.zeros(rows * n), a.uniform(rows * n, -5, 5))
           },
           body: { s in
             f(s.1, s.2, nil, Int64(Ta - 1), Int64(n), 1, -.infinity, 0, 0, 0, 0, Int64(rows))
           })
  }

  // decaNLP's LayerNorm on the context's transformer rows [B*Tc, D].
  for (name, f) in [("mq_layernorm", mq_layernorm), ("mq_layernorm_ref", mq_layernorm_ref)] {
    let rows = B * Tc
    kernel("\(name) \(rows)x\(D)", .bytes(Double(2 * rows * D * 4)),
           setup: { () -> (Arena, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                           UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) in
             let a = Arena(seed: 31)
             return (a, a.zeros(rows * D), a.uniform(rows * D, -3, 3), a.uniform(D, 0.5, 1.5), a.uniform(D, -0.1, 0.1))
           },
           body: { s in f(s.1, s.2, s.3, s.4, Int64(D), 1e-6, 0, Int64(rows)) })
  }

  // One LSTM gate update: gates [B, 4H], c [B, H] -> h', c' [B, H].
  for (name, f) in [("mq_lstm_cell", mq_lstm_cell), ("mq_lstm_cell_ref", mq_lstm_cell_ref)] {
    kernel("\(name) \(B)x\(4 * H)", .bytes(Double(B * 7 * H * 4)),
           setup: { () -> (Arena, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                           UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) in
             let a = Arena(seed: 41)
             return (a, a.zeros(B * H), a.zeros(B * H), a.uniform(B * 4 * H, -3, 3), a.uniform(B * H, -1, 1))
           },
           body: { s in f(s.1, s.2, s.3, s.4, Int64(H), 0, Int64(B)) })
  }

  // The dual pointer-generator mixture: [B, Ta-1] rows over X = V + 100 OOV slots, copying from
  // Lc = 256 context and Lq = 16 question positions.
  for (name, f) in [("mq_pointer_mixture", mq_pointer_mixture), ("mq_pointer_mixture_ref", mq_pointer_mixture_ref)] {
    let T = Ta - 1, rows = decRows, Lc = Tc, Lq = Tq
    let bytes = Double(rows * (V + X + Lc + Lq + 2) * 4 + B * (Lc + Lq) * 4)
    kernel("\(name) \(B)x\(T)x\(X) Lc\(Lc) Lq\(Lq)", .bytes(bytes), seconds: 2,
           setup: { () -> MixtureState in MixtureState(rows: rows, Lc: Lc, Lq: Lq, seed: 51) },
           body: { s in
             f(s.out, s.pvocab, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, Int64(T), Int64(V), Int64(X),
               Int64(Lc), Int64(Lq), 0, Int64(rows))
           })
  }

  // Multi-head self-attention over the context: q, k, v [B, 256, 200], 3 heads (67/67/66), a key
  // padding mask, no causal mask. FLOPs: Q·Kᵀ and P·V, 4·B·Tq·Tk·D.
  for (name, f) in [("mq_attention", mq_attention), ("mq_attention_ref", mq_attention_ref)] {
    let T = Tc
    let rows = B * Int(mq_attention_chunks(Int64(D), Int64(heads)))
    let flops = 4.0 * Double(B) * Double(T) * Double(T) * Double(D)
    kernel("\(name) B\(B) T\(T) D\(D) h\(heads)", .flops(flops), seconds: 3, maxIterations: 200,
           setup: { () -> AttentionState in AttentionState(T: T, seed: 61) },
           body: { s in
             f(s.out, s.q, s.k, s.v, s.keypad, Int64(T), Int64(T), Int64(D), Int64(heads),
               1 / Float(D).squareRoot(), -1e10, 0, s.scratch, 0, Int64(rows))
           })
  }
  outputLayerBenchmarks()
  gemmBenchmarks()
}

/// The fused output layers against the unfused chains they replace: training's softmax +
/// mixture + NLL (and backward) over the teacher-forced rows, decoding's softmax + mixture + top-k
/// over 64 x 4 beam rows.
let outputLayerBenchmarks: @Sendable () -> Void = {
  let T = Ta - 1, rows = decRows, Lc = Tc, Lq = Tq
  let bytes = Double(rows * V * 4)
  kernel("output layer unfused: mq_masked_softmax+mq_pointer_mixture+mq_nll \(rows)x\(V)", .bytes(bytes), seconds: 3,
         maxIterations: 100, setup: { OutputLayerState(rows: rows, Lc: Lc, Lq: Lq, seed: 71) },
         body: { s in
           mq_masked_softmax(s.p, s.logits, nil, 1, Int64(V), 1, -1e10, 0, 0, 0, 0, Int64(rows))
           mq_pointer_mixture(s.mix, s.p, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, Int64(T), Int64(V), Int64(X),
                              Int64(Lc), Int64(Lq), 0, Int64(rows))
           var sum = 0.0, count: Int64 = 0
           mq_nll(&sum, &count, s.mix, s.targets, Int64(X), 1, 0, Int64(rows))
           blackHole(sum)
         })
  kernel("output layer fused: mq_mixture_nll \(rows)x\(V)", .bytes(bytes), seconds: 3, maxIterations: 100,
         setup: { OutputLayerState(rows: rows, Lc: Lc, Lq: Lq, seed: 71) },
         body: { s in
           var sum = 0.0, count: Int64 = 0
           mq_mixture_nll(&sum, &count, s.stats, s.logits, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, s.targets,
                          Int64(T), Int64(V), Int64(Lc), Int64(Lq), 1, 0, Int64(rows))
           blackHole(sum)
         })
  kernel("output layer backward unfused: mq_nll_backward+mq_pointer_mixture_backward+mq_softmax_backward \(rows)x\(V)",
         .bytes(bytes), seconds: 3, maxIterations: 100,
         setup: { () -> OutputLayerState in
           let s = OutputLayerState(rows: rows, Lc: Lc, Lq: Lq, seed: 71)
           mq_masked_softmax(s.p, s.logits, nil, 1, Int64(V), 1, -1e10, 0, 0, 0, 0, Int64(rows))
           mq_pointer_mixture(s.mix, s.p, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, Int64(T), Int64(V), Int64(X),
                              Int64(Lc), Int64(Lq), 0, Int64(rows))
           return s
         },
         body: { s in
           mq_nll_backward(s.dmix, s.mix, s.targets, Int64(X), 1, 1, Int64(rows), 0, Int64(rows))
           mq_pointer_mixture_backward(s.dp, s.dg, s.dl, s.dac, s.daq, s.dmix, s.p, s.gamma, s.lambda, s.ac, s.cids, s.aq,
                                       s.qids, Int64(T), Int64(V), Int64(X), Int64(Lc), Int64(Lq), 0, Int64(rows))
           mq_softmax_backward(s.dlogits, s.dp, s.p, Int64(V), 1, 0, 0, Int64(rows))
         })
  kernel("output layer backward fused: mq_mixture_nll_backward \(rows)x\(V)", .bytes(bytes), seconds: 3,
         maxIterations: 100,
         setup: { () -> OutputLayerState in
           let s = OutputLayerState(rows: rows, Lc: Lc, Lq: Lq, seed: 71)
           var sum = 0.0, count: Int64 = 0
           mq_mixture_nll(&sum, &count, s.stats, s.logits, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, s.targets,
                          Int64(T), Int64(V), Int64(Lc), Int64(Lq), 1, 0, Int64(rows))
           return s
         },
         body: { s in
           mq_mixture_nll_backward(s.dlogits, s.dg, s.dl, s.dac, s.daq, 1, Int64(rows), s.logits, s.gamma, s.lambda, s.ac,
                                   s.cids, s.aq, s.qids, s.targets, s.stats, Int64(T), Int64(V), Int64(Lc), Int64(Lq), 1, 0,
                                   Int64(rows))
         })
  // Decoding: 64 items x beam 4, context 128, question 16, the 4 best of each row.
  let beam = 4, items = 64, drows = items * beam, dLc = 128
  kernel("decode output unfused: mq_masked_softmax+mq_pointer_mixture+mq_topk_rows \(drows)x\(V) k\(beam)",
         .bytes(Double(drows * V * 4)), seconds: 3, maxIterations: 200,
         setup: { OutputLayerState(rows: drows, Lc: dLc, Lq: Lq, seed: 81, items: items) },
         body: { s in
           mq_masked_softmax(s.p, s.logits, nil, 1, Int64(V), 1, -1e10, 0, 0, 0, 0, Int64(drows))
           mq_pointer_mixture(s.mix, s.p, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, Int64(beam), Int64(V), Int64(X),
                              Int64(dLc), Int64(Lq), 0, Int64(drows))
           mq_topk_rows(s.mix, Int64(X), Int64(beam), 1, s.topValues, s.topIds, 0, Int64(drows))
         })
  kernel("decode output fused: mq_mixture_topk \(drows)x\(V) k\(beam)", .bytes(Double(drows * V * 4)), seconds: 3,
         maxIterations: 200, setup: { OutputLayerState(rows: drows, Lc: dLc, Lq: Lq, seed: 81, items: items) },
         body: { s in
           mq_mixture_topk(s.topValues, s.topIds, s.logits, s.gamma, s.lambda, s.ac, s.cids, s.aq, s.qids, Int64(beam),
                           Int64(V), Int64(X), Int64(dLc), Int64(Lq), Int64(beam), 1, s.scratch, 0, Int64(drows))
         })
}

final class OutputLayerState: @unchecked Sendable {
  let arena: Arena
  let logits, p, mix, dmix, dp, dlogits, gamma, lambda, ac, aq, stats, dg, dl, dac, daq, topValues, scratch:
    UnsafeMutablePointer<Float>
  let cids, qids, targets, topIds: UnsafeMutablePointer<Int32>

  init(rows: Int, Lc: Int, Lq: Int, seed: UInt64, items: Int = B) {
    arena = Arena(seed: seed)
    logits = arena.uniform(rows * V, -4, 4)
    p = arena.zeros(rows * V)
    mix = arena.zeros(rows * X)
    dmix = arena.zeros(rows * X)
    dp = arena.zeros(rows * V)
    dlogits = arena.zeros(rows * V)
    gamma = arena.uniform(rows, 0.05, 0.95)
    lambda = arena.uniform(rows, 0.05, 0.95)
    ac = arena.uniform(rows * Lc, 0, 2 / Float(Lc))
    aq = arena.uniform(rows * Lq, 0, 2 / Float(Lq))
    stats = arena.zeros(rows * 3)
    dg = arena.zeros(rows)
    dl = arena.zeros(rows)
    dac = arena.zeros(rows * Lc)
    daq = arena.zeros(rows * Lq)
    topValues = arena.zeros(rows * 4)
    topIds = arena.ids(rows * 4, 0, 1)
    scratch = arena.zeros(Int(mq_mixture_topk_scratch(Int64(V), Int64(Lc), Int64(Lq))) + V + X)
    cids = arena.ids(items * Lc, 4, X)
    qids = arena.ids(items * Lq, 4, X)
    targets = arena.ids(rows, 4, X)
  }
}

final class MixtureState: @unchecked Sendable {
  let arena: Arena
  let out, pvocab, gamma, lambda, ac, aq: UnsafeMutablePointer<Float>
  let cids, qids: UnsafeMutablePointer<Int32>

  init(rows: Int, Lc: Int, Lq: Int, seed: UInt64) {
    arena = Arena(seed: seed)
    out = arena.zeros(rows * X)
    pvocab = arena.uniform(rows * V, 0, 2 / Float(V))
    gamma = arena.uniform(rows, 0, 1)
    lambda = arena.uniform(rows, 0, 1)
    ac = arena.uniform(rows * Lc, 0, 2 / Float(Lc))
    aq = arena.uniform(rows * Lq, 0, 2 / Float(Lq))
    // Ids over the whole extended vocabulary (OOV slots included), skipping the 4 specials.
    cids = arena.ids(B * Lc, 4, X)
    qids = arena.ids(B * Lq, 4, X)
  }
}

final class AttentionState: @unchecked Sendable {
  let arena: Arena
  let out, q, k, v, keypad, scratch: UnsafeMutablePointer<Float>

  init(T: Int, seed: UInt64) {
    arena = Arena(seed: seed)
    out = arena.zeros(B * T * D)
    q = arena.uniform(B * T * D)
    k = arena.uniform(B * T * D)
    v = arena.uniform(B * T * D)
    keypad = arena.zeros(B * T)  // full-length sequences: nothing padded
    scratch = arena.zeros(T * T)
  }
}
