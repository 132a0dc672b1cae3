// Top-k: mq_topk (size-k heap) against mq_topk_ref (full sort) and hand-written expectations.
// Legend: x [n] scores; values [k] / indices [k], best first; ties by lower index.
import CKernels
import Testing

private func topk(_ x: [Float], _ k: Int, ref: Bool = false) -> (values: [Float], indices: [Int32]) {
  let m = max(0, min(k, x.count))
  var v = [Float](repeating: .nan, count: max(m, 1))
  var ix = [Int32](repeating: -1, count: max(m, 1))
  if ref { mq_topk_ref(x, Int64(x.count), Int64(k), &v, &ix) } else { mq_topk(x, Int64(x.count), Int64(k), &v, &ix) }
  return (Array(v.prefix(m)), Array(ix.prefix(m)))
}

/// Bitwise comparison (NaN-safe).
private func same(_ a: [Float], _ b: [Float]) -> Bool {
  a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

@Suite struct TopKTests {
  @Test(arguments: [(1, 1), (7, 3), (7, 7), (101, 1), (101, 5), (101, 100), (4097, 64),
                    (50_123, 10), (50_123, 200)])
  func randomMatchesReference(n: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(n * 1000 + k))
    let x = randomFloats(n, &rng, in: -20...20)
    let got = topk(x, k), want = topk(x, k, ref: true)
    #expect(got.indices == want.indices)
    #expect(same(got.values, want.values))
    // Sorted descending, and each value is x at its index.
    #expect(zip(got.values, got.values.dropFirst()).allSatisfy { $0 >= $1 })
    #expect(zip(got.values, got.indices).allSatisfy { $0 == x[Int($1)] })
    // Nothing left out is larger than the last kept value.
    let last = got.values.last!
    let kept = Set(got.indices)
    #expect((0..<n).allSatisfy { kept.contains(Int32($0)) || x[$0] <= last })
  }

  @Test func tiesRankByLowerIndex() {
    let x: [Float] = [1, 3, 3, 2, 3, 1, 3, 2, 2]
    let got = topk(x, 5)
    #expect(got.indices == [1, 2, 4, 6, 3])
    #expect(got.values == [3, 3, 3, 3, 2])
    #expect(topk(x, 5, ref: true).indices == got.indices)
    // All equal: the first k indices.
    let flat = [Float](repeating: -0.5, count: 31)
    #expect(topk(flat, 6).indices == [0, 1, 2, 3, 4, 5])
    #expect(topk(flat, 31).indices == (0..<31).map(Int32.init))
    // Random values from a tiny set: many ties.
    var rng = SplitMix64(seed: 7)
    let tied = (0..<999).map { _ in Float(Int.random(in: 0..<4, using: &rng)) }
    for k in [1, 2, 17, 250, 251, 998, 999] {
      #expect(topk(tied, k).indices == topk(tied, k, ref: true).indices, "k \(k)")
    }
  }

  @Test func kOneIsArgmax() {
    var rng = SplitMix64(seed: 3)
    for n in [1, 2, 9, 1001] {
      let x = randomFloats(n, &rng)
      var best = 0
      for j in 1..<max(n, 1) where x[j] > x[best] { best = j }
      #expect(topk(x, 1).indices == [Int32(best)])
    }
    #expect(topk([2, 5, 5, 1], 1).indices == [1])
  }

  @Test(arguments: [1, 2, 5, 33, 128])
  func kEqualsNIsAFullSort(n: Int) {
    var rng = SplitMix64(seed: UInt64(n))
    let x = randomFloats(n, &rng)
    let got = topk(x, n)
    let want = (0..<n).sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }.map(Int32.init)
    #expect(got.indices == want)
    #expect(got.values == want.map { x[Int($0)] })
  }

  @Test func infinitiesNaNAndClamping() {
    let x: [Float] = [-.infinity, .nan, 0, .infinity, -.infinity, .nan, -1]
    let got = topk(x, 7)
    #expect(got.indices == [3, 2, 6, 0, 4, 1, 5])
    #expect(topk(x, 7, ref: true).indices == got.indices)
    #expect(topk(x, 3).indices == [3, 2, 6])
    // NaN first in the scan: later numbers still replace it.
    #expect(topk([.nan, .nan, 1, 2], 2).indices == [3, 2])
    // k beyond n is clamped; k = 0 writes nothing.
    #expect(topk([1, 2], 5).indices == [1, 0])
    #expect(topk([1, 2], 0).indices.isEmpty)
    #expect(topk([], 3).indices.isEmpty)
  }
}
