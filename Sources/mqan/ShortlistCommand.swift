import ArgumentParser
import Foundation
import MQAN

/// `mqan shortlist`: learns each task's answer words from a data folder into a checkpoint, for
/// `mqan predict --shortlist N`.
struct ShortlistCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "shortlist",
    abstract: "Learn each task's answer words (for predict --shortlist) from training data into a checkpoint.",
    discussion: """
      Reads DIR/<task>/train.jsonl for each task, tokenizes the answers with the checkpoint's vocabulary and \
      writes the checkpoint again (to --out, atomically) with its answer_words metadata: per task, the \
      generative words of its training answers. Checkpoints of mqan train already hold them for the tasks \
      they trained on; this adds tasks or other data. Existing tasks' words are replaced.
      """)

  @Option(help: "The checkpoint (mqan train's .safetensors).") var checkpoint: String
  @Option(help: "Data folder: one folder per task with train.jsonl.") var data: String
  @Option(help: "Tasks (comma-separated; default: every folder of --data with a train.jsonl).") var tasks: String?
  @Option(name: [.short, .long], help: "The checkpoint to write (may be --checkpoint itself).") var out: String

  func run() throws {
    let requested = try tasks.map(taskList)
    try checkWritable(out, option: "out")
    try reportingErrors {
      var ck = try Checkpoint.read(path: checkpoint)
      let config = try ModelConfig.decode(Data(ck.modelConfig.utf8),
                                          source: "\(checkpoint): __metadata__ key \"model_config\"")
      let vocabulary = try Vocabulary(jsonData: Data(ck.vocabulary.utf8), source: checkpoint)
      let names = try requested ?? Self.taskFolders(data)
      var learned: [(task: String, answers: [[Int]])] = []
      for task in names {
        let train = try TaskData.load(root: data, task: task, split: "train")
        learned.append((task, train.examples.map { vocabulary.encode($0.answer) }))
      }
      var words = try ck.extra[AnswerWords.metadataKey].map {
        try AnswerWords(json: $0, generativeVocab: config.generativeVocab)
      } ?? AnswerWords()
      for (task, ids) in AnswerWords.learn(learned, generativeVocab: config.generativeVocab).tasks {
        words.tasks[task] = ids
      }
      ck.extra[AnswerWords.metadataKey] = words.json()
      try ck.write(to: out)
      for task in names {
        note("\(task): \(words.tasks[task]?.count ?? 0) answer words")
      }
    }
  }

  /// Every folder of `root` that holds a train.jsonl, sorted.
  static func taskFolders(_ root: String) throws -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else {
      throw ValidationError("--data: \(root) is not a readable folder")
    }
    let found = names.filter { FileManager.default.fileExists(atPath: "\(root)/\($0)/train.jsonl") }.sorted()
    guard !found.isEmpty else { throw ValidationError("--data: \(root) has no <task>/train.jsonl") }
    return found
  }
}
