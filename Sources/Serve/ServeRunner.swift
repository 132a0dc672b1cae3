import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// The server could not start (a port taken, an address not ours).
public struct ServeStartError: Error, CustomStringConvertible {
  public var description: String
}

/// Where `mqan serve` listens.
public struct Listeners: Sendable {
  public var host = "127.0.0.1"
  /// JSON-lines TCP port (0: any free port).
  public var port = 8401
  /// HTTP port (0: any free port).
  public var httpPort = 8080

  public init() {}
}

/// Runs the server: the network protocols under swift-service-lifecycle, or JSON lines on
/// stdin/stdout.
public enum ServeRunner {
  /// Serves JSON-lines over TCP and HTTP until SIGTERM or SIGINT; then stops accepting, answers
  /// every request in flight (HTTP first, then JSON-lines, then the scheduler's queue) and returns.
  /// `note` hears `listening json-lines HOST:PORT` and `listening http HOST:PORT`.
  public static func runNetwork(core: ServeCore, listeners: Listeners, note: @escaping @Sendable (String) -> Void) async throws {
    // Failures reach the caller as errors (one line); the libraries' own logs stay quiet.
    var logger = Logger(label: "mqan-serve")
    logger.logLevel = .critical
    let host = listeners.host
    let lines = LineServer(core: core, host: host, port: listeners.port) { note("listening json-lines \(host):\($0)") }
    let http = HTTPServer.application(core: core, host: host, port: listeners.httpPort, logger: logger) {
      note("listening http \(host):\($0)")
    }
    core.scheduler.start()
    // Graceful shutdown runs in reverse order: HTTP, JSON-lines, then the scheduler drains.
    let group = ServiceGroup(configuration: .init(
      services: [.init(service: SchedulerService(scheduler: core.scheduler)), .init(service: lines), .init(service: http)],
      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
      try await group.run()
    } catch let e as IOError where e.errnoCode == EADDRINUSE || e.errnoCode == EACCES || e.errnoCode == EADDRNOTAVAIL {
      throw ServeStartError(description: "cannot listen on \(host) (--port \(listeners.port), --http-port "
                            + "\(listeners.httpPort)): \(String(cString: strerror(e.errnoCode)))")
    }
  }

  /// genienlp's `--stdin`: one request per line of stdin, one answer line per request on stdout
  /// (in the order they finish); at the end of stdin, every request is answered, then it returns.
  public static func runStdin(core: ServeCore) {
    signal(SIGPIPE, SIG_IGN)
    core.scheduler.start()
    let out = DispatchQueue(label: "mqan-serve-stdout")
    let pending = DispatchGroup()
    while let line = readLine(strippingNewline: true) {
      if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
      pending.enter()
      core.handle(Array(line.utf8)) { reply in
        out.async {
          writeAll(Array((reply.line + "\n").utf8))
          pending.leave()
        }
      }
    }
    pending.wait()
    let done = DispatchSemaphore(value: 0)
    core.scheduler.drain { done.signal() }
    done.wait()
  }

  /// Writes every byte to stdout (a closed stdout drops them).
  static func writeAll(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let n = write(1, raw.baseAddress! + offset, raw.count - offset)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        offset += n
      }
    }
  }
}

/// The scheduler as a service: on graceful shutdown it answers every queued request, then ends.
struct SchedulerService: Service {
  let scheduler: Scheduler

  func run() async throws {
    try? await gracefulShutdown()
    await scheduler.drain()
  }
}
