import Foundation

/// `sumInRankOrder` overlapped with the computation that produces the buffer: the producer says
/// how long a prefix of the buffer is final (`ready(upTo:)`, cheap, from any one thread at a
/// time); a thread of its own scales and sums each bucket of `Communicator.bucketFloats` as soon
/// as the prefix covers it, in buffer order, so each element gets exactly the bits
/// `sumInRankOrder` gives it (the same buckets, pieces and rank order). `finish` waits for the
/// last bucket. Needs MPI_THREAD_SERIALIZED (`Communicator.serialized`): between `begin` and
/// `finish` only this thread calls MPI.
public final class BucketSum: @unchecked Sendable {
  private let communicator: Communicator
  private let condition = NSCondition()
  // Guarded by `condition`.
  private var buffer: UnsafeMutablePointer<Float>?
  private var count = 0, readyUpTo = 0, done = 0, scale: Float = 1
  private var failure: CollectiveError?
  /// Started by the first `begin`; it waits for work as long as the process lives.
  private var thread: Thread?

  public init(_ communicator: Communicator) {
    self.communicator = communicator
  }

  /// Starts a sum of `count` floats at `buffer`, each multiplied by `scale` first (`x * scale`,
  /// rounded once, as the caller would have).
  public func begin(_ buffer: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
    condition.lock()
    self.buffer = buffer
    self.count = count
    self.scale = scale
    readyUpTo = 0
    done = 0
    failure = nil
    if thread == nil {
      let t = Thread { self.loop() }
      t.name = "mqan-gradient-sum"
      thread = t
      t.start()
    }
    condition.broadcast()
    condition.unlock()
  }

  /// The first `prefix` floats are final.
  public func ready(upTo prefix: Int) {
    condition.lock()
    if prefix > readyUpTo { readyUpTo = min(prefix, count); condition.broadcast() }
    condition.unlock()
  }

  /// Marks the whole buffer final and waits until it is summed.
  public func finish() throws(CollectiveError) {
    ready(upTo: Int.max)
    condition.lock()
    while done < count && failure == nil { condition.wait() }
    let f = failure
    buffer = nil
    condition.unlock()
    if let f { throw f }
  }

  private func loop() -> Never {
    condition.lock()
    while true {
      guard let buffer, failure == nil, done < count,
            readyUpTo - done >= min(Communicator.bucketFloats, count - done) else {
        condition.wait()
        continue
      }
      let start = done, len = min(Communicator.bucketFloats, count - done), s = scale
      condition.unlock()
      let bucket = buffer + start
      if s != 1 { for i in 0..<len { bucket[i] = bucket[i] * s } }
      let error = communicator.sumBucket(bucket, count: len)
      condition.lock()
      if let error { failure = error } else { done = start + len }
      condition.broadcast()
    }
  }
}
