import ArgumentParser
import GraphIR
import Runtime

/// `--precision fp32|bf16|int8`: the number format of the inference plans' large linears.
struct PrecisionOption: ParsableArguments {
  @Option(name: .customLong("precision"), help: ArgumentHelp(
    "Inference precision of the large linears (the 50,000-word output layer): fp32 (decaNLP's, exact), bf16 or "
      + "int8 weights (AVX512_BF16 / AVX512_VNNI, else AVX2 and FMA; elsewhere an emulated path, said on stderr). README's "
      + "\"Reduced precision\" gives their error bounds, speed and answer quality. Default: fp32, or the "
      + "precision a checkpoint was converted to by mqan quantize.",
    valueName: "precision"))
  var precisionName: String?

  @Option(help: ArgumentHelp(
    "Which linears --precision converts: output (the output layer) or all (every linear of the encode and "
      + "decode-step plans). Default: output, or a converted checkpoint's.",
    valueName: "linears"))
  var precisionLinears: String?

  /// The precision asked for, fp32 when none was.
  var precision: String { precisionName ?? Precision.fp32.rawValue }

  /// The target (nil for fp32), or a one-line error naming the option; the path's note (AVX2 or
  /// emulated) on stderr. Options left out take `checkpoint`'s `precision` / `precision_linears` metadata (what
  /// mqan quantize wrote) when it has them.
  func target(checkpoint: [String: String] = [:]) throws -> PrecisionTarget? {
    let precision = precisionName ?? checkpoint["precision"] ?? Precision.fp32.rawValue
    let linearsName = precisionLinears ?? checkpoint["precision_linears"] ?? PrecisionTarget.Linears.output.rawValue
    do {
      guard let linears = PrecisionTarget.Linears(rawValue: linearsName) else {
        throw ValidationError("--precision-linears: unknown \"\(linearsName)\" (output or all)")
      }
      var (target, pathNote) = try Precisions.target(named: precision)
      if let pathNote { note("--precision \(precision): \(pathNote)") }
      target?.linears = linears
      return target
    } catch let e as ValidationError {
      throw e
    } catch {
      throw ValidationError("--precision: \(error)")
    }
  }

  var isReduced: Bool { precision != Precision.fp32.rawValue }
}
