import Runtime
import Testing
@testable import MQAN

/// decaNLP's optimizer settings and transformer learning-rate schedule (the trainer's, not the
/// runtime's Adam engine).
@Suite struct AdamConfigTests {
  @Test func scheduleMatchesDecaNLPsFormula() {
    let c = AdamConfig.decaNLP(dimension: 200)
    #expect(c.schedule == .transformer(dimension: 200, warmup: 800))
    #expect((c.beta1, c.beta2, c.eps, c.clip) == (0.9, 0.98, 1e-9, 1.0))
    // By hand: i = 1: 200^-0.5 * 1 * 800^-1.5 = (200 * 800^3)^-0.5 = 3.125e-6;
    // i = 800: (200 * 800)^-0.5 = 1/400; i = 1600: 200^-0.5 * 1600^-0.5 = 1/(40 sqrt 200).
    let expected: [(Int, Double)] = [(1, 3.125e-6), (800, 0.0025), (1600, 1 / (40 * 200.0.squareRoot()))]
    for (i, lr) in expected { #expect(abs(c.learningRate(step: i) - lr) <= 1e-15 * lr, "i = \(i)") }
    // Linear warmup, then inverse square root decay.
    #expect(abs(c.learningRate(step: 400) - 0.00125) < 1e-15)
    #expect(c.learningRate(step: 799) < c.learningRate(step: 800))
    #expect(c.learningRate(step: 801) < c.learningRate(step: 800))
    #expect(AdamConfig(schedule: .constant(0.001)).learningRate(step: 12345) == 0.001)
  }

  @Test func invalidConfigsAreRefused() {
    #expect(throws: OptimizerError.self) { try AdamConfig(schedule: .transformer(dimension: 200, warmup: 0)).validate() }
    #expect(throws: OptimizerError.self) { try AdamConfig(beta2: 1).validate() }
    #expect(throws: OptimizerError.self) { try AdamConfig(schedule: .constant(.nan)).validate() }
  }

  /// The engine's settings carry the schedule's rates and the same betas, eps and clip.
  @Test func settingsFollowTheConfig() {
    let c = AdamConfig.decaNLP(dimension: 200, warmup: 8)
    let s = c.settings
    for i in [1, 7, 8, 9, 1000] { #expect(s.learningRate(i) == c.learningRate(step: i)) }
    #expect((s.beta1, s.beta2, s.eps, s.clip) == (0.9, 0.98, 1e-9, 1.0))
  }
}
