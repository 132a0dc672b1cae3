import CKernels
import GraphIR
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The runtime's one threading system: an `mq_pool` of exactly `threads` threads (the caller is
/// thread 0). OpenBLAS is pinned to one thread when the first pool is made, so GEMMs never add
/// threads of their own on top of ours.
final class ThreadPool {
  let pool: OpaquePointer?
  let size: Int

  init(threads: Int) throws(RuntimeError) {
    ThreadPool.pinBLAS
    guard threads <= Limits.threads else {
      throw .allocation("thread pool of \(threads) threads: at most \(Limits.threads)")
    }
    let n = max(1, threads)
    guard let p = mq_pool_create(Int32(n)) else {
      throw .allocation("thread pool of \(n) threads")
    }
    let made = Int(mq_pool_size(p))
    if made != n {
      mq_pool_destroy(p)
      throw .allocation("thread pool: asked for \(n) threads, the system started \(made)")
    }
    pool = p
    size = n
  }

  deinit { mq_pool_destroy(pool) }

  /// Runs `fn(ctx, ith, nth)` on every thread; returns when all have returned.
  func run(_ fn: mq_task_fn, _ ctx: UnsafeMutableRawPointer) {
    mq_pool_run(pool, fn, ctx)
  }

  /// `mq_blas_single_thread()`, once per process.
  private static let pinBLAS: Void = { mq_blas_single_thread() }()
}

/// 64-byte aligned, zeroed raw memory owned by its creator (arenas, weights, scratch, barriers).
final class AlignedBuffer {
  let base: UnsafeMutableRawPointer
  let bytes: Int

  /// Throws, never traps, when `bytes` is negative, over `Limits.memoryBytes` or not available.
  init(bytes: Int, what: @autoclosure () -> String) throws(RuntimeError) {
    guard bytes >= 0, bytes <= Int.max - 64 else { throw .allocation("\(what()): \(bytes) bytes") }
    if let problem = Limits.memoryProblem(bytes, what()) { throw .allocation(problem) }
    let n = (max(bytes, 64) + 63) / 64 * 64
    // calloc: zeroed pages come from the kernel as they are touched.
    guard let p = calloc(1, n + 64) else {
      throw .allocation("\(what()): \(Limits.gigabytes(bytes)) could not be allocated")
    }
    raw = p
    let misalignment = Int(bitPattern: p) % 64
    base = p + (misalignment == 0 ? 0 : 64 - misalignment)
    self.bytes = bytes
  }

  private let raw: UnsafeMutableRawPointer

  deinit { free(raw) }
}

/// A team barrier array: one `mq_barrier` per slot, each on its own cache lines.
final class BarrierArray {
  let slots: UnsafeMutablePointer<mq_barrier>
  let count: Int

  init(sizes: [Int]) {
    count = max(sizes.count, 1)
    let stride = MemoryLayout<mq_barrier>.stride
    let align = max(MemoryLayout<mq_barrier>.alignment, 64)
    let raw = UnsafeMutableRawPointer.allocate(byteCount: stride * count, alignment: align)
    slots = raw.bindMemory(to: mq_barrier.self, capacity: count)
    for i in 0..<count {
      (raw + i * stride).initializeMemory(as: UInt8.self, repeating: 0, count: stride)
      mq_barrier_init(slots + i, Int32(i < sizes.count ? sizes[i] : 1))
    }
  }

  deinit { UnsafeMutableRawPointer(slots).deallocate() }

  subscript(i: Int) -> UnsafeMutablePointer<mq_barrier> { slots + i }
}

/// The threads running one plan, or one step of a stage: this thread's place in the team, the
/// team's size, this thread's index in the whole pool (for per-thread scratch) and the team's
/// barrier.
struct Team {
  var ith: Int
  var nth: Int
  var tid: Int
  var barrier: UnsafeMutablePointer<mq_barrier>

  /// Waits for the rest of the team (free for a team of one).
  @inline(__always)
  func sync() { if nth > 1 { mq_barrier_wait(barrier) } }

  /// This thread's share of `rows` rows: `dr = (rows + nth - 1) / nth`, as ggml splits.
  @inline(__always)
  func share(_ rows: Int) -> (Int, Int) {
    let dr = (rows + nth - 1) / nth
    let r0 = min(dr * ith, rows)
    return (r0, min(r0 + dr, rows))
  }

  /// This thread's columns of `columns`, in blocks of 16 (64 bytes of floats) so no two threads
  /// write the same cache line of a row.
  func shareColumns(_ columns: Int) -> (Int, Int) {
    let blocks = (columns + 15) / 16
    let per = (blocks + nth - 1) / nth
    let c0 = min(per * 16 * ith, columns)
    return (c0, min(c0 + per * 16, columns))
  }
}
