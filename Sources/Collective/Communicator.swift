import CMPI
import Foundation

/// Why a collective operation failed: the MPI call and the library's words, or a launch that
/// this binary cannot serve.
public enum CollectiveError: Error, CustomStringConvertible, Sendable {
  case mpi(call: String, message: String)
  case notBuiltWithMPI(detail: String)
  case invalid(String)

  public var description: String {
    switch self {
    case .mpi(let call, let message): "MPI: \(call) failed: \(message)"
    case .notBuiltWithMPI(let detail):
      "\(detail), but this mqan was built without MPI support (install libopenmpi-dev and rebuild; mqan --version says)"
    case .invalid(let s): s
    }
  }
}

/// The processes of one job (MPI_COMM_WORLD), or this process alone.
///
/// `Communicator.world()` initialises MPI once, and only when a launcher started this process
/// (`mpirun`/`mpiexec` set `OMPI_COMM_WORLD_SIZE`, Slurm's `srun --mpi=pmix` sets `PMIX_RANK`);
/// otherwise it is `single` and no MPI call is ever made, so mqan runs as one process exactly as
/// without MPI. One thread at a time may call it (MPI_THREAD_SERIALIZED where granted, see
/// `serialized`; else only the thread that created it).
public final class Communicator: @unchecked Sendable {
  public let rank: Int
  public let size: Int
  /// Whether the calls go to MPI (false: one process, every collective is the identity).
  public let usesMPI: Bool
  /// Whether MPI may be called from a thread other than the main one, one thread at a time
  /// (MPI_THREAD_SERIALIZED granted): what `BucketSum` needs to overlap the backward pass.
  public let serialized: Bool
  private var scratch: UnsafeMutablePointer<Float>?
  private var scratchCount = 0

  init(rank: Int, size: Int, usesMPI: Bool, serialized: Bool = false) {
    self.rank = rank
    self.size = size
    self.usesMPI = usesMPI
    self.serialized = serialized
  }

  deinit { scratch?.deallocate() }

  /// This process alone.
  public static let single = Communicator(rank: 0, size: 1, usesMPI: false)

  /// Whether this binary was built with Open MPI's headers and library.
  public static var isBuiltWithMPI: Bool { mq_mpi_available() != 0 }

  /// The MPI library's version line (nil when built without MPI).
  public static var libraryVersion: String? {
    guard isBuiltWithMPI else { return nil }
    var buf = [CChar](repeating: 0, count: 256)
    guard mq_mpi_library_version(&buf, Int32(buf.count)) == 0 else { return nil }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// The job size a launcher announced in the environment (nil: not started by a launcher).
  public static func launchedSize(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
    if let s = env["OMPI_COMM_WORLD_SIZE"] ?? env["PMIX_SIZE"], let n = Int(s) { return n }
    if env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil { return Int(env["PMI_SIZE"] ?? "") ?? 0 }
    return nil
  }

  private static let shared: Result<Communicator, CollectiveError> = {
    guard let n = launchedSize() else { return .success(.single) }
    guard isBuiltWithMPI else {
      // One rank of one is a plain process; more would each train alone over the same files.
      if n == 1 { return .success(.single) }
      return .failure(.notBuiltWithMPI(detail: "started by an MPI launcher with \(n) processes"))
    }
    var rank: Int32 = 0, size: Int32 = 1, serialized: Int32 = 0
    let rc = mq_mpi_init(&rank, &size, &serialized)
    guard rc == 0 else { return .failure(.mpi(call: "MPI_Init_thread", message: errorString(rc))) }
    initialized = true
    return .success(Communicator(rank: Int(rank), size: Int(size), usesMPI: true, serialized: serialized != 0))
  }()

  /// Set once, by the thread that initialised MPI (the only one that calls MPI).
  nonisolated(unsafe) private static var initialized = false

  /// The job's communicator: MPI_COMM_WORLD under a launcher (MPI initialised on first use),
  /// else `single`.
  public static func world() throws(CollectiveError) -> Communicator { try shared.get() }

  /// Ends MPI cleanly if this process initialised it (call once, at exit).
  public static func finalize() {
    if initialized { _ = mq_mpi_finalize() }
  }

  /// Ends the whole job with `code` when this process is one rank of several (after an error on
  /// this rank, so the others never wait for it); returns when there is no job to end.
  public static func abortJob(code: Int32) {
    guard initialized, case .success(let c) = shared, c.size > 1 else { return }
    mq_mpi_abort(code)
  }

  static func errorString(_ code: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 512)
    mq_mpi_error_string(code, &buf, Int32(buf.count))
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  func check(_ rc: Int32, _ call: String) throws(CollectiveError) {
    guard rc == 0 else { throw .mpi(call: call, message: Self.errorString(rc)) }
  }

  /// Scratch memory of at least `count` floats, kept between calls.
  func scratch(_ count: Int) -> UnsafeMutablePointer<Float> {
    if scratchCount < count {
      scratch?.deallocate()
      scratch = .allocate(capacity: count)
      scratchCount = count
    }
    return scratch!
  }

  public func barrier() throws(CollectiveError) {
    guard usesMPI else { return }
    try check(mq_mpi_barrier(), "MPI_Barrier")
  }

  /// Every rank's `value`, in rank order.
  public func allGather(_ value: Double) throws(CollectiveError) -> [Double] {
    guard usesMPI else { return [value] }
    var out = [Double](repeating: 0, count: size)
    var v = value
    try check(mq_mpi_allgather_doubles(&v, &out, 1), "MPI_Allgather")
    return out
  }

  /// Every rank's `value`, in rank order.
  public func allGather(_ value: Int64) throws(CollectiveError) -> [Int64] {
    guard usesMPI else { return [value] }
    var out = [Int64](repeating: 0, count: size)
    var v = value
    try check(mq_mpi_allgather_int64(&v, &out, 1), "MPI_Allgather")
    return out
  }

  /// Every rank's bytes at `root`, in rank order (other ranks get an empty array).
  public func gather(_ bytes: [UInt8], root: Int = 0) throws(CollectiveError) -> [[UInt8]] {
    guard usesMPI else { return [bytes] }
    guard bytes.count <= Int(Int32.max) else { throw .invalid("MPI_Gatherv: \(bytes.count) bytes from one rank is over 2 GiB") }
    var counts = [Int32](repeating: 0, count: size)
    try check(mq_mpi_gather_int(Int32(bytes.count), &counts, Int32(root)), "MPI_Gather")
    var displs = [Int32](repeating: 0, count: size)
    var total = 0
    if rank == root {
      for r in 0..<size {
        guard total <= Int(Int32.max) else { throw .invalid("MPI_Gatherv: over 2 GiB gathered at rank \(root)") }
        displs[r] = Int32(total)
        total += Int(counts[r])
      }
    }
    var recv = [UInt8](repeating: 0, count: max(total, 1))
    try check(bytes.withUnsafeBytes { s in
      mq_mpi_gatherv_bytes(s.baseAddress, Int32(bytes.count), &recv, counts, displs, Int32(root))
    }, "MPI_Gatherv")
    guard rank == root else { return [] }
    return (0..<size).map { r in Array(recv[Int(displs[r])..<(Int(displs[r]) + Int(counts[r]))]) }
  }
}
