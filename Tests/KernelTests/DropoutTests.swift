import CKernels
import Testing

/// Dropout masks: a pure function of (seed, salt, index), matching the reference, at the rate.
@Suite struct DropoutTests {
  @Test(arguments: [Float(0.2), 0.3, 0.5])
  func maskMatchesReferenceAndRate(p: Float) {
    let n = 100_003
    var fast = [Float](repeating: -1, count: n), ref = [Float](repeating: -1, count: n)
    fast.withUnsafeMutableBufferPointer { mq_dropout_mask($0.baseAddress, p, 42, 7, 0, Int64(n)) }
    ref.withUnsafeMutableBufferPointer { mq_dropout_mask_ref($0.baseAddress, p, 42, 7, 0, Int64(n)) }
    #expect(fast == ref)
    let dropped = fast.filter { $0 == 0 }.count
    #expect(abs(Double(dropped) / Double(n) - Double(p)) < 0.01)
    #expect(fast.allSatisfy { $0 == 0 || $0 == 1 / (1 - p) })
    // Any split of the range gives the same values (threads need no coordination).
    var split = [Float](repeating: -1, count: n)
    split.withUnsafeMutableBufferPointer {
      mq_dropout_mask($0.baseAddress, p, 42, 7, 0, 999)
      mq_dropout_mask($0.baseAddress, p, 42, 7, 999, Int64(n))
    }
    #expect(split == fast)
  }

  @Test func seedsAndSaltsDrawDifferentMasks() {
    func mask(_ seed: UInt64, _ salt: UInt64) -> [Float] {
      var m = [Float](repeating: 0, count: 256)
      m.withUnsafeMutableBufferPointer { mq_dropout_mask($0.baseAddress, 0.5, seed, salt, 0, 256) }
      return m
    }
    #expect(mask(1, 1) == mask(1, 1))
    #expect(mask(1, 1) != mask(2, 1))
    #expect(mask(1, 1) != mask(1, 2))
  }
}
