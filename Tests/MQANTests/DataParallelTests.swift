import Testing
@testable import MQAN

/// How a data-parallel job divides its work: the train batch's rows among the ranks, predict's
/// batches among the ranks, and the answers' round trip through bytes to rank 0.
@Suite struct DataParallelTests {
  /// A batch whose row i has contexts of `lengths[i]` tokens (questions 3, answers 4).
  func batch(_ lengths: [Int]) -> EncodedBatch {
    EncodedBatch(context: lengths.map { Array(repeating: 5, count: $0) },
                 question: lengths.map { _ in [1, 6, 2] }, answer: lengths.map { _ in [1, 7, 8, 2] })
  }

  @Test func sharesCoverTheBatchInOrderOnce() {
    for lengths in [[10], [10, 12], [5, 5, 5], [3, 40, 3, 3, 3, 3], Array(repeating: 9, count: 17), Array(1...30)] {
      let b = batch(lengths)
      for size in 1...5 {
        let shares = (0..<size).map { b.shard(rank: $0, size: size) }
        #expect(shares.flatMap(\.context) == b.context, "\(lengths) over \(size)")
        #expect(shares.flatMap(\.answer) == b.answer)
        #expect(shares.reduce(0) { $0 + $1.targetTokens } == b.targetTokens)
        if lengths.count >= size && Set(lengths).count == 1 {
          // Equal rows: every rank gets some, and the shares differ by at most one row.
          let rows = shares.map(\.rows)
          #expect(rows.min()! >= 1 && rows.max()! - rows.min()! <= 1, "\(lengths.count) rows over \(size): \(rows)")
        }
      }
    }
  }

  @Test func sharesBalanceTokensNotRows() {
    // One row of 107 tokens and 19 of 11 (316 in all): the cut nearest 158 gives rank 0 the long
    // row and 5 short ones (162 tokens), rank 1 the other 14 (154).
    let b = batch([100, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    #expect(b.shard(rank: 0, size: 2).rows == 6)
    #expect(b.shard(rank: 1, size: 2).rows == 14)
    #expect(b.targetTokens == 20 * 3)
    #expect(b.paddedTokens == 20 * (100 + 3 + 4))
  }

  @Test func predictBatchesGoLargestFirstToTheLeastLoaded() {
    #expect(PredictionShards.owners(batches: [5, 5, 5], ranks: 1) == [0, 0, 0])
    // 10 -> rank 0; 8, then 2 -> rank 1 (8, 10); the 1s: rank 0 on the tie, then rank 1.
    #expect(PredictionShards.owners(batches: [10, 1, 1, 8, 2], ranks: 2) == [0, 0, 1, 1, 1])
    #expect(PredictionShards.owners(batches: [4, 4, 4, 4], ranks: 2) == [0, 1, 0, 1])
    #expect(PredictionShards.owners(batches: [7], ranks: 3) == [0])
    let owners = PredictionShards.owners(batches: Array(1...40), ranks: 3)
    let loads = (0..<3).map { r in owners.indices.filter { owners[$0] == r }.reduce(0) { $0 + $1 + 1 } }
    #expect(loads.max()! - loads.min()! <= 40, "\(loads)")
  }

  @Test func answersRoundTripThroughBytes() throws {
    let all = [Prediction(answer: "positive", score: -0.125, tokens: 2),
               Prediction(answer: "Ein Hund läuft .", score: -.infinity, tokens: 5,
                          nBest: [("Ein Hund läuft .", -.infinity), ("", -3.5)]),
               Prediction(answer: "", score: 0, tokens: 1),
               Prediction(answer: "a \"quoted\" answer", score: .pi, tokens: 4)]
    var merged = [Prediction](repeating: Prediction(answer: "x", score: 9, tokens: 9), count: all.count)
    try PredictionShards.merge([PredictionShards.encode(all, indices: [0, 3]),
                                PredictionShards.encode(all, indices: [1, 2])], into: &merged)
    #expect(merged == all)
    // Cut bytes and positions past the input are errors, not crashes.
    let bytes = PredictionShards.encode(all, indices: [1])
    #expect(throws: PredictionShards.DecodeError.self) { try PredictionShards.merge([Array(bytes.dropLast(3))], into: &merged) }
    var short = [Prediction](repeating: Prediction(answer: "", score: 0, tokens: 0), count: 1)
    #expect(throws: PredictionShards.DecodeError.self) { try PredictionShards.merge([bytes], into: &short) }
  }
}
