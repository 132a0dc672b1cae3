// The fused output layer over a vocabulary shortlist (mq_mixture_topk_shortlist): the whole
// vocabulary as the shortlist gives mq_mixture_topk's bits; a real shortlist matches its oracle.
import CKernels
import Testing

@Suite struct ShortlistKernelTests {
  @Test(arguments: [(2, 3, 50, 57, 6, 4, 4), (3, 2, 300, 303, 9, 5, 3), (1, 1, 40, 45, 7, 3, 6)])
  func shortlistedOutputLayer(b: Int, t: Int, v: Int, x: Int, lc: Int, lq: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(b * 77 + v + k))
    let rows = b * t
    let gamma = randomFloats(rows, &rng, in: 0.01...0.99), lambda = randomFloats(rows, &rng, in: 0.01...0.99)
    func attention(_ n: Int) -> [Float] { randomAttention(rows: rows, width: n, &rng) }
    let ac = attention(lc), aq = attention(lq)
    let cids = (0..<(b * lc)).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    let qids = (0..<(b * lq)).map { _ in Int32(Int.random(in: 0..<x, using: &rng)) }
    let logitsV = (0..<(rows * v)).map { _ in Float(Int.random(in: -40...40, using: &rng)) / 8 }
    func run(_ ids: [Int32], _ logits: [Float], reference: Bool = false) -> ([Float], [Int32]) {
      let n = ids.count
      var scratch = [Float](repeating: .nan, count: Int(mq_mixture_topk_shortlist_scratch(Int64(v), Int64(n), Int64(lc),
                                                                                        Int64(lq))) + 2 * v + x + n)
      var values = [Float](repeating: 7, count: rows * k), indices = [Int32](repeating: -1, count: rows * k)
      let f = reference ? mq_mixture_topk_shortlist_ref : mq_mixture_topk_shortlist
      for (r0, r1) in [(0, rows / 2), (rows / 2, rows)] {
        f(&values, &indices, logits, ids, Int64(n), gamma, lambda, ac, cids, aq, qids, Int64(t), Int64(v), Int64(x),
          Int64(lc), Int64(lq), Int64(k), 1, &scratch, Int64(r0), Int64(r1))
      }
      return (values, indices)
    }
    // The whole vocabulary: mq_mixture_topk, bit for bit.
    var scratch = [Float](repeating: .nan, count: Int(mq_mixture_topk_scratch(Int64(v), Int64(lc), Int64(lq))))
    var wantV = [Float](repeating: 0, count: rows * k), wantI = [Int32](repeating: 0, count: rows * k)
    mq_mixture_topk(&wantV, &wantI, logitsV, gamma, lambda, ac, cids, aq, qids, Int64(t), Int64(v), Int64(x), Int64(lc),
                    Int64(lq), Int64(k), 1, &scratch, 0, Int64(rows))
    let all = run((0..<Int32(v)).map { $0 }, logitsV)
    #expect(all.1 == wantI)
    #expect(zip(all.0, wantV).allSatisfy { $0.bitPattern == $1.bitPattern })
    // Every third word, plus the copied ones that are words: against the oracle.
    let copied = Set((cids + qids).filter { $0 < v })
    let ids = (0..<Int32(v)).filter { $0 % 3 == 0 || copied.contains($0) }
    let logits = (0..<rows).flatMap { r in ids.map { logitsV[r * v + Int($0)] } }
    let got = run(ids, logits), ref = run(ids, logits, reference: true)
    #expect(got.1 == ref.1, "ids")
    for i in got.0.indices where ref.0[i].isFinite {
      #expect(abs(got.0[i] - ref.0[i]) <= 1e-5 * max(1, abs(ref.0[i])), "value \(i): \(got.0[i]) vs \(ref.0[i])")
    }
    // No word outside the shortlist is chosen unless it is copied.
    let inList = Set(ids)
    for id in got.1 where id < v { #expect(inList.contains(id) || copied.contains(id), "word \(id)") }
  }
}
