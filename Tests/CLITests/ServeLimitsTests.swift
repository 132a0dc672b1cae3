import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `mqan serve` under bad input, overload, deadlines and shutdown: errors come back as
/// `{"id","error"}` on the connection, which stays; nothing hangs; SIGTERM answers what is in flight.
@Suite(.serialized) struct ServeLimitsTests {
  static func error(_ line: String?) -> String? { line.flatMap(object)?["error"] as? String }

  @Test func badLinesHalfLinesAndClosedConnectionsLeaveTheServerRunning() throws {
    let cases = try ServeTests.cases.get()
    let server = try ServeTests.serve(["--max-request-bytes", "4096"])
    let client = try LineClient(port: server.linePort)
    client.send("this is not json\n")
    var line = client.readLine()
    #expect(Self.error(line)?.contains("not JSON") == true, "\(line ?? "nil")")
    #expect(line.flatMap(object)?["id"] is NSNull)
    client.send("{\"id\":1,\"task\":\"sst\",\"question\":\"q\"}\n")
    line = client.readLine()
    #expect(Self.error(line)?.contains("\"context\"") == true && line.flatMap(object)?["id"] as? Int == 1, "\(line ?? "nil")")
    client.send("{\"id\":2,\"context\":\"a\",\"question\":\"b\",\"timeout_ms\":-5}\n")
    #expect(Self.error(client.readLine())?.contains("timeout_ms") == true)
    client.send("{\"id\":3,\"instances\":[]}\n")
    #expect(Self.error(client.readLine())?.contains("instances") == true)
    let long = Array(repeating: "word", count: 401).joined(separator: " ")
    client.send("{\"id\":4,\"context\":\"\(long)\",\"question\":\"q\"}\n")
    #expect(Self.error(client.readLine())?.contains("--max-context") == true)
    client.send("{\"id\":5,\"context\":\"\(String(repeating: "x", count: 5000))\"}\n")
    #expect(Self.error(client.readLine())?.contains("too large") == true)
    // The same connection still answers, correctly.
    client.send(ServeTests.single(6, cases[0]))
    line = client.readLine()
    #expect(line.flatMap(object)?["answer"] as? String == cases[0].answer, "\(line ?? "nil")")

    // A half-sent line, then the connection closes; a request whose client leaves before the answer.
    do {
      let half = try LineClient(port: server.linePort)
      half.send("{\"id\":7,\"context\":\"half a li")
    }
    do {
      let gone = try LineClient(port: server.linePort)
      gone.send(ServeTests.single(8, cases[1]))
    }
    usleep(200_000)
    #expect(server.process.isRunning)
    let again = try LineClient(port: server.linePort)
    again.send(ServeTests.single(9, cases[2]))
    #expect(again.readLine().flatMap(object)?["answer"] as? String == cases[2].answer)
    let bad = try curl(["--data-binary", "{\"id\":10}", "http://127.0.0.1:\(server.httpPort)/v1/predict"])
    #expect(bad.status == 400 && bad.body.contains("\"error\""), "\(bad)")
    // A second server on a taken port: one error line, exit status 1.
    let taken = try CLITests.run(["serve", "--checkpoint", try PredictTests.checkpoint(), "--port", "\(server.linePort)",
                                  "--http-port", "0"])
    #expect(taken.status == 1 && taken.stderr.split(separator: "\n").last?.hasPrefix("error: cannot listen on") == true,
            "\(taken.stderr)")
    #expect(server.stop() == 0, "stderr: \(server.stderr)")
  }

  @Test func overloadIsRefusedAtOnceAndServedAnswersStayCorrect() throws {
    let cases = try ServeTests.cases.get()
    // Requests wait up to 1.5 s for their batch, so the queue (2) fills at once.
    let server = try ServeTests.serve(["--max-queue", "2", "--max-wait-ms", "1500"])
    let client = try LineClient(port: server.linePort)
    let start = Date()
    for i in 0..<6 { client.send(ServeTests.single(i, cases[i])) }
    var answers: [Int: String] = [:], refused: [Int] = []
    for _ in 0..<6 {
      guard let line = client.readLine(), let o = object(line), let id = o["id"] as? Int else { break }
      if let e = o["error"] as? String {
        #expect(e.contains("overloaded"), "\(line)")
        #expect(Date().timeIntervalSince(start) < 1.2, "the overload error is answered at once")
        refused.append(id)
      } else {
        answers[id] = o["answer"] as? String
      }
    }
    #expect(refused.sorted() == [2, 3, 4, 5])
    #expect(answers == [0: cases[0].answer, 1: cases[1].answer])
    // HTTP: 429 while two requests wait.
    client.send(ServeTests.single(20, cases[3]) + ServeTests.single(21, cases[4]))
    usleep(100_000)
    let r = try curl(["--data-binary", ServeTests.single(22, cases[5]), "http://127.0.0.1:\(server.httpPort)/v1/predict"])
    #expect(r.status == 429 && r.body.contains("overloaded"), "\(r)")
    #expect(client.readLine().flatMap(object)?["error"] == nil)
    #expect(client.readLine().flatMap(object)?["error"] == nil)
    #expect(server.stop() == 0, "stderr: \(server.stderr)")
  }

  /// An HTTP client that hangs up while its request waits: the request is cancelled (outcome
  /// `unavailable` in /metrics), not decoded and answered to nobody; the server goes on answering.
  @Test func anHTTPClientThatHangsUpCancelsItsRequest() throws {
    let cases = try ServeTests.cases.get()
    // Requests wait up to 1.5 s for their batch: the hang-up comes long before the answer would.
    let server = try ServeTests.serve(["--max-wait-ms", "1500"])
    let body = ServeTests.single(1, cases[0]).trimmingCharacters(in: .newlines)
    do {
      let gone = try LineClient(port: server.httpPort)
      gone.send("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
      usleep(100_000)
    }
    // A waiting request leaves at the scheduler's next pass (at the latest when its wait ends).
    var metrics = try curl(["http://127.0.0.1:\(server.httpPort)/metrics"])
    for _ in 0..<30 where !metrics.body.contains("outcome=\"unavailable\"} 1") && !metrics.body.contains("outcome=\"ok\"} 1") {
      usleep(100_000)
      metrics = try curl(["http://127.0.0.1:\(server.httpPort)/metrics"])
    }
    #expect(metrics.body.contains("mqan_requests_total{outcome=\"unavailable\"} 1"), "\(metrics.body)")
    #expect(metrics.body.contains("mqan_requests_total{outcome=\"ok\"} 0"), "\(metrics.body)")
    let r = try curl(["--data-binary", ServeTests.single(2, cases[1]), "http://127.0.0.1:\(server.httpPort)/v1/predict"])
    #expect(r.status == 200 && object(r.body)?["answer"] as? String == cases[1].answer, "\(r)")
    #expect(server.stop() == 0, "stderr: \(server.stderr)")
  }

  @Test func sigtermAnswersEveryRequestInFlightAndExitsZero() throws {
    let cases = try ServeTests.cases.get()
    let server = try ServeTests.serve(["--max-wait-ms", "1000"])
    let client = try LineClient(port: server.linePort)
    client.send(ServeTests.single(0, cases[0], extra: ",\"timeout_ms\":100"))
    for i in 1...3 { client.send(ServeTests.single(i, cases[i])) }
    final class Box: @unchecked Sendable { var reply: (status: Int, body: String)? }
    let http = Box()
    let httpDone = DispatchSemaphore(value: 0)
    Thread {
      http.reply = try? curl(["--data-binary", ServeTests.single(4, cases[4]), "http://127.0.0.1:\(server.httpPort)/v1/predict"])
      httpDone.signal()
    }.start()
    usleep(300_000)
    kill(server.process.processIdentifier, SIGTERM)
    var got: [Int: [String: Any]] = [:]
    for _ in 0..<4 {
      guard let o = client.readLine().flatMap(object), let id = o["id"] as? Int else { break }
      got[id] = o
    }
    #expect((got[0]?["error"] as? String)?.contains("timed out") == true, "\(got)")
    for i in 1...3 { #expect(got[i]?["answer"] as? String == cases[i].answer, "\(got)") }
    #expect(httpDone.wait(timeout: .now() + 30) == .success)
    #expect(http.reply?.status == 200 && http.reply.flatMap { object($0.body) }?["answer"] as? String == cases[4].answer,
            "\(String(describing: http.reply))")
    #expect(server.waitExit() == 0, "stderr: \(server.stderr)")
  }

  /// A deadline that passes while the request is being decoded: its rows stop at the next step
  /// and it is answered `timed out` long before its 1,000 steps would end.
  @Test func aDeadlineStopsARequestMidDecode() throws {
    let cases = try ServeTests.cases.get()
    let server = try ServerProcess(["--checkpoint", try PredictTests.checkpoint(), "--threads", "1", "--max-output", "1000",
                                    "--port", "0", "--http-port", "0"])
    let client = try LineClient(port: server.linePort)
    // The first case decodes to max-output (the tiny model never emits <eos> for it).
    client.send(ServeTests.single(1, cases[0], extra: ",\"timeout_ms\":50"))
    #expect(Self.error(client.readLine())?.contains("timed out") == true)
    client.send(ServeTests.single(2, cases[1]))
    #expect(client.readLine().flatMap(object)?["answer"] != nil)
    let metrics = try curl(["http://127.0.0.1:\(server.httpPort)/metrics"])
    #expect(metrics.body.contains("mqan_requests_total{outcome=\"timed_out\"} 1"), "\(metrics.body)")
    #expect(server.stop() == 0)
  }

  @Test func stdinAnswersEveryLineThenExits() throws {
    let cases = try ServeTests.cases.get()
    // Batches of 4 rows at most: the 6-instance request is decoded alone, the others by length.
    let server = try ServeTests.serve(["--max-wait-ms", "20", "--max-batch", "4"], stdin: true)
    var text = "not json\n"
    for i in 0..<10 { text += ServeTests.single(i, cases[i * 7 % cases.count]) }
    let big = (60..<66).map { ($0, cases[$0]) }
    text += ServeTests.instances(99, big)
    server.writeStdin(text, close: true)
    let out = server.readStdout()
    #expect(server.waitExit() == 0, "stderr: \(server.stderr)")
    let lines = out.split(separator: "\n").compactMap { object(String($0)) }
    #expect(lines.count == 12)
    #expect(lines.filter { $0["error"] != nil }.count == 1)
    let batched = try #require(lines.first { $0["id"] as? String == "r99" }, "\(out)")
    ServeTests.check(jsonLine(batched), cases, asked: ["r99": Array(60..<66)])
    for o in lines { if let id = o["id"] as? Int { #expect(o["answer"] as? String == cases[id * 7 % cases.count].answer) } }
  }
}

/// An answer object back to its JSON line.
func jsonLine(_ o: [String: Any]) -> String {
  String(decoding: (try? JSONSerialization.data(withJSONObject: o)) ?? Data(), as: UTF8.self)
}
