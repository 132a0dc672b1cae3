import CKernels
import GraphIR

/// A linear's weight [n, k] in bf16 or int8 as a file stores it (`mqan quantize`), and the float
/// values a reduced-precision linear computes with. The conversions are `mq_qlinear`'s own (pack,
/// then read the panels back), so `expand(compact(rounded(w)))` is `rounded(w)` bit for bit and
/// packs again into the same panels: a converted checkpoint answers exactly as `--precision` on
/// the fp32 one.
public enum QuantizedWeight {
  /// Why a weight cannot be stored compactly.
  public enum Failure: Error, CustomStringConvertible, Equatable {
    /// Not a rank-2 F32 tensor.
    case notAMatrix(dtype: HostTensor.DType, shape: [Int])
    /// A value the precision cannot hold exactly (the weight was not converted first).
    case notRepresentable(precision: Precision, index: [Int], value: Float, stored: Float)
    /// Stored values and scales that do not fit together.
    case badScales(shape: [Int], scales: [Int])

    public var description: String {
      switch self {
      case let .notAMatrix(d, s): "a reduced-precision weight is a matrix [n, k] of F32, found \(d) \(s)"
      case let .notRepresentable(p, i, v, s):
        "value \(v) at \(i) is not \(p == .int8 ? "an" : "a") \(p.rawValue) value (it would be stored as \(s)); convert the weight first"
      case let .badScales(s, sc): "scales \(sc) do not match int8 values \(s) (one scale per row)"
      }
    }
  }

  /// The values the `precision` linear computes with in place of `w` [n, k]: each value rounded
  /// to bf16, or each row's int8 q times the row's scale.
  public static func rounded(_ w: HostTensor, precision: Precision) throws(Failure) -> HostTensor {
    guard precision != .fp32 else { return w }
    let (n, k, floats) = try matrix(w)
    let packed = pack(floats, n: n, k: k, precision: precision)
    defer { packed.deallocate() }
    var out = [Float](repeating: 0, count: n * k)
    mq_qweight_unpack(Precisions.cPrecision(precision), Int64(n), Int64(k), packed, &out)
    return HostTensor(shape: w.shape, floats: out)
  }

  /// `w` as stored: BF16 bit patterns, or I8 values and F32 row scales [n]. `w` must hold values
  /// the precision represents exactly (`rounded`); otherwise the first one that is not is named.
  public static func compact(_ w: HostTensor, precision: Precision) throws(Failure)
    -> (values: HostTensor, scales: HostTensor?)
  {
    let (n, k, floats) = try matrix(w)
    let id = Precisions.cPrecision(precision)
    let packed = pack(floats, n: n, k: k, precision: precision)
    defer { packed.deallocate() }
    let result: (values: HostTensor, scales: HostTensor?)
    switch precision {
    case .fp32:
      return (w, nil)
    case .bf16:
      var bits = [UInt16](repeating: 0, count: n * k)
      mq_qweight_export(id, Int64(n), Int64(k), packed, &bits, nil)
      result = (HostTensor(exact: .bf16(bits), shape: w.shape), nil)
    case .int8:
      var q = [Int8](repeating: 0, count: n * k)
      var scales = [Float](repeating: 0, count: n)
      mq_qweight_export(id, Int64(n), Int64(k), packed, &q, &scales)
      result = (HostTensor(exact: .i8(q), shape: w.shape), HostTensor(shape: [n], floats: scales))
    }
    guard case .f32(let back) = try expand(result.values, scales: result.scales).storage else {
      preconditionFailure("expand gives F32")
    }
    if let i = (0..<floats.count).first(where: { back[$0].bitPattern != floats[$0].bitPattern }) {
      throw .notRepresentable(precision: precision, index: HostTensor.unflatten(i, w.shape), value: floats[i], stored: back[i])
    }
    return result
  }

  /// The F32 weight that stored values stand for: BF16 widened; I8 q times its row's scale.
  public static func expand(_ values: HostTensor, scales: HostTensor?) throws(Failure) -> HostTensor {
    switch values.storage {
    case .bf16(let bits):
      return HostTensor(shape: values.shape, floats: bits.map { Float(bitPattern: UInt32($0) << 16) })
    case .i8(let q):
      guard values.rank == 2, let scales, case .f32(let s) = scales.storage, scales.shape == [values.shape[0]] else {
        throw .badScales(shape: values.shape, scales: scales?.shape ?? [])
      }
      let k = values.shape[1]
      var out = [Float](repeating: 0, count: q.count)
      for i in 0..<q.count { out[i] = Float(q[i]) * s[i / k] }
      return HostTensor(shape: values.shape, floats: out)
    default:
      throw .notAMatrix(dtype: values.dtype, shape: values.shape)
    }
  }

  private static func matrix(_ w: HostTensor) throws(Failure) -> (Int, Int, [Float]) {
    guard w.rank == 2, case .f32(let a) = w.storage, w.shape[0] > 0, w.shape[1] > 0 else {
      throw .notAMatrix(dtype: w.dtype, shape: w.shape)
    }
    return (w.shape[0], w.shape[1], a)
  }

  /// The packed panels of `w` (the caller deallocates).
  private static func pack(_ w: [Float], n: Int, k: Int, precision: Precision) -> UnsafeMutableRawPointer {
    let id = Precisions.cPrecision(precision)
    let bytes = max(Int(mq_qweight_bytes(id, Int64(n), Int64(k))), 64)
    let packed = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    mq_qweight_pack(id, Int64(n), Int64(k), w, packed, 0, mq_qweight_panels(Int64(n)))
    return packed
  }
}

extension HostTensor {
  /// For storage whose count the caller computed from `shape`.
  fileprivate init(exact storage: Storage, shape: [Int]) {
    do throws(HostTensorError) { try self.init(storage, shape: shape) } catch { preconditionFailure("\(error)") }
  }
}
