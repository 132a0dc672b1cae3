import Compiler
import Foundation
import GraphIR
import MQAN

/// The text of `mqan compile --emit summary` and `--emit kernels`.
enum Summary {
  /// `config` nil: a graph read from a file (`mqan compile FILE.mqir`), no model to describe.
  static func text(name: String, config: ModelConfig?, compilation c: Compilation, env: [String: Int],
                   seconds: Double) throws -> String {
    let plan = c.plan
    let flops = plan.stats.flops
    let layout = try plan.layout(env)
    let shape = env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    var lines: [String] = []
    if let config {
      lines += modelLines(name: name, config: config, plan: plan)
    } else {
      lines.append("plan \(plan.name): the graph of \(name)")
      lines.append("parameters: the graph uses \(group(plan.stats.parameterCount))")
    }
    lines.append("nodes: \(plan.stats.nodesBefore) before passes, \(plan.stats.nodesAfter) after (scan bodies counted)")
    let lanes = (plan.steps.map(\.lane).max() ?? 0) + 1
    lines.append("steps: \(plan.steps.count) in \(plan.stageCount) stages, up to \(lanes) lanes")
    lines.append("FLOPs per step: \(flops)")
    lines.append("  at \(shape): \(String(format: "%.3f", Double(try flops.evaluate(env)) / 1e9)) GFLOP")
    lines.append("arena at \(shape): \(mb(layout.arenaBytes)) (sum of all buffers \(mb(layout.totalBytes)))")
    lines.append("compile time: \(String(format: "%.3f", seconds)) s")
    return lines.joined(separator: "\n")
  }

  /// The model's dims and decaNLP's parameter count against the plan's.
  static func modelLines(name: String, config: ModelConfig, plan: Plan) -> [String] {
    let decaNLPCount = MQANParameters.count(config)
    let widths = headWidths(config.dimension, config.transformerHeads)
    var lines: [String] = []
    lines.append("plan \(plan.name): MQAN \(name) (dimension \(config.dimension), heads \(widths.map(String.init).joined(separator: "/")), "
                 + "transformer_hidden \(config.transformerHidden), transformer_layers \(config.transformerLayers), "
                 + "generative_vocab \(config.generativeVocab), embedding_dim \(config.embeddingDim))")
    // decaNLP counts the two `linear_in` layers it never calls: 2 * (d * d + d).
    let neverCalled = 2 * (config.dimension * config.dimension + config.dimension)
    let unused = decaNLPCount - plan.stats.parameterCount
    let why = unused == neverCalled ? "in modules decaNLP never calls: linear_in"
      : "not read by this plan, linear_in's \(group(neverCalled)) among them"
    lines.append("parameters: \(group(decaNLPCount)) as decaNLP counts; the graph uses \(group(plan.stats.parameterCount))"
                 + (unused > 0 ? " (\(group(unused)) \(why))" : ""))
    return lines
  }

  /// Every step's kernel, as the op table binds it, with what fusion folded into it.
  static func kernels(_ plan: Plan, indent: String = "") -> String {
    var lines: [String] = []
    for s in plan.steps {
      var kernel = s.op.spec.kernel
      if case .string(let a)? = s.attrs.values["activation"], let op = LinearOps.epilogues[a] {
        kernel += "+\(op.spec.kernel)  (fused: \(a) epilogue)"
      }
      if s.attrs.bool("residual") {
        kernel = s.op == .layerNorm ? "mq_add+mq_layernorm  (fused: the residual sum it normalizes)"
          : kernel + "+residual  (fused: the add of a residual or gate sum)"
      }
      if s.op == .addN { kernel += " x\(s.inputs.count - 1)  (fused: a chain of \(s.inputs.count - 1) adds)" }
      if s.op == .mixtureNll { kernel += "  (fused: softmax + mixture + nll_loss, no [B, T, X] tensor)" }
      if s.op == .mixtureNllGrad { kernel += "  (fused: the gradient of mixture_nll)" }
      if s.op == .mixtureTopK { kernel += "  (fused: softmax + mixture + top_k, no [B, K, X] tensor)" }
      if let q = s.attrs.string("precision") {
        kernel = kernel.replacingOccurrences(of: "mq_gemm", with: "mq_qlinear \(q)")
        kernel += "  [\(s.attrs.string("qpath") ?? "?"), split \(s.attrs.string("split") ?? "columns"), weight converted to \(q) at bind]"
      } else if let g = s.attrs.string("gemm") {
        if g == "openblas" { kernel = kernel.replacingOccurrences(of: "mq_gemm", with: "cblas_sgemm") }
        kernel += "  [" + gemmChoice(s, g) + "]"
      }
      let label = s.label.padding(toLength: 8, withPad: " ", startingAt: 0)
      lines.append("\(indent)\(label) \(s.op.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0)) \(kernel)")
      if let body = s.body.first { lines.append(kernels(body, indent: indent + "    ")) }
    }
    return lines.joined(separator: "\n")
  }

  /// The GEMM `select-gemm` chose for a step: path, blocking, split, packed weight.
  static func gemmChoice(_ s: Step, _ path: String) -> String {
    var parts = [path]
    if let kc = s.attrs.int("kc"), let nb = s.attrs.int("nb"), let mb = s.attrs.int("mb") {
      parts.append("kc \(kc) nb \(nb) mb \(mb)")
    }
    if let split = s.attrs.string("split") { parts.append("split \(split)") }
    if s.attrs.bool("pack") { parts.append("weight packed at bind") }
    return parts.joined(separator: ", ")
  }

  /// torch.chunk widths.
  static func headWidths(_ d: Int, _ heads: Int) -> [Int] {
    let w = (d + heads - 1) / heads
    return stride(from: 0, to: d, by: w).map { min(w, d - $0) }
  }

  static func group(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, ch) in s.enumerated() {
      if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
      out.append(ch)
    }
    return out
  }

  static func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
}
