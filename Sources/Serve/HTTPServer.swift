import Foundation
import Hummingbird
import Logging
import NIOCore

/// HTTP/JSON with Hummingbird: `POST /v1/predict` (the JSON-lines request as the body, its answer
/// line as the response), `GET /health`, `GET /metrics` (Prometheus text).
enum HTTPServer {
  static func application(core: ServeCore, host: String, port: Int, logger: Logger,
                          onListening: @escaping @Sendable (Int) -> Void) -> some ApplicationProtocol {
    let router = Router(context: ServeRequestContext.self)
    router.post("/v1/predict") { request, context -> Response in
      let body: ByteBuffer
      do {
        body = try await request.body.collect(upTo: core.limits.maxBytes)
      } catch {
        let e = ServeError.tooLarge("a body over \(core.limits.maxBytes) bytes (--max-request-bytes)")
        core.metrics.failed(e)
        return json(status: e.status, ServeProtocol.error(id: "null", e))
      }
      let line = Array(buffer: body)
      // The request runs as its own task, so that the client hanging up can cancel it. Every
      // connection gets a watcher; only a connection already closed and torn down has none.
      let watcher = try? await context.channel.pipeline.handler(type: HangUpWatcher.self).get()
      let work = Task { await core.handle(line) }
      if let watcher { watcher.watch { work.cancel() } } else { work.cancel() }
      let reply = await withTaskCancellationHandler { await work.value } onCancel: { work.cancel() }
      watcher?.done()
      return json(status: reply.status, reply.line)
    }
    router.get("/health") { _, _ -> Response in
      json(status: 200, "{\"status\":\"ok\"}")
    }
    router.get("/metrics") { _, _ -> Response in
      var headers = HTTPFields()
      headers[.contentType] = "text/plain; version=0.0.4"
      return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: core.metrics.text())))
    }
    return Application(
      router: router,
      server: .http1(configuration: .init(additionalChannelHandlers: [HangUpWatcher()])),
      configuration: .init(address: .hostname(host, port: port), serverName: nil),
      onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
      logger: logger)
  }

  static func json(status: Int, _ line: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: .init(code: status), headers: headers,
                    body: .init(byteBuffer: ByteBuffer(string: line + "\n")))
  }
}

/// Hummingbird's basic context plus the connection's channel (for its `HangUpWatcher`).
struct ServeRequestContext: RequestContext {
  var coreContext: CoreRequestContextStorage
  let channel: any Channel

  init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
    channel = source.channel
  }
}

/// Notices an HTTP client that hangs up while its request is answered, and cancels the request
/// (its rows leave the batch at the next step, as a JSON-lines client's do). Hummingbird allows
/// remote half-closure and reads nothing from the connection while a route runs, so otherwise the
/// request would decode to its end. As Go's net/http does, a client that closes its sending side
/// counts as gone: HTTP/1.1 clients do not half-close while they wait for an answer. One watcher
/// per connection, which answers one request at a time.
final class HangUpWatcher: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
  typealias InboundIn = NIOAny  // passed on untouched (the default channelRead)

  private let lock = NSLock()
  private var gone = false
  private var cancel: (@Sendable () -> Void)?

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let e = event as? ChannelEvent, e == .inputClosed { hungUp() }
    context.fireUserInboundEventTriggered(event)
  }

  func channelInactive(context: ChannelHandlerContext) {
    hungUp()
    context.fireChannelInactive()
  }

  /// Runs `cancel` when the client hangs up (at once if it has already), until `done`.
  func watch(_ cancel: @escaping @Sendable () -> Void) {
    lock.lock()
    let gone = gone
    if !gone { self.cancel = cancel }
    lock.unlock()
    if gone { cancel() }
  }

  func done() {
    lock.lock()
    cancel = nil
    lock.unlock()
  }

  private func hungUp() {
    lock.lock()
    gone = true
    let c = cancel
    cancel = nil
    lock.unlock()
    c?()
  }
}
