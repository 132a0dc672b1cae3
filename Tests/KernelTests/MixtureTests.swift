// Pointer mixture, NLL, embedding, pad mask, positional encoding, block copy, transpose.
// Legend: B = batch, T = steps (rows r of B*T, batch b = r / T), V = vocab, X = extended vocab,
// Lc / Lq = context / question length, E = embedding width, D = model width.
import CKernels
import Testing

struct MixtureCase: CustomStringConvertible, Sendable {
  var B: Int, T: Int, V: Int, X: Int, Lc: Int, Lq: Int
  var description: String { "B\(B) T\(T) V\(V) X\(X) Lc\(Lc) Lq\(Lq)" }
}

@Suite struct MixtureTests {
  @Test(arguments: [
    MixtureCase(B: 1, T: 1, V: 1, X: 1, Lc: 1, Lq: 1),
    MixtureCase(B: 2, T: 3, V: 7, X: 10, Lc: 5, Lq: 4),
    MixtureCase(B: 3, T: 5, V: 1000, X: 1013, Lc: 33, Lq: 7),
  ])
  func mixtureMatchesReference(_ c: MixtureCase) {
    var rng = SplitMix64(seed: UInt64(c.V * 17 + c.Lc))
    let rows = c.B * c.T
    let pvocab = randomFloats(rows * c.V, &rng, in: 0...1)
    let gamma = randomFloats(rows, &rng, in: 0...1)
    let lambda = randomFloats(rows, &rng, in: 0...1)
    let ac = randomFloats(rows * c.Lc, &rng, in: 0...1)
    let aq = randomFloats(rows * c.Lq, &rng, in: 0...1)
    // Ids over the whole extended vocab, with forced repeats and OOV slots (>= V).
    var cids = randomIds(c.B * c.Lc, below: Int32(c.X), &rng)
    var qids = randomIds(c.B * c.Lq, below: Int32(c.X), &rng)
    if c.Lc > 2 { cids[1] = cids[0]; cids[2] = Int32(c.X - 1) }
    if c.Lq > 1 { qids[0] = cids[0] }
    let call = { (f: @escaping MixtureKernel) in
      { (o: UnsafeMutablePointer<Float>, r0: Int64, r1: Int64) in
        f(o, pvocab, gamma, lambda, ac, cids, aq, qids, Int64(c.T), Int64(c.V), Int64(c.X),
          Int64(c.Lc), Int64(c.Lq), r0, r1)
      }
    }
    let want = runFull(count: rows * c.X, rows: rows, call(mq_pointer_mixture_ref))
    let got = fullAndSplit([Float](repeating: sentinel, count: rows * c.X), rows: rows, split: rows / 2 + (rows > 1 ? 1 : 0), call(mq_pointer_mixture))
    expectBitwise(got.full, want, "mixture \(c)")
    expectBitwise(got.split, want, "mixture split \(c)")
  }

  @Test func mixtureKnownValues() {
    // V = 3, X = 5 (2 OOV slots); gamma = 0.5, lambda = 0.25 -> context weight 0.125, question
    // weight 0.375. Context ids [1, 3, 1] repeat id 1; question ids [4, 0] hit an OOV slot.
    var out = [Float](repeating: sentinel, count: 5)
    mq_pointer_mixture(&out, [0.2, 0.3, 0.5], [0.5], [0.25], [0.5, 0.25, 0.25], [1, 3, 1],
                       [0.6, 0.4], [4, 0], 1, 3, 5, 3, 2, 0, 1)
    let expected: [Float] = [
      0.1 + 0.375 * 0.4, // vocab 0 + question pointer
      0.15 + 0.125 * 0.5 + 0.125 * 0.25, // vocab 1 + context pointer twice
      0.25, // vocab 2 untouched
      1e-10 + 0.125 * 0.25, // OOV slot from the context
      1e-10 + 0.375 * 0.6, // OOV slot from the question
    ]
    expectClose(out, expected, rtol: 1e-6, atol: 1e-9, "mixture")
    #expect(abs(out.reduce(0, +) - 1) < 1e-6)
    // Without pointers the OOV slots hold exactly EPSILON.
    var bare = [Float](repeating: sentinel, count: 4)
    mq_pointer_mixture(&bare, [1, 0], [1], [0.5], [1], [0], [1], [1], 1, 2, 4, 0, 0, 0, 1)
    #expect(bare == [1, 0, 1e-10, 1e-10])
  }

  @Test(arguments: [1, 7, 33, 1000])
  func nllMatchesReference(rows: Int) {
    var rng = SplitMix64(seed: UInt64(rows))
    let X = 13
    let P = randomFloats(rows * X, &rng, in: 1e-6...1)
    var targets = randomIds(rows, below: Int32(X), &rng)
    for r in stride(from: 0, to: rows, by: 3) { targets[r] = 1 } // ignored rows
    var sumRef = 0.0, countRef: Int64 = 0
    mq_nll_ref(&sumRef, &countRef, P, targets, Int64(X), 1, 0, Int64(rows))
    var sum = 0.0, count: Int64 = 0
    mq_nll(&sum, &count, P, targets, Int64(X), 1, 0, Int64(rows))
    #expect(count == countRef)
    #expect(count == Int64(targets.filter { $0 != 1 }.count))
    #expect(abs(sum - sumRef) <= 1e-12 * max(1, abs(sumRef)))
    var sum2 = 0.0, count2: Int64 = 0
    mq_nll(&sum2, &count2, P, targets, Int64(X), 1, 0, Int64(rows / 2))
    mq_nll(&sum2, &count2, P, targets, Int64(X), 1, Int64(rows / 2), Int64(rows))
    #expect(count2 == count)
    #expect(abs(sum2 - sum) <= 1e-12 * max(1, abs(sum)))
  }

  @Test func nllKnownValues() {
    // Row 1's target is the ignore index; the others add -log 0.5 and -log 0.1. Both the sum
    // and the count accumulate onto what is already there.
    let P: [Float] = [0.5, 0.5, 0.25, 0.75, 0.1, 0.9]
    var sum = 1.0, count: Int64 = 3
    mq_nll(&sum, &count, P, [0, 1, 0], 2, 1, 0, 3)
    #expect(count == 5)
    let expected = 1 - dlog(Double(Float(0.5))) - dlog(Double(Float(0.1)))
    #expect(abs(sum - expected) < 1e-6)
  }

  @Test(arguments: [(1, 1), (7, 5), (33, 64)])
  func embeddingMatchesReference(rows: Int, E: Int) {
    var rng = SplitMix64(seed: UInt64(rows * 3 + E))
    let vocab = 11
    let table = randomFloats(vocab * E, &rng)
    var ids = randomIds(rows, below: Int32(vocab), &rng)
    ids[0] = Int32(vocab - 1)
    let want = runFull(count: rows * E, rows: rows) { mq_embedding_ref($0, table, ids, Int64(E), $1, $2) }
    let got = fullAndSplit([Float](repeating: sentinel, count: rows * E), rows: rows, split: rows / 2) {
      mq_embedding($0, table, ids, Int64(E), $1, $2)
    }
    expectBitwise(got.full, want, "embedding")
    expectBitwise(got.split, want, "embedding split")
    expectBitwise(Array(want[0..<E]), Array(table[((vocab - 1) * E)...]), "row of the last id")
  }

  @Test func padMask() {
    let ids: [Int32] = [5, 1, 1, 0, 7, 1, 2]
    let expected: [Float] = [0, 1, 1, 0, 0, 1, 0]
    let got = fullAndSplit([Float](repeating: sentinel, count: 7), rows: 7, split: 2) { mq_pad_mask($0, ids, 1, $1, $2) }
    let want = runFull(count: 7, rows: 7) { mq_pad_mask_ref($0, ids, 1, $1, $2) }
    #expect(got.full == expected)
    #expect(got.split == expected)
    #expect(want == expected)
  }

  @Test(arguments: [1, 4, 7, 200, 300])
  func positionalEncodingMatchesReference(D: Int) {
    let T = 50
    let want = runFull(count: T * D, rows: T) { mq_positional_encoding_ref($0, Int64(D), $1, $2) }
    let got = fullAndSplit([Float](repeating: sentinel, count: T * D), rows: T, split: 17) {
      mq_positional_encoding($0, Int64(D), $1, $2)
    }
    expectBitwise(got.full, want, "pe D=\(D)")
    expectBitwise(got.split, want, "pe split D=\(D)")
  }

  @Test func positionalEncodingKnownValues() {
    // D = 4: channels sin(p), cos(p), sin(p / 100), cos(p / 100); p = 0 gives [0, 1, 0, 1].
    let pe = runFull(count: 12, rows: 3) { mq_positional_encoding($0, 4, $1, $2) }
    #expect(Array(pe[0..<4]) == [0, 1, 0, 1])
    expectClose(Array(pe[4..<8]), [dsin(1), dcos(1), dsin(0.01), dcos(0.01)].map { Float($0) }, rtol: 1e-6, atol: 1e-7, "p=1")
    expectClose(Array(pe[8..<12]), [dsin(2), dcos(2), dsin(0.02), dcos(0.02)].map { Float($0) }, rtol: 1e-6, atol: 1e-7, "p=2")
    // Odd D: the last (even) channel uses its own exponent c / D. D = 3, p = 1: sin(1 / 10000^(2/3)).
    let odd = runFull(count: 6, rows: 2) { mq_positional_encoding($0, 3, $1, $2) }
    let div = Float(dpow(10000, 2.0 / 3.0)) // rounded to float, as torch divides by it
    expectClose(Array(odd[3..<6]), [Float(dsin(1)), Float(dcos(1)), Float(dsin(Double(Float(1) / div)))], rtol: 1e-6, atol: 1e-7, "odd D")
  }

  @Test func copyBlocks() {
    // src [4, 6]: copy columns 2..<5 of rows 0..<4 into columns 1..<4 of dst [4, 5].
    let src = (0..<24).map { Float($0) }
    var expected = [Float](repeating: sentinel, count: 20)
    for o in 0..<4 { for j in 0..<3 { expected[o * 5 + 1 + j] = src[o * 6 + 2 + j] } }
    let got = fullAndSplit([Float](repeating: sentinel, count: 20), rows: 4, split: 1) {
      mq_copy_blocks($0, 5, 1, src, 6, 2, 3, $1, $2)
    }
    #expect(got.full == expected)
    #expect(got.split == expected)
    // Contiguous views (stride == width) take the single-copy path, offsets included.
    let flat = fullAndSplit([Float](repeating: sentinel, count: 14), rows: 3, split: 2) {
      mq_copy_blocks($0, 4, 2, src, 4, 5, 4, $1, $2)
    }
    let flatExpected = [sentinel, sentinel] + (5..<17).map { Float($0) }
    #expect(flat.full == flatExpected)
    #expect(flat.split == flatExpected)
    // The reference twin agrees on both paths.
    let refStrided = runFull(count: 20, rows: 4) { mq_copy_blocks_ref($0, 5, 1, src, 6, 2, 3, $1, $2) }
    #expect(refStrided == expected)
  }

  @Test(arguments: [(1, 1), (7, 3), (33, 40), (70, 65)])
  func transposeMatchesReference(m: Int, n: Int) {
    var rng = SplitMix64(seed: UInt64(m * 100 + n))
    let batch = 3
    let x = randomFloats(batch * m * n, &rng)
    let want = runFull(count: batch * m * n, rows: batch) { mq_transpose_ref($0, x, Int64(m), Int64(n), $1, $2) }
    let got = fullAndSplit([Float](repeating: sentinel, count: batch * m * n), rows: batch, split: 1) {
      mq_transpose($0, x, Int64(m), Int64(n), $1, $2)
    }
    expectBitwise(got.full, want, "transpose")
    expectBitwise(got.split, want, "transpose split")
    #expect(want[m * n + (n - 1) * m + 0] == x[m * n + n - 1]) // batch 1, out[n-1, 0] = x[0, n-1]
  }
}

typealias MixtureKernel = (
  UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
  UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Int32>?, UnsafePointer<Float>?,
  UnsafePointer<Int32>?, Int64, Int64, Int64, Int64, Int64, Int64, Int64
) -> Void
