import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `mqan serve` end to end, through real clients: TCP JSON-lines sockets and curl for HTTP, against
/// the tiny checkpoint of `PredictTests`. With the consistent decoder every answer must equal
/// `mqan predict`'s for the same input, whatever batch the server put it in.
@Suite(.serialized) struct ServeTests {
  /// One input with the answer `mqan predict --decoder consistent` gives it.
  struct Case {
    var task: String, context: String, question: String, answer: String, score: Double
  }

  static let cases: Result<[Case], Error> = Result {
    var all: [Case] = []
    for task in ["sst", "multi30k.en.de"] {
      let file = "\(PredictTests.data)/\(task)/validation.jsonl"
      let r = try PredictTests.predict(["--data", file, "--tasks", task, "--decoder", "consistent"])
      let rows = try PredictTests.rows(r.stdout)
      let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
      guard lines.count == rows.count else { throw ServerProcess.Failure(description: "\(file): \(rows.count) answers") }
      for (line, row) in zip(lines, rows) {
        let o = object(String(line)) ?? [:]
        all.append(Case(task: task, context: o["context"] as? String ?? "", question: o["question"] as? String ?? "",
                        answer: row.answer, score: row.score))
      }
    }
    return all
  }

  static func serve(_ extra: [String], stdin: Bool = false) throws -> ServerProcess {
    try ServerProcess(["--checkpoint", try PredictTests.checkpoint(), "--threads", "1", "--max-output", "6"]
                        + (stdin ? ["--stdin"] : ["--port", "0", "--http-port", "0"]) + extra, stdin: stdin)
  }

  static func single(_ id: Int, _ c: Case, extra: String = "") -> String {
    "{\"id\":\(id),\"task\":\(quoted(c.task)),\"context\":\(quoted(c.context)),\"question\":\(quoted(c.question))\(extra)}\n"
  }

  static func instances(_ id: Int, _ cs: [(Int, Case)]) -> String {
    let items = cs.map { "{\"example_id\":\"e\($0.0)\",\"context\":\(quoted($0.1.context)),\"question\":\(quoted($0.1.question))}" }
    return "{\"id\":\"r\(id)\",\"task\":\(quoted(cs[0].1.task)),\"instances\":[\(items.joined(separator: ","))]}\n"
  }

  /// Checks an answer line against the cases it asked about (by case index).
  static func check(_ line: String, _ cases: [Case], asked: [String: [Int]]) {
    guard let o = object(line) else { Issue.record("not JSON: \(line)"); return }
    let id = "\(o["id"] ?? "nil")"
    guard let idx = asked[id] else { Issue.record("unknown id in \(line)"); return }
    #expect(o["error"] == nil, "\(line)")
    if let list = o["instances"] as? [[String: Any]] {
      #expect(list.map { $0["example_id"] as? String } == idx.map { "e\($0)" }, "\(line)")
      #expect(list.map { $0["answer"] as? String } == idx.map { cases[$0].answer }, "\(line)")
      for (item, i) in zip(list, idx) { expectScore(item["score"], cases[i].score, line) }
    } else {
      #expect(o["answer"] as? String == cases[idx[0]].answer, "\(line)")
      expectScore(o["score"], cases[idx[0]].score, line)
    }
  }

  /// The same log-probability as `mqan predict` (other batch neighbours may change the last bits).
  static func expectScore(_ value: Any?, _ expected: Double, _ line: String) {
    let s = (value as? NSNumber)?.doubleValue ?? .nan
    #expect(abs(s - expected) <= 1e-4 * max(1, abs(expected)), "score \(s), predict's \(expected): \(line)")
  }

  @Test func eightConcurrentClientsGetPredictsAnswers() throws {
    let cases = try Self.cases.get()
    let server = try Self.serve(["--max-batch", "16", "--max-wait-ms", "10"])
    final class Lines: @unchecked Sendable {
      let lock = NSLock()
      var got: [(line: String, asked: [String: [Int]])] = []
    }
    let results = Lines()
    var threads: [Thread] = []
    let done = DispatchGroup()
    for c in 0..<8 {
      done.enter()
      let t = Thread {
        defer { done.leave() }
        guard let client = try? LineClient(port: server.linePort) else { return }
        // Staggered arrivals, single and batched requests, both tasks on every connection.
        usleep(UInt32(c * 7_000))
        let mine = cases.indices.filter { $0 % 8 == c }
        var asked: [String: [Int]] = [:], sent = 0, i = 0, n = 0
        while i < mine.count {
          if n % 2 == 0 {
            client.send(Self.single(1000 * c + n, cases[mine[i]]))
            asked["\(1000 * c + n)"] = [mine[i]]
            i += 1
          } else {
            let group = Array(mine[i..<min(i + 3, mine.count)])
            client.send(Self.instances(1000 * c + n, group.map { ($0, cases[$0]) }))
            asked["r\(1000 * c + n)"] = group
            i += group.count
          }
          n += 1
          sent += 1
          usleep(UInt32(((c * 13 + n * 7) % 20) * 1_000))
        }
        for _ in 0..<sent {
          guard let line = client.readLine() else { break }
          results.lock.withLock { results.got.append((line, asked)) }
        }
      }
      threads.append(t)
      t.start()
    }
    done.wait()
    var answered = 0
    for (line, asked) in results.got {
      Self.check(line, cases, asked: asked)
      if let o = object(line) { answered += (o["instances"] as? [Any])?.count ?? 1 }
    }
    #expect(answered == cases.count, "every case answered once: \(answered) of \(cases.count)")

    // HTTP through curl: four at once, the same answers.
    let http = Lines()
    let httpDone = DispatchGroup()
    for k in 0..<4 {
      httpDone.enter()
      Thread {
        defer { httpDone.leave() }
        let group = Array((k * 5)..<(k * 5 + 5)).map { $0 * 9 % cases.count }
        let body = Self.instances(k, group.map { ($0, cases[$0]) })
        guard let r = try? curl(["-H", "Content-Type: application/json", "--data-binary", body,
                                 "http://127.0.0.1:\(server.httpPort)/v1/predict"]) else { return }
        http.lock.withLock { http.got.append(("\(r.status) \(r.body)", ["r\(k)": group])) }
      }.start()
    }
    httpDone.wait()
    #expect(http.got.count == 4)
    for (line, asked) in http.got {
      #expect(line.hasPrefix("200 "), "\(line)")
      Self.check(String(line.dropFirst(4)), cases, asked: asked)
    }
    let health = try curl(["http://127.0.0.1:\(server.httpPort)/health"])
    #expect(health.status == 200 && health.body.contains("ok"))
    let metrics = try curl(["http://127.0.0.1:\(server.httpPort)/metrics"])
    #expect(metrics.status == 200)
    let ok = metrics.body.split(separator: "\n").first { $0.hasPrefix("mqan_requests_total{outcome=\"ok\"}") }
    #expect(ok.map { $0.hasSuffix(" \(results.got.count + 4)") } == true, "\(metrics.body)")
    for name in ["mqan_queue_length", "mqan_batch_rows_in_use", "mqan_decode_steps_total", "mqan_generated_tokens_total",
                 "mqan_tokens_per_second", "mqan_request_duration_seconds_bucket"] {
      #expect(metrics.body.contains(name), "no \(name) in /metrics")
    }
    #expect(server.stop() == 0, "exit status after SIGTERM; stderr: \(server.stderr)")
  }

  /// A running batch of 3 rows: a request of 7 instances joins it over several steps, beside
  /// single requests that arrive meanwhile, and every answer is still `mqan predict`'s.
  @Test func requestsLargerThanTheBatchJoinRowByRow() throws {
    let cases = try Self.cases.get()
    let server = try Self.serve(["--max-batch", "3"])
    let client = try LineClient(port: server.linePort)
    let group = Array(0..<7).map { ($0 * 11 + 2) % cases.count }
    var asked: [String: [Int]] = ["r1": group]
    client.send(Self.instances(1, group.map { ($0, cases[$0]) }))
    for n in 0..<4 {
      let i = (n * 17 + 5) % cases.count
      client.send(Self.single(10 + n, cases[i]))
      asked["\(10 + n)"] = [i]
    }
    for _ in 0..<5 {
      guard let line = client.readLine() else { Issue.record("connection closed early"); break }
      Self.check(line, cases, asked: asked)
    }
    #expect(server.stop() == 0, "exit status after SIGTERM; stderr: \(server.stderr)")
  }
}
