import GraphIR

/// Everything the runtime refuses, with the input, tensor or step it is about.
///
/// Each case renders as one line that names the thing and, where shapes are involved, both shapes:
/// `input "context": expected i32[B, Tc] (= [4, 17]), got i32[4, 18]`.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
  /// A `.param(name)` buffer has no tensor among the weights.
  case missingParam(name: String, expected: String)
  /// A weight exists but has the wrong dtype or shape.
  case paramMismatch(name: String, expected: String, actual: String)
  /// The caller did not feed an input the plan needs.
  case missingInput(name: String, expected: String)
  /// The caller fed a name the plan does not take.
  case unknownInput(name: String, known: [String])
  /// A fed tensor has the wrong dtype for the input.
  case inputDType(name: String, expected: String, actual: String)
  /// A fed tensor's rank or a dim disagrees with the plan (or with another input).
  case inputShape(name: String, detail: String)
  /// A bare-symbol dim of an input disagrees with the value another input (or the caller) bound.
  case inconsistentDim(input: String, dim: Int, symbol: String, value: Int, boundBy: String, bound: Int)
  /// An integer input holds a value out of range (ids, targets, lengths), at a position.
  case valueOutOfRange(name: String, detail: String)
  /// A dim symbol could not be evaluated at this binding.
  case unboundDim(String)
  /// The plan is malformed for execution (names the step).
  case invalidPlan(String)
  /// `ExecutorOptions.checkNumerics` found a NaN or infinity (names the step, node and element).
  case nonFinite(String)
  /// The arena, scratch or weights could not be allocated.
  case allocation(String)

  public var description: String {
    switch self {
    case .missingParam(let n, let e):
      return "weight \"\(n)\" is missing (the plan expects f32\(e))"
    case .paramMismatch(let n, let e, let a):
      return "weight \"\(n)\": expected \(e), got \(a)"
    case .missingInput(let n, let e):
      return "input \"\(n)\" is missing (the plan expects \(e))"
    case .unknownInput(let n, let known):
      return "input \"\(n)\" is not an input of the plan (it takes \(known.joined(separator: ", ")))"
    case .inputDType(let n, let e, let a):
      return "input \"\(n)\": expected dtype \(e), got \(a)"
    case .inputShape(let n, let d):
      return "input \"\(n)\": \(d)"
    case .inconsistentDim(let n, let d, let s, let v, let by, let b):
      return "input \"\(n)\" dim \(d) binds \(s) = \(v) but \(by) bound \(s) = \(b)"
    case .valueOutOfRange(let n, let d):
      return "input \"\(n)\": \(d)"
    case .unboundDim(let d):
      return "cannot bind dims: \(d)"
    case .invalidPlan(let d):
      return "invalid plan: \(d)"
    case .nonFinite(let d):
      return "non-finite value \(d)"
    case .allocation(let d):
      return "allocation failed: \(d)"
    }
  }
}

extension RuntimeError {
  /// Wraps a dim evaluation failure, saying where it happened.
  static func dim(_ e: DimError, _ context: String) -> RuntimeError {
    .unboundDim("\(context): \(e)")
  }
}
