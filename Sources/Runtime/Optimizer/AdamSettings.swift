/// What the Adam engine needs to know: the learning rate of each update, the betas, eps and the
/// global-norm clip. The schedules and settings of a particular model (decaNLP's transformer
/// schedule, its betas) belong to its trainer, which builds these.
public struct AdamSettings: Sendable {
  /// The learning rate of update `i` (1 for the first update).
  public var learningRate: @Sendable (Int) -> Double
  public var beta1: Double
  public var beta2: Double
  public var eps: Double
  /// The largest global gradient norm; a larger norm scales every gradient down to it. Zero or
  /// less turns clipping off.
  public var clip: Double

  public init(learningRate: @escaping @Sendable (Int) -> Double, beta1: Double, beta2: Double, eps: Double,
              clip: Double) {
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.clip = clip
  }

  /// Checks that the betas, eps and clip are usable (finite, betas in [0, 1)).
  public func validate() throws(OptimizerError) {
    func check(_ ok: Bool, _ what: String) throws(OptimizerError) {
      if !ok { throw .invalidConfig(what) }
    }
    try check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got \(beta1)")
    try check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got \(beta2)")
    try check(eps.isFinite && eps >= 0, "eps must be finite and >= 0, got \(eps)")
    try check(clip.isFinite, "clip must be finite, got \(clip)")
  }
}
