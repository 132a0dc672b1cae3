import CKernels
import Foundation

/// Adam's scalars for one update, rounded to float as PyTorch's tensor ops round their scalars.
struct AdamHyper {
  var gradScale: Float = 1, stepSize: Float = 0, beta1: Float = 0, oneMinusBeta1: Float = 0
  var beta2: Float = 0, oneMinusBeta2: Float = 0, eps: Float = 0, bc2Sqrt: Float = 1
}

/// What the pool threads read during a step: fixed pointer tables (allocated at init), the
/// gradient pointers of the current step, the phase and the scalars.
final class AdamContext {
  enum Phase { case norm, update }

  let paramCount: Int
  let params: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
  let grads: UnsafeMutablePointer<UnsafePointer<Float>?>
  let momentOffsets: UnsafeMutablePointer<Int>
  let moments: UnsafeMutablePointer<Float>
  let momentFloats: Int
  let blockCount: Int
  let blockParam: UnsafeMutablePointer<Int>
  let blockStart: UnsafeMutablePointer<Int>
  let blockEnd: UnsafeMutablePointer<Int>
  /// Global element offset of each block, and of the end (for shares by element count).
  let blockOffset: UnsafeMutablePointer<Int>
  let partials: UnsafeMutablePointer<Double>
  let useReference: Bool
  var phase = Phase.norm
  var hyper = AdamHyper()

  init(params: [UnsafeMutablePointer<Float>], floats: [Int], moments: UnsafeMutablePointer<Float>,
       momentFloats: Int, blocks: [(param: Int, r0: Int, r1: Int)], partials: UnsafeMutablePointer<Double>,
       useReference: Bool) {
    paramCount = params.count
    self.params = .allocate(capacity: max(paramCount, 1))
    self.params.initialize(from: params, count: paramCount)
    grads = .allocate(capacity: max(paramCount, 1))
    grads.initialize(repeating: nil, count: max(paramCount, 1))
    momentOffsets = .allocate(capacity: max(paramCount, 1))
    var off = 0
    for k in 0..<paramCount {
      momentOffsets[k] = off
      off += floats[k]
    }
    self.moments = moments
    self.momentFloats = momentFloats
    blockCount = blocks.count
    blockParam = .allocate(capacity: max(blockCount, 1))
    blockStart = .allocate(capacity: max(blockCount, 1))
    blockEnd = .allocate(capacity: max(blockCount, 1))
    blockOffset = .allocate(capacity: blockCount + 1)
    var total = 0
    for (b, blk) in blocks.enumerated() {
      (blockParam[b], blockStart[b], blockEnd[b], blockOffset[b]) = (blk.param, blk.r0, blk.r1, total)
      total += blk.r1 - blk.r0
    }
    blockOffset[blockCount] = total
    self.partials = partials
    self.useReference = useReference
  }

  deinit {
    for p in [UnsafeMutableRawPointer(params), UnsafeMutableRawPointer(grads), UnsafeMutableRawPointer(momentOffsets),
              UnsafeMutableRawPointer(blockParam), UnsafeMutableRawPointer(blockStart),
              UnsafeMutableRawPointer(blockEnd), UnsafeMutableRawPointer(blockOffset)] {
      p.deallocate()
    }
  }

  @inline(__always) func m(_ k: Int) -> UnsafeMutablePointer<Float> { moments + momentOffsets[k] }
  @inline(__always) func v(_ k: Int) -> UnsafeMutablePointer<Float> { moments + momentFloats + momentOffsets[k] }

  /// Thread `ith` of `nth`: the blocks whose first element falls in its equal share of all elements.
  func run(ith: Int, nth: Int) {
    let total = blockOffset[blockCount]
    let lo = total * ith / nth, hi = total * (ith + 1) / nth
    var b = 0
    while b < blockCount && blockOffset[b] < lo { b += 1 }
    let h = hyper
    while b < blockCount && blockOffset[b] < hi {
      let k = blockParam[b], r0 = Int64(blockStart[b]), r1 = Int64(blockEnd[b])
      if let g = grads[k] {
        switch phase {
        case .norm:
          partials[b] = useReference ? mq_sumsq_ref(g, r0, r1) : mq_sumsq(g, r0, r1)
        case .update:
          let f = useReference ? mq_adam_update_ref : mq_adam_update
          f(params[k], g, m(k), v(k), h.gradScale, h.stepSize, h.beta1, h.oneMinusBeta1, h.beta2,
            h.oneMinusBeta2, h.eps, h.bc2Sqrt, r0, r1)
        }
      } else if phase == .norm {
        partials[b] = 0
      }
      b += 1
    }
  }
}
