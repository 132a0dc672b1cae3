import CKernels
import Foundation

/// Global-norm clipping, then Adam (as PyTorch's `clip_grad_norm_` and `Adam.step`), in place on the
/// parameters.
///
/// All state lives in one 64-byte aligned block allocated at init: both moments of every parameter
/// and one partial sum per gradient block. A step allocates nothing: it fills a preallocated table
/// of gradient pointers and runs two pool passes. Pass 1 sums the squares of the gradients in fixed
/// blocks of `blockSize` elements (a block's partial sum never depends on which thread computed it;
/// the partials are added in block order), pass 2 applies the clip factor and Adam, elementwise.
/// So a step gives the same bits for any thread count.
///
/// Parameters are kept in name order. A parameter without a gradient in a step is skipped, as
/// PyTorch skips `p.grad is None` (MQAN's train plan gives the same parameters a gradient every step,
/// so one step count t serves all of them).
///
/// ```swift
/// let settings = AdamSettings(learningRate: { _ in 1e-3 }, beta1: 0.9, beta2: 0.98, eps: 1e-9, clip: 1)
/// let opt = try AdamOptimizer(settings: settings, parameters: executor.parameterBuffers(), threads: 4)
/// let out = try executor.run(batch)                       // ... "grad.<name>" outputs
/// let report = try opt.step(grads: out, prefix: "grad.")
/// ```
public final class AdamOptimizer {
  /// Elements per block of the norm and the update (the unit of the threads' shares).
  public static let blockSize = 1 << 14

  public let settings: AdamSettings
  public let threads: Int
  /// The parameters in update order (sorted by name), with their shapes.
  public let parameters: [(name: String, shape: [Int])]
  /// Updates done so far (t); the next update has index `stepCount + 1`.
  public private(set) var stepCount = 0

  private let index: [String: Int]
  private let state: AlignedBuffer
  private let context: AdamContext
  private let pool: ThreadPool
  /// Gradient names with the caller's prefix, cached so a step builds no strings.
  private var prefixed: (prefix: String, names: [String]) = ("", [])

  /// - Parameters:
  ///   - parameters: the tensors to update; their memory must stay valid while the optimizer lives.
  ///   - threads: the size of this optimizer's thread pool (the caller counts as one).
  ///   - useReference: run the `_ref` twins of the kernels (for tests).
  public init(settings: AdamSettings, parameters: [ParameterBuffer], threads: Int,
              useReference: Bool = false) throws(OptimizerError) {
    try settings.validate()
    guard threads >= 1 else { throw .invalidConfig("threads must be >= 1, got \(threads)") }
    let sorted = parameters.sorted { $0.name < $1.name }
    var index: [String: Int] = [:]
    for (k, p) in sorted.enumerated() {
      guard index.updateValue(k, forKey: p.name) == nil else { throw .duplicateParameter(p.name) }
      guard p.shape.allSatisfy({ $0 >= 0 }) else {
        throw .tensorMismatch(name: p.name, expected: "a shape without negative dims", actual: "\(p.shape)")
      }
    }
    self.settings = settings
    self.threads = threads
    self.parameters = sorted.map { ($0.name, $0.shape) }
    self.index = index
    // Layout of the one block: m of every parameter, v of every parameter (each 64-byte aligned),
    // then one Double per gradient block.
    let floats = sorted.map { ($0.count + 15) / 16 * 16 }
    let momentFloats = floats.reduce(0, +)
    var blocks: [(param: Int, r0: Int, r1: Int)] = []
    for (k, p) in sorted.enumerated() {
      for r0 in stride(from: 0, to: p.count, by: Self.blockSize) {
        blocks.append((k, r0, min(r0 + Self.blockSize, p.count)))
      }
    }
    let bytes = 2 * momentFloats * 4 + blocks.count * 8
    do {
      state = try AlignedBuffer(bytes: bytes, what: "Adam state (\(sorted.count) parameters)")
      pool = try ThreadPool(threads: threads)
    } catch {
      throw .invalidConfig("\(error)")
    }
    let m = state.base.bindMemory(to: Float.self, capacity: 2 * momentFloats)
    let partials = (state.base + 2 * momentFloats * 4).bindMemory(to: Double.self, capacity: blocks.count)
    context = AdamContext(params: sorted.map(\.pointer), floats: floats, moments: m,
                          momentFloats: momentFloats, blocks: blocks, partials: partials,
                          useReference: useReference)
  }

  /// The start of the state block (constant for the optimizer's life: no step reallocates it).
  public var stateAddress: UnsafeRawPointer { UnsafeRawPointer(state.base) }
  /// Bytes of the state block.
  public var stateBytes: Int { state.bytes }

  /// One update with the gradients in `grads` under `prefix + name` (F32, each parameter's shape).
  /// Tensors in `grads` under other names are ignored; a parameter without one is skipped.
  /// - Throws: `OptimizerError` for a mismatched gradient or a non-finite norm, before anything changes.
  @discardableResult
  public func step(grads: [String: HostTensor], prefix: String = "") throws(OptimizerError) -> AdamStepReport {
    if prefixed.prefix != prefix || prefixed.names.count != parameters.count {
      prefixed = (prefix, parameters.map { prefix + $0.name })
    }
    for (k, key) in prefixed.names.enumerated() {
      guard let t = grads[key] else { continue }
      guard case .f32 = t.storage, t.shape == parameters[k].shape else {
        throw .tensorMismatch(name: key, expected: "F32 \(parameters[k].shape)", actual: "\(t.dtype) \(t.shape)")
      }
    }
    var result: Result<AdamStepReport, OptimizerError> = .failure(.invalidConfig("no update ran"))
    withGradients(0, grads) {
      do throws(OptimizerError) { result = .success(try update()) } catch { result = .failure(error) }
    }
    return try result.get()
  }

  /// One update with gradients given as pointers to `count` floats of each named parameter (e.g.
  /// straight from an arena). Names that are not parameters throw; missing ones are skipped.
  @discardableResult
  public func step(gradientPointers: [String: UnsafePointer<Float>]) throws(OptimizerError) -> AdamStepReport {
    for name in gradientPointers.keys where index[name] == nil { throw .unknownParameter(name) }
    for (k, p) in parameters.enumerated() { context.grads[k] = gradientPointers[p.name] }
    return try update()
  }

  /// Copies of `params` after one update from a fresh state (t = 1), with the gradients under
  /// `prefix + name` in `grads`; for checking a step against fixtures (`expected.after_step.*`).
  public static func oneStep(_ params: [String: HostTensor], grads: [String: HostTensor], prefix: String = "",
                             settings: AdamSettings, threads: Int = 1) throws(OptimizerError) -> [String: HostTensor] {
    var buffers: [ParameterBuffer] = []
    defer { for b in buffers { b.pointer.deallocate() } }
    for (name, t) in params {
      guard case .f32(let a) = t.storage else {
        throw .tensorMismatch(name: name, expected: "F32 \(t.shape)", actual: "\(t.dtype) \(t.shape)")
      }
      let p = UnsafeMutablePointer<Float>.allocate(capacity: max(a.count, 1))
      p.initialize(from: a, count: a.count)
      buffers.append(ParameterBuffer(name: name, shape: t.shape, pointer: p))
    }
    try AdamOptimizer(settings: settings, parameters: buffers, threads: threads).step(grads: grads, prefix: prefix)
    var out: [String: HostTensor] = [:]
    for b in buffers { out[b.name] = HostTensor(shape: b.shape, floats: Array(UnsafeBufferPointer(start: b.pointer, count: b.count))) }
    return out
  }

  /// The learning rate the next update will use.
  public var nextLearningRate: Double { settings.learningRate(stepCount + 1) }

  /// A copy of the state (t and both moments), for a checkpoint.
  public func exportState() -> AdamState {
    var m: [String: HostTensor] = [:], v: [String: HostTensor] = [:]
    for (k, p) in parameters.enumerated() {
      let n = p.shape.reduce(1, *)
      m[p.name] = HostTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: context.m(k), count: n)))
      v[p.name] = HostTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: context.v(k), count: n)))
    }
    return AdamState(step: stepCount, m: m, v: v)
  }

  /// Replaces the state with `s` (from a checkpoint); it must hold exactly this optimizer's
  /// parameters, F32, with their shapes. Nothing changes when it throws.
  public func importState(_ s: AdamState) throws(OptimizerError) {
    // The next update is step + 1.
    guard s.step >= 0, s.step < Int.max else {
      throw .invalidConfig("state step must be in 0..<\(Int.max), got \(s.step)")
    }
    for (what, table) in [("m", s.m), ("v", s.v)] {
      for name in table.keys.sorted() where index[name] == nil { throw .unknownParameter("\(what).\(name)") }
      for p in parameters {
        guard let t = table[p.name] else { throw .missingState(name: p.name, what: what) }
        guard case .f32 = t.storage, t.shape == p.shape else {
          throw .tensorMismatch(name: "\(what).\(p.name)", expected: "F32 \(p.shape)", actual: "\(t.dtype) \(t.shape)")
        }
      }
    }
    for (k, p) in parameters.enumerated() {
      if case .f32(let a) = s.m[p.name]!.storage { a.withUnsafeBufferPointer { copy($0, to: context.m(k)) } }
      if case .f32(let a) = s.v[p.name]!.storage { a.withUnsafeBufferPointer { copy($0, to: context.v(k)) } }
    }
    stepCount = s.step
  }

  // MARK: - Internals

  /// Points `context.grads` at each gradient's storage for the duration of `body`.
  private func withGradients(_ k: Int, _ grads: [String: HostTensor], _ body: () -> Void) {
    guard k < parameters.count else { return body() }
    guard case .f32(let a) = grads[prefixed.names[k]]?.storage else {
      context.grads[k] = nil
      return withGradients(k + 1, grads, body)
    }
    a.withUnsafeBufferPointer { buf in
      context.grads[k] = buf.baseAddress ?? UnsafePointer(context.m(k))  // empty: never read
      withGradients(k + 1, grads, body)
    }
  }

  /// Norm, clip factor and the Adam update with the gradients now in `context.grads`.
  private func update() throws(OptimizerError) -> AdamStepReport {
    let c = context
    c.phase = .norm
    runPool()
    var sum = 0.0
    for b in 0..<c.blockCount { sum += c.partials[b] }
    let norm = sum.squareRoot()
    guard norm.isFinite else {
      let bad = (0..<c.blockCount).first { !c.partials[$0].isFinite }.map { c.blockParam[$0] } ?? 0
      for k in 0..<parameters.count { c.grads[k] = nil }
      throw .nonFiniteGradient(name: parameters[bad].name, norm: norm)
    }
    // torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6) in float32,
    // applied when below 1.
    var scale: Float = 1
    if settings.clip > 0 {
      let coef = Float(settings.clip) / (Float(norm) + Float(1e-6))
      if coef < 1 { scale = coef }
    }
    let t = stepCount + 1
    let lr = settings.learningRate(t)
    let bc1 = 1 - pow(settings.beta1, Double(t))
    let bc2 = 1 - pow(settings.beta2, Double(t))
    c.hyper = AdamHyper(gradScale: scale, stepSize: Float(lr / bc1), beta1: Float(settings.beta1),
                        oneMinusBeta1: Float(1 - settings.beta1), beta2: Float(settings.beta2),
                        oneMinusBeta2: Float(1 - settings.beta2), eps: Float(settings.eps),
                        bc2Sqrt: Float(bc2.squareRoot()))
    c.phase = .update
    runPool()
    var updated = 0
    for k in 0..<parameters.count where c.grads[k] != nil { updated += 1 }
    for k in 0..<parameters.count { c.grads[k] = nil }
    stepCount = t
    return AdamStepReport(step: t, learningRate: lr, gradientNorm: norm, clipScale: scale,
                          updatedParameters: updated)
  }

  private func runPool() {
    pool.run({ ctx, ith, nth in
      Unmanaged<AdamContext>.fromOpaque(ctx!).takeUnretainedValue().run(ith: Int(ith), nth: Int(nth))
    }, Unmanaged.passUnretained(context).toOpaque())
  }
}

private func copy(_ src: UnsafeBufferPointer<Float>, to dst: UnsafeMutablePointer<Float>) {
  if let s = src.baseAddress { dst.update(from: s, count: src.count) }
}
