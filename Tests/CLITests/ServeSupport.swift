import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A running `mqan serve`: started with its arguments, its ports read from stderr.
final class ServerProcess: @unchecked Sendable {
  let process = Process()
  private let lock = NSLock()
  private var errText = ""
  private let input = Pipe(), output = Pipe(), errors = Pipe()
  private(set) var linePort = 0, httpPort = 0

  struct Failure: Error, CustomStringConvertible { var description: String }

  /// Starts `mqan serve ARGS`; unless `stdin`, waits (60 s at most) for both listening lines.
  init(_ args: [String], stdin: Bool = false) throws {
    process.executableURL = try CLITests.binary()
    process.arguments = ["serve"] + args
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    errors.fileHandleForReading.readabilityHandler = { [weak self] h in
      let d = h.availableData
      guard let self, !d.isEmpty else { return }
      self.lock.withLock { self.errText += String(decoding: d, as: UTF8.self) }
    }
    try process.run()
    if stdin { return }
    let end = Date().addingTimeInterval(60)
    while Date() < end && process.isRunning {
      let text = stderr
      if let l = Self.port(text, "listening json-lines "), let h = Self.port(text, "listening http ") {
        linePort = l
        httpPort = h
        return
      }
      usleep(20_000)
    }
    throw Failure(description: "mqan serve did not start listening: \(stderr)")
  }

  deinit {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
  }

  var stderr: String { lock.withLock { errText } }

  static func port(_ text: String, _ prefix: String) -> Int? {
    for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
      if let p = line.split(separator: ":").last.flatMap({ Int($0) }) { return p }
    }
    return nil
  }

  /// Writes to the server's stdin (`--stdin`); `close` ends it.
  func writeStdin(_ s: String, close: Bool = false) {
    input.fileHandleForWriting.write(Data(s.utf8))
    if close { try? input.fileHandleForWriting.close() }
  }

  /// Everything the server wrote on stdout until it exited.
  func readStdout() -> String {
    String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  }

  /// Sends `signal` and waits (30 s at most) for the exit status.
  func stop(_ signal: Int32 = SIGTERM) -> Int32? {
    kill(process.processIdentifier, signal)
    return waitExit()
  }

  func waitExit(seconds: Double = 30) -> Int32? {
    let end = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < end { usleep(20_000) }
    return process.isRunning ? nil : process.terminationStatus
  }
}

/// A blocking TCP client of the JSON-lines protocol on 127.0.0.1.
final class LineClient {
  let fd: Int32
  private var buffer: [UInt8] = []

  init(port: Int) throws {
    #if canImport(Glibc)
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw ServerProcess.Failure(description: "socket: \(String(cString: strerror(errno)))") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    let r = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard r == 0 else {
      Glibc.close(fd)
      throw ServerProcess.Failure(description: "connect to \(port): \(String(cString: strerror(errno)))")
    }
  }

  deinit { Glibc.close(fd) }

  func send(_ s: String) {
    let bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
      let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { return }
      off += n
    }
  }

  /// The next line (no newline), or nil at end of stream or after `timeout` seconds.
  func readLine(timeout: Double = 30) -> String? {
    let end = Date().addingTimeInterval(timeout)
    while true {
      if let i = buffer.firstIndex(of: UInt8(ascii: "\n")) {
        let line = String(decoding: buffer[..<i], as: UTF8.self)
        buffer.removeFirst(i + 1)
        return line
      }
      let left = end.timeIntervalSinceNow
      if left <= 0 { return nil }
      var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&p, 1, Int32(left * 1000)) > 0 else { continue }
      var chunk = [UInt8](repeating: 0, count: 65536)
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
      if n <= 0 { return nil }
      buffer += chunk[..<n]
    }
  }
}

/// One HTTP exchange through curl: the status and the body.
func curl(_ args: [String]) throws -> (status: Int, body: String) {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = ["curl", "-s", "-S", "--max-time", "60", "-w", "\n%{http_code}"] + args
  let out = Pipe()
  p.standardOutput = out
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  var text = String(decoding: data, as: UTF8.self)
  guard let cut = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: cut)...]) else {
    throw ServerProcess.Failure(description: "curl \(args): no status in \(text)")
  }
  text = String(text[..<cut])
  return (status, text)
}

/// A JSON line as an object.
func object(_ line: String) -> [String: Any]? {
  (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
}

/// A string as a JSON string literal.
func quoted(_ s: String) -> String {
  String(decoding: try! JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed]), as: UTF8.self)
}
