import Foundation

/// MQAN's hyperparameters, with decaNLP's names (arguments.py) and JSON keys.
public struct ModelConfig: Codable, Equatable, Sendable {
  /// Model width d (decaNLP `dimension`, default 200).
  public var dimension: Int
  public var transformerHeads: Int
  public var transformerHidden: Int
  public var transformerLayers: Int
  public var rnnLayers: Int
  /// V: the generative ("limited") vocabulary, the first V words of the full vocabulary.
  public var generativeVocab: Int
  /// Width of the fixed word vectors (decaNLP: 400 = CharNGram 100 + GloVe 300).
  public var embeddingDim: Int
  public var unk: Int = 0
  public var pad: Int = 1
  public var initToken: Int = 2
  public var eos: Int = 3

  enum CodingKeys: String, CodingKey {
    case dimension, transformerHeads = "transformer_heads", transformerHidden = "transformer_hidden"
    case transformerLayers = "transformer_layers", rnnLayers = "rnn_layers", generativeVocab = "generative_vocab"
    case embeddingDim = "embedding_dim", unk, pad, initToken = "init", eos
  }

  public init(dimension: Int, transformerHeads: Int, transformerHidden: Int, transformerLayers: Int,
              rnnLayers: Int = 1, generativeVocab: Int, embeddingDim: Int) {
    self.dimension = dimension
    self.transformerHeads = transformerHeads
    self.transformerHidden = transformerHidden
    self.transformerLayers = transformerLayers
    self.rnnLayers = rnnLayers
    self.generativeVocab = generativeVocab
    self.embeddingDim = embeddingDim
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    dimension = try c.decode(Int.self, forKey: .dimension)
    transformerHeads = try c.decode(Int.self, forKey: .transformerHeads)
    transformerHidden = try c.decode(Int.self, forKey: .transformerHidden)
    transformerLayers = try c.decode(Int.self, forKey: .transformerLayers)
    rnnLayers = try c.decodeIfPresent(Int.self, forKey: .rnnLayers) ?? 1
    generativeVocab = try c.decode(Int.self, forKey: .generativeVocab)
    embeddingDim = try c.decode(Int.self, forKey: .embeddingDim)
    unk = try c.decodeIfPresent(Int.self, forKey: .unk) ?? 0
    pad = try c.decodeIfPresent(Int.self, forKey: .pad) ?? 1
    initToken = try c.decodeIfPresent(Int.self, forKey: .initToken) ?? 2
    eos = try c.decodeIfPresent(Int.self, forKey: .eos) ?? 3
  }

  /// decaNLP's defaults: dimension 200, 3 heads (67/67/66), hidden 150, 2 layers, V = 50,000,
  /// 400-d CharNGram + GloVe vectors.
  public static let `default` = ModelConfig(dimension: 200, transformerHeads: 3, transformerHidden: 150,
                                            transformerLayers: 2, generativeVocab: 50_000, embeddingDim: 400)
  /// A model of the parity fixture `small.safetensors`'s size.
  public static let small = ModelConfig(dimension: 32, transformerHeads: 4, transformerHidden: 24,
                                        transformerLayers: 2, generativeVocab: 200, embeddingDim: 16)
  /// A model of the parity fixture `tiny.safetensors`'s size (uneven heads 7/7/6).
  public static let tiny = ModelConfig(dimension: 20, transformerHeads: 3, transformerHidden: 12,
                                       transformerLayers: 2, generativeVocab: 30, embeddingDim: 10)

  public static let presets: [String: ModelConfig] = ["tiny": .tiny, "small": .small, "default": .default]

  /// Checks what the graph needs; every message names the field.
  public func validate() throws(ModelError) {
    func check(_ ok: Bool, _ field: String, _ why: String) throws(ModelError) {
      if !ok { throw ModelError.config(field: field, problem: why) }
    }
    try check(dimension >= 2 && dimension % 2 == 0, "dimension", "must be even and >= 2 (BiLSTMs split it in two), got \(dimension)")
    try check(transformerHeads >= 1 && transformerHeads <= dimension, "transformer_heads", "must be in 1...dimension, got \(transformerHeads)")
    try check(transformerHidden >= 1, "transformer_hidden", "must be >= 1, got \(transformerHidden)")
    try check(transformerLayers >= 1, "transformer_layers", "must be >= 1, got \(transformerLayers)")
    try check(rnnLayers == 1, "rnn_layers", "only 1 is supported (decaNLP's default), got \(rnnLayers)")
    try check(generativeVocab >= 4, "generative_vocab", "must be >= 4 (the special tokens), got \(generativeVocab)")
    try check(embeddingDim >= 1, "embedding_dim", "must be >= 1, got \(embeddingDim)")
    for (name, id) in [("unk", unk), ("pad", pad), ("init", initToken), ("eos", eos)] {
      try check(id >= 0 && id < generativeVocab, name, "id \(id) must lie in the generative vocabulary")
    }
  }

  /// Reads a config from JSON (decaNLP key names).
  public static func load(path: String) throws(ModelError) -> ModelConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ModelError.io(path: path, problem: "cannot read the file")
    }
    do {
      let cfg = try JSONDecoder().decode(ModelConfig.self, from: data)
      try cfg.validate()
      return cfg
    } catch let e as ModelError {
      throw e
    } catch {
      throw ModelError.io(path: path, problem: "not a model config: \(ModelError.describe(decoding: error))")
    }
  }

  public func json() -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
  }
}

/// Errors of the model layer.
public enum ModelError: Error, CustomStringConvertible, Equatable {
  case config(field: String, problem: String)
  case io(path: String, problem: String)
  case fixture(path: String, problem: String)
  case graph(String)

  public var description: String {
    switch self {
    case .config(let f, let p): return "model config: \(f): \(p)"
    case .io(let path, let p): return "\(path): \(p)"
    case .fixture(let path, let p): return "\(path): \(p)"
    case .graph(let s): return "building the MQAN graph: \(s)"
    }
  }

  static func describe(decoding error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let k, _): return "missing key \"\(k.stringValue)\""
    case DecodingError.typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
    case DecodingError.dataCorrupted(let c): return c.debugDescription
    case DecodingError.valueNotFound(_, let c): return "null at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
    default: return "\(error)"
    }
  }
}
