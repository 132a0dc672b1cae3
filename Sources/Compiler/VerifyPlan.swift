import GraphIR

/// `Plan.verify` with the compiler's error type (the checks live in GraphIR so the runtime can
/// run them on plans it loads).
public func verifyPlan(_ plan: Plan, outerInputs: Int? = nil) throws(CompileError) {
  do {
    try plan.verify(outerInputs: outerInputs)
  } catch {
    throw .invalidPlan(plan: error.plan, problem: error.problem)
  }
}

extension Plan {
  /// `producingSteps()` with the compiler's error type.
  func producers() throws(CompileError) -> [Int?] {
    do {
      return try producingSteps()
    } catch {
      throw .invalidPlan(plan: error.plan, problem: error.problem)
    }
  }
}
