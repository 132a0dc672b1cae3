import CMPI

extension Communicator {
  /// Floats per bucket of `sumInRankOrder` (4 MiB): the unit of the exchange, never of the sum.
  public static let bucketFloats = 1 << 20

  /// Sums `count` floats at `buffer` over all ranks, in place; every rank ends with the same bits.
  ///
  /// The buffer goes out in buckets of `bucketFloats`, in buffer order. Each bucket is cut into
  /// `size` equal pieces (the last padded with zeros); rank r owns piece r. `MPI_Alltoall` sends
  /// every rank's copy of piece r to rank r, which adds them in rank order, left to right in
  /// float: `((x_0 + x_1) + x_2) + ... + x_{N-1}`; `MPI_Allgather` then gives every rank the
  /// owners' sums. (The two halves of a ring allreduce: 2 (N - 1) / N of the buffer in and out of
  /// every rank.) So each element's sum has one order that depends on nothing but the rank count:
  /// not on timing, the network, the MPI library's algorithm choice or the bucket size.
  public func sumInRankOrder(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws(CollectiveError) {
    guard usesMPI, size > 1, count > 0 else { return }
    var start = 0
    while start < count {
      let len = min(Self.bucketFloats, count - start)
      if let error = sumBucket(buffer + start, count: len) { throw error }
      start += len
    }
  }

  /// One bucket of `sumInRankOrder` (`count` <= `bucketFloats` floats at `bucket`); the MPI
  /// failure, if any. (It returns the error rather than throwing it: a typed throw from here was
  /// miscompiled in release builds, and the caller then crashed reading the error.)
  func sumBucket(_ bucket: UnsafeMutablePointer<Float>, count len: Int) -> CollectiveError? {
    let n = size
    let piece0 = (Self.bucketFloats + n - 1) / n
    // send (n x piece) | recv (n x piece) | owned sum (piece) | gathered (n x piece)
    let room = scratch(3 * n * piece0 + piece0)
    let piece = (len + n - 1) / n
    let send = room, recv = room + n * piece, owned = recv + n * piece, gathered = owned + piece
    send.update(from: bucket, count: len)
    (send + len).update(repeating: 0, count: n * piece - len)
    if let e = failure(mq_mpi_alltoall_floats(send, recv, Int32(piece)), "MPI_Alltoall") { return e }
    owned.update(from: recv, count: piece)
    for r in 1..<n {
      let src = recv + r * piece
      for i in 0..<piece { owned[i] += src[i] }
    }
    if let e = failure(mq_mpi_allgather_floats(owned, gathered, Int32(piece)), "MPI_Allgather") { return e }
    bucket.update(from: gathered, count: len)
    return nil
  }

  private func failure(_ rc: Int32, _ call: String) -> CollectiveError? {
    rc == 0 ? nil : .mpi(call: call, message: Self.errorString(rc))
  }
}
