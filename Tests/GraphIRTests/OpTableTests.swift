import Testing
@testable import GraphIR

/// Op facts the table states once: which ops are backward ops, and each activation's gradient op.
@Suite struct OpTableTests {
  @Test func backwardOpsAreTheOnesAutodiffEmits() {
    for op in OpKind.allCases {
      let named = op.rawValue.contains("_grad") || op == .sumTo || op == .lengthMask
      #expect(op.spec.isGradient == named, "\(op.rawValue)")
      // A backward op is never differentiated again.
      if op.spec.isGradient { #expect(op.spec.gradient == nil, "\(op.rawValue)") }
    }
  }

  @Test func activationsNameTheirGradientOps() {
    #expect(OpKind.tanh.spec.activationGradient == .tanhGrad)
    #expect(OpKind.sigmoid.spec.activationGradient == .sigmoidGrad)
    #expect(OpKind.relu.spec.activationGradient == .reluGrad)
    // Every epilogue a linear may carry has one.
    for (name, op) in LinearOps.epilogues { #expect(op.spec.activationGradient != nil, "\(name)") }
    #expect(OpKind.allCases.filter { $0.spec.activationGradient != nil }.count == 3)
  }
}
