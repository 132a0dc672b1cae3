import Compiler
import Foundation
import GraphIR
import Runtime

/// `mqan quantize`: a checkpoint whose reduced-precision weights are stored converted.
public enum Quantize {
  /// What was converted: each weight's name and its F32 bytes.
  public struct Report: Sendable {
    public var weights: [(name: String, bytes: Int)] = []
    public var precision: Precision = .fp32
  }

  /// Why a checkpoint cannot be converted.
  public enum Failure: Error, CustomStringConvertible {
    case alreadyConverted(name: String, precision: Precision, wanted: Precision)
    case nothingToConvert(Precision, PrecisionTarget.Linears)
    case weight(name: String, QuantizedWeight.Failure)

    public var description: String {
      switch self {
      case let .alreadyConverted(n, p, w):
        "weight \"\(n)\" is already converted to \(p.rawValue); convert the F32 checkpoint to \(w.rawValue) instead"
      case let .nothingToConvert(p, l):
        "no linear of this model is converted to \(p.rawValue) with --precision-linears \(l.rawValue)"
      case let .weight(n, e): "weight \"\(n)\": \(e)"
      }
    }
  }

  /// `ck` with every weight that `target` converts in the inference plans replaced by the values
  /// the reduced-precision linear computes with, and marked `quantized` (written compactly); the
  /// optimizer state dropped (an inference checkpoint); `precision` and `precision_linears` in
  /// its metadata, which `mqan predict` takes as its default.
  public static func checkpoint(_ ck: Checkpoint, config: ModelConfig, decoder: DecoderMode,
                                target: PrecisionTarget) throws -> (Checkpoint, Report) {
    var out = ck
    var report = Report()
    report.precision = target.precision
    guard target.precision != .fp32 else { return (out, report) }
    if let (name, p) = ck.quantized.sorted(by: { $0.key < $1.key }).first(where: { $0.value != target.precision }) {
      throw Failure.alreadyConverted(name: name, precision: p, wanted: target.precision)
    }
    let names = try MQANPlans.convertedWeights(config: config, decoder: decoder, target: target)
    guard !names.isEmpty else { throw Failure.nothingToConvert(target.precision, target.linears) }
    for name in names {
      guard let w = ck.parameters[name] else {
        throw CheckpointError.missingTensor(file: "checkpoint", tensor: name, reason: "a weight of the model")
      }
      do { out.parameters[name] = try QuantizedWeight.rounded(w, precision: target.precision) } catch {
        throw Failure.weight(name: name, error)
      }
      out.quantized[name] = target.precision
      report.weights.append((name, w.byteCount))
    }
    out.optimizer = nil
    out.optimizerConfig = nil
    out.extra["precision"] = target.precision.rawValue
    out.extra["precision_linears"] = target.linears.rawValue
    return (out, report)
  }
}

extension MQANPlans {
  /// The weights that `target` converts in the inference plans (encode and decode-step, scan
  /// bodies included), sorted: each read by a reduced-precision linear and by no fp32 step (a
  /// weight that an fp32 step also reads keeps its F32 values, so a converted checkpoint answers
  /// exactly as `--precision` does on the F32 one).
  public static func convertedWeights(config: ModelConfig, decoder: DecoderMode,
                                      target: PrecisionTarget) throws -> [String] {
    var options = CompileOptions()
    options.precision = target
    var converted = Set<String>(), fp32 = Set<String>()
    func walk(_ plan: Plan) {
      for st in plan.steps {
        let reduced = st.op == .linear && (st.attrs.string("precision").map { $0 != Precision.fp32.rawValue } ?? false)
        for (slot, b) in st.inputs.enumerated() {
          guard case .param(let name) = plan.buffers[plan.rootBuffer(b)].storage else { continue }
          if reduced && slot == 1 { converted.insert(name) } else { fp32.insert(name) }
        }
        st.body.forEach(walk)
      }
    }
    for kind in [MQANPlanKind.encode, .decodeStep] {
      walk(try compile(kind: kind, config: config, options: MQANPlanOptions(decoder: decoder), compileOptions: options).plan)
    }
    return converted.subtracting(fp32).sorted()
  }
}
