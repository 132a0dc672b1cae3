/// Errors of the data layer (JSONL tasks, vocabularies, word vectors, batch iterators). Every
/// message names the file, and the line where there is one, so the CLI can print it as it is.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
  /// A file could not be read or written.
  case io(path: String, problem: String)
  /// A line of a JSONL file is not a JSON object (line numbers start at 1).
  case json(path: String, line: Int, problem: String)
  /// A JSONL line lacks a field, or the field is not a string.
  case field(path: String, line: Int, field: String, problem: String)
  /// A line of a word-vector file is malformed.
  case vectors(path: String, line: Int, problem: String)
  /// A vocabulary file or value is not usable.
  case vocabulary(path: String, problem: String)
  /// A batch iterator was given bad settings or a state that does not belong to it.
  case batching(problem: String)

  public var description: String {
    switch self {
    case .io(let path, let problem): return "\(path): \(problem)"
    case .json(let path, let line, let problem): return "\(path):\(line): invalid JSON: \(problem)"
    case .field(let path, let line, let field, let problem): return "\(path):\(line): field \"\(field)\": \(problem)"
    case .vectors(let path, let line, let problem): return "\(path):\(line): \(problem)"
    case .vocabulary(let path, let problem): return "\(path): vocabulary: \(problem)"
    case .batching(let problem): return "batching: \(problem)"
    }
  }
}
