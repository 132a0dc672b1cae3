import Foundation
import MQAN

/// libFuzzer's entry: the bytes as a decaNLP JSONL task file (`train.jsonl`, `validation.jsonl`),
/// then what training does with the examples: length limits, a vocabulary, ids.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(UnsafeBufferPointer(start: data, count: size))
  guard let examples = try? JSONLReader.parse(bytes, path: "fuzz.jsonl") else { return 0 }
  let task = TaskData(task: "fuzz", path: "fuzz.jsonl", examples: examples)
  let kept = task.prepared(policy: .dropLikeDecaNLP).data
  _ = task.prepared(policy: .truncate)
  var counter = TokenCounter()
  for ex in kept.examples { counter.add(ex.context); counter.add(ex.question); counter.add(ex.answer) }
  let vocabulary = Vocabulary(counter: counter, maxSize: 1000)
  _ = kept.encoded(with: vocabulary)
  return 0
}
