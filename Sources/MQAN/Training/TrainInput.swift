import Foundation
import GraphIR

/// Why `mqan train` refused its input: an option, or a file (data, checkpoint, save folder).
public enum TrainError: Error, CustomStringConvertible, Equatable {
  /// A command-line option (`--resume`, `--steps`, `--tasks`, ...) and what is wrong with it.
  case option(String, String)
  /// A file or folder and what is wrong with it, or what could not be done to it.
  case file(String, String)

  public var description: String {
    switch self {
    case .option(let name, let problem): "\(name): \(problem)"
    case .file(let path, let problem): "\(path): \(problem)"
    }
  }
}

extension Trainer {
  /// The options that no file is needed to judge.
  static func check(_ options: TrainOptions) throws(TrainError) {
    guard !options.tasks.isEmpty, !options.tasks.contains(where: \.isEmpty) else {
      throw .option("--tasks", "no task given (e.g. --tasks sst,squad)")
    }
    var seen: Set<String> = []
    for t in options.tasks where !seen.insert(t).inserted {
      throw .option("--tasks", "\(t) is given twice (each task is trained round-robin once)")
    }
    if let n = options.valExamples, n < 1 {
      throw .option("--val-examples", "must be >= 1, got \(n) (validation scores every task)")
    }
  }

  /// Creates the save folder (and its parents), or says why it cannot be one.
  static func makeFolder(_ path: String) throws(TrainError) {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
      guard isDir.boolValue else { throw .file(path, "cannot save here: it is a file, --save needs a folder") }
    } else {
      var prefix = path.hasPrefix("/") ? "" : "."
      for part in path.split(separator: "/") {
        prefix += "/" + part
        if mkdir(prefix, 0o777) != 0 && errno != EEXIST {
          let reason = String(cString: strerror(errno))
          throw .file(path, "cannot create the --save folder" + (prefix == path ? "" : " (at \(prefix))") + ": \(reason)")
        }
      }
    }
    guard access(path, W_OK | X_OK) == 0 else {
      throw .file(path, "cannot save here: \(String(cString: strerror(errno)))")
    }
  }

  /// A task's training examples as decaNLP trains on them: contexts and answers cut to decaNLP's
  /// limits, and examples with an empty context or answer dropped (decaNLP drops them; the count
  /// is reported). An empty result is an error naming the file.
  static func trainingData(_ data: TaskData, report: (TrainEvent) -> Void) throws(TrainError) -> TaskData {
    guard !data.examples.isEmpty else {
      throw .file(data.path, "no training examples (the file is empty)")
    }
    var prepared = data.prepared(policy: .truncate).data
    let before = prepared.examples.count
    prepared.examples.removeAll { $0.context.isEmpty || $0.answer.isEmpty }
    let dropped = before - prepared.examples.count
    guard !prepared.examples.isEmpty else {
      throw .file(data.path, "no training examples: all \(before) have an empty context or answer")
    }
    if dropped > 0 {
      report(.warning("\(data.path): dropped \(dropped) of \(before) training examples with an empty context "
                      + "or answer (as decaNLP)"))
    }
    return prepared
  }

  /// A task's validation examples, prepared as `mqan predict` prepares its input (contexts cut to
  /// decaNLP's limit, every example kept), the first `limit` of them. Empty is an error.
  static func validationData(_ data: TaskData, limit: Int?, report: (TrainEvent) -> Void) throws(TrainError) -> TaskData {
    var (prepared, r) = data.prepared(policy: .truncate)
    if let n = limit { prepared.examples = Array(prepared.examples.prefix(n)) }
    guard !prepared.examples.isEmpty else {
      throw .file(data.path, "no validation examples (each task is validated; the file is empty)")
    }
    if r.truncatedContexts > 0 {
      report(.warning("\(data.path): \(r.truncatedContexts) of \(data.examples.count) contexts truncated to "
                      + "\(LengthLimits.decaNLP.maxContextLength) tokens"))
    }
    if r.truncatedQuestions > 0 {
      report(.warning("\(data.path): \(r.truncatedQuestions) of \(data.examples.count) questions truncated to "
                      + "\(LengthLimits.decaNLP.maxQuestionLength) tokens"))
    }
    return prepared
  }
}
