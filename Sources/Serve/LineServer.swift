import Foundation
import NIOCore
import NIOPosix
import ServiceLifecycle

/// genienlp's JSON-lines protocol over TCP: one request per line, one answer line per request,
/// in the order they finish (each carries its `id`). A malformed line is answered with an error
/// and the connection stays; a line over the size limit is answered with an error and skipped up
/// to its newline; a closed connection cancels its waiting requests.
public final class LineServer: Service, @unchecked Sendable {
  let core: ServeCore
  let host: String
  let port: Int
  let group: MultiThreadedEventLoopGroup
  /// Called with the bound port once listening.
  let onListening: @Sendable (Int) -> Void
  private let lock = NSLock()
  private var connections: [ObjectIdentifier: Channel] = [:]
  private var outstanding = 0
  private var draining = false

  public init(core: ServeCore, host: String, port: Int, group: MultiThreadedEventLoopGroup = .singleton,
              onListening: @escaping @Sendable (Int) -> Void) {
    self.core = core
    self.host = host
    self.port = port
    self.group = group
    self.onListening = onListening
  }

  public func run() async throws {
    let server = try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 256)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { [self] channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(LineHandler(server: self))
        }
      }
      .bind(host: host, port: port).get()
    onListening(server.localAddress?.port ?? port)
    // Runs until SIGTERM/SIGINT (or cancellation): then stop accepting, answer what is in flight.
    try? await gracefulShutdown()
    // Lines that still arrive on open connections are refused from here on, so a busy client
    // cannot hold the shutdown open.
    lock.withLock { draining = true }
    try? await server.close()
    while pendingCount() > 0 {
      try? await Task.sleep(for: .milliseconds(10))
    }
    let open = lock.withLock { Array(connections.values) }
    for c in open { try? await c.close() }
  }

  private func pendingCount() -> Int { lock.withLock { outstanding } }

  func opened(_ channel: Channel) { lock.withLock { connections[ObjectIdentifier(channel)] = channel } }
  func closed(_ channel: Channel) { lock.withLock { _ = connections.removeValue(forKey: ObjectIdentifier(channel)) } }

  /// Writes `line` and a newline (a closed channel drops it).
  static func write(_ line: String, to channel: Channel) {
    var buffer = channel.allocator.buffer(capacity: line.utf8.count + 1)
    buffer.writeString(line)
    buffer.writeInteger(UInt8(ascii: "\n"))
    channel.writeAndFlush(buffer, promise: nil)
  }

  /// Handles one line of `channel`; the answer is written when ready.
  func handle(_ line: [UInt8], channel: Channel, jobs: JobList) {
    let refused = lock.withLock { () -> Bool in
      if draining { return true }
      outstanding += 1
      return false
    }
    if refused {
      let id = (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["id"].map(ServeProtocol.json)
      core.metrics.failed(.unavailable)
      LineServer.write(ServeProtocol.error(id: id ?? "null", .unavailable), to: channel)
      return
    }
    let token = jobs.reserve()
    let job = core.handle(line) { [self] reply in
      LineServer.write(reply.line, to: channel)
      jobs.remove(token)
      lock.withLock { outstanding -= 1 }
    }
    if let job { jobs.attach(token, job) }
  }
}

/// The requests of one connection still waiting for an answer (cancelled when it closes).
final class JobList: @unchecked Sendable {
  private let lock = NSLock()
  private var next = 0
  private var jobs: [Int: Job] = [:]
  private var reserved: Set<Int> = []
  private var closed = false

  func reserve() -> Int {
    lock.withLock {
      next += 1
      reserved.insert(next)
      return next
    }
  }

  func attach(_ token: Int, _ job: Job) {
    let cancel = lock.withLock { () -> Bool in
      guard reserved.contains(token) else { return false }
      jobs[token] = job
      return closed
    }
    if cancel { job.cancel() }
  }

  func remove(_ token: Int) {
    lock.withLock {
      reserved.remove(token)
      jobs[token] = nil
    }
  }

  func cancelAll() {
    let all = lock.withLock { () -> [Job] in
      closed = true
      return Array(jobs.values)
    }
    for j in all { j.cancel() }
  }
}

/// Splits a connection's bytes into lines (`\n`, an optional `\r` before it dropped).
final class LineHandler: ChannelInboundHandler, @unchecked Sendable {
  typealias InboundIn = ByteBuffer
  let server: LineServer
  let jobs = JobList()
  private var pending: [UInt8] = []
  /// Bytes of a line over the size limit are being skipped up to its newline.
  private var skipping = false

  init(server: LineServer) { self.server = server }

  func channelActive(context: ChannelHandlerContext) {
    server.opened(context.channel)
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    jobs.cancelAll()
    server.closed(context.channel)
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var buffer = unwrapInboundIn(data)
    guard let bytes = buffer.readBytes(length: buffer.readableBytes) else { return }
    let limit = server.core.limits.maxBytes
    var start = 0
    for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
      if skipping {
        skipping = false
      } else {
        pending += bytes[start..<i]
        line(pending, context: context)
      }
      pending.removeAll(keepingCapacity: true)
      start = i + 1
    }
    if !skipping { pending += bytes[start...] }
    if pending.count > limit {
      // Answer at once and skip the rest of this line.
      pending.removeAll()
      skipping = true
      let error = ServeError.tooLarge("a line over \(limit) bytes (--max-request-bytes); skipped to its end")
      server.core.metrics.failed(error)
      LineServer.write(ServeProtocol.error(id: "null", error), to: context.channel)
    }
  }

  private func line(_ raw: [UInt8], context: ChannelHandlerContext) {
    var l = raw
    if l.last == UInt8(ascii: "\r") { l.removeLast() }
    if l.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { return }
    server.handle(l, channel: context.channel, jobs: jobs)
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) {
    context.close(promise: nil)
  }
}
