import ArgumentParser
import Compiler
import Foundation
import GraphIR
import MQAN
import Runtime

/// `mqan compile`: show MQAN's graphs and plans, and write a plan file.
struct CompileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compile",
    abstract: "Compile MQAN into an execution plan and show the graph, plan or memory plan.")

  enum PlanKind: String, ExpressibleByArgument, CaseIterable {
    case train, encode, decodeStep = "decode-step", all
  }
  enum Emit: String, ExpressibleByArgument, CaseIterable { case summary, ir, dot, plan, kernels, memory }

  @OptionGroup var model: ModelOptions
  @OptionGroup var gemm: GemmOption
  @Option(help: """
    Which plan: train (forward + loss + backward), encode (the encoder for decoding), decode-step \
    (one decoding step over key/value caches), or all three.
    """)
  var plan: PlanKind = .train
  @Option(help: "What to print: summary, ir, dot, plan, kernels or memory.")
  var emit: Emit = .summary
  @Option(help: "Print the graph after this pass (infer-shapes, dce, cse, ...).")
  var dumpAfter: String?
  @Flag(help: "Verify the graph after every pass.")
  var verifyEach = false
  @Flag(help: "Leave out the fusion passes (the unfused plan, for comparison).")
  var noFuse = false
  @Option(help: "Sample shape for byte and FLOP numbers, e.g. B=32,Tc=256,Tq=16,Ta=32,X=50100,Nv=60000,K=4,S=32 (K: beam, S: cache slots).")
  var shape: String = "B=32,Tc=256,Tq=16,Ta=32,X=50100,Nv=60000,K=4,S=32"
  @Option(name: .shortAndLong, help: "Write the plan (JSON) to this file.")
  var output: String?

  func run() throws {
    try reportingErrors {
      let (name, config) = try model.load()
      let env = try parseShape(shape)
      let kinds: [PlanKind] = plan == .all ? [.train, .encode, .decodeStep] : [plan]
      var plans: [Plan] = []
      for kind in kinds {
        let graph: Graph
        switch kind {
        case .encode: graph = try MQANGraph.encoder(config, crossAttention: .consistent)
        case .decodeStep: graph = try MQANGraph.decodeStep(config, mode: .consistent)
        case .train, .all: graph = try MQANGraph.forward(config, options: ForwardOptions(decoder: .consistent, loss: true))
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var options = CompileOptions()
        options.verifyEach = verifyEach
        options.fuse = !noFuse
        options.gemm = try gemm.target()
        // The train plan is forward + loss + backward (the Adam update runs on its outputs).
        if kind == .train { options.differentiate = "loss" }
        options.dumpAfter = dumpAfter
        let c = try compile(graph, options: options)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        plans.append(c.plan)
        for d in c.dumps { print("// after \(d.pass)\n\(d.text)") }
        switch emit {
        case .summary: print(try Summary.text(name: name, config: config, compilation: c, env: env, seconds: seconds))
        case .ir: print(c.graph.text())
        case .dot: print(c.graph.dot())
        case .plan: print(c.plan.text())
        case .kernels: print(Summary.kernels(c.plan))
        case .memory: print(try c.plan.memoryReport(env))
        }
      }
      if let path = output { try PlanFile(plans: plans).write(to: path) }
    }
  }

  func parseShape(_ text: String) throws -> [String: Int] {
    var env: [String: Int] = [:]
    for part in text.split(separator: ",") {
      let kv = part.split(separator: "=")
      guard kv.count == 2, let v = Int(kv[1].trimmingCharacters(in: .whitespaces)), v > 0 else {
        throw ValidationError("--shape: \"\(part)\" is not NAME=positive integer")
      }
      env[kv[0].trimmingCharacters(in: .whitespaces)] = v
    }
    return env
  }
}
