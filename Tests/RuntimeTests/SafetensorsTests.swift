import Foundation
import Testing
@testable import Runtime

/// Tests of HostTensor, the safetensors reader/writer and AtomicFile.
@Suite struct SafetensorsTests {
  /// A fresh empty directory under the system temporary directory.
  static func scratchDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory
      .appendingPathComponent("safetensors-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  /// A file with the given header text (not padded) and data bytes.
  static func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    return (0..<8).map { UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64($0))) } + h + data
  }

  /// The error that parsing `bytes` as "t.safetensors" throws (nil if it parses).
  static func parseError(_ bytes: [UInt8]) -> SafetensorsError? {
    do {
      _ = try SafetensorsFile(bytes: bytes, source: "t.safetensors")
      return nil
    } catch {
      return error
    }
  }

  static let sample: [(String, HostTensor)] = [
    ("param.w", HostTensor(shape: [2, 3], floats: [1, -2, 3.5, .infinity, 0, -0.25])),
    ("input.ids", HostTensor(shape: [4], int64s: [0, -1, .max, .min])),
    ("small", HostTensor(shape: [2, 2], int32s: [7, -8, .max, .min])),
    ("expected.loss", .scalar(0.125)),
    ("empty", HostTensor(shape: [0], floats: [])),
    ("empty2d", HostTensor(shape: [3, 0], int64s: [])),
    ("param.out.weight", HostTensor(shape: [3, 2], floats: [1, 2, 3, 4, 5, 6])),
  ]

  @Test func roundTripThroughAFile() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/rt.safetensors"
    let meta = ["format": "mqan-parity-1", "quote\"and\\": "line\nbreak é ✓", "config": "{\"a\": 1}"]
    try SafetensorsFile.write(Self.sample, metadata: meta, to: path)
    let f = try SafetensorsFile.read(path: path)
    #expect(f.order == Self.sample.map(\.0))
    #expect(f.metadata == meta)
    #expect(f.tensors.count == Self.sample.count)
    for (name, t) in Self.sample { #expect(try f.tensor(name) == t) }
    #expect(try f.tensor("expected.loss", dtype: .f32, shape: []).floats == [0.125])
    #expect(try f.tensor("empty2d").count == 0)
    // Layout: header padded so the data starts at a multiple of 8; data contiguous.
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let n = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
    #expect(n % 8 == 0)
    #expect(bytes.count == 8 + n + Self.sample.reduce(0) { $0 + $1.1.byteCount })
    #expect(bytes == (try SafetensorsFile.encode(Self.sample, metadata: meta)))
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["rt.safetensors"])
  }

  @Test func noMetadataAndNoTensors() throws {
    let f = try SafetensorsFile(bytes: SafetensorsFile.encode([], metadata: [:]), source: "e")
    #expect(f.tensors.isEmpty && f.order.isEmpty && f.metadata.isEmpty)
  }

  @Test func gapsAndEmptyTensorsAtSharedOffsetsAreAllowed() throws {
    let h = #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}, "z":{"dtype":"I32","shape":[0],"data_offsets":[20,20]},"#
      + #""a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#
    let data: [UInt8] = [1, 0, 0, 0] + Array(repeating: 0xEE, count: 12) + [0, 0, 128, 63, 0, 0, 0, 64] + [9, 9]
    let f = try SafetensorsFile(bytes: Self.file(h, data: data), source: "gap")
    #expect(f.order == ["a", "b", "z"])
    #expect(try f.tensor("a").asInt32() == [1])
    #expect(try f.tensor("b").floats == [1, 2])
  }

  @Test func readsTheParityFixture() throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("MQANTests/Fixtures/tiny.safetensors").path
    try #require(FileManager.default.fileExists(atPath: path))
    let f = try SafetensorsFile.read(path: path)
    #expect(f.metadata["format"] == "mqan-parity-1")
    #expect(try f.tensor("embeddings", dtype: .f32, shape: [40, 10]).count == 400)
    #expect(try f.tensor("input.context", dtype: .i64, shape: [3, 9]).asInt32().count == 27)
    #expect(try f.tensor("expected.loss", dtype: .f32, shape: []).count == 1)
  }

  // MARK: - Bad files

  @Test func truncatedInTheDataNamesTheLastTensor() throws {
    let bytes = try SafetensorsFile.encode(Self.sample, metadata: [:])
    let err = try #require(Self.parseError(Array(bytes.dropLast(4))))
    guard case .offsetsPastEnd(_, "param.out.weight", 76, 100, 96) = err else {
      Issue.record("wrong error \(err)"); return
    }
    #expect(err.description ==
      #"t.safetensors: tensor "param.out.weight": data_offsets [76, 100] lie past the end of the data (96 bytes)"#)
  }

  @Test func shortFileAndBadHeaderLength() throws {
    #expect(Self.parseError([1, 2, 3]) == .fileTooShort(file: "t.safetensors", size: 3))
    var bytes = Self.file("{}")
    bytes[0] = 200
    #expect(Self.parseError(bytes) == .headerLengthOutOfRange(file: "t.safetensors", headerLength: 200, available: 2))
    #expect(Self.parseError(bytes)!.description.contains("past the end of the file"))
    let huge = [UInt8](repeating: 0xFF, count: 8) + Array("{}".utf8)
    #expect(Self.parseError(huge)!.description.contains("absurdly large"))
  }

  @Test func overlappingOffsets() throws {
    let h = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#
    let err = Self.parseError(Self.file(h, data: .init(repeating: 0, count: 24)))
    #expect(err == .overlappingTensors(file: "t.safetensors", tensor: "b", begin: 8, end: 24,
                                       other: "a", otherBegin: 0, otherEnd: 16))
    #expect(err!.description == #"t.safetensors: tensor "b": data_offsets [8, 24] overlap tensor "a" at [0, 16]"#)
    // A range inside another, listed first in the header.
    let h2 = #"{"in":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},"out":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}}"#
    guard case .overlappingTensors(_, "in", _, _, "out", _, _)? = Self.parseError(Self.file(h2, data: .init(repeating: 0, count: 16))) else {
      Issue.record("nested ranges not reported"); return
    }
  }

  @Test func bf16AndInt8RoundTrip() throws {
    let half = try HostTensor(.bf16([0x3F80, 0xBF00, 0x7F7F]), shape: [3])
    let bytes = try HostTensor(.i8([-127, 0, 5, 127]), shape: [2, 2])
    let encoded = try SafetensorsFile.encode([("w", half), ("q", bytes)], metadata: [:])
    let f = try SafetensorsFile(bytes: encoded, source: "t.safetensors")
    #expect(try f.tensor("w") == half)
    #expect(try f.tensor("q") == bytes)
    #expect(try f.tensor("q").asInt32() == [-127, 0, 5, 127])
    // Two bytes per BF16 element, one per I8: a short range is refused.
    let short = #"{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,5]}}"#
    guard case .sizeMismatch? = Self.parseError(Self.file(short, data: [0, 0, 0, 0, 0])) else {
      Issue.record("a BF16 tensor of 5 bytes was not refused"); return
    }
  }

  @Test func wrongDTypes() throws {
    let f16 = #"{"half":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#
    let err = Self.parseError(Self.file(f16, data: [0, 0, 0, 0]))
    #expect(err == .unsupportedDType(file: "t.safetensors", tensor: "half", dtype: "F16"))
    #expect(err!.description == #"t.safetensors: tensor "half": unsupported dtype "F16" (supported: F32, I64, I32, BF16, I8)"#)
    let bogus = #"{"x":{"dtype":"F17","shape":[],"data_offsets":[0,4]}}"#
    #expect(Self.parseError(Self.file(bogus, data: [0, 0, 0, 0]))!.description.contains(#"unknown dtype "F17""#))
    let f = try SafetensorsFile(bytes: SafetensorsFile.encode(Self.sample, metadata: [:]), source: "t.safetensors")
    #expect(throws: SafetensorsError.dtypeMismatch(file: "t.safetensors", tensor: "input.ids", expected: .f32, found: .i64)) {
      try f.tensor("input.ids", dtype: .f32)
    }
    #expect(throws: HostTensorError.dtypeMismatch(expected: .f32, found: .i64)) { try f.tensor("input.ids").floats }
    #expect(throws: HostTensorError.dtypeMismatch(expected: .i64, found: .f32)) { try f.tensor("param.w").int64s }
  }

  @Test func missingTensorAndShapeMismatch() throws {
    let f = try SafetensorsFile(bytes: SafetensorsFile.encode(Self.sample, metadata: [:]), source: "t.safetensors")
    do {
      _ = try f.tensor("param.nope")
      Issue.record("no error")
    } catch {
      #expect(error == .missingTensor(file: "t.safetensors", name: "param.nope"))
      #expect(error.description == #"t.safetensors: tensor "param.nope": no such tensor in the file"#)
    }
    do {
      _ = try f.tensor("param.w", dtype: .f32, shape: [2, 4])
      Issue.record("no error")
    } catch {
      #expect(error.description == #"t.safetensors: tensor "param.w": expected shape [2, 4], found [2, 3]"#)
    }
  }

  @Test func sizeDisagreesWithShape() throws {
    let h = #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#
    let err = Self.parseError(Self.file(h, data: .init(repeating: 0, count: 24)))
    #expect(err == .sizeMismatch(file: "t.safetensors", tensor: "w", dtype: .f32, shape: [2, 3], byteCount: 20, expected: 24))
    #expect(err!.description == #"t.safetensors: tensor "w": dtype F32 shape [2, 3] needs 24 bytes, but data_offsets hold 20"#)
  }

  @Test func malformedHeaders() throws {
    let cut = #"{"param.a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "param.b": {"dtype": "F32","#
    guard case .malformedHeader(_, "param.b"?, _, _)? = Self.parseError(Self.file(cut, data: [0, 0, 0, 0])) else {
      Issue.record("truncated JSON not reported in param.b"); return
    }
    #expect(Self.parseError(Self.file(cut))!.description.hasPrefix(#"t.safetensors: header is not valid JSON in tensor "param.b": "#))
    for bad in ["", "[]", "{", "{\"a\" 1}", "{\"a\":01}", "{\"a\":1,}", "{\"a\":\"x\ny\"}", "{} x", "{\"a\":tru}"] {
      guard case .malformedHeader? = Self.parseError(Self.file(bad)) else {
        Issue.record("not reported as malformed: \(bad)"); continue
      }
    }
    var latin1 = Self.file(#"{"ab":1}"#)
    latin1[10] = 0xE9  // a Latin-1 "é" inside the key
    #expect(Self.parseError(latin1) == .headerNotUTF8(file: "t.safetensors"))
  }

  @Test func duplicateNames() throws {
    let e = #"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
    #expect(Self.parseError(Self.file(#"{"a":\#(e),"a":\#(e)}"#, data: [0, 0, 0, 0]))
            == .duplicateName(file: "t.safetensors", tensor: "a"))
    #expect(Self.parseError(Self.file(#"{"__metadata__":{},"__metadata__":{}}"#))
            == .duplicateName(file: "t.safetensors", tensor: "__metadata__"))
    #expect(throws: SafetensorsError.duplicateName(file: "<memory>", tensor: "x")) {
      try SafetensorsFile.encode([("x", .scalar(1)), ("x", .scalar(2))], metadata: [:])
    }
    #expect(throws: SafetensorsError.self) { try SafetensorsFile.encode([("__metadata__", .scalar(1))], metadata: [:]) }
  }

  /// Each bad entry and the error it gives; every message names "t.safetensors" and the tensor.
  static let badEntries: [(String, SafetensorsError)] = [
    (#"{"dtype":"F32","shape":[1]}"#, .missingField(file: "t.safetensors", tensor: "n", field: "data_offsets")),
    (#"{"shape":[1],"data_offsets":[0,4]}"#, .missingField(file: "t.safetensors", tensor: "n", field: "dtype")),
    (#"{"dtype":"F32","data_offsets":[0,4]}"#, .missingField(file: "t.safetensors", tensor: "n", field: "shape")),
    (#"{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}"#,
     .unexpectedField(file: "t.safetensors", tensor: "n", field: "extra")),
    (#"{"dtype":32,"shape":[1],"data_offsets":[0,4]}"#, .wrongFieldType(file: "t.safetensors", tensor: "n",
      field: "dtype", expected: "a string", found: "a number (32)")),
    (#"{"dtype":"F32","shape":"1","data_offsets":[0,4]}"#, .wrongFieldType(file: "t.safetensors", tensor: "n",
      field: "shape", expected: "an array of non-negative integers", found: #"a string ("1")"#)),
    (#"{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}"#,
     .invalidShape(file: "t.safetensors", tensor: "n", reason: "dimension -1 is negative")),
    (#"{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}"#,
     .invalidShape(file: "t.safetensors", tensor: "n", reason: "dimension 1.5 is not an integer")),
    (#"{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}"#,
     .invalidShape(file: "t.safetensors", tensor: "n", reason: "dimension 99999999999999999999 is too large")),
    (#"{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}"#,
     .invalidShape(file: "t.safetensors", tensor: "n", reason: "[4294967296, 4294967296] has too many elements")),
    (#"{"dtype":"F32","shape":[1],"data_offsets":[4,0]}"#, .offsetsReversed(file: "t.safetensors", tensor: "n", begin: 4, end: 0)),
    (#"{"dtype":"F32","shape":[1],"data_offsets":[0]}"#, .invalidOffsets(file: "t.safetensors", tensor: "n", reason: "1 values, expected 2")),
    (#"{"dtype":"F32","shape":[1],"data_offsets":[0,null]}"#,
     .invalidOffsets(file: "t.safetensors", tensor: "n", reason: "offset null is not an integer")),
    (#"[1]"#, .wrongFieldType(file: "t.safetensors", tensor: "n", field: "n", expected: "an object", found: "an array")),
  ]

  @Test func badEntriesGiveTheirErrors() throws {
    for (entry, expected) in Self.badEntries {
      let err = Self.parseError(Self.file("{\"n\":\(entry)}", data: [0, 0, 0, 0]))
      #expect(err == expected, "\(entry)")
      #expect(err?.description.hasPrefix(#"t.safetensors: tensor "n": "#) == true, "\(err.map(\.description) ?? "")")
    }
  }

  @Test func badMetadata() throws {
    #expect(Self.parseError(Self.file(#"{"__metadata__":{"k":1}}"#))
            == .invalidMetadata(file: "t.safetensors", key: "k", reason: "value must be a string, found a number (1)"))
    #expect(Self.parseError(Self.file(#"{"__metadata__":{"k":"a","k":"b"}}"#))
            == .invalidMetadata(file: "t.safetensors", key: "k", reason: "key appears more than once"))
    #expect(Self.parseError(Self.file(#"{"__metadata__":"x"}"#))?.description
            == #"t.safetensors: __metadata__: must be an object, found a string ("x")"#)
  }

  @Test func messagesStayOnOneLine() throws {
    let err = Self.parseError(Self.file("{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", data: [0, 0, 0, 0]))
    #expect(err?.description == #"t.safetensors: tensor "a\nb": data_offsets [0, 8] lie past the end of the data (4 bytes)"#)
  }

  @Test func unreadablePathsGiveIOErrors() throws {
    let dir = try Self.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(throws: SafetensorsError.io(file: dir + "/none", message: "cannot read: No such file or directory")) {
      try SafetensorsFile.read(path: dir + "/none")
    }
    #expect(throws: SafetensorsError.io(file: dir, message: "cannot read: Is a directory")) {
      try SafetensorsFile.read(path: dir)
    }
  }

  @Test func writeIntoAMissingDirectoryNamesThePath() throws {
    let path = "/nonexistent-dir-\(UUID().uuidString)/x.safetensors"
    do {
      try SafetensorsFile.write(Self.sample, metadata: [:], to: path)
      Issue.record("no error")
    } catch {
      guard case .io(path, let message) = error else { Issue.record("wrong error \(error)"); return }
      #expect(message.contains("No such file or directory"), "\(message)")
    }
  }

  // MARK: - HostTensor

  @Test func hostTensorAccessors() throws {
    #expect(try HostTensor(shape: [2], int64s: [3, -4]).asInt32() == [3, -4])
    #expect(throws: HostTensorError.int32OutOfRange(index: 1, value: 1 << 40)) {
      try HostTensor(shape: [2], int64s: [0, 1 << 40]).asInt32()
    }
    #expect(throws: HostTensorError.dtypeMismatch(expected: .i32, found: .f32)) { try HostTensor.scalar(1).asInt32() }
    #expect(throws: HostTensorError.countMismatch(shape: [2, 2], count: 3)) { try HostTensor(.f32([1, 2, 3]), shape: [2, 2]) }
    let t = HostTensor(shape: [], floats: [5])
    #expect(t.count == 1 && t.rank == 0 && t.byteCount == 4 && t.dtype == .f32)
  }

  // MARK: - Speed

  @Test func largeTableLoadsQuickly() throws {
    let rows = 60_000, cols = 400
    let table = HostTensor(shape: [rows, cols], floats: [Float](repeating: 0.5, count: rows * cols))
    let bytes = try SafetensorsFile.encode([("embeddings", table)], metadata: [:])
    let clock = ContinuousClock()
    var f: SafetensorsFile?
    let elapsed = try clock.measure { f = try SafetensorsFile(bytes: bytes, source: "big") }
    #expect(elapsed < .seconds(1), "parsing a 60,000 x 400 F32 table took \(elapsed)")
    #expect(try f!.tensor("embeddings").floats.last == 0.5)
  }
}

/// Tests of AtomicFile's all-or-nothing replacement.
@Suite struct AtomicFileTests {
  struct Boom: Error {}

  @Test func failingWriterLeavesTheOldFileAndNoTemporaryFile() throws {
    let dir = try SafetensorsTests.scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/state.bin"
    try AtomicFile.write(Array("old contents".utf8), to: path)
    #expect(throws: Boom.self) {
      try AtomicFile.write(to: path) { w in
        try w.write([UInt8](repeating: 7, count: 3 << 20))  // past the buffer: really on disk
        try w.write(Array("half".utf8))
        throw Boom()
      }
    }
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "old contents")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state.bin"])
    try AtomicFile.write(to: path) { w in try w.write(Array("new".utf8)) }
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "new")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state.bin"])
  }

  @Test func errorNamesThePathAndTheErrno() throws {
    let path = "/nonexistent-dir-\(UUID().uuidString)/f"
    do {
      try AtomicFile.write([1, 2, 3], to: path)
      Issue.record("no error")
    } catch {
      #expect(error.path == path)
      #expect(error.description.hasPrefix("\(path): cannot create temporary file"))
      #expect(error.description.hasSuffix("No such file or directory"), "\(error)")
    }
  }
}
