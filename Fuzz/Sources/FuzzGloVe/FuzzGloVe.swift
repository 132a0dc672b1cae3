import Foundation
import MQAN

/// libFuzzer's entry: the bytes as GloVe text-format word vectors (`--embeddings FILE`), then the
/// embedding table and coverage for a small vocabulary of the words in the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(UnsafeBufferPointer(start: data, count: size))
  guard let vectors = try? WordVectors(parsing: bytes, path: "fuzz.txt") else { return 0 }
  var counter = TokenCounter()
  counter.add(Array(vectors.words.prefix(50)) + ["the", "unknown-word"])
  let vocabulary = Vocabulary(counter: counter)
  _ = vectors.table(for: vocabulary)
  _ = vectors.coverage(of: vocabulary)
  return 0
}
