import Foundation
import MQAN
import Runtime
import Testing

/// decaNLP's predict.py vocabulary extension and word-vector lookups, against what decaNLP's own
/// code gave for the imported fixture (`Fixtures/decanlp`, `tools/test_import_decanlp.sh`).
@Suite struct DecaNLPVocabularyTests {
  static func fixture(_ name: String) throws -> URL {
    let url = try #require(Bundle.module.resourceURL?.appendingPathComponent("Fixtures/decanlp/\(name)"))
    try #require(FileManager.default.fileExists(atPath: url.path), "no \(url.path)")
    return url
  }

  @Test func appendsTheWordsPredictPyAppendsInItsOrder() throws {
    let ck = try Checkpoint.read(path: try Self.fixture("model.safetensors").path)
    let vocabulary = try Vocabulary(jsonData: Data(ck.vocabulary.utf8), source: "fixture")
    let info = try DecaNLPImport(json: try #require(ck.extra[DecaNLPImport.metadataKey]), source: "fixture")
    #expect(info.lower && info.valBatchSize == 16 && info.maxOutputLength == 16 && info.unkWords.isEmpty)
    #expect(vocabulary.itos.prefix(4) == [" UNK ", "<pad>", "<init>", "<eos>"])
    var counter = TokenCounter()
    for task in ["sst", "multi30k.en.de"] {
      let path = try #require(Bundle.module.resourceURL?.appendingPathComponent("Fixtures/data/\(task)/validation.jsonl"))
      let examples = try JSONLReader.read(path: path.path).prefix(20)
      DecaNLPVocabulary.count(Array(examples), tokenizer: Tokenizer(lower: info.lower), into: &counter)
    }
    let words = DecaNLPVocabulary.newWords(counter, vocabulary: vocabulary, unkWords: info.unkWords)
    let decaNLP = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: try Self.fixture("appended.json"))) as? [String])
    #expect(words.count == decaNLP.count)
    #expect(words == decaNLP)
    // A word decaNLP's stoi already maps to <unk> is never appended.
    let kept = DecaNLPVocabulary.newWords(counter, vocabulary: vocabulary, unkWords: [decaNLP[0]])
    #expect(kept == Array(decaNLP.dropFirst()))
  }

  @Test func newRowsHoldEachSetsVectorOfTheStrippedWord() throws {
    let glove = try WordVectors(parsing: Data("cat 1 2\ndog 3 4\n".utf8), path: "glove")
    let chars = try WordVectors(parsing: Data("2gram-#BEGIN#c 1 0\n2gram-ca 2 0\n3gram-at#END# 6 3\n4gram-zzzz 9 9\n".utf8),
                                path: "charngram")
    let table = HostTensor(shape: [1, 4], floats: [7, 7, 7, 7])
    let out = try DecaNLPVocabulary.appendingRows(for: [" cat ", "dog", "xyz"], to: table,
                                                  sets: [.charNGrams(chars), .words(glove)])
    #expect(out.shape == [4, 4])
    // " cat " looks up "cat": n-grams #BEGIN#c, ca, at#END# found, mean (3, 1); GloVe 1 2.
    // "dog": no n-gram (0), GloVe 3 4. "xyz": zeros.
    #expect(try out.floats == [7, 7, 7, 7, 3, 1, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0])
    #expect(VectorLookup.charNGrams(chars).vector(for: "<unk>") == nil)
  }

  @Test func badMetadataIsOneLineNamingTheField() {
    #expect(throws: DataError.self) { try DecaNLPImport(json: "{\"lower\":true}", source: "f") }
    do {
      _ = try DecaNLPImport(json: #"{"lower":true,"val_batch_size":0,"max_output_length":5,"vectors":[],"unk_words":[]}"#,
                            source: "f")
      Issue.record("accepted val_batch_size 0")
    } catch {
      #expect("\(error)" == "f: field \"val_batch_size\": must be in 1...4096, got 0")
    }
  }
}
