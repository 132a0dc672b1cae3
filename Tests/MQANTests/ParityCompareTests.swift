import Runtime
import Testing
@testable import MQAN

/// `mqan verify`'s comparisons: a NaN or an error over the tolerance anywhere in a tensor fails,
/// whatever follows it, and the tolerances are the fixtures' README's.
@Suite struct ParityCompareTests {
  static let expected: [Float] = [1, 2, 3, 4, 5, 6]

  @Test func tolerancesAreTheFixturesReadmes() {
    #expect(ParityCheck.lossTolerance == 1e-5)
    #expect(ParityCheck.activationTolerance == 1e-4)
    // Gradients: 1e-4 of the expected tensor's largest magnitude, at least 1e-9.
    #expect(ParityCheck.gradientTolerance(HostTensor(shape: [3], floats: [0.5, -20, 3])) == 20 * 1e-4)
    #expect(ParityCheck.gradientTolerance(HostTensor(shape: [2], floats: [0, 0])) == 1e-9)
  }

  @Test(arguments: [Float.nan, .infinity, -.infinity])
  func aNonFiniteElementMidTensorFails(bad: Float) {
    var actual = Self.expected
    actual[2] = bad
    let line = ParityCheck.compare("t", expected: HostTensor(shape: [6], floats: Self.expected),
                                   actual: HostTensor(shape: [6], floats: actual), tolerance: 1e-4)
    #expect(line.status == .fail, "\(line)")
    #expect(line.detail.contains("at flat index 2"), "\(line)")
    let (err, at) = ParityCheck.maxAbsError(Self.expected, actual)
    #expect(!err.isFinite && at == 2)
  }

  /// An over-tolerance error before a NaN, and the NaN itself, both survive later finite elements.
  @Test func errorsBeforeANaNAreNotForgotten() {
    let actual: [Float] = [1, 2.5, .nan, 4, 5, 6]
    let (err, at) = ParityCheck.maxAbsError(Self.expected, actual)
    #expect(err.isNaN && at == 2)
    let line = ParityCheck.compare("t", expected: HostTensor(shape: [6], floats: Self.expected),
                                   actual: HostTensor(shape: [6], floats: actual), tolerance: 1)
    #expect(line.status == .fail, "\(line)")
    // Infinity stays the maximum once seen.
    #expect(ParityCheck.maxAbsError([0, 0, 0], [.infinity, 1, 0]).error == .infinity)
    let small = ParityCheck.maxAbsError([0, 0, 0], [0, 1e-6, 0])
    #expect(small.error == 1e-6 && small.index == 1)
  }

  /// The optimizer step: 1e-4 of the expected tensor's largest magnitude, plus lr where the
  /// expected gradient is below 1e-4 of its largest.
  @Test func optimizerStepToleranceIsPinned() {
    let e: [Float] = [10, -2, 3, 4]   // largest magnitude 10: tolerance 1e-3
    func status(_ a: [Float], grad: [Float]? = nil, lr: Float = 0) -> ParityLine.Status {
      ParityCheck.compareStep("s", expected: HostTensor(shape: [4], floats: e), actual: HostTensor(shape: [4], floats: a),
                              grad: grad.map { HostTensor(shape: [4], floats: $0) }, lr: lr).status
    }
    #expect(status([10, -2, 3.0009, 4]) == .ok)
    #expect(status([10, -2, 3.0011, 4]) == .fail)
    // Where the gradient is tiny (below 1e-4 of the largest), lr more is allowed; elsewhere not.
    #expect(status([10, -2, 3.05, 4], grad: [1, 1, 1e-6, 1], lr: 0.1) == .ok)
    #expect(status([10, -2, 3.05, 4], grad: [1, 1, 1, 1], lr: 0.1) == .fail)
  }

  @Test func optimizerStepComparisonFailsOnANaN() {
    let e: [Float] = [1, 2, 3, 4]
    for actual: [Float] in [[1, .nan, 3, 4], [1, 2, .nan, 4.5]] {
      let line = ParityCheck.compareStep("s", expected: HostTensor(shape: [4], floats: e),
                                         actual: HostTensor(shape: [4], floats: actual), grad: nil, lr: 0)
      #expect(line.status == .fail, "\(line)")
      #expect(line.detail.hasPrefix("max_abs=nan"), "\(line)")
    }
    let ok = ParityCheck.compareStep("s", expected: HostTensor(shape: [4], floats: e),
                                     actual: HostTensor(shape: [4], floats: e), grad: nil, lr: 0)
    #expect(ok.status == .ok)
  }
}
