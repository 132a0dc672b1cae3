import CKernels
import GraphIR

/// One step, ready to run: called by every thread of the team that runs the step, each with its
/// own `Team` (ith/nth), and splits the step's rows itself. Built once per shape bucket.
typealias Kernel = (Team) -> Void

/// A table of buffer addresses, one per buffer of a plan; refreshed per run (inputs, views).
typealias PointerTable = UnsafeMutablePointer<UnsafeMutableRawPointer?>

/// What a kernel builder knows about its step at one binding of the dims.
struct KernelSite {
  let step: Step
  let index: Int
  /// Concrete shapes of all buffers of the plan the step belongs to.
  let shapes: [[Int]]
  let ptrs: PointerTable
  let env: [String: Int]
  /// Run the `_ref` twins of the C kernels.
  let reference: Bool
  /// Threads in the team that will run the step.
  let teamSize: Int
  /// Per-thread float scratch: thread `tid` owns `scratch + tid * scratchStride`.
  let scratch: UnsafeMutablePointer<Float>
  let scratchStride: Int
  /// The plan's buffers (which one is a weight, by name).
  let buffers: [Buffer]
  /// The executor's packed weights (GEMM panels), shared by every plan it binds.
  let packed: PackedWeights

  /// The weight name of buffer `b` when it is a `.param` (through views), else nil.
  func paramName(_ b: Int) -> String? {
    var i = b, hops = 0
    while i >= 0, i < buffers.count, hops <= buffers.count {
      switch buffers[i].storage {
      case .param(let name): return name
      case .view(let base): i = base
      default: return nil
      }
      hops += 1
    }
    return nil
  }

  func inShape(_ i: Int) -> [Int] { shapes[step.inputs[i]] }
  func outShape(_ i: Int) -> [Int] { shapes[step.outputs[i]] }
  var name: String { "step \(index) \(step.label) (\(step.op.rawValue))" }

  /// Checks a condition the kernel relies on; the message names the step.
  func require(_ ok: Bool, _ what: @autoclosure () -> String) throws(RuntimeError) {
    if !ok { throw .invalidPlan("\(name): \(what())") }
  }
  func arity(inputs: ClosedRange<Int>, outputs: Int) throws(RuntimeError) {
    try require(inputs.contains(step.inputs.count),
                "takes \(inputs) inputs, the plan gives \(step.inputs.count)")
    try require(step.outputs.count == outputs, "has \(outputs) outputs, the plan gives \(step.outputs.count)")
  }
  func float(_ k: String, default d: Float? = nil) throws(RuntimeError) -> Float {
    if let v = step.attrs.float(k) { return v }
    if let d { return d }
    throw .invalidPlan("\(name): attribute \(k) is missing")
  }
  func int(_ k: String) throws(RuntimeError) -> Int {
    if let v = step.attrs.int(k) { return v }
    throw .invalidPlan("\(name): attribute \(k) is missing")
  }
  /// An integer-or-dim attribute, evaluated at this binding.
  func dim(_ k: String, default d: Int? = nil) throws(RuntimeError) -> Int {
    if let v = step.attrs.dim(k) {
      do { return try v.evaluate(env) } catch { throw .dim(error, "\(name) attribute \(k)") }
    }
    if let d { return d }
    throw .invalidPlan("\(name): attribute \(k) is missing")
  }
}

/// Element counts and pointer helpers.
@inline(__always) func elements(_ shape: [Int]) -> Int { shape.reduce(1, *) }
@inline(__always) func f32(_ p: PointerTable, _ b: Int) -> UnsafeMutablePointer<Float> {
  p[b].unsafelyUnwrapped.assumingMemoryBound(to: Float.self)
}
@inline(__always) func i32(_ p: PointerTable, _ b: Int) -> UnsafeMutablePointer<Int32> {
  p[b].unsafelyUnwrapped.assumingMemoryBound(to: Int32.self)
}

/// Builds the kernel of one step: the one place that maps every op to its kernel (no `default:`,
/// so a new op does not compile until it has one here). Ops that are never steps throw.
func makeKernel(_ s: KernelSite, body: BoundPlan?) throws(RuntimeError) -> Kernel {
  switch s.step.op {
  case .input, .param:
    throw .invalidPlan("\(s.name): sources are buffers, never steps")
  case .reshape:
    throw .invalidPlan("\(s.name): reshapes are views, never steps")
  case .zeros: return try ElementwiseKernels.zeros(s)
  case .positionalEncoding: return try ElementwiseKernels.positionalEncoding(s)
  case .dropoutMask: return try ElementwiseKernels.dropoutMask(s)
  case .add: return try ElementwiseKernels.binary(s, s.reference ? mq_add_ref : mq_add)
  case .sub: return try ElementwiseKernels.binary(s, s.reference ? mq_sub_ref : mq_sub)
  case .mul: return try ElementwiseKernels.binary(s, s.reference ? mq_mul_ref : mq_mul)
  case .addN: return try ElementwiseKernels.addN(s)
  case .affine: return try ElementwiseKernels.affine(s)
  case .tanh: return try ElementwiseKernels.unary(s, s.reference ? mq_tanh_ref : mq_tanh)
  case .sigmoid: return try ElementwiseKernels.unary(s, s.reference ? mq_sigmoid_ref : mq_sigmoid)
  case .relu: return try ElementwiseKernels.unary(s, s.reference ? mq_relu_ref : mq_relu)
  case .padMask: return try ElementwiseKernels.padMask(s)
  case .linear: return try LinearKernels.linear(s)
  case .matmul: return try LinearKernels.matmul(s)
  case .concat: return try ShapeKernels.concat(s)
  case .slice: return try ShapeKernels.slice(s)
  case .transpose: return try ShapeKernels.transpose(s)
  case .broadcast: return try ShapeKernels.broadcast(s)
  case .embedding: return try ShapeKernels.embedding(s)
  case .softmax: return try AttentionKernels.softmax(s)
  case .attention: return try AttentionKernels.attention(s)
  case .layerNorm: return try AttentionKernels.layerNorm(s)
  case .lstmCell: return try AttentionKernels.lstmCell(s)
  case .mixture: return try OutputKernels.mixture(s)
  case .nllLoss: return try OutputKernels.nllLoss(s)
  case .mixtureNll: return try OutputKernels.mixtureNll(s)
  case .mixtureNllGrad: return try OutputKernels.mixtureNllGrad(s)
  case .cacheUpdate: return try DecodingKernels.cacheUpdate(s)
  case .topK: return try DecodingKernels.topK(s)
  case .mixtureTopK: return try DecodingKernels.mixtureTopK(s)
  case .scatterColumns: return try DecodingKernels.scatterColumns(s)
  case .sumTo: return try BackwardKernels.sumTo(s)
  case .tanhGrad: return try BackwardKernels.activationGrad(s, s.reference ? mq_tanh_backward_ref : mq_tanh_backward)
  case .sigmoidGrad:
    return try BackwardKernels.activationGrad(s, s.reference ? mq_sigmoid_backward_ref : mq_sigmoid_backward)
  case .reluGrad: return try BackwardKernels.activationGrad(s, s.reference ? mq_relu_backward_ref : mq_relu_backward)
  case .linearGradInput: return try LinearKernels.linearGradInput(s)
  case .linearGradWeight: return try LinearKernels.linearGradWeight(s)
  case .sliceGrad: return try BackwardKernels.sliceGrad(s)
  case .softmaxGrad: return try BackwardKernels.softmaxGrad(s)
  case .attentionGrad: return try BackwardLayerKernels.attentionGrad(s)
  case .layerNormGrad: return try BackwardLayerKernels.layerNormGrad(s)
  case .lstmCellGrad: return try BackwardLayerKernels.lstmCellGrad(s)
  case .mixtureGrad: return try BackwardLayerKernels.mixtureGrad(s)
  case .nllLossGrad: return try BackwardKernels.nllLossGrad(s)
  case .lengthMask: return try BackwardKernels.lengthMask(s)
  case .embeddingGrad: return try BackwardKernels.embeddingGrad(s)
  case .scan:
    guard let body else { throw .invalidPlan("\(s.name): a scan needs exactly one body plan") }
    return try ScanKernel.make(s, body: body)
  }
}

/// Floats of per-thread scratch a step needs at this binding, by the op table's `ScratchRule`
/// (attention: Tq * Tk for P; attention_grad: 2 * Tq * Tk for P and dP; mixture_top_k: the exps
/// of a row and the copied ids).
func scratchFloats(_ step: Step, shapes: [[Int]], env: [String: Int]) -> Int {
  switch step.op.spec.scratch {
  case .none:
    return 0
  case .attentionScores(let queries, let keys, let copies):
    guard step.inputs.count > max(queries, keys) else { return 0 }
    let q = shapes[step.inputs[queries]], k = shapes[step.inputs[keys]]
    guard q.count == 3, k.count == 3 else { return 0 }
    return copies * q[1] * k[1]
  case .mixtureRow:
    guard step.inputs.count >= 7, let n = shapes[step.inputs[0]].last, let lc = shapes[step.inputs[4]].last,
          let lq = shapes[step.inputs[6]].last else { return 0 }
    let v = step.inputs.count == 8 ? ((try? step.attrs.dim("vocab")?.evaluate(env)) ?? nil) ?? n : n
    // The reference twin keeps a whole mixture row: V + X (with a shortlist also V + N more).
    let x = (try? step.attrs.dim("extended")?.evaluate(env)) ?? v
    if step.inputs.count == 8 {
      return max(Int(mq_mixture_topk_shortlist_scratch(Int64(v), Int64(n), Int64(lc), Int64(lq))), 2 * v + x + n)
    }
    return max(Int(mq_mixture_topk_scratch(Int64(v), Int64(lc), Int64(lq))), v + x)
  }
}
