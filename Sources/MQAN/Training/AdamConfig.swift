import Runtime

/// The learning rate as a function of the update index i (1 for the first update).
public enum LearningRateSchedule: Sendable, Equatable, Codable {
  /// decaNLP's transformer schedule (train.py `get_learning_rate`, Adam branch, unscaled):
  /// `lr_i = d^-0.5 * min(i^-0.5, i * warmup^-1.5)`, rising linearly to its peak at i = warmup.
  case transformer(dimension: Int, warmup: Int)
  /// The same rate at every update (decaNLP with `--warmup 0` or `--no_transformer_lr` keeps
  /// Adam's own rate).
  case constant(Double)
}

/// decaNLP's optimizer settings: global-norm clipping, then Adam with the transformer schedule.
///
/// ```swift
/// let cfg = AdamConfig.decaNLP(dimension: 200)        // betas 0.9/0.98, eps 1e-9, clip 1, warmup 800
/// cfg.learningRate(step: 800)                          // 200^-0.5 * 800^-0.5 = 0.0025
/// ```
public struct AdamConfig: Sendable, Equatable, Codable {
  public var schedule: LearningRateSchedule
  public var beta1: Double
  public var beta2: Double
  public var eps: Double
  /// The largest global gradient norm; a larger norm scales every gradient down to it. Zero or
  /// less turns clipping off (decaNLP clips only when `grad_clip > 0`).
  public var clip: Double

  public init(schedule: LearningRateSchedule = .transformer(dimension: 200, warmup: 800),
              beta1: Double = 0.9, beta2: Double = 0.98, eps: Double = 1e-9, clip: Double = 1.0) {
    self.schedule = schedule
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.clip = clip
  }

  /// decaNLP's defaults (train.py `init_opt` with `transformer_lr`, arguments.py): Adam with betas
  /// (0.9, 0.98), eps 1e-9, clip 1.0, the transformer schedule over the model's `dimension`.
  public static func decaNLP(dimension: Int, warmup: Int = 800) -> AdamConfig {
    AdamConfig(schedule: .transformer(dimension: dimension, warmup: warmup))
  }

  /// The learning rate of update `step` (1-based, as decaNLP's `iteration`), in double exactly as
  /// train.py computes it: `1 / sqrt(d) * min(1 / sqrt(i), i / (warmup * sqrt(warmup)))`.
  public func learningRate(step: Int) -> Double {
    switch schedule {
    case .constant(let lr):
      return lr
    case .transformer(let d, let warmup):
      let i = Double(step), w = Double(warmup)
      return 1.0 / Double(d).squareRoot() * min(1.0 / i.squareRoot(), i / (w * w.squareRoot()))
    }
  }

  /// The engine's settings: this schedule's rates and these betas, eps and clip.
  public var settings: AdamSettings {
    let config = self
    return AdamSettings(learningRate: { config.learningRate(step: $0) }, beta1: beta1, beta2: beta2, eps: eps,
                        clip: clip)
  }

  /// Checks that every setting is usable (finite, betas in [0, 1), positive dims).
  public func validate() throws(OptimizerError) {
    func check(_ ok: Bool, _ what: String) throws(OptimizerError) {
      if !ok { throw .invalidConfig(what) }
    }
    switch schedule {
    case .constant(let lr):
      try check(lr.isFinite && lr >= 0, "learning rate must be finite and >= 0, got \(lr)")
    case .transformer(let d, let w):
      try check(d > 0, "schedule dimension must be > 0, got \(d)")
      try check(w > 0, "schedule warmup must be > 0, got \(w)")
    }
    try check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got \(beta1)")
    try check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got \(beta2)")
    try check(eps.isFinite && eps >= 0, "eps must be finite and >= 0, got \(eps)")
    try check(clip.isFinite, "clip must be finite, got \(clip)")
  }
}

extension AdamOptimizer {
  /// An optimizer with decaNLP-style settings (`AdamConfig`), checked first.
  public convenience init(config: AdamConfig, parameters: [ParameterBuffer], threads: Int,
                          useReference: Bool = false) throws(OptimizerError) {
    try config.validate()
    try self.init(settings: config.settings, parameters: parameters, threads: threads, useReference: useReference)
  }

  /// `oneStep(_:grads:prefix:settings:threads:)` with an `AdamConfig`.
  public static func oneStep(_ params: [String: HostTensor], grads: [String: HostTensor], prefix: String = "",
                             config: AdamConfig, threads: Int = 1) throws(OptimizerError) -> [String: HostTensor] {
    try config.validate()
    return try oneStep(params, grads: grads, prefix: prefix, settings: config.settings, threads: threads)
  }
}
