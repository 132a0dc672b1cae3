import Foundation
import GraphIR
import Runtime

/// A parity case exported from decaNLP's own code (fixtures/README.md, format `mqan-parity-1`).
public struct ParityFixture {
  public var path: String
  public var file: SafetensorsFile
  public var config: ModelConfig
  public var decodeSteps: Int?
  /// The optimizer settings of `expected.after_step.*`.
  public var adam: AdamSettings?

  public struct AdamSettings: Codable, Sendable {
    public var lr: Double, beta1: Double, beta2: Double, eps: Double, clip: Double
  }

  public init(path: String) throws {
    self.path = path
    file = try SafetensorsFile.read(path: path)
    guard let format = file.metadata["format"] else {
      throw ModelError.fixture(path: path, problem: "no \"format\" in __metadata__: not a parity fixture")
    }
    guard format == "mqan-parity-1" else {
      throw ModelError.fixture(path: path, problem: "format \"\(format)\" is not mqan-parity-1")
    }
    guard let cfgText = file.metadata["config"] else {
      throw ModelError.fixture(path: path, problem: "no \"config\" in __metadata__")
    }
    do {
      config = try JSONDecoder().decode(ModelConfig.self, from: Data(cfgText.utf8))
    } catch {
      throw ModelError.fixture(path: path, problem: "metadata config: \(ModelError.describe(decoding: error))")
    }
    try config.validate()
    // Weights, inputs and expected values alike: a non-finite one would make every comparison
    // meaningless (NaN is never within tolerance, and neither is it a reference).
    for name in file.order {
      if let t = file.tensors[name], let bad = t.firstNonFinite {
        throw ModelError.fixture(path: path, problem: "tensor \"\(name)\": non-finite value \(bad.value) at index "
                                   + "\(bad.index) (element \(bad.flat))")
      }
    }
    decodeSteps = file.metadata["decode_steps"].flatMap { Int($0) }
    if let text = file.metadata["adam"] {
      do {
        adam = try JSONDecoder().decode(AdamSettings.self, from: Data(text.utf8))
      } catch {
        throw ModelError.fixture(path: path, problem: "metadata adam: \(ModelError.describe(decoding: error))")
      }
    }
  }

  /// Every `param.<key>` tensor, by decaNLP key.
  public var params: [String: HostTensor] {
    var p: [String: HostTensor] = [:]
    for (name, t) in file.tensors where name.hasPrefix("param.") { p[String(name.dropFirst(6))] = t }
    return p
  }

  /// The batch as the teacher-forced forward graph takes it.
  public func inputs() throws -> [String: HostTensor] {
    var feed: [String: HostTensor] = ["embeddings": try file.tensor("embeddings")]
    for name in ["context", "question", "answer"] {
      feed[name] = try file.tensor("input.\(name)")
      feed["\(name)_limited"] = try file.tensor("input.\(name)_limited")
    }
    for name in ["context_lengths", "question_lengths"] { feed[name] = try file.tensor("input.\(name)") }
    feed["limited_to_full"] = try file.tensor("input.limited_to_full")
    return feed
  }

  /// The names of all `expected.*` tensors, in file order.
  public var expectedNames: [String] { file.order.filter { $0.hasPrefix("expected.") } }
}
