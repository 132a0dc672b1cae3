/// Why the optimizer refused a configuration, a step or a state.
public enum OptimizerError: Error, Equatable, CustomStringConvertible {
  case invalidConfig(String)
  /// Two parameter buffers share a name.
  case duplicateParameter(String)
  /// A gradient or state tensor names no parameter of the optimizer.
  case unknownParameter(String)
  /// A state lacks a parameter's tensor (`what` is "m" or "v").
  case missingState(name: String, what: String)
  /// A gradient or state tensor has the wrong dtype or shape.
  case tensorMismatch(name: String, expected: String, actual: String)
  /// The gradients' global norm is NaN or infinite; `name` is the first parameter whose gradient is.
  case nonFiniteGradient(name: String, norm: Double)

  public var description: String {
    switch self {
    case .invalidConfig(let s): "optimizer: \(s)"
    case .duplicateParameter(let n): "optimizer: parameter \"\(n)\" is given twice"
    case .unknownParameter(let n): "optimizer: \"\(n)\" is not a parameter of the optimizer"
    case .missingState(let n, let w): "optimizer state: no \(w) for parameter \"\(n)\""
    case .tensorMismatch(let n, let e, let a): "optimizer: \"\(n)\": expected \(e), got \(a)"
    case .nonFiniteGradient(let n, let norm):
      "optimizer: gradient norm is \(norm); the gradient of \"\(n)\" is not finite (nothing was updated)"
    }
  }
}
