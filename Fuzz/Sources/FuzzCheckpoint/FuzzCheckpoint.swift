import Foundation
import MQAN
import Runtime

/// libFuzzer's entry: the bytes as a checkpoint file (`mqan train`'s `*.safetensors`), with its
/// 8-byte header length recomputed from the JSON (see `withHeaderLength`), so mutations of the
/// metadata JSON reach the checkpoint's reader instead of failing on a stale length. Runs what
/// `mqan predict`, `mqan profile --checkpoint` and `mqan train --resume` do with the metadata.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = withHeaderLength(Array(UnsafeBufferPointer(start: data, count: size)))
  guard let file = try? SafetensorsFile(bytes: bytes, source: "fuzz.safetensors"),
        let ck = try? Checkpoint(file) else { return 0 }
  if let config = try? JSONDecoder().decode(ModelConfig.self, from: Data(ck.modelConfig.utf8)) {
    _ = try? config.validate()
  }
  _ = DecoderMode(rawValue: ck.decoderMode)
  guard let vocabulary = try? Vocabulary(jsonData: Data(ck.vocabulary.utf8), source: "fuzz") else { return 0 }
  _ = vocabulary.answerTokens([0, 1, 2, 4, 5, vocabulary.count - 1, vocabulary.count, -1, 3])
  // `train --resume`: the data position restores each task's batch iterator.
  guard let position = try? JSONDecoder().decode(DataPosition.self, from: Data(ck.dataPosition.utf8)) else { return 0 }
  for (task, state) in position.iterators.sorted(by: { $0.key < $1.key }) {
    guard let examples = trainingExamples(task: task, vocabulary: vocabulary),
          var it = try? BucketBatchIterator(examples: examples, restoring: state) else { continue }
    for _ in 0..<3 { _ = it.next() }
    _ = it.state
  }
  return 0
}

/// The trainer's `DataPosition` (internal there): each task's iterator state.
struct DataPosition: Codable {
  var iterators: [String: BatchIteratorState]
}

/// The task's training examples as `mqan train` encodes them, from `$MQAN_FUZZ_DATA/<task>/train.jsonl`
/// (the data the seed checkpoints were trained on), or nil.
func trainingExamples(task: String, vocabulary: Vocabulary) -> [EncodedExample]? {
  guard let root = ProcessInfo.processInfo.environment["MQAN_FUZZ_DATA"],
        let data = loaded.value[task] ?? load(root: root, task: task) else { return nil }
  return data.encoded(with: vocabulary)
}

nonisolated(unsafe) let loaded = Box<[String: TaskData?]>([:])
final class Box<T> { var value: T; init(_ v: T) { value = v } }

func load(root: String, task: String) -> TaskData? {
  guard !task.contains("/"), task != "..", task != "." else { return nil }
  let data = try? TaskData.load(root: root, task: task, split: "train").prepared(policy: .truncate).data
  loaded.value[task] = .some(data)
  return data
}

/// `bytes` with the header length (bytes 0..<8) set to where the JSON object after it ends
/// (braces counted outside strings), or to everything after the prefix when it never ends.
func withHeaderLength(_ bytes: [UInt8]) -> [UInt8] {
  guard bytes.count >= 8 else { return bytes }
  var depth = 0, inString = false, escaped = false, end = bytes.count
  for i in 8..<bytes.count {
    let b = bytes[i]
    if inString {
      if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
    } else if b == 0x22 {
      inString = true
    } else if b == 0x7B || b == 0x5B {
      depth += 1
    } else if b == 0x7D || b == 0x5D {
      depth -= 1
      if depth <= 0 { end = i + 1; break }
    }
  }
  var out = bytes
  let n = UInt64(end - 8)
  for k in 0..<8 { out[k] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(k))) }
  return out
}
