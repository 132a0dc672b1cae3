import Runtime

/// Deterministic pseudo-normal numbers (sum of uniforms from an LCG).
public struct TestNumbers {
  public var state: UInt64
  public init(state: UInt64) { self.state = state }
  public mutating func next() -> Float {
    var s: Float = 0
    for _ in 0..<4 {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      s += Float(state >> 40) / Float(1 << 24) - 0.5
    }
    return s * 1.7
  }
  public mutating func tensor(_ shape: [Int], scale: Float = 1) -> HostTensor {
    HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in next() * scale })
  }
}
