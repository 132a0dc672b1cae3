import Foundation

/// `mqan predict` over the ranks of a job: the batches dealt out by length, each rank's answers
/// sent to rank 0 as bytes, and put back in input order there.
///
/// Every rank forms the same batches as one process would (the same sort and batch sizes), so a
/// batch decodes to the same bits on whichever rank owns it: the merged answers are one process's.
public enum PredictionShards {
  /// The rank that decodes each batch: batches taken by decreasing cost (examples x the longest
  /// context + question; the earlier batch on a tie), each to the rank with the least cost so far
  /// (the lowest rank on a tie). Every rank computes the same owners.
  public static func owners(batches costs: [Int], ranks: Int) -> [Int] {
    guard ranks > 1 else { return [Int](repeating: 0, count: costs.count) }
    var load = [Int](repeating: 0, count: ranks)
    var owner = [Int](repeating: 0, count: costs.count)
    for b in costs.indices.sorted(by: { (costs[$0], -$0) > (costs[$1], -$1) }) {
      let r = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
      owner[b] = r
      load[r] += costs[b]
    }
    return owner
  }

  /// The answers of `indices` (positions in the input) as bytes: per example its position, token
  /// count, score bits and answer, then its n-best answers with their score bits.
  public static func encode(_ predictions: [Prediction], indices: [Int]) -> [UInt8] {
    var out: [UInt8] = []
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    func text(_ s: String) {
      let b = Array(s.utf8)
      u64(UInt64(b.count))
      out += b
    }
    u64(UInt64(indices.count))
    for i in indices {
      let p = predictions[i]
      u64(UInt64(i))
      u64(UInt64(p.tokens))
      u64(p.score.bitPattern)
      text(p.answer)
      u64(UInt64(p.nBest.count))
      for alt in p.nBest {
        text(alt.answer)
        u64(alt.score.bitPattern)
      }
    }
    return out
  }

  /// Why a share's bytes could not be read back.
  public struct DecodeError: Error, CustomStringConvertible {
    public var description: String
  }

  /// Puts the shares' answers (from `encode`) into `predictions`, by position.
  public static func merge(_ shares: [[UInt8]], into predictions: inout [Prediction]) throws(DecodeError) {
    for (rank, bytes) in shares.enumerated() {
      var at = 0
      func u64() throws(DecodeError) -> UInt64 {
        guard at + 8 <= bytes.count else { throw DecodeError(description: "rank \(rank)'s answers end early (\(bytes.count) bytes)") }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[at + k]) << (8 * k) }
        at += 8
        return v
      }
      func int(below limit: Int) throws(DecodeError) -> Int {
        let v = try u64()
        guard v < UInt64(limit) else { throw DecodeError(description: "rank \(rank)'s answers hold \(v), over \(limit)") }
        return Int(v)
      }
      func text() throws(DecodeError) -> String {
        let n = try int(below: bytes.count - at + 1)
        defer { at += n }
        return String(decoding: bytes[at..<(at + n)], as: UTF8.self)
      }
      let count = try int(below: predictions.count + 1)
      for _ in 0..<count {
        let i = try int(below: predictions.count)
        let tokens = try int(below: Int.max)
        let score = Double(bitPattern: try u64())
        let answer = try text()
        var nBest: [(answer: String, score: Double)] = []
        for _ in 0..<(try int(below: bytes.count + 1)) {
          let a = try text()
          nBest.append((a, Double(bitPattern: try u64())))
        }
        predictions[i] = Prediction(answer: answer, score: score, tokens: tokens, nBest: nBest)
      }
    }
  }
}
