import Foundation
import MQAN
import Runtime

/// A checkpoint read for decoding: its model config, vocabulary, word-vector table (checked
/// against both) and the plans' weights (every parameter but the table). `predict` and `serve`
/// read theirs through it.
struct InferenceCheckpoint {
  let checkpoint: Checkpoint
  let config: ModelConfig
  var vocabulary: Vocabulary
  var table: HostTensor
  /// The weights the encode and decode-step plans bind (without `embeddings`).
  let params: [String: HostTensor]

  init(path: String) throws {
    let ck = try Checkpoint.read(path: path)
    checkpoint = ck
    config = try ModelConfig.decode(Data(ck.modelConfig.utf8), source: "\(path): __metadata__ key \"model_config\"")
    vocabulary = try Vocabulary(jsonData: Data(ck.vocabulary.utf8), source: path)
    guard let t = ck.parameters["embeddings"] else {
      throw CheckpointError.missingTensor(file: path, tensor: "embeddings",
                                          reason: "the word-vector table; checkpoints of mqan train hold it")
    }
    guard t.shape == [vocabulary.count, config.embeddingDim] else {
      throw CheckpointError.invalidTensor(file: path, tensor: "embeddings",
                                          reason: "shape \(t.shape), the model needs [\(vocabulary.count), \(config.embeddingDim)]")
    }
    table = t
    var p = ck.parameters
    p["embeddings"] = nil
    params = p
  }
}
