import ArgumentParser
import Foundation
import GraphIR
import MQAN

/// `mqan quantize`: stores a checkpoint's reduced-precision weights converted.
struct QuantizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "quantize",
    abstract: "Store a checkpoint's large linears in bf16 or int8, for predict and profile.",
    discussion: """
      Converts the weights that --precision converts when a plan is bound (the output layer, or with \
      --precision-linears all every linear of the encode and decode-step plans) and writes them compactly: \
      BF16, or I8 with one F32 scale per row (tensor quant.scale.<name>). predict --checkpoint on the result \
      answers exactly as predict --precision P on the source checkpoint, and runs with that precision by \
      default. The output is for inference: it has no optimizer state and mqan train does not resume from it.
      """)

  @Option(help: "The F32 checkpoint (mqan train's .safetensors).") var checkpoint: String
  @Option(help: "bf16 or int8.") var precision: String
  @Option(help: ArgumentHelp("Which linears to convert: output (the output layer) or all.", valueName: "linears"))
  var precisionLinears: String = "output"
  @Option(name: [.short, .long], help: "The checkpoint to write (atomically; may be --checkpoint itself).") var out: String

  func run() throws {
    guard let p = Precision(rawValue: precision), p != .fp32 else {
      throw ValidationError("--precision: \"\(precision)\" is not bf16 or int8")
    }
    guard let linears = PrecisionTarget.Linears(rawValue: precisionLinears) else {
      throw ValidationError("--precision-linears: unknown \"\(precisionLinears)\" (output or all)")
    }
    try checkWritable(out, option: "out")
    try reportingErrors {
      let ck = try Checkpoint.read(path: checkpoint)
      let config = try ModelConfig.decode(Data(ck.modelConfig.utf8),
                                          source: "\(checkpoint): __metadata__ key \"model_config\"")
      guard let mode = DecoderMode(rawValue: ck.decoderMode) else {
        throw CheckpointError.invalidMetadata(file: checkpoint, key: "decoder",
                                              reason: "unknown mode \"\(ck.decoderMode)\" (decanlp or consistent)")
      }
      // The path does not change the stored values: every path packs the same panels.
      let target = PrecisionTarget(precision: p, path: "portable", linears: linears)
      let (converted, report) = try Quantize.checkpoint(ck, config: config, decoder: mode, target: target)
      try converted.write(to: out)
      let before = report.weights.reduce(0) { $0 + $1.bytes }
      let after = report.weights.reduce(0) { $0 + $1.bytes / 4 * (p == .bf16 ? 2 : 1) }
      let names = report.weights.count <= 4 ? " (\(report.weights.map(\.name).joined(separator: ", ")))" : ""
      note("converted \(report.weights.count) weights to \(p.rawValue): \(megabytes(before)) -> \(megabytes(after))\(names)")
      let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? nil
      let source = (try? FileManager.default.attributesOfItem(atPath: checkpoint)[.size] as? Int) ?? nil
      if let size, let source { note("wrote \(out): \(megabytes(size)) (the source: \(megabytes(source)))") }
    }
  }

  private func megabytes(_ bytes: Int) -> String {
    bytes < 1_000_000 ? String(format: "%.1f KB", Double(bytes) / 1e3) : String(format: "%.1f MB", Double(bytes) / 1e6)
  }
}
