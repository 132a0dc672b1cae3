import Runtime

/// Parameters in memory the test owns (as the executor's weight block would be), by name: what
/// an `AdamOptimizer` updates in tests of the optimizer, checkpoints and the Adam parity step.
public final class ParameterMemory {
  public let shapes: [String: [Int]]
  private var pointers: [String: UnsafeMutablePointer<Float>] = [:]

  public init(_ values: [String: HostTensor]) {
    var shapes: [String: [Int]] = [:]
    for (name, t) in values {
      let a = try! t.floats
      let p = UnsafeMutablePointer<Float>.allocate(capacity: max(a.count, 1))
      p.initialize(from: a, count: a.count)
      pointers[name] = p
      shapes[name] = t.shape
    }
    self.shapes = shapes
  }

  deinit { for p in pointers.values { p.deallocate() } }

  public var buffers: [ParameterBuffer] {
    pointers.map { ParameterBuffer(name: $0.key, shape: shapes[$0.key]!, pointer: $0.value) }
  }

  public func values(_ name: String) -> [Float] {
    Array(UnsafeBufferPointer(start: pointers[name]!, count: shapes[name]!.reduce(1, *)))
  }

  public var all: [String: [Float]] { Dictionary(uniqueKeysWithValues: shapes.keys.map { ($0, values($0)) }) }
}
