import ArgumentParser
import Compiler
import Foundation
import GraphIR
import MQAN
import Runtime

/// `mqan profile forward`: times MQAN's teacher-forced forward pass and loss on a synthetic batch.
///
/// (The training step and decoding, the per-kernel table and the trace come with the training,
/// inference and performance issues.)
struct ProfileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "profile",
    abstract: "Time MQAN's forward pass and loss on a synthetic batch.")

  enum Mode: String, ExpressibleByArgument, CaseIterable { case forward, train, decode }

  @Argument(help: """
    What to time: forward (teacher-forced forward pass + loss), train (forward + backward) or decode     (greedy decoding of --max-output steps, no early stop).
    """)
  var mode: Mode
  @OptionGroup var model: ModelOptions
  @Option(help: "Batch size.") var batch = 32
  @Option(help: "Context length (tokens, counting <init> and <eos>).") var context = 256
  @Option(help: "Question length.") var question = 16
  @Option(help: "Answer length.") var answer = 32
  @Option(help: "Words in the full vocabulary the random ids come from.") var vocab = 60_000
  @Option(help: "Timed steps (after one warm-up step).") var steps = 3
  @Option(help: "Threads.") var threads = 2
  @Option(help: "Decode: output steps (all of them are run).") var maxOutput = 32
  @Option(help: "Decode: beam size (1: greedy).") var beam = 1
  @Option(help: "Seed for weights and ids.") var seed: UInt64 = 1
  @Option(help: "Run this plan file (from mqan compile -o) instead of compiling the model.") var plan: String?
  @Flag(help: "Run the unfused plan (no fusion passes), for comparison.") var noFuse = false
  @Flag(help: "End with one JSON object.") var json = false

  func run() throws {
    for (name, v) in [("batch", batch), ("context", context), ("question", question), ("answer", answer),
                      ("steps", steps), ("threads", threads)] where v < 1 {
      throw ValidationError("--\(name) must be >= 1, got \(v)")
    }
    guard context >= 2, question >= 2, answer >= 2 else {
      throw ValidationError("--context, --question and --answer must be >= 2 (<init> and <eos>)")
    }
    if mode == .decode {
      try reportingErrors { try profileDecode() }
      return
    }
    try reportingErrors {
      let (_, config) = try model.load()
      guard vocab >= 4 else { throw ValidationError("--vocab must be >= 4, got \(vocab)") }
      let plan: Plan
      if let path = self.plan {
        plan = try PlanFile.read(path: path).plan(named: "train", path: path)
      } else {
        var options = CompileOptions()
        if mode == .train { options.differentiate = "loss" }
        options.fuse = !noFuse
        plan = try compile(MQANGraph.forward(config, options: ForwardOptions(decoder: .consistent, loss: true)),
                           options: options).plan
      }
      let params = ParameterInit.initialize(config, seed: seed)
      let exec = try Executor(plan: plan, params: params, threads: threads, options: ExecutorOptions(profile: true))
      let table = EncodedBatch.randomEmbeddings(vocab: vocab, config: config, seed: seed &+ 1)
      let b = EncodedBatch.synthetic(batch: batch, context: context, question: question, answer: answer,
                                     vocab: vocab, config: config, seed: seed &+ 2)
      let feed = b.feed(config: config, embeddings: table)
      var times: [Double] = []
      var loss: Float = 0
      for i in 0...steps {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let out = try exec.run(feed)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        loss = (try? out["loss"]?.floats.first ?? 0) ?? 0
        if i > 0 { times.append(ms) }
        print(String(format: "%@ %d: %.1f ms, loss %.4f", i == 0 ? "warm-up" : "step", i, ms, loss))
      }
      printKernelTable(exec.profile, steps: steps + 1, total: times.reduce(0, +) * Double(steps + 1) / Double(steps))
      times.sort()
      let median = times[times.count / 2]
      let tokens = batch * (context + question + answer)
      let env = ["B": batch, "Tc": context, "Tq": question, "Ta": answer, "Nv": vocab,
                 "X": feed["limited_to_full"]?.count ?? config.generativeVocab]
      let flops = Double(try plan.stats.flops.evaluate(env))
      print(String(format: "\(mode == .train ? "forward+loss+backward" : "forward+loss"): median %.1f ms (min %.1f, max %.1f) over %d steps, %.0f tokens/s, %.1f GFLOP/s, %d threads",
                   median, times.first ?? 0, times.last ?? 0, times.count, Double(tokens) / (median / 1e3),
                   flops / (median / 1e3) / 1e9, threads))
      if json {
        let obj: [String: Any] = [
          "mode": mode.rawValue, "step_ms": median, "step_ms_min": times.first ?? 0, "step_ms_max": times.last ?? 0,
          "tokens_per_s": Double(tokens) / (median / 1e3), "gflops_per_s": flops / (median / 1e3) / 1e9,
          "threads": threads, "peak_rss_bytes": peakRSSBytes(), "loss": Double(loss),
        ]
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
      }
    }
  }
}

extension ProfileCommand {
  /// Greedy decoding of a synthetic batch: the encoder once, then `maxOutput` decoder steps over
  /// the growing prefix (every step, no early stop), timed end to end.
  func profileDecode() throws {
    let (_, config) = try model.load()
    guard maxOutput >= 1 else { throw ValidationError("--max-output must be >= 1, got \(maxOutput)") }
    let params = ParameterInit.initialize(config, seed: seed)
    let decoder = try MQANDecoder(config: config, params: params, mode: .consistent, threads: threads, fuse: !noFuse,
                                  profile: true)
    let table = EncodedBatch.randomEmbeddings(vocab: vocab, config: config, seed: seed &+ 1)
    let b = EncodedBatch.synthetic(batch: batch, context: context, question: question, answer: 2, vocab: vocab,
                                   config: config, seed: seed &+ 2)
    let feed = b.feed(config: config, embeddings: table)
    var times: [Double] = []
    guard beam >= 1 else { throw ValidationError("--beam must be >= 1, got \(beam)") }
    // A beam search whose <eos> id is out of range never finishes early: every step runs.
    let options = BeamSearchOptions(beamSize: beam, maxLength: maxOutput, nBest: 1, eos: -1,
                                    initToken: Int32(config.initToken))
    for i in 0...steps {
      let t0 = DispatchTime.now().uptimeNanoseconds
      if i == 1 { decoder.resetProfiles() }
      _ = try decoder.beamSearch(feed, options: options)
      let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
      if i > 0 { times.append(ms) }
      print(String(format: "%@ %d: %.1f ms", i == 0 ? "warm-up" : "run", i, ms))
    }
    times.sort()
    let median = times[times.count / 2]
    let sentences = Double(batch) / (median / 1e3)
    let (encodeRecords, stepRecords) = decoder.profiles
    print("encode plan (once per batch):")
    printKernelTable(encodeRecords, steps: steps, total: median)
    print("decode-step plan (\(maxOutput) steps per batch):")
    printKernelTable(stepRecords, steps: steps, total: median)
    print(String(format: "decode (beam %d), %d x (%d, %d), %d steps: median %.1f ms, %.1f sentences/s, %d threads",
                 beam, batch, context, question, maxOutput, median, sentences, threads))
    if json {
      let obj: [String: Any] = ["mode": "decode", "step_ms": median, "step_ms_min": times.first ?? 0,
                                "step_ms_max": times.last ?? 0, "sentences_per_s": sentences, "threads": threads,
                                "peak_rss_bytes": peakRSSBytes(), "beam": beam, "max_output": maxOutput]
      print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
    }
  }
}

/// The kernels by time: op, where (IR label through scan bodies), calls, ms per run, % of the run.
func printKernelTable(_ records: [StepProfile], steps: Int, total: Double) {
  var byOp: [String: (calls: Int, ns: UInt64)] = [:]
  for r in records where r.op != .scan {
    byOp[r.op.rawValue, default: (0, 0)].calls += r.calls
    byOp[r.op.rawValue, default: (0, 0)].ns += r.nanoseconds
  }
  let perRun = Double(max(steps, 1))
  print(String(format: "%-22@ %10@ %10@ %6@", "op" as NSString, "calls/run" as NSString, "ms/run" as NSString,
               "%" as NSString))
  for (op, v) in byOp.sorted(by: { $0.value.ns > $1.value.ns }).prefix(15) {
    let ms = Double(v.ns) / 1e6 / perRun
    print(String(format: "%-22@ %10.0f %10.1f %6.1f", op as NSString, Double(v.calls) / perRun, ms, 100 * ms / max(total, 1e-9)))
  }
  print("slowest steps:")
  for r in records.filter({ $0.op != .scan }).sorted(by: { $0.nanoseconds > $1.nanoseconds }).prefix(12) {
    print(String(format: "  %-20@ %-14@ %-8@ calls %6.0f %8.1f ms/run", r.op.rawValue as NSString, r.path as NSString,
                 r.label as NSString, Double(r.calls) / perRun, Double(r.nanoseconds) / 1e6 / perRun))
  }
  let scans = records.filter { $0.op == .scan }.sorted { $0.nanoseconds > $1.nanoseconds }.prefix(8)
  for r in scans {
    print(String(format: "scan %-16@ %@ %10.1f ms/run", r.label as NSString, r.path as NSString,
                 Double(r.nanoseconds) / 1e6 / perRun))
  }
}

/// Peak resident set size of this process (VmHWM).
func peakRSSBytes() -> Int {
  guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
  for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
    let parts = line.split(separator: " ")
    if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
  }
  return 0
}
