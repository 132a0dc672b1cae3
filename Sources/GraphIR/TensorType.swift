/// Element types the IR knows: activations and weights are `f32`; ids and lengths are `i32`.
public enum DType: String, Hashable, Sendable, Codable, CaseIterable {
  case f32, i32
  public var byteSize: Int { 4 }
}

/// The type of one value: element type and a shape of symbolic dims.
public struct TensorType: Hashable, Sendable, Codable, CustomStringConvertible {
  public var dtype: DType
  public var shape: [Dim]
  public init(_ dtype: DType, _ shape: [Dim]) {
    self.dtype = dtype
    self.shape = shape
  }
  public static func f32(_ shape: [Dim]) -> TensorType { TensorType(.f32, shape) }
  public static func i32(_ shape: [Dim]) -> TensorType { TensorType(.i32, shape) }

  public var rank: Int { shape.count }
  public var elementCount: Dim { Dim.product(shape) }
  public var byteCount: Dim { elementCount * Dim(dtype.byteSize) }

  /// `byteCount` at a binding of the dims, multiplied out from the evaluated dims rather than
  /// expanded symbolically (binding a shape evaluates every buffer's size). Throws what
  /// `byteCount.evaluate(env)` throws: an unbound symbol, or `.overflow` for a size past `Int`.
  public func byteCount(_ env: [String: Int]) throws(DimError) -> Int {
    var n = dtype.byteSize
    for d in shape {
      let (p, o) = n.multipliedReportingOverflow(by: try d.evaluate(env))
      if o { return try byteCount.evaluate(env) }  // the symbolic form names the overflow
      n = p
    }
    return n
  }
  /// `f32[B, Tc, 200]`
  public var description: String { "\(dtype.rawValue)[\(shape.map(\.description).joined(separator: ", "))]" }
}
