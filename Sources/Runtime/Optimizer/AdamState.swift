/// One parameter tensor that an optimizer updates in place: its name, shape and float32 memory
/// (which must outlive the optimizer and keep its address, as the executor's weight block does).
public struct ParameterBuffer {
  public var name: String
  public var shape: [Int]
  public var pointer: UnsafeMutablePointer<Float>

  public init(name: String, shape: [Int], pointer: UnsafeMutablePointer<Float>) {
    self.name = name
    self.shape = shape
    self.pointer = pointer
  }

  /// Number of elements.
  public var count: Int { shape.reduce(1, *) }
}

/// Adam's state for a checkpoint: the update count t and both moments of every parameter.
public struct AdamState: Sendable, Equatable {
  /// Updates done so far; the next update is t + 1.
  public var step: Int
  /// First moments by parameter name (each shaped as its parameter).
  public var m: [String: HostTensor]
  /// Second moments by parameter name.
  public var v: [String: HostTensor]

  public init(step: Int, m: [String: HostTensor], v: [String: HostTensor]) {
    self.step = step
    self.m = m
    self.v = v
  }
}

/// What one update did.
public struct AdamStepReport: Sendable, Equatable {
  /// The update's index t (1 for the first).
  public var step: Int
  /// The learning rate the schedule gave for t.
  public var learningRate: Double
  /// The global L2 norm of the gradients before clipping.
  public var gradientNorm: Double
  /// The factor every gradient was multiplied by (1 when the norm was within the clip).
  public var clipScale: Float
  /// How many parameters had a gradient (the others were left as they were).
  public var updatedParameters: Int
}
