import Foundation
import MQAN
import Testing

/// `mqan compile` shows the graphs the other commands run, and compiles graphs from their text.
@Suite struct CompileTests {
  static let goldens: [String] = {
    let dir = CLITests.repoRoot.appendingPathComponent("IR")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { $0.hasSuffix(".mqir") }.sorted()
  }()

  /// `mqan compile --plan train` (training's default dropout, 0.2) prints exactly the graph the
  /// trainer compiles and runs; `--dropout 0` the parity graph, as checked in.
  @Test func trainPlanIsWhatTheTrainerRuns() throws {
    let save = try TrainResumeTests.tempDir("compile-vs-trainer")
    defer { try? FileManager.default.removeItem(at: save) }
    let vectors = try TrainResumeTests.writeVectors(in: save)
    var options = TrainOptions(dataDir: TrainResumeTests.data, tasks: ["sst"],
                               config: try #require(ModelConfig.presets["tiny"]), save: save.path)
    options.embeddings = vectors
    options.threads = 1
    #expect(options.dropout == nil, "the trainer's default dropout is under test")
    let trainer = try Trainer(options) { _ in }
    let configPath = save.appendingPathComponent("config.json").path
    try Data(trainer.config.json().utf8).write(to: URL(fileURLWithPath: configPath))
    let r = try CLITests.run(["compile", "--config", configPath, "--plan", "train", "--emit", "ir"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout == trainer.trainGraph.text() + "\n", "mqan compile --plan train differs from the trainer's graph")
    #expect(r.stdout.contains("dropout_mask"))
    #expect(MQANPlans.trainingDropout == 0.2, "decaNLP's dropout_ratio")
    // With --dropout 0: the parity graph, as checked in.
    let plain = try CLITests.run(["compile", "--preset", "tiny", "--plan", "train", "--emit", "ir", "--dropout", "0"])
    let golden = try String(contentsOf: CLITests.repoRoot.appendingPathComponent("IR/tiny.train.mqir"), encoding: .utf8)
    #expect(plain.stdout == golden)
  }

  /// Every checked-in graph compiles from its text through `mqan compile FILE.mqir`, with every
  /// report, and passes through the pipeline unchanged (the goldens are already compiled).
  @Test(arguments: goldens)
  func goldenGraphCompilesFromItsText(file: String) throws {
    let path = CLITests.repoRoot.appendingPathComponent("IR/\(file)").path
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let ir = try CLITests.run(["compile", path, "--emit", "ir"])
    #expect(ir.status == 0, "\(ir.stderr)")
    #expect(ir.stdout == text, "\(file) changed on a second trip through the pipeline")
    for emit in ["summary", "plan", "kernels", "memory"] {
      let r = try CLITests.run(["compile", path, "--emit", emit])
      #expect(r.status == 0 && !r.stdout.isEmpty, "--emit \(emit): \(r.stderr)")
    }
    let plan = CLITests.repoRoot.appendingPathComponent("IR/\(file.dropLast(5)).plan")
    let p = try CLITests.run(["compile", path, "--emit", "plan", "--gemm", "openblas"])
    // The same plan; only the node count before the passes differs (the golden is already compiled).
    func withoutNodesBefore(_ text: String) -> String {
      text.replacingOccurrences(of: #"stats: nodes \d+ ->"#, with: "stats: nodes ->", options: .regularExpression)
    }
    #expect(withoutNodesBefore(p.stdout) == withoutNodesBefore(try String(contentsOf: plan, encoding: .utf8)),
            "the plan of \(file)")
  }

  @Test func goldensExist() { #expect(Self.goldens.count == 6) }

  @Test func badGraphFilesGiveOneLine() throws {
    try CLITests.expectOneLineError(["compile", "/no/such/graph.mqir"], mentions: "/no/such/graph.mqir")
    let bad = try CLITests.tempFile("bad.mqir", Array("graph @g {\n  %0 = frobnicate : f32[]\n}\n".utf8))
    try CLITests.expectOneLineError(["compile", bad], mentions: "frobnicate")
    try CLITests.expectOneLineError(["compile", "--preset", "tiny", "--dropout", "1.5"], mentions: "--dropout")
    try CLITests.expectOneLineError(["compile", "--preset", "tiny", "--decoder", "x"], mentions: "--decoder")
  }
}

/// `--precision`: `--emit kernels` names the converted output layer and its path (AVX2 or the
/// portable one on a CPU without AVX512_VNNI, said on stderr); the train plan refuses it.
@Suite struct CompilePrecisionTests {
  @Test func kernelsShowTheConvertedOutputLayer() throws {
    let args = ["compile", "--preset", "tiny", "--plan", "decode-step", "--emit", "kernels", "--precision", "int8"]
    let r = try CLITests.run(args)
    #expect(r.status == 0, "\(r.stderr)")
    let converted = r.stdout.split(separator: "\n").filter { $0.contains("mq_qlinear") }
    #expect(converted.count == 1 && converted[0].contains("mq_qlinear int8+bias"), "\(r.stdout)")
    let emulated = try BadInputTests.run(args, env: ["MQAN_DISABLE_ISA": "avx512_vnni,avx2"])
    #expect(emulated.status == 0)
    #expect(emulated.stdout.contains("mq_qlinear int8+bias  [portable,"), "\(emulated.stdout)")
    #expect(emulated.stderr.contains("lacks AVX512_VNNI") && emulated.stderr.contains("emulated"), "\(emulated.stderr)")
    // Without VNNI but with AVX2 (every x86-64 machine this project runs on has it): the AVX2 path.
    #if arch(x86_64)
    let avx2 = try BadInputTests.run(args, env: ["MQAN_DISABLE_ISA": "avx512_vnni"])
    #expect(avx2.status == 0)
    #expect(avx2.stdout.contains("mq_qlinear int8+bias  [avx2,"), "\(avx2.stdout)")
    #expect(avx2.stderr.contains("lacks AVX512_VNNI") && avx2.stderr.contains("runs on the AVX2 path"), "\(avx2.stderr)")
    #endif
    let train = ["compile", "--preset", "tiny", "--plan", "train", "--precision", "bf16"]
    BadInputTests.expectError(try CLITests.run(train), train, mentions: ["--precision", "train plan runs fp32"])
    let unknown = ["compile", "--preset", "tiny", "--plan", "encode", "--precision", "fp16"]
    BadInputTests.expectError(try CLITests.run(unknown), unknown, mentions: ["--precision", "fp16"])
  }
}
