import ArgumentParser
import GraphIR
import Runtime

/// `--precision fp32|bf16|int8`: the number format of the inference plans' large linears.
struct PrecisionOption: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Inference precision of the large linears (the 50,000-word output layer): fp32 (decaNLP's, exact), bf16 or "
      + "int8 weights (AVX512_BF16 / AVX512_VNNI; elsewhere an emulated path, said on stderr). README's "
      + "\"Reduced precision\" gives their error bounds, speed and answer quality.",
    valueName: "precision"))
  var precision: String = "fp32"

  @Option(help: ArgumentHelp(
    "Which linears --precision converts: output (the output layer) or all (every linear of the encode and decode-step plans).",
    valueName: "linears"))
  var precisionLinears: String = "output"

  /// The target (nil for fp32), or a one-line error naming the option; the emulated-path note on stderr.
  func target() throws -> PrecisionTarget? {
    do {
      guard let linears = PrecisionTarget.Linears(rawValue: precisionLinears) else {
        throw ValidationError("--precision-linears: unknown \"\(precisionLinears)\" (output or all)")
      }
      var (target, emulated) = try Precisions.target(named: precision)
      if let emulated { note("--precision \(precision): \(emulated)") }
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
