import Foundation
import MQAN

/// genienlp's JSON-lines request, the body of `POST /v1/predict` too:
/// `{"id", "task", "context", "question"}` or `{"id", "task", "instances": [{"example_id",
/// "context", "question"}, ...]}`, with an optional `"timeout_ms"`.
public struct ServeRequest: Sendable {
  /// The request's `id` as JSON text (a string, number or null), echoed in the answer.
  public var id: String
  public var task: String
  /// The instances' `example_id`s as JSON text; nil: the single form (`context`, `question`).
  public var exampleIDs: [String]?
  public var examples: [Example]
  /// Milliseconds the request may take from its arrival; nil: no deadline.
  public var timeoutMilliseconds: Int?
}

/// What the server refuses or fails, each with the HTTP status it answers with.
public enum ServeError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The line or body is not a request (JSON, fields, limits).
  case badRequest(String)
  /// Over the request size limit.
  case tooLarge(String)
  /// `--max-queue` requests are waiting.
  case overloaded(Int)
  /// `timeout_ms` passed before the answer.
  case timedOut(Int)
  /// The server is shutting down.
  case unavailable
  /// Decoding failed.
  case failed(String)

  public var description: String {
    switch self {
    case .badRequest(let m): return "bad request: \(m)"
    case .tooLarge(let m): return "request too large: \(m)"
    case .overloaded(let n): return "overloaded: \(n) requests are waiting (--max-queue); try again later"
    case .timedOut(let ms): return "timed out: no answer within timeout_ms \(ms)"
    case .unavailable: return "unavailable: the server is shutting down"
    case .failed(let m): return "prediction failed: \(m)"
    }
  }

  /// The HTTP status of this error.
  public var status: Int {
    switch self {
    case .badRequest: return 400
    case .tooLarge: return 413
    case .overloaded: return 429
    case .timedOut: return 504
    case .unavailable: return 503
    case .failed: return 500
    }
  }

  /// The metrics label of this error.
  var label: String {
    switch self {
    case .badRequest, .tooLarge: return "bad_request"
    case .overloaded: return "overloaded"
    case .timedOut: return "timed_out"
    case .unavailable: return "unavailable"
    case .failed: return "failed"
    }
  }
}

/// Limits on what one request may hold.
public struct RequestLimits: Sendable {
  /// Bytes of one line or HTTP body.
  public var maxBytes = 1 << 20
  /// Instances of one request.
  public var maxInstances = 64
  /// Context tokens (decaNLP's limit; `mqan predict` cuts longer contexts, the server refuses them).
  public var maxContextTokens = LengthLimits.decaNLP.maxContextLength
  /// Question tokens.
  public var maxQuestionTokens = LengthLimits.decaNLP.maxQuestionLength

  public init() {}
}

/// A refused request: its id (JSON text, `null` when it had none) and why.
struct RequestFailure: Error {
  var id: String
  var error: ServeError
}

enum ServeProtocol {
  /// The request in `line`, or the error to answer with (and the request's id when it had one).
  static func parse(_ line: [UInt8], limits: RequestLimits, tokenizer: Tokenizer) -> Result<ServeRequest, RequestFailure> {
    guard line.count <= limits.maxBytes else {
      return .failure(RequestFailure(id: "null", error: .tooLarge("\(line.count) bytes, the limit is \(limits.maxBytes) (--max-request-bytes)")))
    }
    let object: Any
    do {
      object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
    } catch {
      return .failure(RequestFailure(id: "null", error: .badRequest("not JSON (\(line.count) bytes)")))
    }
    guard let dict = object as? [String: Any] else {
      return .failure(RequestFailure(id: "null", error: .badRequest("a request is a JSON object with id, task and context/question or instances")))
    }
    let id = json(dict["id"] ?? NSNull())
    func fail<T>(_ m: String) -> Result<T, RequestFailure> { .failure(RequestFailure(id: id, error: .badRequest(m))) }
    guard dict["id"] != nil else { return fail("no \"id\"") }
    var task = "generic"
    if let t = dict["task"] {
      guard let s = t as? String else { return fail("\"task\" must be a string") }
      task = s
    }
    var timeout: Int?
    if let t = dict["timeout_ms"] {
      guard let n = t as? NSNumber, n.doubleValue >= 1,
            n.doubleValue <= 86_400_000 else {
        return fail("\"timeout_ms\" must be a number of milliseconds in 1...86400000")
      }
      timeout = n.intValue
    }
    func example(_ d: [String: Any], _ where_: String) -> Result<Example, RequestFailure> {
      guard let context = d["context"] as? String else { return fail("\(where_)\"context\" must be a string") }
      guard let question = d["question"] as? String else { return fail("\(where_)\"question\" must be a string") }
      let ex = Example(context: context, question: question, answer: "", tokenizer: tokenizer)
      if ex.context.count > limits.maxContextTokens {
        return fail("\(where_)context has \(ex.context.count) tokens, the limit is \(limits.maxContextTokens) (--max-context)")
      }
      if ex.question.count > limits.maxQuestionTokens {
        return fail("\(where_)question has \(ex.question.count) tokens, the limit is \(limits.maxQuestionTokens)")
      }
      return .success(ex)
    }
    if let list = dict["instances"] {
      guard let instances = list as? [Any], !instances.isEmpty else { return fail("\"instances\" must be a non-empty array") }
      guard instances.count <= limits.maxInstances else {
        return fail("\(instances.count) instances, the limit is \(limits.maxInstances) (--max-instances)")
      }
      var ids: [String] = [], examples: [Example] = []
      for (i, item) in instances.enumerated() {
        guard let d = item as? [String: Any] else { return fail("instances[\(i)] must be an object") }
        switch example(d, "instances[\(i)]: ") {
        case .success(let ex): examples.append(ex)
        case .failure(let e): return .failure(e)
        }
        ids.append(json(d["example_id"] ?? NSNull()))
      }
      return .success(ServeRequest(id: id, task: task, exampleIDs: ids, examples: examples, timeoutMilliseconds: timeout))
    }
    switch example(dict, "") {
    case .success(let ex):
      return .success(ServeRequest(id: id, task: task, exampleIDs: nil, examples: [ex], timeoutMilliseconds: timeout))
    case .failure(let e): return .failure(e)
    }
  }

  /// A JSON value as compact text.
  static func json(_ value: Any) -> String {
    if value is NSNull { return "null" }
    guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes]),
          let s = String(data: data, encoding: .utf8) else { return "null" }
    return s
  }

  static func string(_ s: String) -> String { json(s) }

  static func score(_ x: Double) -> String {
    x.isFinite ? "\(x)" : "\(-Double.greatestFiniteMagnitude)"
  }

  /// The answer line (no newline): `{"id","answer"}` or `{"id","instances":[...]}`, with
  /// `candidates` (each `{"answer","score"}`) when more than one answer was asked for.
  static func answer(_ request: ServeRequest, _ predictions: [Prediction], nBest: Int) -> String {
    func candidates(_ p: Prediction) -> String {
      guard nBest > 1 else { return "" }
      let list = p.nBest.map { "{\"answer\":\(string($0.answer)),\"score\":\(score($0.score))}" }
      return ",\"candidates\":[\(list.joined(separator: ","))]"
    }
    guard let ids = request.exampleIDs else {
      let p = predictions[0]
      return "{\"id\":\(request.id),\"answer\":\(string(p.answer)),\"score\":\(score(p.score))\(candidates(p))}"
    }
    let instances = zip(ids, predictions).map { id, p in
      "{\"example_id\":\(id),\"answer\":\(string(p.answer)),\"score\":\(score(p.score))\(candidates(p))}"
    }
    return "{\"id\":\(request.id),\"instances\":[\(instances.joined(separator: ","))]}"
  }

  static func error(id: String, _ error: ServeError) -> String {
    "{\"id\":\(id),\"error\":\(string(error.description))}"
  }
}
