/// Every operation the IR knows. What each op means (inputs, attributes, shape rule, cost, kernel,
/// which inputs are differentiable, gradient rule) is its `OpSpec`, in one file per op family
/// under `Ops/`; `spec` below is the one place that maps ops to specs, with no `default:`, so a
/// new op does not compile until it has a spec.
public enum OpKind: String, Hashable, Sendable, Codable, CaseIterable {
  // Sources (Ops/Sources.swift)
  case input, param, zeros, positionalEncoding = "positional_encoding", dropoutMask = "dropout_mask"
  // Elementwise (Ops/Elementwise.swift)
  case add, sub, mul, affine, tanh, sigmoid, relu, addN = "add_n"
  // Linear algebra (Ops/Linear.swift)
  case linear, matmul
  // Data movement (Ops/Shape.swift)
  case concat, slice, reshape, transpose, broadcast, embedding, padMask = "pad_mask"
  // Normalization and attention (Ops/Attention.swift)
  case softmax, attention, layerNorm = "layer_norm"
  // Recurrence (Ops/Recurrence.swift)
  case lstmCell = "lstm_cell", scan
  // Output layer (Ops/Output.swift)
  case mixture, nllLoss = "nll_loss", mixtureNll = "mixture_nll"
  // Incremental decoding (Ops/Decoding.swift)
  case cacheUpdate = "cache_update", topK = "top_k", mixtureTopK = "mixture_top_k"
  case scatterColumns = "scatter_columns"
  // Backward-only ops that gradient rules emit (Ops/Backward.swift)
  case sumTo = "sum_to", tanhGrad = "tanh_grad", sigmoidGrad = "sigmoid_grad", reluGrad = "relu_grad"
  case linearGradInput = "linear_grad_input", linearGradWeight = "linear_grad_weight"
  case sliceGrad = "slice_grad", softmaxGrad = "softmax_grad", attentionGrad = "attention_grad"
  case layerNormGrad = "layer_norm_grad", lstmCellGrad = "lstm_cell_grad", mixtureGrad = "mixture_grad"
  case nllLossGrad = "nll_loss_grad", lengthMask = "length_mask", embeddingGrad = "embedding_grad"
  case mixtureNllGrad = "mixture_nll_grad"

  public var spec: OpSpec {
    var s = baseSpec
    s.gradient = GradientRules.rule(for: self)
    s.inPlace = inPlace
    s.isGradient = isGradient
    s.activationGradient = activationGradient
    s.scratch = scratch
    s.idOperands = idOperands
    return s
  }

  /// The inputs that hold ids, targets, positions or lengths, and the range their values must lie
  /// in (the runtime checks fed values against these before any kernel runs).
  var idOperands: [IdOperand] {
    let extended = IdBound.attributeOrOutputDim("extended", output: 0, axis: -1)
    switch self {
    case .embedding: return [IdOperand(1, .inputDim(0, axis: 0), "ids (rows of the table)")]
    case .mixture:
      return [IdOperand(4, extended, "context ids (extended vocabulary)"),
              IdOperand(6, extended, "question ids (extended vocabulary)")]
    case .mixtureTopK:
      return [IdOperand(4, extended, "context ids (extended vocabulary)"),
              IdOperand(6, extended, "question ids (extended vocabulary)"),
              IdOperand(7, .attribute("vocab"), "shortlist ids (generative vocabulary)")]
    case .nllLoss: return [IdOperand(1, .inputDim(0, axis: -1), ignore: "ignore", "targets (columns of P)")]
    case .mixtureNll, .mixtureNllGrad:
      let o = self == .mixtureNll ? 0 : 1
      return [IdOperand(4 + o, .attribute("extended"), "context ids (extended vocabulary)"),
              IdOperand(6 + o, .attribute("extended"), "question ids (extended vocabulary)"),
              IdOperand(7 + o, .attribute("extended"), ignore: "ignore", "targets (extended vocabulary)")]
    case .nllLossGrad: return [IdOperand(2, .inputDim(1, axis: -1), ignore: "ignore", "targets (columns of P)")]
    case .mixtureGrad:
      return [IdOperand(5, .inputDim(0, axis: -1), "context ids (extended vocabulary)"),
              IdOperand(7, .inputDim(0, axis: -1), "question ids (extended vocabulary)")]
    case .embeddingGrad: return [IdOperand(1, .attribute("rows"), "ids (rows of the table)")]
    case .cacheUpdate:
      return [IdOperand(1, .inputDim(0, axis: 0), "reorder (rows of the cache)"),
              IdOperand(3, .inputDim(0, axis: 1), "step (slots of the cache)")]
    case .scatterColumns: return [IdOperand(1, .attribute("columns"), "ids (columns of the output)")]
    case .scan:
      return [IdOperand(-1, .inputDim(0, axis: 1), inclusive: true, onlyWith: "masked", "lengths (time steps)")]
    case .input, .param, .zeros, .positionalEncoding, .dropoutMask, .add, .sub, .mul, .affine, .tanh, .sigmoid, .relu,
         .addN, .linear, .matmul, .concat, .slice, .reshape, .transpose, .broadcast, .padMask, .softmax, .attention,
         .layerNorm, .lstmCell, .topK, .sumTo, .tanhGrad, .sigmoidGrad, .reluGrad, .linearGradInput, .linearGradWeight,
         .sliceGrad, .softmaxGrad, .attentionGrad, .layerNormGrad, .lstmCellGrad, .lengthMask:
      return []
    }
  }

  /// Per-thread scratch the op's kernel needs (the runtime sizes it at each binding).
  var scratch: ScratchRule {
    switch self {
    case .attention: return .attentionScores(queries: 0, keys: 1, copies: 1)
    case .attentionGrad: return .attentionScores(queries: 1, keys: 2, copies: 2)
    case .mixtureTopK: return .mixtureRow
    case .input, .param, .zeros, .positionalEncoding, .dropoutMask, .add, .sub, .mul, .affine, .tanh, .sigmoid, .relu,
         .addN, .linear, .matmul, .concat, .slice, .reshape, .transpose, .broadcast, .embedding, .padMask, .softmax,
         .layerNorm, .lstmCell, .scan, .mixture, .nllLoss, .mixtureNll, .cacheUpdate, .topK, .scatterColumns, .sumTo, .tanhGrad,
         .sigmoidGrad, .reluGrad, .linearGradInput, .linearGradWeight, .sliceGrad, .softmaxGrad, .layerNormGrad,
         .lstmCellGrad, .mixtureGrad, .nllLossGrad, .lengthMask, .embeddingGrad, .mixtureNllGrad:
      return .none
    }
  }

  /// Backward ops: what gradient rules emit (never written by a model description).
  var isGradient: Bool {
    switch self {
    case .sumTo, .tanhGrad, .sigmoidGrad, .reluGrad, .linearGradInput, .linearGradWeight, .sliceGrad, .softmaxGrad,
         .attentionGrad, .layerNormGrad, .lstmCellGrad, .mixtureGrad, .nllLossGrad, .lengthMask, .embeddingGrad,
         .mixtureNllGrad:
      return true
    case .input, .param, .zeros, .positionalEncoding, .dropoutMask, .add, .sub, .mul, .affine, .tanh, .sigmoid, .relu,
         .addN, .linear, .matmul, .concat, .slice, .reshape, .transpose, .broadcast, .embedding, .padMask, .softmax,
         .attention, .layerNorm, .lstmCell, .scan, .mixture, .nllLoss, .mixtureNll, .cacheUpdate, .topK, .mixtureTopK, .scatterColumns:
      return false
    }
  }

  /// An activation's backward op, `(g, y) -> dx` from the activation's output y (also what a
  /// `linear` with that activation in its epilogue uses); nil for every other op.
  var activationGradient: OpKind? {
    switch self {
    case .tanh: return .tanhGrad
    case .sigmoid: return .sigmoidGrad
    case .relu: return .reluGrad
    case .input, .param, .zeros, .positionalEncoding, .dropoutMask, .add, .sub, .mul, .affine, .addN, .linear, .matmul,
         .concat, .slice, .reshape, .transpose, .broadcast, .embedding, .padMask, .softmax, .attention, .layerNorm,
         .lstmCell, .scan, .mixture, .nllLoss, .mixtureNll, .cacheUpdate, .topK, .mixtureTopK, .scatterColumns, .sumTo, .tanhGrad,
         .sigmoidGrad, .reluGrad, .linearGradInput, .linearGradWeight, .sliceGrad, .softmaxGrad, .attentionGrad,
         .layerNormGrad, .lstmCellGrad, .mixtureGrad, .nllLossGrad, .lengthMask, .embeddingGrad, .mixtureNllGrad:
      return nil
    }
  }

  /// Which inputs an output may overwrite (the memory planner's choice, when nothing else still
  /// needs that input): the kernel reads each element, or a whole row, before writing it at the
  /// same place.
  var inPlace: [Int: [Int]] {
    switch self {
    case .tanh, .sigmoid, .relu, .affine, .softmax, .layerNorm: return [0: [0]]
    case .add, .sub, .mul: return [0: [0, 1]]
    case .addN: return [0: [0]]
    case .tanhGrad, .sigmoidGrad, .reluGrad, .softmaxGrad: return [0: [0, 1]]
    case .mixtureNllGrad: return [0: [1]]
    case .input, .param, .zeros, .positionalEncoding, .dropoutMask, .linear, .matmul, .concat, .slice, .reshape,
         .transpose, .broadcast, .embedding, .padMask, .attention, .lstmCell, .scan, .mixture, .nllLoss, .mixtureNll,
         .cacheUpdate, .topK, .mixtureTopK, .scatterColumns, .sumTo, .linearGradInput, .linearGradWeight, .sliceGrad, .attentionGrad,
         .layerNormGrad, .lstmCellGrad, .mixtureGrad, .nllLossGrad, .lengthMask, .embeddingGrad:
      return [:]
    }
  }

  var baseSpec: OpSpec {
    switch self {
    case .input: return Sources.input
    case .param: return Sources.param
    case .zeros: return Sources.zeros
    case .positionalEncoding: return Sources.positionalEncoding
    case .dropoutMask: return Sources.dropoutMask
    case .add: return Elementwise.binary("mq_add")
    case .sub: return Elementwise.binary("mq_sub")
    case .mul: return Elementwise.binary("mq_mul")
    case .affine: return Elementwise.affine
    case .tanh: return Elementwise.unary("mq_tanh", flopsPerElement: 8)
    case .sigmoid: return Elementwise.unary("mq_sigmoid", flopsPerElement: 8)
    case .relu: return Elementwise.unary("mq_relu", flopsPerElement: 1)
    case .addN: return Elementwise.addN
    case .linear: return LinearOps.linear
    case .matmul: return LinearOps.matmul
    case .concat: return ShapeOps.concat
    case .slice: return ShapeOps.slice
    case .reshape: return ShapeOps.reshape
    case .transpose: return ShapeOps.transpose
    case .broadcast: return ShapeOps.broadcast
    case .embedding: return ShapeOps.embedding
    case .padMask: return ShapeOps.padMask
    case .softmax: return AttentionOps.softmax
    case .attention: return AttentionOps.attention
    case .layerNorm: return AttentionOps.layerNorm
    case .lstmCell: return Recurrence.lstmCell
    case .scan: return Recurrence.scan
    case .mixture: return OutputOps.mixture
    case .nllLoss: return OutputOps.nllLoss
    case .mixtureNll: return OutputOps.mixtureNll
    case .mixtureNllGrad: return BackwardOps.mixtureNllGrad
    case .cacheUpdate: return DecodingOps.cacheUpdate
    case .scatterColumns: return DecodingOps.scatterColumns
    case .topK: return DecodingOps.topK
    case .mixtureTopK: return DecodingOps.mixtureTopK
    case .sumTo: return BackwardOps.sumTo
    case .tanhGrad: return BackwardOps.activationGrad("mq_tanh_backward")
    case .sigmoidGrad: return BackwardOps.activationGrad("mq_sigmoid_backward")
    case .reluGrad: return BackwardOps.activationGrad("mq_relu_backward")
    case .linearGradInput: return BackwardOps.linearGradInput
    case .linearGradWeight: return BackwardOps.linearGradWeight
    case .sliceGrad: return BackwardOps.sliceGrad
    case .softmaxGrad: return BackwardOps.softmaxGrad
    case .attentionGrad: return BackwardOps.attentionGrad
    case .layerNormGrad: return BackwardOps.layerNormGrad
    case .lstmCellGrad: return BackwardOps.lstmCellGrad
    case .mixtureGrad: return BackwardOps.mixtureGrad
    case .nllLossGrad: return BackwardOps.nllLossGrad
    case .lengthMask: return BackwardOps.lengthMask
    case .embeddingGrad: return BackwardOps.embeddingGrad
    }
  }
}

/// Where the exclusive upper bound of an id operand's values comes from.
public enum IdBound: Sendable, Equatable {
  /// Dim `axis` (-1: the last) of input `k`'s shape.
  case inputDim(Int, axis: Int)
  /// A dim attribute.
  case attribute(String)
  /// A dim attribute, else dim `axis` (-1: the last) of output `output`'s shape.
  case attributeOrOutputDim(String, output: Int, axis: Int)
}

/// An input of an op that holds ids, targets, positions or lengths: values must lie in
/// [0, bound) ([0, bound] when `inclusive`), or equal the integer attribute `ignore` names.
public struct IdOperand: Sendable, Equatable {
  /// The input's position; -1: the last input.
  public var input: Int
  public var bound: IdBound
  public var inclusive: Bool
  public var ignore: String?
  /// Checked only when this boolean attribute is true (a scan's lengths: `masked`).
  public var onlyWith: String?
  /// What the values are, for error messages.
  public var what: String

  public init(_ input: Int, _ bound: IdBound, inclusive: Bool = false, ignore: String? = nil, onlyWith: String? = nil,
              _ what: String) {
    self.input = input
    self.bound = bound
    self.inclusive = inclusive
    self.ignore = ignore
    self.onlyWith = onlyWith
    self.what = what
  }
}

/// How much per-thread scratch an op's kernel needs, in floats, at a binding of the dims.
public enum ScratchRule: Sendable, Equatable {
  case none
  /// `copies * Tq * Tk`: attention probabilities (and their gradient), with `Tq` the dim 1 of
  /// input `queries` and `Tk` the dim 1 of input `keys` (both `[B, T, D]`).
  case attentionScores(queries: Int, keys: Int, copies: Int)
  /// A row of the fused decoding output layer: the kernel's own count for (V, Lc, Lq), or a
  /// whole mixture row (V + X) for its reference twin, whichever is larger.
  case mixtureRow
}

/// FLOPs and bytes moved by one execution of a node, as formulas of the dims.
public struct Cost: Hashable, Sendable {
  public var flops: Dim
  public var bytes: Dim
  public init(flops: Dim, bytes: Dim) {
    self.flops = flops
    self.bytes = bytes
  }
  public static let zero = Cost(flops: 0, bytes: 0)
  public static func + (a: Cost, b: Cost) -> Cost { Cost(flops: a.flops + b.flops, bytes: a.bytes + b.bytes) }
  public static func * (a: Cost, k: Dim) -> Cost { Cost(flops: a.flops * k, bytes: a.bytes * k) }
}

/// Everything the compiler and runtime need to know about one op.
public struct OpSpec: Sendable {
  /// How many inputs the op takes.
  public var arity: ClosedRange<Int>
  /// The shape rule: output types from input types and attributes; throws naming both shapes.
  public var infer: @Sendable (InferContext) throws(GraphError) -> [TensorType]
  /// FLOPs per execution (bytes default to inputs + outputs).
  public var flops: @Sendable (InferContext, [TensorType]) -> Dim
  /// The kernel that runs the op (a C function or runtime routine), as plans print it.
  public var kernel: String
  /// Input positions that never get a gradient (ids, masks, lengths, the fixed embedding table).
  public var nonDifferentiable: Set<Int>
  /// Pure data movement that can alias its input (the memory planner may make it a view).
  public var isView: Bool
  /// The gradient rule autodiff uses (`Ops/GradientRules.swift`); nil: the op is not differentiated
  /// (sources, decoding-only ops and the backward ops themselves).
  public var gradient: GradientRule?
  /// Output -> the inputs it may overwrite, in preference order (`OpKind.inPlace`).
  public var inPlace: [Int: [Int]] = [:]
  /// A backward op (`OpKind.isGradient`): autodiff emits it; plans count it in their backward pass.
  public var isGradient = false
  /// For an activation, its backward op `(g, y) -> dx` (`OpKind.activationGradient`).
  public var activationGradient: OpKind?
  /// Per-thread scratch its kernel needs (`OpKind.scratch`).
  public var scratch: ScratchRule = .none
  /// Inputs holding ids, targets, positions or lengths, with their bounds (`OpKind.idOperands`).
  public var idOperands: [IdOperand] = []

  public init(arity: ClosedRange<Int>, kernel: String, nonDifferentiable: Set<Int> = [],
              isView: Bool = false, gradient: GradientRule? = nil,
              flops: @escaping @Sendable (InferContext, [TensorType]) -> Dim = { _, _ in 0 },
              infer: @escaping @Sendable (InferContext) throws(GraphError) -> [TensorType]) {
    self.arity = arity
    self.kernel = kernel
    self.nonDifferentiable = nonDifferentiable
    self.isView = isView
    self.gradient = gradient
    self.flops = flops
    self.infer = infer
  }
}

/// What a shape rule sees: the node's id (for errors), its inputs' types and its attributes.
public struct InferContext: Sendable {
  public var node: Int
  public var op: OpKind
  public var inputs: [TensorType]
  public var attrs: Attrs

  public init(node: Int, op: OpKind, inputs: [TensorType], attrs: Attrs) {
    self.node = node
    self.op = op
    self.inputs = inputs
    self.attrs = attrs
  }

  public func mismatch(_ what: String, expected: String, actual: String) -> GraphError {
    .shapeMismatch(node: node, op: op, what: what, expected: expected, actual: actual)
  }
  public func int(_ k: String) throws(GraphError) -> Int {
    guard let v = attrs.int(k) else { throw missing(k, "an integer") }
    return v
  }
  public func float(_ k: String) throws(GraphError) -> Float {
    guard let v = attrs.float(k) else { throw missing(k, "a number") }
    return v
  }
  public func bool(_ k: String) throws(GraphError) -> Bool {
    guard let v = attrs.bool(k) else { throw missing(k, "a boolean") }
    return v
  }
  public func string(_ k: String) throws(GraphError) -> String {
    guard let v = attrs.string(k) else { throw missing(k, "a string") }
    return v
  }
  public func dims(_ k: String) throws(GraphError) -> [Dim] {
    guard let v = attrs.dims(k) else { throw missing(k, "a dim list") }
    return v
  }
  public func dim(_ k: String) throws(GraphError) -> Dim {
    guard let v = attrs.dim(k) else { throw missing(k, "a dim") }
    return v
  }
  func missing(_ k: String, _ kind: String) -> GraphError {
    .attribute(node: node, op: op, name: k, problem: attrs[k] == nil ? "missing" : "must be \(kind)")
  }
  /// Requires input i to have the given dtype and rank (nil: any rank).
  public func require(_ i: Int, _ dtype: DType, rank: Int? = nil, name: String) throws(GraphError) -> TensorType {
    let t = inputs[i]
    if t.dtype != dtype { throw mismatch("\(name) dtype", expected: dtype.rawValue, actual: t.description) }
    if let r = rank, t.rank != r {
      throw mismatch("\(name) rank", expected: "rank \(r)", actual: t.description)
    }
    return t
  }
  /// Requires a dim to equal another, naming both.
  public func requireEqual(_ a: Dim, _ b: Dim, _ what: String) throws(GraphError) {
    if a != b { throw mismatch(what, expected: b.description, actual: a.description) }
  }
}
