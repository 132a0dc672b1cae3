import Foundation
import Hummingbird
import Logging
import NIOCore

/// HTTP/JSON with Hummingbird: `POST /v1/predict` (the JSON-lines request as the body, its answer
/// line as the response), `GET /health`, `GET /metrics` (Prometheus text).
enum HTTPServer {
  static func application(core: ServeCore, host: String, port: Int, logger: Logger,
                          onListening: @escaping @Sendable (Int) -> Void) -> some ApplicationProtocol {
    let router = Router()
    router.post("/v1/predict") { request, _ -> Response in
      let body: ByteBuffer
      do {
        body = try await request.body.collect(upTo: core.limits.maxBytes)
      } catch {
        let e = ServeError.tooLarge("a body over \(core.limits.maxBytes) bytes (--max-request-bytes)")
        core.metrics.failed(e)
        return json(status: e.status, ServeProtocol.error(id: "null", e))
      }
      let reply = await core.handle(Array(buffer: body))
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
