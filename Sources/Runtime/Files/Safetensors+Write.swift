/// Writing safetensors files, and the header JSON codec (emitting here, parsing for the reader).
extension SafetensorsFile {
  /// Atomically writes `tensors` (in the given order, data contiguous) and `metadata` to `path`.
  ///
  /// The header lists `__metadata__` first (omitted when empty, keys sorted), then the tensors in
  /// the given order; it is padded with spaces so the data starts at a multiple of 8 bytes. The
  /// file goes through `AtomicFile`, so `path` holds either its old contents or the whole new file.
  public static func write(_ tensors: [(String, HostTensor)], metadata: [String: String],
                           to path: String) throws(SafetensorsError) {
    let header = try encodedHeader(tensors, metadata: metadata, file: path)
    do {
      try AtomicFile.write(to: path) { w in
        try w.write(header)
        for (_, t) in tensors {
          try withLittleEndianBytes(t) { (raw) throws(AtomicFileError) in try w.write(raw) }
        }
      }
    } catch let e as AtomicFileError {
      throw .io(file: path, message: "\(e.operation): \(e.reason)")
    } catch {
      preconditionFailure("unreachable: \(error)")
    }
  }

  /// The bytes of a safetensors file holding `tensors` and `metadata`, laid out as `write` does.
  public static func encode(_ tensors: [(String, HostTensor)],
                            metadata: [String: String]) throws(SafetensorsError) -> [UInt8] {
    var out = try encodedHeader(tensors, metadata: metadata, file: "<memory>")
    out.reserveCapacity(out.count + tensors.reduce(0) { $0 + $1.1.byteCount })
    for (_, t) in tensors { withLittleEndianBytes(t) { out.append(contentsOf: $0) } }
    return out
  }

  /// The 8-byte length prefix and the padded header JSON, after checking the names (for writers
  /// that stream the tensor bytes themselves, as checkpoints do).
  public static func encodedHeader(_ tensors: [(String, HostTensor)], metadata: [String: String],
                                   file: String) throws(SafetensorsError) -> [UInt8] {
    var json: [UInt8] = Array("{".utf8)
    if !metadata.isEmpty {
      appendJSONString("__metadata__", to: &json)
      json += Array(":{".utf8)
      for (k, key) in metadata.keys.sorted().enumerated() {
        if k > 0 { json.append(UInt8(ascii: ",")) }
        appendJSONString(key, to: &json)
        json.append(UInt8(ascii: ":"))
        appendJSONString(metadata[key]!, to: &json)
      }
      json.append(UInt8(ascii: "}"))
    }
    var names = Set<String>()
    var offset = 0
    for (name, t) in tensors {
      guard name != "__metadata__" else {
        throw .invalidTensorName(file: file, tensor: name, reason: "name is reserved for metadata")
      }
      guard names.insert(name).inserted else { throw .duplicateName(file: file, tensor: name) }
      if json.count > 1 { json.append(UInt8(ascii: ",")) }
      appendJSONString(name, to: &json)
      json += Array(":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":\(t.shape),".utf8)
      json += Array("\"data_offsets\":[\(offset),\(offset + t.byteCount)]}".utf8)
      offset += t.byteCount
    }
    json.append(UInt8(ascii: "}"))
    while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
    guard json.count <= maxHeaderLength else {
      throw .headerLengthOutOfRange(file: file, headerLength: UInt64(json.count), available: 0)
    }
    var out = [UInt8]()
    out.reserveCapacity(8 + json.count)
    for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(k)))) }
    return out + json
  }
}

/// Calls `body` with the tensor's elements as little-endian bytes (no copy on little-endian hosts).
fileprivate func withLittleEndianBytes<E: Error>(_ t: HostTensor,
                                     _ body: (UnsafeRawBufferPointer) throws(E) -> Void) throws(E) {
  func bytes<T: BitwiseCopyable>(_ a: [T]) throws(E) {
    #if _endian(big)
    var b = a.withUnsafeBytes { Array($0) }
    let w = MemoryLayout<T>.size
    for i in stride(from: 0, to: b.count, by: w) { b[i..<(i + w)].reverse() }
    do { try b.withUnsafeBytes { try body($0) } } catch { throw error as! E }
    #else
    do { try a.withUnsafeBytes { try body($0) } } catch { throw error as! E }
    #endif
  }
  switch t.storage {
  case .f32(let a): try bytes(a)
  case .i64(let a): try bytes(a)
  case .i32(let a): try bytes(a)
  case .bf16(let a): try bytes(a)
  case .i8(let a): try bytes(a)
  }
}

/// Appends `s` as a JSON string literal: `"` and `\` escaped, control characters as `\u00XX`.
fileprivate func appendJSONString(_ s: String, to out: inout [UInt8]) {
  let hex = Array("0123456789abcdef".utf8)
  out.append(UInt8(ascii: "\""))
  for c in s.utf8 {
    switch c {
    case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), c]
    case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
    case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 15)]]
    default: out.append(c)
    }
  }
  out.append(UInt8(ascii: "\""))
}

// MARK: - Header JSON

extension SafetensorsFile {
  /// A JSON value of the header; objects keep their members in order, duplicates included.
  indirect enum JSONValue {
    case object([(key: String, value: JSONValue, offset: Int)])
    case array([JSONValue])
    case string(String)
    case number(String)  // the literal text, checked against the JSON grammar
    case bool(Bool)
    case null

    /// "a string", "an array", ... for error messages.
    var typeName: String {
      switch self {
      case .object: "an object"
      case .array: "an array"
      case .string(let s): "a string (\(quoted(s)))"
      case .number(let n): "a number (\(n))"
      case .bool(let b): "a boolean (\(b))"
      case .null: "null"
      }
    }

    /// The value as a non-negative Int, or why it is not one.
    var nonNegativeInt: Result<Int, IntFailure> {
      guard case .number(let text) = self else { return .failure(.init(text: "\(typeName) is not an integer")) }
      if text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
        return .failure(.init(text: "\(text) is not an integer"))
      }
      if text.hasPrefix("-") { return .failure(.init(text: "\(text) is negative")) }
      guard let v = Int(text) else { return .failure(.init(text: "\(text) is too large")) }
      return .success(v)
    }

    struct IntFailure: Error, CustomStringConvertible { let text: String; var description: String { text } }
  }

  /// A small recursive-descent JSON parser (RFC 8259) over the header bytes, which must already be
  /// valid UTF-8. It exists so duplicate keys and key order survive, and errors have byte offsets.
  struct HeaderParser {
    struct Failure: Error { let offset: Int; let reason: String; let tensor: String? }

    private let b: [UInt8]
    private var i = 0
    private var depth = 0
    private var topKey: String?  // the top-level key being parsed, for error messages

    init(bytes: [UInt8]) { b = bytes }

    /// Parses one value followed only by whitespace.
    mutating func parseDocument() throws(Failure) -> JSONValue {
      let v = try value()
      skipSpace()
      if i < b.count { try fail("unexpected \(describe(b[i])) after the end of the header object") }
      return v
    }

    private func fail(_ reason: String, at offset: Int? = nil) throws(Failure) -> Never {
      throw Failure(offset: offset ?? i, reason: reason, tensor: topKey)
    }

    private func describe(_ c: UInt8) -> String {
      c >= 0x20 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
    }

    private mutating func skipSpace() {
      while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ c: UInt8, _ what: String) throws(Failure) {
      skipSpace()
      guard i < b.count else { try fail("header ends where \(what) was expected") }
      guard b[i] == c else { try fail("expected \(what), found \(describe(b[i]))") }
      i += 1
    }

    private mutating func value() throws(Failure) -> JSONValue {
      skipSpace()
      guard i < b.count else { try fail("header ends where a value was expected") }
      switch b[i] {
      case UInt8(ascii: "{"):
        depth += 1
        guard depth <= 64 else { try fail("nesting deeper than 64 levels") }
        i += 1
        var members: [(key: String, value: JSONValue, offset: Int)] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return .object(members) }
        repeat {
          skipSpace()
          let at = i
          guard i < b.count, b[i] == UInt8(ascii: "\"") else { try expect(UInt8(ascii: "\""), "a key string"); break }
          let key = try string()
          if depth == 1 { topKey = key }
          try expect(UInt8(ascii: ":"), "':' after a key")
          members.append((key, try value(), at))
          skipSpace()
        } while try more(close: UInt8(ascii: "}"), "',' or '}' in an object")
        depth -= 1
        return .object(members)
      case UInt8(ascii: "["):
        depth += 1
        guard depth <= 64 else { try fail("nesting deeper than 64 levels") }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return .array(items) }
        repeat { items.append(try value()) } while try more(close: UInt8(ascii: "]"), "',' or ']' in an array")
        depth -= 1
        return .array(items)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): try literal("true"); return .bool(true)
      case UInt8(ascii: "f"): try literal("false"); return .bool(false)
      case UInt8(ascii: "n"): try literal("null"); return .null
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
      default: try fail("unexpected \(describe(b[i])) where a value was expected")
      }
    }

    /// After an element: true on ',', false on `close`, failure otherwise.
    private mutating func more(close: UInt8, _ what: String) throws(Failure) -> Bool {
      skipSpace()
      guard i < b.count else { try fail("header ends where \(what) was expected") }
      if b[i] == UInt8(ascii: ",") { i += 1; return true }
      if b[i] == close { i += 1; return false }
      try fail("expected \(what), found \(describe(b[i]))")
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
      let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
      guard i + w.count <= b.count, b[i..<(i + w.count)].elementsEqual(w) else {
        try fail("unexpected \(describe(b[i])) where a value was expected")
      }
      i += w.count
    }

    private mutating func number() throws(Failure) -> String {
      let start = i
      func digits(_ p: inout HeaderParser) -> Int {
        let s = p.i
        while p.i < p.b.count, p.b[p.i] >= 0x30, p.b[p.i] <= 0x39 { p.i += 1 }
        return p.i - s
      }
      if b[i] == UInt8(ascii: "-") { i += 1 }
      let intStart = i
      let n = digits(&self)
      guard n > 0 else { try fail("malformed number") }
      if n > 1, b[intStart] == UInt8(ascii: "0") { try fail("number with a leading zero", at: intStart) }
      if i < b.count, b[i] == UInt8(ascii: ".") {
        i += 1
        guard digits(&self) > 0 else { try fail("malformed number") }
      }
      if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
        i += 1
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
        guard digits(&self) > 0 else { try fail("malformed number") }
      }
      return String(decoding: b[start..<i], as: UTF8.self)
    }

    /// A string starting at the opening quote; decodes escapes, rejects raw control characters.
    private mutating func string() throws(Failure) -> String {
      let open = i
      i += 1
      var out: [UInt8] = []
      while true {
        let runStart = i
        while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\"), b[i] >= 0x20 { i += 1 }
        out.append(contentsOf: b[runStart..<i])
        guard i < b.count else { try fail("unterminated string", at: open) }
        switch b[i] {
        case UInt8(ascii: "\""):
          i += 1
          return String(decoding: out, as: UTF8.self)
        case UInt8(ascii: "\\"):
          i += 1
          guard i < b.count else { try fail("unterminated string", at: open) }
          let c = b[i]
          i += 1
          switch c {
          case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
          case UInt8(ascii: "b"): out.append(0x08)
          case UInt8(ascii: "f"): out.append(0x0C)
          case UInt8(ascii: "n"): out.append(0x0A)
          case UInt8(ascii: "r"): out.append(0x0D)
          case UInt8(ascii: "t"): out.append(0x09)
          case UInt8(ascii: "u"):
            var v = try hex4()
            if (0xD800..<0xDC00).contains(v), i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
              i += 2
              let lo = try hex4()
              guard (0xDC00..<0xE000).contains(lo) else { try fail("invalid surrogate pair", at: i - 12) }
              v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(v) else { try fail("lone surrogate \\u escape", at: i - 6) }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
          default: try fail("invalid escape \\\(describe(c))", at: i - 2)
          }
        default:
          try fail("raw control character \(describe(b[i])) in a string")
        }
      }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
      guard i + 4 <= b.count else { try fail("truncated \\u escape") }
      var v: UInt32 = 0
      for _ in 0..<4 {
        guard let d = Character(Unicode.Scalar(b[i])).hexDigitValue else { try fail("invalid \\u escape") }
        v = v << 4 | UInt32(d)
        i += 1
      }
      return v
    }
  }
}
