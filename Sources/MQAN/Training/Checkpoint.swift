import Foundation
import GraphIR
import Runtime

/// A training checkpoint: weights under decaNLP's state_dict names, Adam's state, and what a
/// resumed run needs to continue exactly where this one stopped.
///
/// The file is safetensors (format `mqan-checkpoint-1`), so any safetensors reader can load the
/// weights by their decaNLP names:
///
/// | tensors | |
/// | --- | --- |
/// | `<name>` | every parameter, F32, sorted by name |
/// | `adam.m.<name>`, `adam.v.<name>` | Adam's moments (only with optimizer state) |
/// | `<name>` BF16, or I8 with `quant.scale.<name>` F32 [n] | a weight converted by `mqan quantize` (`quantized`) |
///
/// | `__metadata__` key | value |
/// | --- | --- |
/// | `format` | `mqan-checkpoint-1` |
/// | `model_config`, `vocabulary`, `data_position` | JSON texts the caller provides (kept as given) |
/// | `decoder` | the decoder mode (`decanlp` or `consistent`) |
/// | `step`, `seed` | decimal integers: updates done, the run's seed |
/// | `best_score` | the best validation score so far (absent until there is one) |
/// | `adam_config`, `adam_step` | the optimizer's settings (JSON) and its t (only with optimizer state) |
///
/// Other metadata keys are kept in `extra` (`mqan quantize` adds `precision` and
/// `precision_linears` there). Writing is atomic (temporary file, fsync, rename).
public struct Checkpoint: Sendable, Equatable {
  public static let format = "mqan-checkpoint-1"
  /// Metadata keys this type owns; `extra` may not use them.
  public static let reservedKeys: Set<String> = [
    "format", "model_config", "vocabulary", "decoder", "step", "data_position", "seed", "best_score",
    "adam_config", "adam_step",
  ]

  /// The weights by decaNLP state_dict key.
  public var parameters: [String: HostTensor]
  /// Adam's moments and t, when the checkpoint can resume training.
  public var optimizer: AdamState?
  /// The optimizer's settings (stored with `optimizer`).
  public var optimizerConfig: AdamConfig?
  /// The model config as JSON (decaNLP's names: dimension, transformer_heads, ...).
  public var modelConfig: String
  /// The vocabulary as JSON (opaque here).
  public var vocabulary: String
  /// `decanlp` or `consistent` (the model's `DecoderMode`).
  public var decoderMode: String
  /// Updates done; a resumed run's next update is `step + 1`.
  public var step: Int
  /// Where the data iterators stand, as JSON (opaque here).
  public var dataPosition: String
  public var seed: UInt64
  /// The best validation score so far (higher is better), nil before the first validation.
  public var bestScore: Double?
  /// Further metadata, kept as given.
  public var extra: [String: String]
  /// Weights held in bf16 or int8 (`mqan quantize`): `parameters` has their F32 values (exactly
  /// what the reduced-precision linear computes with); the file stores them compactly. An
  /// inference checkpoint: it has no optimizer state.
  public var quantized: [String: Precision] = [:]
  /// The tensor-name prefix of an int8 weight's row scales.
  public static let scalePrefix = "quant.scale."

  public init(parameters: [String: HostTensor], optimizer: AdamState? = nil, optimizerConfig: AdamConfig? = nil,
              modelConfig: String, vocabulary: String, decoderMode: String, step: Int,
              dataPosition: String, seed: UInt64, bestScore: Double? = nil, extra: [String: String] = [:]) {
    self.parameters = parameters
    self.optimizer = optimizer
    self.optimizerConfig = optimizerConfig
    self.modelConfig = modelConfig
    self.vocabulary = vocabulary
    self.decoderMode = decoderMode
    self.step = step
    self.dataPosition = dataPosition
    self.seed = seed
    self.bestScore = bestScore
    self.extra = extra
  }

  /// Writes the checkpoint to `path` atomically: `path` holds the old file or the whole new one.
  /// - Throws: `CheckpointError` for a checkpoint that could not be read back (bad names, shapes or
  ///   JSON) before anything is written, or for an I/O failure.
  public func write(to path: String) throws(CheckpointError) {
    try write(to: path, afterTensor: nil)
  }

  /// `write(to:)` with a hook called after each tensor's bytes (tests use it to fail mid-way).
  func write(to path: String, afterTensor hook: ((String) throws -> Void)?) throws(CheckpointError) {
    let (tensors, metadata) = try encoded(file: path)
    let header: [UInt8]
    do { header = try SafetensorsFile.encodedHeader(tensors, metadata: metadata, file: path) } catch {
      throw .file(error)
    }
    do {
      try AtomicFile.write(to: path) { w in
        try w.write(header)
        for (name, t) in tensors {
          try writeLittleEndian(t, to: w)
          try hook?(name)
        }
      }
    } catch let e as AtomicFileError {
      throw .io(path: path, message: "\(e.operation): \(e.reason)")
    } catch {
      throw .io(path: path, message: "write interrupted: \(error)")
    }
  }

  /// Reads and checks a checkpoint; errors name the file and the tensor or metadata key.
  public static func read(path: String) throws(CheckpointError) -> Checkpoint {
    let file: SafetensorsFile
    do { file = try SafetensorsFile.read(path: path) } catch { throw .file(error) }
    return try Checkpoint(file)
  }
}
