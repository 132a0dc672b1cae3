import CKernels

/// Weights packed into the GEMM microkernel's panel layout (or converted to bf16 / int8 panels for
/// the reduced-precision linears, `mq_qlinear`), once per executor and weight (and layout), so the GEMMs that read them stream packed panels instead of re-packing on every call:
/// decoding's 50,000-word output layer every step, the LSTM's recurrent weight every time step.
///
/// Kernels register what they read when a plan is bound; `refresh` (at the start of a run) packs
/// what is new or stale over the executor's pool. Weights are stale after `setParameters`, and
/// after any run once a caller has taken writable pointers (`parameterBuffers()`, what an
/// optimizer updates in place between runs): then every run repacks first (a training step).
final class PackedWeights {
  struct Key: Hashable {
    let name: String
    let transB: Bool
    let path: Int32
    let precision: Int32
  }

  final class Entry {
    let source: UnsafePointer<Float>
    let n: Int, k: Int, ldb: Int
    let transB: Bool
    var config: mq_gemm_config
    /// MQ_PREC_FP32 (GEMM panels for `config`), MQ_PREC_BF16 or MQ_PREC_INT8 (`mq_qweight_pack`
    /// panels of the weight stored [n, k]).
    let precision: Int32
    let buffer: AlignedBuffer
    var packed = false
    var panels: Int {
      precision == Int32(MQ_PREC_FP32) ? (n + Int(config.nr) - 1) / Int(config.nr) : Int(mq_qweight_panels(Int64(n)))
    }

    init(source: UnsafePointer<Float>, n: Int, k: Int, ldb: Int, transB: Bool, config: mq_gemm_config,
         precision: Int32, what: String) throws(RuntimeError) {
      self.source = source
      self.n = n
      self.k = k
      self.ldb = ldb
      self.transB = transB
      self.config = config
      self.precision = precision
      var c = config
      let bytes = precision == Int32(MQ_PREC_FP32) ? Int(mq_gemm_packed_b_floats(&c, Int64(n), Int64(k))) * 4
        : Int(mq_qweight_bytes(precision, Int64(n), Int64(k)))
      buffer = try AlignedBuffer(bytes: bytes, what: what)
    }

    var pointer: UnsafePointer<Float> { UnsafePointer(buffer.base.assumingMemoryBound(to: Float.self)) }
    var raw: UnsafeRawPointer { UnsafeRawPointer(buffer.base) }

    func pack(_ p0: Int, _ p1: Int) {
      if precision != Int32(MQ_PREC_FP32) {
        return mq_qweight_pack(precision, Int64(n), Int64(k), source, buffer.base, Int64(p0), Int64(p1))
      }
      mq_gemm_pack_b(&config, transB ? 1 : 0, Int64(n), Int64(k), source, Int64(ldb),
                     buffer.base.assumingMemoryBound(to: Float.self), Int64(p0), Int64(p1))
    }
  }

  private var entries: [Key: Entry] = [:]
  private var order: [Entry] = []
  /// Set once writable pointers were handed out: every run repacks.
  var alwaysRefresh = false

  /// The packed copy of weight `name` (`source`: op(B) is [k, n], stored [n, k] when transB),
  /// registered now and packed at the next `refresh`; with a reduced `precision` (transB, the
  /// weight stored [n, k]) its bf16 or int8 panels, `config` unused.
  func entry(name: String, source: UnsafePointer<Float>, n: Int, k: Int, transB: Bool,
             config: mq_gemm_config, precision: Int32 = Int32(MQ_PREC_FP32)) throws(RuntimeError) -> Entry {
    let key = Key(name: name, transB: transB, path: precision == Int32(MQ_PREC_FP32) ? config.path : -1,
                  precision: precision)
    if let e = entries[key] {
      guard e.n == n, e.k == k else {
        throw .invalidPlan("weight \(name) is read as [\(n), \(k)] and as [\(e.n), \(e.k)]")
      }
      return e
    }
    let e = try Entry(source: source, n: n, k: k, ldb: transB ? k : n, transB: transB, config: config,
                      precision: precision, what: "packed weight \(name)")
    entries[key] = e
    order.append(e)
    return e
  }

  /// Marks every packed weight stale (the weights were overwritten).
  func invalidate() { for e in order { e.packed = false } }

  /// Packs every stale weight, the panels of each split over the pool's threads.
  func refresh(_ pool: ThreadPool) {
    if alwaysRefresh { invalidate() }
    let todo = order.filter { !$0.packed }
    guard !todo.isEmpty else { return }
    let job = PackJob(todo)
    withExtendedLifetime(job) {
      pool.run({ ctx, ith, nth in
        let job = Unmanaged<PackJob>.fromOpaque(ctx!).takeUnretainedValue()
        for e in job.entries {
          let per = (e.panels + Int(nth) - 1) / Int(nth)
          let p0 = min(per * Int(ith), e.panels)
          e.pack(p0, min(p0 + per, e.panels))
        }
      }, Unmanaged.passUnretained(job).toOpaque())
    }
    for e in todo { e.packed = true }
  }

  private final class PackJob {
    let entries: [Entry]
    init(_ entries: [Entry]) { self.entries = entries }
  }
}
