import ArgumentParser
import Compiler
import Foundation
import GraphIR
import MQAN

/// `mqan compile`: show MQAN's graphs and plans, and write a plan file.
struct CompileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compile",
    abstract: "Compile MQAN into an execution plan and show the graph, plan or memory plan.")

  enum PlanKind: String, ExpressibleByArgument, CaseIterable {
    case train, encode, decodeStep = "decode-step", all
  }
  enum Emit: String, ExpressibleByArgument, CaseIterable { case summary, ir, dot, plan, kernels, memory }

  @Argument(help: """
    A graph in the text IR (FILE.mqir, e.g. IR/tiny.train.mqir) to compile instead of MQAN's plans; \
    --preset, --config, --plan, --dropout and --decoder do not apply to it.
    """)
  var graphFile: String?
  @OptionGroup var model: ModelOptions
  @OptionGroup var gemm: GemmOption
  @OptionGroup var precision: PrecisionOption
  @Option(help: """
    Which plan: train (forward + loss + backward), encode (the encoder for decoding), decode-step \
    (one decoding step over key/value caches), or all three.
    """)
  var plan: PlanKind = .train
  @Option(help: """
    Training-mode dropout of the train plan at decaNLP's sites, in [0, 1): by default 0.2, decaNLP's \
    dropout_ratio, what `mqan train` runs (the train plan shown is exactly the graph it runs); 0: no \
    dropout, the graph the parity fixtures check and IR/*.train.mqir hold. (default: 0.2)
    """)
  var dropout: Float?
  @Option(help: "The transformer decoder's computation: consistent (decaNLP's training computation) or decanlp.")
  var decoder: String = "consistent"
  @Option(help: "With FILE.mqir: differentiate this scalar output (the graph gains its backward pass).")
  var differentiate: String?
  @Option(help: "What to print: summary, ir, dot, plan, kernels or memory.")
  var emit: Emit = .summary
  @Option(help: "Print the graph after this pass (infer-shapes, dce, cse, ...).")
  var dumpAfter: String?
  @Flag(help: "Verify the graph after every pass.")
  var verifyEach = false
  @Flag(help: "Leave out the fusion passes (the unfused plan, for comparison).")
  var noFuse = false
  @Option(help: """
    Sample shape for byte and FLOP numbers: NAME=N,... over the defaults, which dims not named keep \
    (K: beam, S: cache slots; each N in 1...2147483647; a size that overflows is an error).
    """)
  var shape: String = Self.defaultShape
  static let defaultShape = "B=32,Tc=256,Tq=16,Ta=32,X=50100,Nv=60000,K=4,S=32"
  @Option(name: .shortAndLong, help: "Write the plan (JSON) to this file.")
  var output: String?

  func run() throws {
    try reportingErrors {
      let env = try parseShape(shape)
      if let path = output { try checkWritable(path, option: "output") }
      var base = CompileOptions()
      base.verifyEach = verifyEach
      base.fuse = !noFuse
      base.dumpAfter = dumpAfter
      base.gemm = try gemm.target()
      // Refused before the target is resolved, so the refusal is the only line (no emulation note).
      if graphFile == nil && plan == .train && precision.isReduced {
        throw ValidationError("--precision \(precision.precision) applies to the inference plans (encode, decode-step, all); "
                                + "the train plan runs fp32")
      }
      base.precision = try precision.target()
      if let path = graphFile {
        // A graph from its text form, through the same pipeline and reports.
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
          throw ValidationError("\(path): cannot read the graph file (\(error.localizedDescription))")
        }
        let graph = try Graph(parsing: text, file: path)
        base.differentiate = differentiate
        let plan = try emitting(path, config: nil, graph: graph, options: base, env: env)
        if let out = output { try PlanFile(plans: [plan]).write(to: out) }
        return
      }
      if differentiate != nil { throw ValidationError("--differentiate applies to a graph file (FILE.mqir) only") }
      guard let mode = DecoderMode(rawValue: decoder) else {
        throw ValidationError("unknown --decoder \"\(decoder)\" (decanlp or consistent)")
      }
      if let p = dropout, !(p >= 0 && p < 1) { throw ValidationError("--dropout must be in [0, 1), got \(p)") }
      let (name, config) = try model.load()
      let kinds: [MQANPlanKind] = switch plan {
      case .all: [.train, .encode, .decodeStep]
      case .train: [.train]
      case .encode: [.encode]
      case .decodeStep: [.decodeStep]
      }
      var plans: [Plan] = []
      for kind in kinds {
        // The graph every other command builds for this kind (the train plan is forward + loss +
        // backward; the Adam update runs on its outputs).
        let graph = try MQANPlans.graph(kind: kind, config: config,
                                        options: MQANPlanOptions(decoder: mode, dropout: dropout ?? MQANPlans.trainingDropout))
        plans.append(try emitting(name, config: config, graph: graph,
                                  options: MQANPlans.compileOptions(kind: kind, base), env: env))
      }
      if let path = output { try PlanFile(plans: plans).write(to: path) }
    }
  }

  /// Compiles `graph` and prints what `--emit` asks for; returns the plan.
  func emitting(_ name: String, config: ModelConfig?, graph: Graph, options: CompileOptions,
                env: [String: Int]) throws -> Plan {
    let start = DispatchTime.now().uptimeNanoseconds
    let c = try compile(graph, options: options)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    for d in c.dumps { print("// after \(d.pass)\n\(d.text)") }
    switch emit {
    case .summary:
      do { print(try Summary.text(name: name, config: config, compilation: c, env: env, seconds: seconds)) } catch let e as DimError {
        throw ValidationError("--shape \(shape): \(e)")
      }
    case .ir: print(c.graph.text())
    case .dot: print(c.graph.dot())
    case .plan: print(c.plan.text())
    case .kernels: print(Summary.kernels(c.plan))
    case .memory:
      do { print(try c.plan.memoryReport(env)) } catch let e as DimError { throw ValidationError("--shape \(shape): \(e)") }
    }
    return c.plan
  }

  /// `--shape` over the default shape: the dims it names replace the defaults, the others stay.
  func parseShape(_ text: String) throws -> [String: Int] {
    var env: [String: Int] = [:]
    for source in [Self.defaultShape, text] {
      for part in source.split(separator: ",", omittingEmptySubsequences: false) {
        let kv = part.split(separator: "=", omittingEmptySubsequences: false)
        let name = kv.first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard kv.count == 2, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
              let v = Int(kv[1].trimmingCharacters(in: .whitespaces)), v > 0 else {
          throw ValidationError("--shape: \"\(part)\" is not NAME=positive integer")
        }
        guard v <= Limits.dim else {
          throw ValidationError("--shape: \(name)=\(v) is over mqan's limit of \(Limits.dim) for one dim")
        }
        env[name] = v
      }
    }
    return env
  }
}
