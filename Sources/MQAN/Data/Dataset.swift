import Foundation

/// One (context, question, answer) example, as decaNLP's generic `JSON` dataset reads it: the
/// three strings and their tokens (`Tokenizer`: revtok, lower-cased).
public struct Example: Sendable, Equatable {
  /// The strings as they stand in the file.
  public struct Raw: Sendable, Equatable {
    public var context: String, question: String, answer: String
  }

  public var raw: Raw
  public var context: [String], question: [String], answer: [String]
  /// Where the example came from, 1-based (0 when it was made in memory).
  public var line: Int

  /// Tokenizes the three strings.
  public init(context: String, question: String, answer: String, line: Int = 0, tokenizer: Tokenizer = Tokenizer()) {
    raw = Raw(context: context, question: question, answer: answer)
    self.context = tokenizer.tokenize(context)
    self.question = tokenizer.tokenize(question)
    self.answer = tokenizer.tokenize(answer)
    self.line = line
  }
}

/// An example as full-vocabulary ids, each sequence `<init> w1 .. wn <eos>` (an empty text gives
/// `<init> <eos>`), the rows an `EncodedBatch` is made of.
public struct EncodedExample: Sendable, Equatable {
  public var context: [Int], question: [Int], answer: [Int]

  public init(context: [Int], question: [Int], answer: [Int]) {
    self.context = context
    self.question = question
    self.answer = answer
  }

  /// `example`'s tokens through `vocabulary` (words it lacks become `<unk>`).
  public init(_ example: Example, vocabulary: Vocabulary) {
    context = vocabulary.encode(example.context)
    question = vocabulary.encode(example.question)
    answer = vocabulary.encode(example.answer)
  }
}

/// Maximum lengths in tokens, `<init>`/`<eos>` not counted (decaNLP's `arguments.py`:
/// `--max_train_context_length 400`, `--max_val_context_length 400`, `--max_answer_length 50`).
/// Questions have no limit in decaNLP; mqan cuts them at 400 tokens too (`.truncate`), so one
/// pathological line cannot make a batch too large to allocate.
public struct LengthLimits: Codable, Sendable, Equatable {
  public var maxContextLength: Int
  public var maxAnswerLength: Int
  public var maxQuestionLength: Int

  public init(maxContextLength: Int = 400, maxAnswerLength: Int = 50, maxQuestionLength: Int = 400) {
    self.maxContextLength = maxContextLength
    self.maxAnswerLength = maxAnswerLength
    self.maxQuestionLength = maxQuestionLength
  }

  /// decaNLP's defaults: contexts 400, answers 50.
  public static let decaNLP = LengthLimits()
}

/// What to do with examples beyond the `LengthLimits`.
public enum LengthPolicy: String, Codable, Sendable, CaseIterable {
  /// Keep every example: cut contexts, questions and answers to their limits; empty texts stay
  /// `<init> <eos>`. For prediction, where every input needs an output.
  case truncate
  /// decaNLP's `preprocess_examples(train=True)` (used for training, and for validation unless
  /// `--val_no_filter`): tasks named `cnn*`/`dailymail*`/`imdb*` first get their contexts cut to
  /// the limit; then examples whose context or answer is over its limit, or empty, are dropped.
  /// (decaNLP's third filter, `'This page includes the show' not in ex.answer`, tests a whole
  /// sentence against single tokens and never drops anything; it is not reproduced.)
  case dropLikeDecaNLP
}

/// What `TaskData.prepared(limits:policy:)` did.
public struct PrepareReport: Sendable, Equatable {
  public var kept = 0
  public var droppedTooLong = 0
  public var droppedEmpty = 0
  public var truncatedContexts = 0
  public var truncatedAnswers = 0
  public var truncatedQuestions = 0
}

/// The examples of one task split, read from decaNLP-style JSONL.
public struct TaskData: Sendable {
  /// The task's name (its directory under the data root, e.g. `sst`, `multi30k.en.de`).
  public var task: String
  /// The file the examples came from.
  public var path: String
  public var examples: [Example]

  public init(task: String, path: String, examples: [Example]) {
    self.task = task
    self.path = path
    self.examples = examples
  }

  /// Reads `<root>/<task>/<split>.jsonl` (split `train`, `validation`, ...).
  public static func load(root: String, task: String, split: String, tokenizer: Tokenizer = Tokenizer()) throws(DataError) -> TaskData {
    let path = URL(fileURLWithPath: root).appendingPathComponent(task).appendingPathComponent("\(split).jsonl").path
    return TaskData(task: task, path: path, examples: try JSONLReader.read(path: path, tokenizer: tokenizer))
  }

  /// The examples within `limits` as `policy` says, in file order.
  public func prepared(limits: LengthLimits = .decaNLP, policy: LengthPolicy) -> (data: TaskData, report: PrepareReport) {
    var report = PrepareReport()
    var kept: [Example] = []
    kept.reserveCapacity(examples.count)
    let cutsContexts = ["cnn", "dailymail", "imdb"].contains { task.contains($0) }
    for var ex in examples {
      switch policy {
      case .truncate:
        if ex.context.count > limits.maxContextLength {
          ex.context.removeSubrange(limits.maxContextLength...)
          report.truncatedContexts += 1
        }
        if ex.answer.count > limits.maxAnswerLength {
          ex.answer.removeSubrange(limits.maxAnswerLength...)
          report.truncatedAnswers += 1
        }
        if ex.question.count > limits.maxQuestionLength {
          ex.question.removeSubrange(limits.maxQuestionLength...)
          report.truncatedQuestions += 1
        }
      case .dropLikeDecaNLP:
        if cutsContexts && ex.context.count > limits.maxContextLength {
          ex.context.removeSubrange(limits.maxContextLength...)
          report.truncatedContexts += 1
        }
        if ex.context.count > limits.maxContextLength || ex.answer.count > limits.maxAnswerLength {
          report.droppedTooLong += 1
          continue
        }
        if ex.context.isEmpty || ex.answer.isEmpty {
          report.droppedEmpty += 1
          continue
        }
      }
      kept.append(ex)
    }
    report.kept = kept.count
    return (TaskData(task: task, path: path, examples: kept), report)
  }

  /// Every example as full-vocabulary ids.
  public func encoded(with vocabulary: Vocabulary) -> [EncodedExample] {
    examples.map { EncodedExample($0, vocabulary: vocabulary) }
  }
}

/// Reads JSONL with one `{"context": ..., "question": ..., "answer": ...}` object per line.
///
/// Lines end in `\n` (a `\r` before it is dropped); blank lines are skipped; other keys are
/// ignored. An error names the file and the 1-based line: a line that is not a JSON object, a
/// missing field, or a field that is not a string.
public enum JSONLReader {
  /// The three fields every line must have, in decaNLP's order.
  public static let fields = ["context", "question", "answer"]

  /// Reads and tokenizes every example of the file at `path`.
  public static func read(path: String, tokenizer: Tokenizer = Tokenizer()) throws(DataError) -> [Example] {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw .io(path: path, problem: "cannot read: \(error.localizedDescription)")
    }
    return try parse(data, path: path, tokenizer: tokenizer)
  }

  /// Parses JSONL bytes; `path` names them in errors.
  public static func parse(_ data: Data, path: String, tokenizer: Tokenizer = Tokenizer()) throws(DataError) -> [Example] {
    var examples: [Example] = []
    var lineNumber = 0
    var start = data.startIndex
    while start < data.endIndex {
      lineNumber += 1
      let newline = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
      var end = newline
      if end > start && data[end - 1] == 0x0D { end -= 1 }
      let line = Data(data[start..<end])
      start = newline < data.endIndex ? newline + 1 : newline
      if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
      let fields = try strings(of: line, path: path, line: lineNumber)
      examples.append(Example(context: fields[0], question: fields[1], answer: fields[2],
                              line: lineNumber, tokenizer: tokenizer))
    }
    return examples
  }

  /// The `fields` of one JSON line, in order.
  static func strings(of line: Data, path: String, line number: Int) throws(DataError) -> [String] {
    let object: Any
    do {
      object = try JSONSerialization.jsonObject(with: line, options: [.fragmentsAllowed])
    } catch {
      throw .json(path: path, line: number, problem: describe(error))
    }
    guard let dict = object as? [String: Any] else {
      throw .json(path: path, line: number, problem: "expected an object with \(fields.joined(separator: ", ")), got \(shortJSON(object))")
    }
    var out: [String] = []
    for f in fields {
      guard let value = dict[f] else {
        throw .field(path: path, line: number, field: f, problem: "missing")
      }
      guard let s = value as? String else {
        throw .field(path: path, line: number, field: f, problem: "expected a string, got \(shortJSON(value))")
      }
      out.append(s)
    }
    return out
  }

  /// A JSON value as JSON text, cut to 40 characters, for messages.
  static func shortJSON(_ value: Any) -> String {
    guard let d = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]),
          let s = String(data: d, encoding: .utf8) else { return "\(type(of: value))" }
    return s.count > 40 ? String(s.prefix(40)) + "..." : s
  }

  /// Foundation's JSON error without its boilerplate.
  static func describe(_ error: Error) -> String {
    let ns = error as NSError
    if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
    return ns.localizedDescription
  }
}
