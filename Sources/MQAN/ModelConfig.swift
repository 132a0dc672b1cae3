import Foundation
import GraphIR

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

  enum CodingKeys: String, CodingKey, CaseIterable {
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

  /// Checks what the graph needs and mqan's limits (`Limits`); every message names the field.
  public func validate() throws(ModelError) {
    func check(_ ok: Bool, _ field: String, _ why: String) throws(ModelError) {
      if !ok { throw ModelError.config(field: field, problem: why) }
    }
    try check(dimension >= 2 && dimension <= Limits.width && dimension % 2 == 0, "dimension",
              "must be even and in 2...\(Limits.width) (BiLSTMs split it in two), got \(dimension)")
    try check(transformerHeads >= 1 && transformerHeads <= dimension, "transformer_heads", "must be in 1...dimension, got \(transformerHeads)")
    try check(transformerHidden >= 1 && transformerHidden <= Limits.hidden, "transformer_hidden",
              "must be in 1...\(Limits.hidden), got \(transformerHidden)")
    try check(transformerLayers >= 1 && transformerLayers <= Limits.layers, "transformer_layers",
              "must be in 1...\(Limits.layers), got \(transformerLayers)")
    try check(rnnLayers == 1, "rnn_layers", "only 1 is supported (decaNLP's default), got \(rnnLayers)")
    try check(generativeVocab >= 4 && generativeVocab <= Limits.vocabulary, "generative_vocab",
              "must be in 4...\(Limits.vocabulary) (at least the special tokens), got \(generativeVocab)")
    try check(embeddingDim >= 1 && embeddingDim <= Limits.width, "embedding_dim",
              "must be in 1...\(Limits.width), got \(embeddingDim)")
    for (name, id) in [("unk", unk), ("pad", pad), ("init", initToken), ("eos", eos)] {
      try check(id >= 0 && id < generativeVocab, name, "id \(id) must lie in the generative vocabulary")
    }
  }

  /// Checks, before they are made, that the weights and a word-vector table of `tableRows` rows
  /// fit `Limits.memoryBytes`; `source` names the config in the error.
  public func checkMemory(tableRows: Int, source: String) throws(ModelError) {
    let floats = Limits.product([tableRows, embeddingDim]).map { $0 + MQANParameters.count(self) } ?? Int.max
    let bytes = floats > Int.max / 4 ? Int.max : floats * 4
    if let problem = Limits.memoryProblem(bytes, "the model (its weights and a \(tableRows)-word table)") {
      throw ModelError.io(path: source, problem: problem)
    }
  }

  /// Reads a config from JSON (decaNLP key names).
  public static func load(path: String) throws(ModelError) -> ModelConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      var isDir: ObjCBool = false
      let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
      throw ModelError.io(path: path, problem: "cannot read the config file (\(exists ? (isDir.boolValue ? "it is a folder" : "permission denied") : "no such file"))")
    }
    return try decode(data, source: path)
  }

  /// A config from JSON text (a config file, a checkpoint's `model_config`), strictly: an object
  /// whose keys are decaNLP's names, each an integer, checked by `validate()`. `source` names the
  /// text in errors (`FILE`, `FILE: __metadata__ key "model_config"`).
  public static func decode(_ data: Data, source: String) throws(ModelError) -> ModelConfig {
    let object: [String: ConfigValue]
    do { object = try JSONDecoder().decode([String: ConfigValue].self, from: data) } catch {
      if case DecodingError.typeMismatch = error {
        throw ModelError.io(path: source, problem: "not a model config: expected a JSON object of decaNLP's keys")
      }
      throw ModelError.io(path: source, problem: "not valid JSON: \(describe(json: error))")
    }
    let known = CodingKeys.allCases.map(\.rawValue)
    var values: [String: Int] = [:]
    for key in object.keys.sorted() {
      guard known.contains(key) else {
        throw ModelError.io(path: source, problem: "unknown key \"\(key)\" (model config keys: \(known.joined(separator: ", ")))")
      }
      guard case .int(let v) = object[key]! else {
        throw ModelError.io(path: source, problem: "field \"\(key)\": expected an integer, got \(object[key]!)")
      }
      values[key] = v
    }
    func required(_ k: CodingKeys) throws(ModelError) -> Int {
      guard let v = values[k.rawValue] else { throw ModelError.io(path: source, problem: "missing key \"\(k.rawValue)\"") }
      return v
    }
    var cfg = ModelConfig(dimension: try required(.dimension), transformerHeads: try required(.transformerHeads),
                          transformerHidden: try required(.transformerHidden),
                          transformerLayers: try required(.transformerLayers), rnnLayers: values["rnn_layers"] ?? 1,
                          generativeVocab: try required(.generativeVocab), embeddingDim: try required(.embeddingDim))
    cfg.unk = values["unk"] ?? 0
    cfg.pad = values["pad"] ?? 1
    cfg.initToken = values["init"] ?? 2
    cfg.eos = values["eos"] ?? 3
    do { try cfg.validate() } catch {
      guard case .config(let field, let problem) = error else { throw error }
      throw ModelError.io(path: source, problem: "field \"\(field)\": \(problem)")
    }
    return cfg
  }

  /// Foundation's JSON error without its boilerplate.
  static func describe(json error: Error) -> String {
    if case DecodingError.dataCorrupted(let c) = error {
      if let u = c.underlyingError as NSError?, let d = u.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
      return c.debugDescription
    }
    return "\(error)"
  }

  public func json() -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
  }
}

/// One value of a config file, as JSON has it (for messages that name the type found).
enum ConfigValue: Decodable, CustomStringConvertible {
  case int(Int), number(Double), bool(Bool), string(String), null, other

  init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() { self = .null }
    else if let b = try? c.decode(Bool.self) { self = .bool(b) }
    else if let i = try? c.decode(Int.self) { self = .int(i) }
    else if let d = try? c.decode(Double.self) { self = .number(d) }
    else if let s = try? c.decode(String.self) { self = .string(s) }
    else { self = .other }
  }

  var description: String {
    switch self {
    case .int(let i): "\(i)"
    case .number(let d): "the number \(d)"
    case .bool(let b): "\(b)"
    case .string(let s): "the string \"\(s.prefix(40))\""
    case .null: "null"
    case .other: "an array or object"
    }
  }
}

/// Errors of the model layer.
public enum ModelError: Error, CustomStringConvertible, Equatable {
  case config(field: String, problem: String)
  case io(path: String, problem: String)
  case fixture(path: String, problem: String)
  case graph(String)
  /// A decoding request the decoder cannot take (e.g. more items than free slots).
  case decoding(String)

  public var description: String {
    switch self {
    case .config(let f, let p): return "model config: \(f): \(p)"
    case .io(let path, let p): return "\(path): \(p)"
    case .fixture(let path, let p): return "\(path): \(p)"
    case .graph(let s): return "building the MQAN graph: \(s)"
    case .decoding(let s): return "decoding: \(s)"
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
