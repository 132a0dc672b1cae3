// Incremental decoding kernels against their reference twins: mq_cache_update (gather by reorder,
// write slot t, zero the rest; in place with an identity reorder) and mq_topk_rows.
// Legend: R rows, S slots, D width, t the step; x [rows, n], values / indices [rows, k].
import CKernels
import Foundation
import Testing

@Suite struct DecodingKernelTests {
  @Test(arguments: [(1, 1, 1, 0), (5, 7, 3, 0), (5, 7, 3, 4), (6, 4, 17, 3), (9, 32, 20, 31)])
  func cacheUpdateMatchesReference(r: Int, s: Int, d: Int, t: Int) {
    var rng = SplitMix64(seed: UInt64(r * 100 + s * 10 + t))
    let cache = randomFloats(r * s * d, &rng, in: -3...3)
    let row = randomFloats(r * d, &rng, in: -3...3)
    let reorder = (0..<r).map { _ in Int32(Int.random(in: 0..<r, using: &rng)) }
    var got = [Float](repeating: .nan, count: r * s * d), want = got
    // Two row ranges, as two threads would split them.
    let mid = r / 2
    let step = [Int32(t)]
    mq_cache_update(&got, cache, reorder, row, Int64(s), Int64(d), step, 0, 0, Int64(mid))
    mq_cache_update(&got, cache, reorder, row, Int64(s), Int64(d), step, 0, Int64(mid), Int64(r))
    mq_cache_update_ref(&want, cache, reorder, row, Int64(s), Int64(d), step, 0, 0, Int64(r))
    #expect(got == want)
    // The definition, spelled out.
    for i in 0..<r {
      for j in 0..<s {
        for e in 0..<d {
          let v = j < t ? cache[(Int(reorder[i]) * s + j) * d + e] : j == t ? row[i * d + e] : 0
          if want[(i * s + j) * d + e] != v { Issue.record("row \(i) slot \(j) elem \(e)"); return }
        }
      }
    }
  }

  /// Greedy decoding updates the cache in place (out == cache, identity reorder).
  /// The shortlist's scatter: each row's values at their columns, `fill` elsewhere, like the oracle.
  @Test(arguments: [(1, 1, 1), (3, 4, 10), (5, 17, 40), (2, 64, 64)])
  func scatterColumnsMatchesReference(rows: Int, s: Int, v: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 1000 + s))
    let x = randomFloats(rows * s, &rng)
    var columns = Array(0..<v)
    columns.shuffle(using: &rng)
    let ids = columns.prefix(s).sorted().map(Int32.init)
    var got = [Float](repeating: 7, count: rows * v), want = got
    mq_scatter_columns(&got, x, ids, Int64(s), Int64(v), -.infinity, 0, Int64(rows))
    mq_scatter_columns_ref(&want, x, ids, Int64(s), Int64(v), -.infinity, 0, Int64(rows))
    #expect(got == want)
    for r in 0..<rows {
      for (j, id) in ids.enumerated() { #expect(got[r * v + Int(id)] == x[r * s + j]) }
      #expect(got[(r * v)..<((r + 1) * v)].filter { $0 == -.infinity }.count == v - s)
    }
  }

  @Test func cacheUpdateInPlaceWithIdentityReorder() {
    let (r, s, d, t) = (4, 6, 5, 3)
    var rng = SplitMix64(seed: 11)
    let cache = randomFloats(r * s * d, &rng, in: -1...1)
    let row = randomFloats(r * d, &rng, in: -1...1)
    let identity = (0..<r).map(Int32.init)
    var want = [Float](repeating: 0, count: r * s * d)
    let step = [Int32(t)]
    mq_cache_update_ref(&want, cache, identity, row, Int64(s), Int64(d), step, 0, 0, Int64(r))
    var inPlace = cache
    inPlace.withUnsafeMutableBufferPointer { p in
      mq_cache_update(p.baseAddress!, p.baseAddress!, identity, row, Int64(s), Int64(d), step, 0, 0, Int64(r))
    }
    #expect(inPlace == want)
  }

  /// Rows at different positions (a server's rows joined at different steps): each row's own t,
  /// as the reference gives it and as one row-at-a-time update with a shared t gives it.
  @Test func cacheUpdateWithAStepPerRow() {
    let (r, s, d) = (7, 9, 5)
    var rng = SplitMix64(seed: 23)
    let cache = randomFloats(r * s * d, &rng, in: -2...2)
    let row = randomFloats(r * d, &rng, in: -2...2)
    let reorder = (0..<r).map { _ in Int32(Int.random(in: 0..<r, using: &rng)) }
    let steps = (0..<r).map { Int32(($0 * 5) % s) }
    var got = [Float](repeating: .nan, count: r * s * d), want = got, single = got
    mq_cache_update(&got, cache, reorder, row, Int64(s), Int64(d), steps, 1, 0, 3)
    mq_cache_update(&got, cache, reorder, row, Int64(s), Int64(d), steps, 1, 3, Int64(r))
    mq_cache_update_ref(&want, cache, reorder, row, Int64(s), Int64(d), steps, 1, 0, Int64(r))
    for i in 0..<r {
      mq_cache_update_ref(&single, cache, reorder, row, Int64(s), Int64(d), [steps[i]], 0, Int64(i), Int64(i + 1))
    }
    #expect(got == want)
    #expect(want == single)
    #expect(Set(steps).count > 3)
  }

  @Test(arguments: [(1, 1, 1), (3, 10, 4), (4, 50_123, 4), (7, 5, 9)])
  func topKRowsMatchReference(rows: Int, n: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(rows * n + k))
    // Probabilities with ties and zeros, as the output mixture gives.
    let x = (0..<(rows * n)).map { _ in Float(Int.random(in: 0..<50, using: &rng)) / 49 }
    for takeLog: Int32 in [0, 1] {
      var v = [Float](repeating: .nan, count: rows * k), ix = [Int32](repeating: -7, count: rows * k)
      var rv = v, rix = ix
      mq_topk_rows(x, Int64(n), Int64(k), takeLog, &v, &ix, 0, Int64(rows / 2))
      mq_topk_rows(x, Int64(n), Int64(k), takeLog, &v, &ix, Int64(rows / 2), Int64(rows))
      mq_topk_rows_ref(x, Int64(n), Int64(k), takeLog, &rv, &rix, 0, Int64(rows))
      #expect(ix == rix)
      #expect(zip(v, rv).allSatisfy { $0.bitPattern == $1.bitPattern })
      for r in 0..<rows {
        for j in 0..<k {
          if j >= n {
            #expect(v[r * k + j] == -.infinity && ix[r * k + j] == 0)
            continue
          }
          let p = x[r * n + Int(ix[r * k + j])]
          #expect(v[r * k + j] == (takeLog == 1 ? logf(p) : p))
          if j > 0 { #expect(v[r * k + j] <= v[r * k + j - 1]) }
        }
      }
    }
  }
}

/// mq_mixture_topk against the three kernels it fuses (bit for bit) and against its reference twin.
@Suite struct MixtureTopKTests {
  @Test(arguments: [(1, 1, 7, 10, 3, 2, 1), (2, 3, 50, 57, 6, 4, 4), (3, 2, 1000, 1003, 9, 5, 3), (2, 4, 5, 9, 4, 3, 12)])
  func fusedEqualsSoftmaxMixtureTopK(b: Int, t: Int, v: Int, x: Int, lc: Int, lq: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(b * 1000 + v + k))
    let rows = b * t
    // Logits with repeats (ties), copy ids with repeats, inside and past V.
    let logits = (0..<(rows * v)).map { _ in Float(Int.random(in: -40...40, using: &rng)) / 8 }
    let gamma = randomFloats(rows, &rng, in: 0.01...0.99)
    expectFusedEqualsUnfused(b: b, t: t, v: v, x: x, lc: lc, lq: lq, k: k, logits: logits, gamma: gamma, &rng)
  }

  /// Rows where a word's mixture value is not monotone in its exp (gamma negative or NaN), or
  /// whose exps hold NaN (a NaN or +inf logit), and gamma 0: the selection works every value out
  /// first there, or skips no block it must not.
  @Test func unusualRowsEqualSoftmaxMixtureTopK() {
    var rng = SplitMix64(seed: 77)
    // No OOV slots and k above the copies, so the vocabulary's words decide the last places.
    let (b, v) = (8, 300)
    var logits = (0..<(b * v)).map { _ in Float(Int.random(in: -40...40, using: &rng)) / 8 }
    logits[3 * v + 37] = .nan
    for j in 160..<v { logits[4 * v + j] = .nan }  // whole blocks of NaN exps after numbers
    logits[5 * v + 250] = .infinity
    logits[6 * v + 299] = -.infinity
    let gamma: [Float] = [0, -0.5, .nan, 0.7, 0.3, 0.6, 1, -0.0]
    expectFusedEqualsUnfused(b: b, t: 1, v: v, x: v, lc: 5, lq: 3, k: 12, logits: logits, gamma: gamma, &rng)
  }

  func expectFusedEqualsUnfused(b: Int, t: Int, v: Int, x: Int, lc: Int, lq: Int, k: Int, logits: [Float],
                                gamma: [Float], _ rng: inout SplitMix64) {
    let rows = b * t
    let lambda = randomFloats(rows, &rng, in: 0.01...0.99)
    func attention(_ n: Int) -> [Float] { randomAttention(rows: rows, width: n, &rng) }
    let ac = attention(lc), aq = attention(lq)
    let cids = (0..<(b * lc)).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    var qids = (0..<(b * lq)).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    qids[0] = cids[0]  // one id copied from both
    for takeLog: Int32 in [0, 1] {
      // Unfused: softmax, mixture, top-k.
      var p = [Float](repeating: 0, count: rows * v), mix = [Float](repeating: 0, count: rows * x)
      mq_masked_softmax(&p, logits, nil, 1, Int64(v), 1, -1e10, 0, 0, 0, 0, Int64(rows))
      mq_pointer_mixture(&mix, p, gamma, lambda, ac, cids, aq, qids, Int64(t), Int64(v), Int64(x), Int64(lc), Int64(lq),
                         0, Int64(rows))
      var wantV = [Float](repeating: 0, count: rows * k), wantI = [Int32](repeating: 0, count: rows * k)
      mq_topk_rows(mix, Int64(x), Int64(k), takeLog, &wantV, &wantI, 0, Int64(rows))
      // Fused, in two row ranges with a dirty scratch.
      var scratch = [Float](repeating: .nan, count: Int(mq_mixture_topk_scratch(Int64(v), Int64(lc), Int64(lq))) + v + x)
      var gotV = [Float](repeating: 7, count: rows * k), gotI = [Int32](repeating: -1, count: rows * k)
      for (r0, r1) in [(0, rows / 2), (rows / 2, rows)] {
        mq_mixture_topk(&gotV, &gotI, logits, gamma, lambda, ac, cids, aq, qids, Int64(t), Int64(v), Int64(x), Int64(lc),
                        Int64(lq), Int64(k), takeLog, &scratch, Int64(r0), Int64(r1))
      }
      #expect(gotI == wantI, "ids, log \(takeLog)")
      #expect(zip(gotV, wantV).allSatisfy { $0.bitPattern == $1.bitPattern }, "values, log \(takeLog)")
      // The reference twin: same ids, values within float rounding (its exp is libm's).
      var refV = [Float](repeating: 0, count: rows * k), refI = [Int32](repeating: 0, count: rows * k)
      mq_mixture_topk_ref(&refV, &refI, logits, gamma, lambda, ac, cids, aq, qids, Int64(t), Int64(v), Int64(x),
                          Int64(lc), Int64(lq), Int64(k), takeLog, &scratch, 0, Int64(rows))
      for i in 0..<(rows * k) where refV[i].isFinite {
        #expect(abs(refV[i] - gotV[i]) <= 1e-5 * max(1, abs(refV[i])), "value \(i): \(refV[i]) vs \(gotV[i])")
      }
    }
  }

  /// One row by a team of threads (batch-1 decoding: the max and the exps split by columns)
  /// gives the one-thread kernel's bits, over the whole vocabulary and over a shortlist.
  @Test(arguments: [2, 3])
  func aTeamOnOneRowGivesTheOneThreadBits(threads: Int) {
    var rng = SplitMix64(seed: UInt64(77 + threads))
    let v = 5003, x = 5010, lc = 9, lq = 4, k = 4
    let cids = (0..<lc).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    let qids = (0..<lq).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    let gamma = randomFloats(1, &rng, in: 0.01...0.99), lambda = randomFloats(1, &rng, in: 0.01...0.99)
    let ac = randomAttention(rows: 1, width: lc, &rng), aq = randomAttention(rows: 1, width: lq, &rng)
    let shortlist = (0..<(v / 2)).map { Int32(2 * $0) } + cids.filter { $0 < v && $0 % 2 == 1 }
    for ids in [nil, shortlist] {
      let n = ids?.count ?? v
      let logits = (0..<n).map { _ in Float(Int.random(in: -40...40, using: &rng)) / 8 }
      let need = Int(ids == nil ? mq_mixture_topk_scratch(Int64(v), Int64(lc), Int64(lq))
                                : mq_mixture_topk_shortlist_scratch(Int64(v), Int64(n), Int64(lc), Int64(lq)))
      for takeLog: Int32 in [0, 1] {
        var scratch = [Float](repeating: .nan, count: need)
        var wantV = [Float](repeating: 0, count: k), wantI = [Int32](repeating: 0, count: k)
        if let ids {
          mq_mixture_topk_shortlist(&wantV, &wantI, logits, ids, Int64(n), gamma, lambda, ac, cids, aq, qids, 1,
                                    Int64(v), Int64(x), Int64(lc), Int64(lq), Int64(k), takeLog, &scratch, 0, 1)
        } else {
          mq_mixture_topk(&wantV, &wantI, logits, gamma, lambda, ac, cids, aq, qids, 1, Int64(v), Int64(x), Int64(lc),
                          Int64(lq), Int64(k), takeLog, &scratch, 0, 1)
        }
        let run = TeamRun(threads: threads, n: n, k: k, scratch: need)
        let group = DispatchGroup()
        for ith in 0..<threads {
          group.enter()
          Thread {
            ids.withOptionalPointer { idp in
              mq_mixture_topk_team(Int32(ith), Int32(threads), run.barrier, run.shared, run.values, run.indices, logits,
                                   idp, Int64(n), gamma, lambda, ac, cids, aq, qids, 1, Int64(v), Int64(x), Int64(lc),
                                   Int64(lq), Int64(k), takeLog, run.scratches[ith], 0)
            }
            group.leave()
          }.start()
        }
        group.wait()
        #expect(Array(UnsafeBufferPointer(start: run.indices, count: k)) == wantI, "ids, shortlist \(ids != nil), log \(takeLog)")
        #expect(zip(UnsafeBufferPointer(start: run.values, count: k), wantV).allSatisfy { $0.bitPattern == $1.bitPattern },
                "values, shortlist \(ids != nil), log \(takeLog)")
      }
    }
  }
}

private extension Optional where Wrapped == [Int32] {
  /// The array's storage, or nil.
  func withOptionalPointer<R>(_ body: (UnsafePointer<Int32>?) -> R) -> R {
    guard let a = self else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress) }
  }
}

/// The buffers of one mq_mixture_topk_team call, shared by the test's threads.
private final class TeamRun: @unchecked Sendable {
  let values: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Int32>, shared: UnsafeMutablePointer<Float>
  let scratches: [UnsafeMutablePointer<Float>]
  let barrier = UnsafeMutablePointer<mq_barrier>.allocate(capacity: 1)

  init(threads: Int, n: Int, k: Int, scratch: Int) {
    values = .allocate(capacity: k)
    indices = .allocate(capacity: k)
    shared = .allocate(capacity: n + 64)
    scratches = (0..<threads).map { _ in .allocate(capacity: scratch) }
    mq_barrier_init(barrier, Int32(threads))
  }

  deinit {
    values.deallocate(); indices.deallocate(); shared.deallocate(); barrier.deallocate()
    for p in scratches { p.deallocate() }
  }
}
