import ArgumentParser
import Compiler
import Foundation
import GraphIR
import MQAN
import Runtime

/// `mqan profile forward|train|decode`: times MQAN on synthetic ids and shows where the time goes.
struct ProfileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "profile",
    abstract: "Time a training step or batched decoding and show where the time goes, kernel by kernel.",
    discussion: """
      Runs on synthetic ids of the given shapes: one warm-up run, then --steps timed runs. Prints the \
      phases (forward, backward, optimizer; encode, decode-step, beam search), each phase's slowest \
      kernels named as the IR names them (op and node, with their path through scan bodies), with \
      calls, ms and share of the run, GFLOP/s and the bytes their operands occupy; the header names \
      the GEMM path and this machine's roofline (FMA peak, L2 / LLC / memory read bandwidth, measured \
      once and cached in ~/.cache/mqan/roofline.json; --no-roofline skips it), and each kernel gets \
      its arithmetic intensity, bounding roof, % of it and compute or memory bound; --trace writes \
      every kernel execution on every thread as a Chrome trace (Perfetto, chrome://tracing).
      """)

  enum Mode: String, ExpressibleByArgument, CaseIterable { case forward, train, decode }

  @Argument(help: """
    What to time: forward (teacher-forced forward pass + loss), train (forward + loss + backward + \
    decaNLP's Adam step) or decode (the encoder, then --max-output decoding steps, all of them).
    """)
  var mode: Mode
  @OptionGroup var model: ModelOptions
  @OptionGroup var gemm: GemmOption
  @OptionGroup var precision: PrecisionOption
  @Option(help: "decode: a vocabulary shortlist of the N most frequent words plus the batch's words (predict --shortlist; 0: none).")
  var shortlist = 0
  @Option(help: "Profile a checkpoint of mqan train (its config, weights and word-vector table) instead of a preset.")
  var checkpoint: String?
  @Option(help: """
    Profile a real batch: the first --batch examples of this decaNLP JSONL file, encoded with the \
    --checkpoint's vocabulary (shapes come from the data; --context, --question, --answer are ignored).
    """) var data: String?
  @Option(help: "Batch size (1...4096).") var batch = 32
  @Option(help: "Context length (tokens, counting <init> and <eos>; 2...4096).") var context = 256
  @Option(help: "Question length (2...4096).") var question = 16
  @Option(help: "Answer length (train and forward; 2...4096).") var answer = 32
  @Option(help: "Words in the full vocabulary the random ids come from (4...2000000).") var vocab = 60_000
  @Option(help: "Timed runs (after one warm-up run; 1...10000).") var steps = 3
  @Option(help: "Threads (1...256).") var threads = 2
  @Option(help: "Decode: output steps (all of them are run; 1...1000).") var maxOutput = 32
  @Option(help: "Decode: beam size (1: greedy; 1...64).") var beam = 1
  @Option(help: "Seed for weights and ids.") var seed: UInt64 = 1
  @Option(help: "Run this plan file (from mqan compile -o) instead of compiling the model (train and forward only).")
  var plan: String?
  @Option(help: """
    Compile and run this graph (text IR, FILE.mqir: a model variant edited from IR/*.train.mqir) \
    instead of the model's own train graph, on the same synthetic batch (forward and train only; \
    train differentiates its "loss" output unless it has grad.* outputs already).
    """)
  var graph: String?
  @Option(help: "Write a Chrome trace of the timed runs (one lane per thread, one event per kernel).")
  var trace: String?
  @Flag(help: "Run the unfused plans (no fusion passes), for comparison.") var noFuse = false
  @Flag(help: "Skip the roofline calibration (no roofs in the header, no AI / %roof / bound columns).")
  var noRoofline = false
  @Flag(help: "After each stage of every plan run, check its outputs for NaN and infinities; the first one is an error naming its plan step and IR node (costs about one more read of what each run writes).")
  var checkNumerics = false
  @Flag(help: "End with one JSON object.") var json = false

  /// Kernel events kept per thread for --trace.
  static let traceCapacity = 1 << 19

  func run() throws {
    for (name, v, r) in [("batch", batch, 1...Limits.batch), ("context", context, 2...Limits.sequence),
                         ("question", question, 2...Limits.sequence), ("answer", answer, 2...Limits.sequence),
                         ("steps", steps, 1...10_000), ("threads", threads, 1...Limits.threads),
                         ("max-output", maxOutput, 1...Limits.maxOutput), ("beam", beam, 1...Limits.beam),
                         ("vocab", vocab, 4...Limits.vocabulary)] {
      try checkRange(name, v, r)
    }
    if let path = trace { try checkWritable(path, option: "trace") }
    try checkRange("shortlist", shortlist, 0...Limits.vocabulary)
    if mode != .decode && shortlist > 0 { throw ValidationError("--shortlist applies to `profile decode`") }
    if mode != .decode && precision.isReduced {
      throw ValidationError("--precision \(precision.precision) applies to `profile decode` (training and the loss run fp32)")
    }
    if mode == .decode && plan != nil {
      throw ValidationError("--plan applies to profile forward and train; decode compiles its encode and decode-step plans")
    }
    if mode == .decode && graph != nil {
      throw ValidationError("--graph applies to profile forward and train; decode compiles its encode and decode-step plans")
    }
    if plan != nil && graph != nil { throw ValidationError("give --plan or --graph, not both") }
    try reportingErrors {
      if mode == .decode { try profileDecode() } else { try profileTrain() }
    }
  }

  var traceCapacity: Int { trace == nil ? 0 : Self.traceCapacity }

  /// The model: a preset or config with PyTorch's default initialisation and a random table of
  /// `--vocab` rows, or a checkpoint's config, weights and table (ids then range over its rows).
  func loadModel() throws -> (config: ModelConfig, params: [String: HostTensor], table: HostTensor,
                               vocabulary: Vocabulary?, metadata: [String: String]) {
    guard let path = checkpoint else {
      if data != nil { throw ValidationError("--data needs --checkpoint (its vocabulary encodes the examples)") }
      let (name, config) = try model.load()
      try config.checkMemory(tableRows: vocab, source: model.config == nil ? "--preset \(name)" : name)
      let ids = Limits.product([batch, context + question + answer, 64]) ?? Int.max
      if let problem = Limits.memoryProblem(ids, "the synthetic batch (--batch \(batch) x its lengths)") {
        throw ValidationError(problem)
      }
      return (config, ParameterInit.initialize(config, seed: seed),
              EncodedBatch.randomEmbeddings(vocab: vocab, config: config, seed: seed &+ 1), nil, [:])
    }
    if model.preset != nil || model.config != nil { throw ValidationError("give --checkpoint or a model, not both") }
    let ck = try Checkpoint.read(path: path)
    let config = try ModelConfig.decode(Data(ck.modelConfig.utf8), source: "\(path): __metadata__ key \"model_config\"")
    var params = ck.parameters
    guard let table = params.removeValue(forKey: "embeddings"), table.shape.count == 2, table.shape[0] >= 4 else {
      throw CheckpointError.missingTensor(file: path, tensor: "embeddings", reason: "the word-vector table")
    }
    // (decaNLP's linear_in weights are not in mqan's checkpoints; no plan reads them, and a weight
    // a plan does read but the checkpoint lacks is the executor's error, not a random fill.)
    let vocabulary = try Vocabulary(jsonData: Data(ck.vocabulary.utf8), source: path)
    return (config, params, table, vocabulary, ck.extra)
  }

  /// The batch to profile: the first `--batch` examples of `--data` (contexts cut to decaNLP's
  /// limit), or synthetic ids of the given shapes over `vocab` words.
  func profileBatch(config: ModelConfig, vocabulary: Vocabulary?, vocab: Int, answerLength: Int) throws -> EncodedBatch {
    guard let path = data, let vocabulary else {
      return EncodedBatch.synthetic(batch: batch, context: context, question: question, answer: answerLength,
                                    vocab: vocab, config: config, seed: seed &+ 2)
    }
    let examples = try JSONLReader.read(path: path)
    guard !examples.isEmpty else { throw ValidationError("--data \(path) holds no examples") }
    let prepared = TaskData(task: "profile", path: path, examples: Array(examples.prefix(batch))).prepared(policy: .truncate).data
    let encoded = prepared.encoded(with: vocabulary)
    return EncodedBatch(context: encoded.map { (e: EncodedExample) in e.context },
                        question: encoded.map { (e: EncodedExample) in e.question },
                        answer: encoded.map { (e: EncodedExample) in answerLength == 2 ? [config.initToken, config.eos] : e.answer })
  }

  /// The batch's real dims (B, Tc, Tq, Ta) from its feed.
  func dims(_ feed: [String: HostTensor]) -> (b: Int, tc: Int, tq: Int, ta: Int) {
    let c = feed["context"]?.shape ?? [batch, context], q = feed["question"]?.shape ?? [batch, question]
    return (c[0], c[1], q[1], feed["answer"]?.shape.last ?? answer)
  }

  /// Median, min and max of the timed runs.
  func summarize(_ times: [Double]) -> (median: Double, min: Double, max: Double) {
    let t = times.sorted()
    return (t[t.count / 2], t.first ?? 0, t.last ?? 0)
  }

  func printJSON(_ obj: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
  }
}

extension ProfileCommand {
  /// forward: the forward pass and loss; train: forward, backward and decaNLP's Adam step.
  func profileTrain() throws {
    let (config, params, table, vocabulary, _) = try loadModel()
    let vocab = table.shape[0]
    let plan: Plan
    if let path = self.plan {
      plan = try PlanFile.read(path: path).plan(named: "train", path: path)
    } else {
      var options = CompileOptions()
      options.gemm = try gemm.target()
      if mode == .train { options.differentiate = "loss" }
      options.fuse = !noFuse
      // `train` times what `mqan train` runs, dropout included (decaNLP's training step has it on
      // too); `forward` the graph without dropout that the parity fixtures check.
      let plans = mode == .train ? MQANPlanOptions.training() : MQANPlanOptions()
      let source: Graph
      if let path = graph {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
          throw ValidationError("\(path): cannot read the graph file (\(error.localizedDescription))")
        }
        source = try Graph(parsing: text, file: path)
        // A graph already differentiated (the checked-in goldens are compiled graphs, with their
        // grad.* outputs) is not differentiated again.
        if source.outputs.contains(where: { $0.name.hasPrefix("grad.") }) { options.differentiate = nil }
      } else {
        source = try MQANPlans.graph(kind: .train, config: config, options: plans)
      }
      plan = try compile(source, options: options).plan
    }
    let training = plan.outputs.contains { $0.name.hasPrefix("grad.") }
    let exec = try Executor(plan: plan, params: params, threads: threads,
                            options: ExecutorOptions(profile: true, traceCapacity: traceCapacity,
                                                     checkNumerics: checkNumerics))
    let optimizer = training
      ? try AdamOptimizer(config: .decaNLP(dimension: config.dimension), parameters: exec.parameterBuffers(),
                          threads: threads)
      : nil
    let b = try profileBatch(config: config, vocabulary: vocabulary, vocab: vocab, answerLength: answer)
    var feed = b.feed(config: config, embeddings: table)
    // A plan with training dropout (train, or a saved `mqan compile` train plan) takes the step's mask seed.
    let takesSeed = plan.inputs.contains { i in
      if case .input("dropout_seed") = plan.buffers[i].storage { return true } else { return false }
    }
    if takesSeed { feed["dropout_seed"] = HostTensor(shape: [1], int32s: [1]) }
    var times: [Double] = [], adamMs: [Double] = []
    var chrome = ChromeTrace()
    var adamIntervals: [(UInt64, UInt64)] = []
    var loss: Float = 0
    for i in 0...steps {
      if i == 1 { exec.resetProfile() }
      let t0 = monotonicNow()
      let out = try exec.run(feed)
      let t1 = monotonicNow()
      if let optimizer { _ = try optimizer.step(grads: out, prefix: "grad.") }
      let t2 = monotonicNow()
      loss = (try? out["loss"]?.floats.first ?? 0) ?? 0
      let ms = Double(t2 - t0) / 1e6
      if i > 0 {
        times.append(ms)
        adamMs.append(Double(t2 - t1) / 1e6)
        adamIntervals.append((t1, t2))
      }
      print(String(format: "%@ %d: %.1f ms, loss %.4f", i == 0 ? "warm-up" : "step", i, ms, loss))
    }
    let (median, lo, hi) = summarize(times)
    let shape = dims(feed)
    let env = ["B": shape.b, "Tc": shape.tc, "Tq": shape.tq, "Ta": shape.ta, "Nv": vocab,
               "X": feed["limited_to_full"]?.count ?? config.generativeVocab]
    let backward = plan.backwardSteps
    var report = ProfileReport()
    report.add(exec.profile, plan: plan, env: env, runs: steps) { backward.contains($0) ? "backward" : "forward" }
    report.addWall(Double(exec.wallNanoseconds) / 1e6 / Double(max(exec.wallRuns, 1)), rowsFrom: 0)
    if optimizer != nil { report.phases.append(("optimizer", adamMs.reduce(0, +) / Double(adamMs.count))) }
    try measureRoofline(into: &report)
    let mean = times.reduce(0, +) / Double(times.count)
    report.print(total: mean)
    if let path = trace {
      chrome.add(exec.trace.events) { e in
        let top = Int(e.path.split(separator: "/").dropFirst().first ?? "") ?? 0
        return backward.contains(top) ? "backward" : "forward"
      }
      for (s, e) in adamIntervals { chrome.addHost("adam (clip + update)", phase: "optimizer", start: s, end: e) }
      try chrome.write(to: path, threads: threads)
      print("trace: \(path) (\(exec.trace.events.count) kernel events\(exec.trace.dropped > 0 ? ", \(exec.trace.dropped) dropped" : ""))")
    }
    let tokens = shape.b * (shape.tc + shape.tq + shape.ta)
    let flops = Double(try plan.stats.flops.evaluate(env))
    let what = training ? "forward+loss+backward+adam" : "forward+loss"
    print(String(format: "\(what): median %.1f ms (min %.1f, max %.1f) over %d steps, %.0f tokens/s, %.1f GFLOP/s, %d threads",
                 median, lo, hi, times.count, Double(tokens) / (median / 1e3), flops / (median / 1e3) / 1e9, threads))
    if json {
      try printJSON(["mode": mode.rawValue, "step_ms": median, "step_ms_min": lo, "step_ms_max": hi,
                     "tokens_per_s": Double(tokens) / (median / 1e3), "gflops_per_s": flops / (median / 1e3) / 1e9,
                     "threads": threads, "peak_rss_bytes": peakRSSBytes(), "loss": Double(loss),
                     "optimizer_ms": adamMs.isEmpty ? 0 : summarize(adamMs).median]
                      .merging(report.json(total: mean)) { a, _ in a })
    }
  }

  /// Decoding of a synthetic batch: the encoder once, then `maxOutput` decode-step runs for all
  /// B x K hypotheses (no early stop: the end token is out of range), timed end to end.
  func profileDecode() throws {
    let (config, params, table, vocabulary, metadata) = try loadModel()
    let vocab = table.shape[0]
    let decoder = try MQANDecoder(config: config, params: params, mode: .consistent, threads: threads, fuse: !noFuse,
                                  profile: true, traceCapacity: traceCapacity, gemm: try gemm.target(),
                                  precision: try precision.target(checkpoint: metadata), shortlist: shortlist > 0,
                                  checkNumerics: checkNumerics)
    let b = try profileBatch(config: config, vocabulary: vocabulary, vocab: vocab, answerLength: 2)
    let ids = shortlist > 0 ? Shortlist(frequent: shortlist).ids(generativeVocab: config.generativeVocab, task: nil,
                                                                 contexts: b.context, questions: b.question) : nil
    if let ids { print("shortlist: \(ids.count) of \(config.generativeVocab) words in this batch") }
    let feed = b.feed(config: config, embeddings: table)
    let options = BeamSearchOptions(beamSize: beam, maxLength: maxOutput, nBest: 1, eos: -1,
                                    initToken: Int32(config.initToken))
    var times: [Double] = []
    var chrome = ChromeTrace()
    var runs: [(UInt64, UInt64)] = []
    for i in 0...steps {
      if i == 1 { decoder.resetProfiles() }
      let t0 = monotonicNow()
      _ = try decoder.beamSearch(feed, options: options, shortlist: ids)
      let t1 = monotonicNow()
      if i > 0 {
        times.append(Double(t1 - t0) / 1e6)
        runs.append((t0, t1))
      }
      print(String(format: "%@ %d: %.1f ms", i == 0 ? "warm-up" : "run", i, Double(t1 - t0) / 1e6))
    }
    let (median, lo, hi) = summarize(times)
    let mean = times.reduce(0, +) / Double(times.count)
    let x = feed["limited_to_full"]?.count ?? config.generativeVocab
    let shape = dims(feed)
    var env = ["B": shape.b, "Tc": shape.tc, "Tq": shape.tq, "Nv": vocab, "X": x, "K": beam, "S": maxOutput]
    if let ids { env["N"] = ids.count }
    let (encodeRecords, stepRecords) = decoder.profiles
    let plans = decoder.plans
    var report = ProfileReport()
    report.add(encodeRecords, plan: plans.encode, env: env, runs: steps) { _ in "encode" }
    report.add(stepRecords, plan: plans.step, env: env, runs: steps) { _ in "decode-step" }
    let wall = decoder.wallNanoseconds
    let encodeMs = Double(wall.encode) / 1e6 / Double(steps), stepMs = Double(wall.step) / 1e6 / Double(steps)
    report.phases += [("encode", encodeMs), ("decode-step", stepMs)]
    // Beam search proper: the time outside both plans (candidate selection, feeds, copies).
    report.phases.append(("beam search", max(mean - encodeMs - stepMs, 0)))
    try measureRoofline(into: &report)
    report.print(total: mean)
    if let path = trace {
      let traces = decoder.traces
      chrome.add(traces.encode) { _ in "encode" }
      chrome.add(traces.step) { _ in "decode-step" }
      for (s, e) in runs { chrome.addHost("beam search (beam \(beam), \(maxOutput) steps)", phase: "beam search", start: s, end: e) }
      try chrome.write(to: path, threads: threads)
      print("trace: \(path) (\(traces.encode.count + traces.step.count) kernel events\(traces.dropped > 0 ? ", \(traces.dropped) dropped" : ""))")
    }
    let sentences = Double(shape.b) / (median / 1e3)
    let flops = report.flopsPerRun
    print(String(format: "decode (beam %d), %d x (%d, %d), %d steps: median %.1f ms (min %.1f, max %.1f), %.1f sentences/s, %.1f GFLOP/s, %d threads",
                 beam, shape.b, shape.tc, shape.tq, maxOutput, median, lo, hi, sentences, flops / (median / 1e3) / 1e9,
                 threads))
    if json {
      try printJSON(["mode": "decode", "step_ms": median, "step_ms_min": lo, "step_ms_max": hi,
                     "sentences_per_s": sentences, "tokens_per_s": sentences * Double(maxOutput),
                     "gflops_per_s": flops / (median / 1e3) / 1e9, "threads": threads,
                     "peak_rss_bytes": peakRSSBytes(), "beam": beam, "max_output": maxOutput]
                      .merging(report.json(total: mean)) { a, _ in a })
    }
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
