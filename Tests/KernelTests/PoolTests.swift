// Thread pool and barrier. Legend: n = threads in the pool (caller = thread 0), ith = a thread's
// index; tasks get their state through the ctx pointer (C function pointers capture nothing).
import CKernels
import Testing

/// What the barrier task sees: one counter per thread, one error count per thread.
private struct BarrierContext {
  var barrier: UnsafeMutablePointer<mq_barrier>
  var counters: UnsafeMutablePointer<Int32>
  var errors: UnsafeMutablePointer<Int32>
  var phases: Int32
}

@Suite struct PoolTests {
  @Test(arguments: [1, 2, 4])
  func everyThreadRunsOnce(threads: Int32) {
    let pool = mq_pool_create(threads)!
    defer { mq_pool_destroy(pool) }
    #expect(mq_pool_size(pool) == threads)
    // slots[2 * ith] = ith + 1, slots[2 * ith + 1] = nth: each thread writes only its own pair.
    var slots = [Int32](repeating: -1, count: 2 * Int(threads))
    slots.withUnsafeMutableBufferPointer { buf in
      mq_pool_run(pool, { ctx, ith, nth in
        let s = ctx!.assumingMemoryBound(to: Int32.self)
        s[2 * Int(ith)] += ith + 2 // -1 + ith + 2 = ith + 1: fails if a thread runs twice
        s[2 * Int(ith) + 1] = nth
      }, buf.baseAddress)
    }
    let expected = (0..<threads).flatMap { [$0 + 1, threads] }
    #expect(slots == expected)
  }

  @Test func createClampsToOneThread() {
    let pool = mq_pool_create(0)!
    defer { mq_pool_destroy(pool) }
    #expect(mq_pool_size(pool) == 1)
    var ran: Int32 = 0
    withUnsafeMutablePointer(to: &ran) { p in
      mq_pool_run(pool, { ctx, ith, nth in
        ctx!.assumingMemoryBound(to: Int32.self).pointee = 10 * nth + ith + 1
      }, p)
    }
    #expect(ran == 11)
  }

  @Test(arguments: [1, 2, 4])
  func barrierSeparatesPhases(threads: Int32) {
    let pool = mq_pool_create(threads)!
    defer { mq_pool_destroy(pool) }
    let n = Int(mq_pool_size(pool))
    let barrier = UnsafeMutablePointer<mq_barrier>.allocate(capacity: 1)
    defer { barrier.deallocate() }
    mq_barrier_init(barrier, Int32(n))
    let counters = UnsafeMutablePointer<Int32>.allocate(capacity: n)
    counters.initialize(repeating: 0, count: n)
    let errors = UnsafeMutablePointer<Int32>.allocate(capacity: n)
    errors.initialize(repeating: 0, count: n)
    defer { counters.deallocate(); errors.deallocate() }
    var ctx = BarrierContext(
      barrier: barrier, counters: counters, errors: errors, phases: 200)

    // Run the team twice: the barrier must be reusable across pool runs too.
    for _ in 0..<2 {
      withUnsafeMutablePointer(to: &ctx) { p in
        mq_pool_run(pool, { raw, ith, nth in
          let c = raw!.assumingMemoryBound(to: BarrierContext.self).pointee
          for _ in 0..<c.phases {
            let before = c.counters[Int(ith)]
            c.counters[Int(ith)] = before + 1
            mq_barrier_wait(c.barrier) // everyone has incremented
            for t in 0..<Int(nth) where c.counters[t] != before + 1 { c.errors[Int(ith)] += 1 }
            mq_barrier_wait(c.barrier) // everyone has checked before anyone increments again
          }
        }, p)
      }
    }
    #expect((0..<n).map { counters[$0] } == [Int32](repeating: 400, count: n))
    #expect((0..<n).map { errors[$0] } == [Int32](repeating: 0, count: n))
  }

  @Test(arguments: [2, 4])
  func tenThousandTinyRuns(threads: Int32) {
    let pool = mq_pool_create(threads)!
    defer { mq_pool_destroy(pool) }
    let n = Int(mq_pool_size(pool))
    var counts = [Int32](repeating: 0, count: n)
    // No time bound here (timings belong to Benchmarks/): every run reaches every thread.
    counts.withUnsafeMutableBufferPointer { buf in
      for _ in 0..<10_000 {
        mq_pool_run(pool, { ctx, ith, _ in
          ctx!.assumingMemoryBound(to: Int32.self)[Int(ith)] += 1
        }, buf.baseAddress)
      }
    }
    #expect(counts == [Int32](repeating: 10_000, count: n))
  }

  @Test func runsAfterIdleSleep() async throws {
    // Workers go to sleep after ~75 us of spinning; a run after that must still wake them.
    let pool = mq_pool_create(3)!
    defer { mq_pool_destroy(pool) }
    var counts = [Int32](repeating: 0, count: 3)
    for _ in 0..<3 {
      try await Task.sleep(for: .milliseconds(20))
      counts.withUnsafeMutableBufferPointer { buf in
        mq_pool_run(pool, { ctx, ith, _ in
          ctx!.assumingMemoryBound(to: Int32.self)[Int(ith)] += 1
        }, buf.baseAddress)
      }
    }
    #expect(counts == [3, 3, 3])
  }

  @Test func barrierOfOneReturns() {
    var b = mq_barrier()
    mq_barrier_init(&b, 1)
    for _ in 0..<3 { mq_barrier_wait(&b) }
    #expect(b.n == 1)
  }

  @Test func cpuLevelAndBlas() {
    mq_blas_single_thread()
    #expect([0, 1, 2].contains(mq_cpu_level()))
  }
}
