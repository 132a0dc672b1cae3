import GraphIR

/// A dense, row-major tensor held in ordinary Swift arrays on the host.
///
/// `HostTensor` is the exchange type between files (safetensors) and the runtime: it owns its
/// elements, knows its dtype and shape, and keeps `count == product(shape)` as an invariant
/// (every initializer checks it). A 0-d tensor has shape `[]` and one element; a tensor with a
/// zero dimension (e.g. shape `[0]` or `[3, 0]`) has no elements.
public struct HostTensor: Sendable, Equatable {
  /// The element types the runtime supports, spelled as safetensors spells them.
  public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = "F32"
    case i64 = "I64"
    case i32 = "I32"
    /// bfloat16, stored as its 16 bits (a reduced-precision weight, `mqan quantize`).
    case bf16 = "BF16"
    /// Signed bytes (an int8 weight, `mqan quantize`).
    case i8 = "I8"

    /// Bytes per element.
    public var byteSize: Int {
      switch self {
      case .f32, .i32: 4
      case .i64: 8
      case .bf16: 2
      case .i8: 1
      }
    }

    /// The safetensors spelling, e.g. `F32`.
    public var description: String { rawValue }

    /// Safetensors dtypes that are valid in a file but that this runtime does not load; a file
    /// using one is rejected with a message saying so (rather than "unknown dtype").
    public static let unsupportedSafetensorsNames: Set<String> = [
      "BOOL", "U8", "U16", "I16", "F16", "U32", "U64", "F64",
      "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
    ]
  }

  /// The elements, one array per supported dtype.
  public enum Storage: Sendable, Equatable {
    case f32([Float])
    case i64([Int64])
    case i32([Int32])
    /// bfloat16 bit patterns (the high half of the float's bits).
    case bf16([UInt16])
    case i8([Int8])

    /// The dtype of these elements.
    public var dtype: DType {
      switch self {
      case .f32: .f32
      case .i64: .i64
      case .i32: .i32
      case .bf16: .bf16
      case .i8: .i8
      }
    }

    /// Number of elements.
    public var count: Int {
      switch self {
      case .f32(let a): a.count
      case .i64(let a): a.count
      case .i32(let a): a.count
      case .bf16(let a): a.count
      case .i8(let a): a.count
      }
    }
  }

  /// The dimensions, outermost first; `[]` for a scalar.
  public private(set) var shape: [Int]
  /// The elements in row-major order.
  public private(set) var storage: Storage

  /// Creates a tensor, checking that the element count matches the shape.
  public init(_ storage: Storage, shape: [Int]) throws(HostTensorError) {
    guard let n = HostTensor.elementCount(of: shape), n == storage.count else {
      throw .countMismatch(shape: shape, count: storage.count)
    }
    self.shape = shape
    self.storage = storage
  }

  /// Creates an F32 tensor; traps if `floats.count != product(shape)`.
  public init(shape: [Int], floats: [Float]) {
    self.init(unchecked: .f32(floats), shape: shape)
  }

  /// Creates an I64 tensor; traps if `int64s.count != product(shape)`.
  public init(shape: [Int], int64s: [Int64]) {
    self.init(unchecked: .i64(int64s), shape: shape)
  }

  /// Creates an I32 tensor; traps if `int32s.count != product(shape)`.
  public init(shape: [Int], int32s: [Int32]) {
    self.init(unchecked: .i32(int32s), shape: shape)
  }

  /// A 0-d F32 tensor holding `value`.
  public static func scalar(_ value: Float) -> HostTensor {
    HostTensor(shape: [], floats: [value])
  }

  private init(unchecked storage: Storage, shape: [Int]) {
    do throws(HostTensorError) {
      try self.init(storage, shape: shape)
    } catch {
      preconditionFailure("HostTensor: \(error)")
    }
  }

  /// The element type.
  public var dtype: DType { storage.dtype }
  /// Number of elements (the product of `shape`; 1 for a scalar).
  public var count: Int { storage.count }
  /// Number of dimensions.
  public var rank: Int { shape.count }
  /// Size of the elements in bytes.
  public var byteCount: Int { count * dtype.byteSize }

  /// The elements of an F32 tensor; throws `.dtypeMismatch` for any other dtype.
  public var floats: [Float] {
    get throws(HostTensorError) {
      guard case .f32(let a) = storage else { throw .dtypeMismatch(expected: .f32, found: dtype) }
      return a
    }
  }

  /// The elements of an I64 tensor; throws `.dtypeMismatch` for any other dtype.
  public var int64s: [Int64] {
    get throws(HostTensorError) {
      guard case .i64(let a) = storage else { throw .dtypeMismatch(expected: .i64, found: dtype) }
      return a
    }
  }

  /// The elements as `Int32`: I32 as stored, I8 widened, I64 narrowed (throwing `.int32OutOfRange`
  /// for the first element that does not fit); F32 and BF16 throw `.dtypeMismatch`.
  public func asInt32() throws(HostTensorError) -> [Int32] {
    switch storage {
    case .i32(let a):
      return a
    case .i64(let a):
      var out = [Int32]()
      out.reserveCapacity(a.count)
      for (i, v) in a.enumerated() {
        guard let w = Int32(exactly: v) else { throw .int32OutOfRange(index: i, value: v) }
        out.append(w)
      }
      return out
    case .i8(let a):
      return a.map(Int32.init)
    case .f32, .bf16:
      throw .dtypeMismatch(expected: .i32, found: dtype)
    }
  }

  /// The number of elements of `shape`, or nil if a dimension is negative or the product
  /// overflows `Int`.
  public static func elementCount(of shape: [Int]) -> Int? { Limits.product(shape) }
}

/// Why a `HostTensor` could not be built or read as asked.
public enum HostTensorError: Error, CustomStringConvertible, Equatable {
  /// The tensor holds `found` but the caller asked for `expected`.
  case dtypeMismatch(expected: HostTensor.DType, found: HostTensor.DType)
  /// The element count does not match the product of the shape (or the shape is invalid).
  case countMismatch(shape: [Int], count: Int)
  /// An I64 element does not fit in Int32.
  case int32OutOfRange(index: Int, value: Int64)

  /// One line saying what went wrong.
  public var description: String {
    switch self {
    case .dtypeMismatch(let expected, let found):
      "tensor has dtype \(found), expected \(expected)"
    case .countMismatch(let shape, let count):
      if let n = HostTensor.elementCount(of: shape) {
        "shape \(shape) needs \(n) elements, found \(count)"
      } else {
        "shape \(shape) is invalid (negative dimension or too many elements)"
      }
    case .int32OutOfRange(let index, let value):
      "element \(index) (\(value)) does not fit in Int32"
    }
  }
}

extension HostTensor {
  /// The first element of an f32 tensor that is NaN or infinite, as its flat index, its index per
  /// dim and its value; nil for a finite (or integer) tensor.
  public var firstNonFinite: (flat: Int, index: [Int], value: Float)? {
    guard case .f32(let a) = storage, let i = a.firstIndex(where: { !$0.isFinite }) else { return nil }
    return (i, HostTensor.unflatten(i, shape), a[i])
  }

  /// `flat` as an index per dim of `shape` (row-major).
  public static func unflatten(_ flat: Int, _ shape: [Int]) -> [Int] {
    var rest = flat
    var index = [Int](repeating: 0, count: shape.count)
    for d in shape.indices.reversed() where shape[d] > 0 {
      index[d] = rest % shape[d]
      rest /= shape[d]
    }
    return index
  }
}
