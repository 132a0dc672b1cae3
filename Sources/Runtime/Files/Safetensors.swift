import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a safetensors file could not be read, written, or could not give what was asked of it.
///
/// Every case names the file; every case about one tensor names the tensor. `description` is
/// one line, e.g. `tiny.safetensors: tensor "w": data_offsets [100, 180] lie past the end of
/// the data (96 bytes)`.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
  /// The file could not be opened, read or written (`message` carries the errno text).
  case io(file: String, message: String)
  /// Fewer than the 8 bytes of the header-length prefix.
  case fileTooShort(file: String, size: Int)
  /// The header length is past the end of the file, or larger than any sane header.
  case headerLengthOutOfRange(file: String, headerLength: UInt64, available: Int)
  /// The header bytes are not valid UTF-8.
  case headerNotUTF8(file: String)
  /// The header is not a JSON object (syntax error at `byteOffset` within the header).
  case malformedHeader(file: String, tensor: String?, byteOffset: Int, reason: String)
  /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
  case missingField(file: String, tensor: String, field: String)
  /// A tensor entry has a key other than `dtype`, `shape` and `data_offsets`.
  case unexpectedField(file: String, tensor: String, field: String)
  /// A tensor entry (or a field of it) has the wrong JSON type.
  case wrongFieldType(file: String, tensor: String, field: String, expected: String, found: String)
  /// The dtype is a safetensors dtype this runtime does not load, or no dtype at all.
  case unsupportedDType(file: String, tensor: String, dtype: String)
  /// A shape dimension is negative, not an integer, or the element count overflows.
  case invalidShape(file: String, tensor: String, reason: String)
  /// `data_offsets` is not two non-negative integers.
  case invalidOffsets(file: String, tensor: String, reason: String)
  /// `data_offsets` has begin > end.
  case offsetsReversed(file: String, tensor: String, begin: Int, end: Int)
  /// `data_offsets` reaches past the end of the data.
  case offsetsPastEnd(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
  /// The byte range does not hold product(shape) * dtype size bytes.
  case sizeMismatch(file: String, tensor: String, dtype: HostTensor.DType, shape: [Int],
                    byteCount: Int, expected: Int)
  /// Two tensors' byte ranges intersect.
  case overlappingTensors(file: String, tensor: String, begin: Int, end: Int,
                          other: String, otherBegin: Int, otherEnd: Int)
  /// A tensor name (or `__metadata__`) appears twice.
  case duplicateName(file: String, tensor: String)
  /// `__metadata__` is not an object of string values (`key` nil: the object itself).
  case invalidMetadata(file: String, key: String?, reason: String)
  /// A caller asked for a tensor the file does not hold.
  case missingTensor(file: String, name: String)
  /// A caller asked for a tensor with another dtype.
  case dtypeMismatch(file: String, tensor: String, expected: HostTensor.DType, found: HostTensor.DType)
  /// A caller asked for a tensor with another shape.
  case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
  /// A tensor name cannot be written (e.g. `__metadata__`).
  case invalidTensorName(file: String, tensor: String, reason: String)

  /// One line naming the file, the tensor where there is one, and what is wrong.
  public var description: String {
    let quoted = SafetensorsFile.quoted
    func t(_ f: String, _ name: String, _ s: String) -> String { "\(f): tensor \(quoted(name)): \(s)" }
    switch self {
    case let .io(f, m): return "\(f): \(m)"
    case let .fileTooShort(f, n):
      return "\(f): file is \(n) bytes, shorter than the 8-byte header length"
    case let .headerLengthOutOfRange(f, n, avail):
      return n > UInt64(SafetensorsFile.maxHeaderLength)
        ? "\(f): header length \(n) is absurdly large (limit \(SafetensorsFile.maxHeaderLength))"
        : "\(f): header length \(n) lies past the end of the file (\(avail) bytes after the prefix)"
    case let .headerNotUTF8(f): return "\(f): header is not valid UTF-8"
    case let .malformedHeader(f, name, at, why):
      let inTensor = name.map { " in tensor \(quoted($0))" } ?? ""
      return "\(f): header is not valid JSON\(inTensor): \(why) at byte \(at) of the header"
    case let .missingField(f, n, field): return t(f, n, "missing \"\(field)\"")
    case let .unexpectedField(f, n, field): return t(f, n, "unexpected field \(quoted(field))")
    case let .wrongFieldType(f, n, field, exp, found):
      return t(f, n, "\"\(field)\" must be \(exp), found \(found)")
    case let .unsupportedDType(f, n, d):
      let known = HostTensor.DType.unsupportedSafetensorsNames.contains(d)
      return t(f, n, "\(known ? "unsupported" : "unknown") dtype \(quoted(d)) (supported: F32, I64, I32, BF16, I8)")
    case let .invalidShape(f, n, why): return t(f, n, "invalid shape: \(why)")
    case let .invalidOffsets(f, n, why): return t(f, n, "invalid data_offsets: \(why)")
    case let .offsetsReversed(f, n, b, e): return t(f, n, "data_offsets [\(b), \(e)] begin after they end")
    case let .offsetsPastEnd(f, n, b, e, size):
      return t(f, n, "data_offsets [\(b), \(e)] lie past the end of the data (\(size) bytes)")
    case let .sizeMismatch(f, n, d, shape, got, exp):
      return t(f, n, "dtype \(d) shape \(shape) needs \(exp) bytes, but data_offsets hold \(got)")
    case let .overlappingTensors(f, n, b, e, o, ob, oe):
      return t(f, n, "data_offsets [\(b), \(e)] overlap tensor \(quoted(o)) at [\(ob), \(oe)]")
    case let .duplicateName(f, n): return t(f, n, "name appears more than once in the header")
    case let .invalidMetadata(f, key, why):
      return "\(f): __metadata__\(key.map { " key \(quoted($0))" } ?? ""): \(why)"
    case let .missingTensor(f, n): return t(f, n, "no such tensor in the file")
    case let .dtypeMismatch(f, n, exp, found): return t(f, n, "expected dtype \(exp), found \(found)")
    case let .shapeMismatch(f, n, exp, found): return t(f, n, "expected shape \(exp), found \(found)")
    case let .invalidTensorName(f, n, why): return t(f, n, why)
    }
  }
}

extension SafetensorsFile {
  /// `s` in double quotes with `"`, `\` and control characters escaped, so messages stay one line.
  static func quoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case _ where u.value < 0x20 || u.value == 0x7F:
        out += "\\u{\(String(u.value, radix: 16))}"
      default: out.unicodeScalars.append(u)
      }
    }
    return out + "\""
  }
}

/// The contents of one safetensors file, validated and loaded into `HostTensor`s.
///
/// Validation is strict: a file is rejected (with a `SafetensorsError` naming the tensor) for
/// a bad prefix or header, missing/unknown/mistyped entry fields, unsupported dtypes, bad shapes,
/// reversed or out-of-range offsets, a byte range whose size disagrees with dtype and shape,
/// intersecting byte ranges, duplicate names, or non-string metadata. Gaps between tensors'
/// byte ranges and unused bytes after the last one are allowed (the reference implementation
/// rejects them; this reader only never reads them).
public struct SafetensorsFile: Sendable {
  /// Largest header accepted, as in the reference implementation (100 MB).
  public static let maxHeaderLength = 100_000_000

  /// Where the bytes came from (the path for `read(path:)`); used in error messages.
  public let source: String
  /// Every tensor, by name.
  public let tensors: [String: HostTensor]
  /// Tensor names in order of their data offsets (header order among equal offsets).
  public let order: [String]
  /// The `__metadata__` string map (empty if absent).
  public let metadata: [String: String]

  /// Reads and validates the file at `path`; errors name the file as `path`.
  public static func read(path: String) throws(SafetensorsError) -> SafetensorsFile {
    let bytes: [UInt8]
    do {
      bytes = try readWholeFile(path)
    } catch {
      throw .io(file: path, message: "cannot read: \(error)")
    }
    return try SafetensorsFile(bytes: bytes, source: path)
  }

  /// Parses and validates a whole file's bytes; `source` names the file in errors.
  public init(bytes: [UInt8], source: String) throws(SafetensorsError) {
    self.source = source
    guard bytes.count >= 8 else { throw .fileTooShort(file: source, size: bytes.count) }
    var n: UInt64 = 0
    for k in 0..<8 { n |= UInt64(bytes[k]) << (8 * UInt64(k)) }
    let available = bytes.count - 8
    guard n <= UInt64(Self.maxHeaderLength), n <= UInt64(available) else {
      throw .headerLengthOutOfRange(file: source, headerLength: n, available: available)
    }
    let headerEnd = 8 + Int(n)
    let header = Array(bytes[8..<headerEnd])
    let dataSize = bytes.count - headerEnd
    guard transcode(header.makeIterator(), from: UTF8.self, to: UTF32.self,
                    stoppingOnError: true, into: { _ in }) == false else {
      throw .headerNotUTF8(file: source)
    }
    var parser = HeaderParser(bytes: header)
    let root: JSONValue
    do {
      root = try parser.parseDocument()
    } catch {
      throw .malformedHeader(file: source, tensor: error.tensor, byteOffset: error.offset,
                             reason: error.reason)
    }
    guard case .object(let members) = root else {
      throw .malformedHeader(file: source, tensor: nil, byteOffset: 0,
                             reason: "top level is \(root.typeName), not an object")
    }
    var metadata: [String: String]? = nil
    var entries: [Entry] = []
    var seen = Set<String>()
    for m in members {
      if m.key == "__metadata__" {
        guard metadata == nil else { throw .duplicateName(file: source, tensor: m.key) }
        metadata = try Self.parseMetadata(m.value, file: source)
        continue
      }
      guard seen.insert(m.key).inserted else { throw .duplicateName(file: source, tensor: m.key) }
      entries.append(try Entry(m.key, m.value, index: entries.count, file: source, dataSize: dataSize))
    }
    entries.sort { ($0.begin, $0.end, $0.index) < ($1.begin, $1.end, $1.index) }
    var last: Entry? = nil  // the non-empty range reaching furthest so far
    for e in entries where e.end > e.begin {
      if let l = last, e.begin < l.end {
        throw .overlappingTensors(file: source, tensor: e.name, begin: e.begin, end: e.end,
                                  other: l.name, otherBegin: l.begin, otherEnd: l.end)
      }
      if last == nil || e.end > last!.end { last = e }
    }
    var tensors: [String: HostTensor] = [:]
    tensors.reserveCapacity(entries.count)
    var mismatch: (Entry, HostTensorError)?
    bytes.withUnsafeBytes { raw in
      for e in entries where mismatch == nil {
        let slice = UnsafeRawBufferPointer(rebasing: raw[(headerEnd + e.begin)..<(headerEnd + e.end)])
        let storage: HostTensor.Storage = switch e.dtype {
        case .f32: .f32(loadLittleEndian(Float.self, slice))
        case .i64: .i64(loadLittleEndian(Int64.self, slice))
        case .i32: .i32(loadLittleEndian(Int32.self, slice))
        case .bf16: .bf16(loadLittleEndian(UInt16.self, slice))
        case .i8: .i8(loadLittleEndian(Int8.self, slice))
        }
        // The sizes were checked above; a mismatch here is still an error, never a trap.
        do throws(HostTensorError) { tensors[e.name] = try HostTensor(storage, shape: e.shape) } catch {
          mismatch = (e, error)
        }
      }
    }
    if let (e, error) = mismatch {
      throw .invalidShape(file: source, tensor: e.name, reason: "\(error)")
    }
    self.tensors = tensors
    self.order = entries.map(\.name)
    self.metadata = metadata ?? [:]
  }

  /// The tensor called `name`, or `.missingTensor`.
  public func tensor(_ name: String) throws(SafetensorsError) -> HostTensor {
    guard let t = tensors[name] else { throw .missingTensor(file: source, name: name) }
    return t
  }

  /// The tensor called `name`, checked to have `dtype` and (unless nil) `shape`.
  public func tensor(_ name: String, dtype: HostTensor.DType,
                     shape: [Int]? = nil) throws(SafetensorsError) -> HostTensor {
    let t = try tensor(name)
    guard t.dtype == dtype else {
      throw .dtypeMismatch(file: source, tensor: name, expected: dtype, found: t.dtype)
    }
    if let shape, shape != t.shape {
      throw .shapeMismatch(file: source, tensor: name, expected: shape, found: t.shape)
    }
    return t
  }

  /// One validated header entry.
  private struct Entry {
    let name: String, dtype: HostTensor.DType, shape: [Int], begin: Int, end: Int, index: Int

    init(_ name: String, _ value: JSONValue, index: Int, file: String,
         dataSize: Int) throws(SafetensorsError) {
      guard case .object(let fields) = value else {
        throw .wrongFieldType(file: file, tensor: name, field: name, expected: "an object",
                              found: value.typeName)
      }
      var dtypeV: JSONValue?, shapeV: JSONValue?, offsetsV: JSONValue?
      for f in fields {
        switch f.key {
        case "dtype" where dtypeV == nil: dtypeV = f.value
        case "shape" where shapeV == nil: shapeV = f.value
        case "data_offsets" where offsetsV == nil: offsetsV = f.value
        case "dtype", "shape", "data_offsets":
          throw .malformedHeader(file: file, tensor: name, byteOffset: f.offset,
                                 reason: "field \"\(f.key)\" appears twice")
        default: throw .unexpectedField(file: file, tensor: name, field: f.key)
        }
      }
      guard let dtypeV else { throw .missingField(file: file, tensor: name, field: "dtype") }
      guard let shapeV else { throw .missingField(file: file, tensor: name, field: "shape") }
      guard let offsetsV else { throw .missingField(file: file, tensor: name, field: "data_offsets") }
      guard case .string(let d) = dtypeV else {
        throw .wrongFieldType(file: file, tensor: name, field: "dtype", expected: "a string",
                              found: dtypeV.typeName)
      }
      guard let dtype = HostTensor.DType(rawValue: d) else {
        throw .unsupportedDType(file: file, tensor: name, dtype: d)
      }
      let intsType = "an array of non-negative integers"
      guard case .array(let dims) = shapeV else {
        throw .wrongFieldType(file: file, tensor: name, field: "shape", expected: intsType,
                              found: shapeV.typeName)
      }
      var shape: [Int] = []
      for d in dims {
        switch d.nonNegativeInt {
        case .success(let v): shape.append(v)
        case .failure(let why): throw .invalidShape(file: file, tensor: name, reason: "dimension \(why)")
        }
      }
      guard let count = HostTensor.elementCount(of: shape),
            case (let expected, false) = count.multipliedReportingOverflow(by: dtype.byteSize) else {
        throw .invalidShape(file: file, tensor: name, reason: "\(shape) has too many elements")
      }
      guard case .array(let offs) = offsetsV else {
        throw .wrongFieldType(file: file, tensor: name, field: "data_offsets", expected: intsType,
                              found: offsetsV.typeName)
      }
      guard offs.count == 2 else {
        throw .invalidOffsets(file: file, tensor: name, reason: "\(offs.count) values, expected 2")
      }
      var be: [Int] = []
      for o in offs {
        switch o.nonNegativeInt {
        case .success(let v): be.append(v)
        case .failure(let why): throw .invalidOffsets(file: file, tensor: name, reason: "offset \(why)")
        }
      }
      let (begin, end) = (be[0], be[1])
      guard begin <= end else { throw .offsetsReversed(file: file, tensor: name, begin: begin, end: end) }
      guard end <= dataSize else {
        throw .offsetsPastEnd(file: file, tensor: name, begin: begin, end: end, dataSize: dataSize)
      }
      guard end - begin == expected else {
        throw .sizeMismatch(file: file, tensor: name, dtype: dtype, shape: shape,
                            byteCount: end - begin, expected: expected)
      }
      (self.name, self.dtype, self.shape, self.begin, self.end, self.index) =
        (name, dtype, shape, begin, end, index)
    }
  }

  private static func parseMetadata(_ v: JSONValue, file: String) throws(SafetensorsError) -> [String: String] {
    guard case .object(let members) = v else {
      throw .invalidMetadata(file: file, key: nil, reason: "must be an object, found \(v.typeName)")
    }
    var out: [String: String] = [:]
    for m in members {
      guard case .string(let s) = m.value else {
        throw .invalidMetadata(file: file, key: m.key, reason: "value must be a string, found \(m.value.typeName)")
      }
      guard out.updateValue(s, forKey: m.key) == nil else {
        throw .invalidMetadata(file: file, key: m.key, reason: "key appears more than once")
      }
    }
    return out
  }
}

/// Copies little-endian elements out of `raw` (whose size is a multiple of `T`'s) in one memcpy.
private func loadLittleEndian<T: BitwiseCopyable>(_: T.Type, _ raw: UnsafeRawBufferPointer) -> [T] {
  let n = raw.count / MemoryLayout<T>.stride
  let out = [T](unsafeUninitializedCapacity: n) { buf, initialized in
    if n > 0 { UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw) }
    initialized = n
  }
  #if _endian(big)
  var swapped = out
  swapped.withUnsafeMutableBytes { b in
    let w = MemoryLayout<T>.size
    for i in stride(from: 0, to: b.count, by: w) { b[i..<(i + w)].reverse() }
  }
  return swapped
  #else
  return out
  #endif
}

/// Reads all of `path` through swift-system (sized by fstat when it is a regular file).
private func readWholeFile(_ path: String) throws -> [UInt8] {
  let fd = try FileDescriptor.open(FilePath(path), .readOnly)
  return try fd.closeAfter {
    var st = stat()
    let regular = fstat(fd.rawValue, &st) == 0 && (st.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG)
    var bytes = [UInt8](repeating: 0, count: (regular ? Int(st.st_size) : 0) + 1)  // +1: see EOF
    var done = 0
    while true {
      if done == bytes.count { bytes += repeatElement(0, count: max(bytes.count, 1 << 16)) }
      let got = try bytes.withUnsafeMutableBytes { buf in
        try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[done...]))
      }
      if got == 0 { break }
      done += got
    }
    bytes.removeLast(bytes.count - done)
    return bytes
  }
}
