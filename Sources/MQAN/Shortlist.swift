import Foundation

/// Decoding's vocabulary shortlist (`--shortlist N`): per batch, the generative words the output
/// layer computes. The union of
///
/// - the `frequent` most frequent generative words (ids `0 ..< frequent`: the vocabulary lists
///   `<unk> <pad> <init> <eos>` first, then words by training frequency),
/// - every generative word of the batch's contexts and questions (what the pointers can copy is
///   also always a word the output layer scores), and
/// - the task's answer words: every generative word of its training answers (`AnswerWords`),
///
/// sorted ascending and filled up to a multiple of `granule` (256) with the next most frequent
/// words (so a run binds few plan shapes). The softmax and the mixture are exact over the set (the
/// other words get probability 0); copying from context and question is never cut, OOV words
/// included. With `frequent` >= V the shortlist is the whole vocabulary and the answers are
/// those without one.
public struct Shortlist: Sendable, Equatable {
  public var frequent: Int
  public var answerWords: AnswerWords
  public var granule: Int

  public init(frequent: Int, answerWords: AnswerWords = AnswerWords(), granule: Int = 256) {
    self.frequent = frequent
    self.answerWords = answerWords
    self.granule = max(granule, 1)
  }

  /// The shortlist of one batch: generative ids (`< generativeVocab`), ascending, distinct.
  public func ids(generativeVocab v: Int, task: String?, contexts: [[Int]], questions: [[Int]]) -> [Int32] {
    var chosen = [Bool](repeating: false, count: v)
    var count = 0
    func add(_ id: Int) {
      guard id >= 0, id < v, !chosen[id] else { return }
      chosen[id] = true
      count += 1
    }
    for id in 0..<min(frequent, v) { add(id) }
    for row in contexts { for id in row { add(id) } }
    for row in questions { for id in row { add(id) } }
    if let task { for id in answerWords.tasks[task] ?? [] { add(id) } }
    var next = 0
    while count % granule != 0 && count < v {
      while chosen[next] { next += 1 }
      add(next)
    }
    var out: [Int32] = []
    out.reserveCapacity(count)
    for id in 0..<v where chosen[id] { out.append(Int32(id)) }
    return out
  }
}

/// Per task, the generative words of its training answers (full vocabulary ids below the
/// generative size), learned by `mqan train` (stored in its checkpoints as the `answer_words`
/// metadata) or by `mqan shortlist` from a data folder.
public struct AnswerWords: Sendable, Equatable, Codable {
  public var tasks: [String: [Int]]

  public init(tasks: [String: [Int]] = [:]) { self.tasks = tasks }

  /// The checkpoint metadata key.
  public static let metadataKey = "answer_words"

  /// The answers' generative ids of each task's examples, sorted, distinct.
  public static func learn(_ data: [(task: String, answers: [[Int]])], generativeVocab v: Int) -> AnswerWords {
    var out = AnswerWords()
    for (task, answers) in data {
      var seen = Set<Int>()
      for a in answers { for id in a where id >= 0 && id < v { seen.insert(id) } }
      out.tasks[task, default: []] = Array(seen.union(out.tasks[task] ?? [])).sorted()
    }
    return out
  }

  /// JSON with sorted keys (checkpoint files stay byte-identical).
  public func json() -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return (try? e.encode(tasks)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
  }

  /// From a checkpoint's metadata text; errors say what is wrong.
  public init(json text: String, generativeVocab v: Int) throws(ModelError) {
    guard let t = try? JSONDecoder().decode([String: [Int]].self, from: Data(text.utf8)) else {
      throw .config(field: "answer_words", problem: "not a JSON object of task -> [word id]")
    }
    for (task, ids) in t {
      if let bad = ids.first(where: { $0 < 0 || $0 >= v }) {
        throw .config(field: "answer_words", problem: "task \(task) holds id \(bad), outside the generative vocabulary 0..<\(v)")
      }
    }
    tasks = t
  }
}
