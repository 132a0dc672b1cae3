/// The number format of an inference plan's large linears: `fp32` (decaNLP's, the default), or
/// the weight held in `bf16` or `int8` with the activations converted per row on the fly and the
/// sum in fp32 / int32 (the formats and error bounds are in README's "Reduced precision").
public enum Precision: String, Sendable, Hashable, Codable, CaseIterable {
  case fp32, bf16, int8
}

/// What the `select-precision` pass records in the linears it converts: the format, the kernel
/// path that runs it (`avx512-bf16`, `avx512-vnni` or `portable`, chosen by the runtime for this
/// CPU) and which linears qualify.
///
/// Which linears: `output` (decoding's output layer, and any linear whose weight has at least
/// `minWeightElements` elements) or `all` (every linear with a parameter weight: the encoder's
/// projections and LSTM input GEMMs too, where bf16 doubles the arithmetic rate).
///
/// Like `GemmTarget`, the compiler does not look at the CPU: the caller asks the runtime.
public struct PrecisionTarget: Sendable, Hashable, Codable {
  public var precision: Precision
  /// The kernel path the converted linears run (`Step.attrs["qpath"]`).
  public var path: String
  /// A linear qualifies when its weight is a parameter of at least this many elements: weights
  /// too large for the L2 cache, read from memory on every decoding step (the 50,000-word output
  /// layer, 10^7 elements); the model's 200-wide linears stay fp32.
  public var minWeightElements: Int
  public var linears: Linears

  public enum Linears: String, Sendable, Hashable, Codable, CaseIterable {
    case output, all
  }

  public static let defaultMinWeightElements = 1 << 20

  public init(precision: Precision, path: String, linears: Linears = .output,
              minWeightElements: Int = PrecisionTarget.defaultMinWeightElements) {
    self.precision = precision
    self.path = path
    self.linears = linears
    self.minWeightElements = minWeightElements
  }
}
