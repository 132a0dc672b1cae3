import Foundation
import MQAN
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mqan` under `mpirun -np 2` (Open MPI, as CI installs it): data-parallel training follows one
/// process's loss curve and weights, a killed rank ends the job quickly and its last checkpoint
/// resumes on one process, and sharded prediction writes one process's file byte for byte.
/// Skipped, saying so, where `mpirun` is not installed or the binary was built without MPI.
@Suite(.enabled(if: MPIAvailability.unavailable == nil, "\(MPIAvailability.unavailable ?? "")"))
struct MPITests {
  static var mpirun: String? { MPIAvailability.mpirun }

  /// `mpirun -np <ranks> mqan <args>` as CI runs it (root allowed, more ranks than cores allowed).
  static func launch(_ ranks: Int, _ args: [String]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirun!)
    p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", try CLITests.binary().path] + args
    // Containers (CI's) often forbid the cross-process memory reads of Open MPI's shared-memory
    // single copy, which then fails every large message; plain copies work everywhere.
    var env = ProcessInfo.processInfo.environment
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = env["OMPI_MCA_btl_vader_single_copy_mechanism"] ?? "none"
    p.environment = env
    return p
  }

  static func runMPI(_ ranks: Int, _ args: [String]) throws -> CLITests.Result {
    let p = try launch(ranks, args)
    return try CLITests.collect(p)
  }

  // MARK: - 2 ranks = 1 process

  /// 20 steps of 2 ranks and of 1 process, same global batch (--batch-tokens) and seed, dropout
  /// off (the ranks' shares draw their own masks): every step's loss within 1e-6 relative, the
  /// same task and learning rate, the same validation scores (multi30k's BLEU is not 0), and the
  /// weights after them within 1e-5.
  @Test func twoRanksFollowOneProcess() throws {
    let dir = try TrainResumeTests.tempDir("mpi-equal")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try TrainResumeTests.writeVectors(in: dir)
    func args(_ save: String) -> [String] {
      TrainResumeTests.trainArgs(tasks: "sst,multi30k.en.de", vectors: vectors, save: save,
                                 ["--steps", "20", "--save-every", "20", "--val-every", "20", "--dropout", "0"])
    }
    let one = dir.appendingPathComponent("one"), two = dir.appendingPathComponent("two")
    _ = try TrainResumeTests.train(args(one.path))
    let r = try Self.runMPI(2, args(two.path))
    try #require(r.status == 0, "mpirun -np 2 mqan train exited \(r.status): \(r.stderr.suffix(2000))")
    let a = try TrainResumeTests.stepRows(one), b = try TrainResumeTests.stepRows(two)
    try #require(a.count == 20 && b.count == 20, "steps logged: \(a.count) and \(b.count)")
    for (x, y) in zip(a, b) {
      #expect(x.step == y.step && x.task == y.task && x.lr == y.lr, "\(x) vs \(y)")
      #expect(abs(x.loss - y.loss) <= 1e-6 * abs(x.loss), "step \(x.step): loss \(x.loss) vs \(y.loss)")
    }
    // Rank 0 alone wrote the log, and it says the job had 2 ranks; validation (each rank decodes
    // a share of the batches) scores what one process scores.
    let log = try String(contentsOf: two.appendingPathComponent("log.jsonl"), encoding: .utf8)
    func scores(_ text: String) -> [String] {
      text.split(separator: "\n").filter { $0.contains("\"score\"") || $0.contains("\"decascore\"") }
        .map { $0.replacingOccurrences(of: #""elapsed_s":[0-9.e+-]+,?"#, with: "", options: .regularExpression) }
    }
    let oneLog = try String(contentsOf: one.appendingPathComponent("log.jsonl"), encoding: .utf8)
    #expect(scores(log).count == 3 && scores(log) == scores(oneLog), "\(scores(log)) vs \(scores(oneLog))")
    #expect(log.split(separator: "\n").filter { $0.contains("\"loss\"") }.allSatisfy { $0.contains("\"ranks\":2") })
    let w1 = try Checkpoint.read(path: one.appendingPathComponent("latest.safetensors").path).parameters
    let w2 = try Checkpoint.read(path: two.appendingPathComponent("latest.safetensors").path).parameters
    #expect(Set(w1.keys) == Set(w2.keys))
    var worst = (name: "", diff: Float(0))
    for (name, t) in w1 {
      let p = try t.floats, q = try #require(w2[name]).floats
      try #require(p.count == q.count, "\(name): \(p.count) vs \(q.count) floats")
      for i in p.indices where abs(p[i] - q[i]) > worst.diff { worst = (name, abs(p[i] - q[i])) }
    }
    #expect(worst.diff <= 1e-5, "weights differ by \(worst.diff) in \(worst.name)")
    // The gradient sum overlapped with the backward pass (logged) gives the bits of the sum
    // after it: the same weights and optimizer state.
    var runs: [String: Checkpoint] = [:]
    for mode in ["on", "off"] {
      let save = dir.appendingPathComponent("overlap-\(mode)")
      let r = try Self.runMPI(2, args(save.path) + ["--overlap-gradient-sum", mode])
      try #require(r.status == 0, "--overlap-gradient-sum \(mode) exited \(r.status): \(r.stderr.suffix(2000))")
      let text = try String(contentsOf: save.appendingPathComponent("log.jsonl"), encoding: .utf8)
      #expect(text.contains("\"overlap\":\(mode == "on")"), "\(mode)")
      runs[mode] = try Checkpoint.read(path: save.appendingPathComponent("latest.safetensors").path)
    }
    let overlapped = try #require(runs["on"]), sequential = try #require(runs["off"])
    #expect(overlapped.parameters == sequential.parameters && overlapped.optimizer == sequential.optimizer)
  }

  // MARK: - A dead rank

  /// The pid of rank `rank` among the children of `mpirun` (by OMPI_COMM_WORLD_RANK), or nil.
  static func rankPid(parent: Int32, rank: Int) -> Int32? {
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
      guard let pid = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")") else { continue }
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      guard fields.count > 2, Int32(fields[1]) == parent,
            let env = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")) else { continue }
      if env.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }) {
        return pid
      }
    }
    return nil
  }

  /// Rank 1 killed with SIGKILL after step 20: mpirun ends the job with a non-zero status and
  /// names the rank within 20 seconds; the last checkpoint is whole and one process resumes it.
  @Test func deadRankEndsTheJobAndOneProcessResumes() throws {
    let dir = try TrainResumeTests.tempDir("mpi-kill")
    defer { try? FileManager.default.removeItem(at: dir) }
    let vectors = try TrainResumeTests.writeVectors(in: dir)
    let save = dir.appendingPathComponent("run")
    let common = ["--save-every", "5", "--val-every", "1000", "--seed", "5"]
    let p = try Self.launch(2, TrainResumeTests.trainArgs(tasks: "sst,squad", vectors: vectors, save: save.path,
                                                          common + ["--steps", "2000"]))
    let out = Pipe()
    let errPath = dir.appendingPathComponent("stderr.txt")
    FileManager.default.createFile(atPath: errPath.path, contents: nil)
    p.standardOutput = out
    p.standardError = try FileHandle(forWritingTo: errPath)  // a file: no read can block on a hung job
    try p.run()
    defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
    var text = ""
    while !text.split(separator: "\n").contains(where: { $0.hasPrefix("step 20/") }) {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
    }
    try #require(p.isRunning, "the job ended (status \(p.terminationStatus)) before a rank could be killed: \(text.suffix(500))")
    let victim = try #require(Self.rankPid(parent: p.processIdentifier, rank: 1), "no rank 1 among mpirun's children")
    let killed = Date()
    #expect(kill(victim, SIGKILL) == 0)
    while p.isRunning && Date().timeIntervalSince(killed) < 20 { usleep(50_000) }
    let seconds = Date().timeIntervalSince(killed)
    try #require(!p.isRunning, "mpirun still running 20 s after rank 1 died")
    let message = try String(contentsOf: errPath, encoding: .utf8)
    #expect(p.terminationStatus != 0)
    #expect(message.contains("rank 1") && message.contains("signal 9"), "stderr: \(message.suffix(1000))")
    #expect(seconds < 20, "the job took \(seconds) s to end")

    let step = try TrainResumeTests.checkpointStep(save.appendingPathComponent("latest.safetensors").path)
    #expect(step >= 20 && step % 5 == 0, "latest checkpoint at step \(step)")
    let r = try TrainResumeTests.train(TrainResumeTests.trainArgs(tasks: "sst,squad", vectors: vectors, save: save.path,
                                                                  common + ["--steps", "\(step + 4)", "--resume"]))
    #expect(r.stdout.contains("step \(step + 1)/"), "the resumed run did not start at \(step + 1): \(r.stdout.suffix(500))")
    #expect(try TrainResumeTests.stepRows(save).last?.step == step + 4)
    #expect(try TrainResumeTests.checkpointStep(save.appendingPathComponent("latest.safetensors").path) == step + 4)
  }

  // MARK: - Sharded predict

  /// Greedy and beam answers of 2 ranks (batches of 3, so both ranks decode several) are one
  /// process's file byte for byte, and the metrics lines are the same.
  @Test func shardedPredictWritesOneProcesssFile() throws {
    let checkpoint = try PredictTests.checkpoint()
    let dir = try TrainResumeTests.tempDir("mpi-predict")
    defer { try? FileManager.default.removeItem(at: dir) }
    for extra in [[], ["--beam", "2", "--n-best", "2"]] {
      let one = dir.appendingPathComponent("one.jsonl").path, two = dir.appendingPathComponent("two.jsonl").path
      let args = ["predict", "--checkpoint", checkpoint, "--data", PredictTests.data, "--tasks", "sst,multi30k.en.de",
                  "--batch-size", "3", "--max-output", "6", "--threads", "1", "--metrics"] + extra
      let a = try CLITests.run(args + ["--out", one])
      try #require(a.status == 0, "\(a.stderr)")
      let b = try Self.runMPI(2, args + ["--out", two])
      try #require(b.status == 0, "mpirun -np 2 mqan predict exited \(b.status): \(b.stderr.suffix(2000))")
      let x = try Data(contentsOf: URL(fileURLWithPath: one)), y = try Data(contentsOf: URL(fileURLWithPath: two))
      #expect(x.count > 0 && x == y, "\(extra): the 2-rank file differs from one process's")
      #expect(a.stdout == b.stdout, "metrics: \(a.stdout) vs \(b.stdout)")
    }
  }
}

/// Whether `mpirun` and an MPI build of mqan are here.
enum MPIAvailability {
  /// `mpirun` on the PATH, or nil.
  static let mpirun: String? = {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    return dirs.map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
  }()

  /// Why the MPI tests cannot run here (nil: they can).
  static let unavailable: String? = {
    guard mpirun != nil else { return "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)" }
    guard let r = try? CLITests.run(["--version"]), r.stdout.contains("MPI: Open MPI") else {
      return "this mqan was built without MPI (install libopenmpi-dev and rebuild)"
    }
    return nil
  }()
}
