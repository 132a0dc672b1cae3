import Foundation
import GraphIR
import Runtime

/// Per-item tensors `[items, length, width]` of a batch whose items join and leave between steps
/// (`ContinuousDecoder`'s encoder outputs), in one allocation sized for the most items at the
/// longest length, made once.
///
/// The items in use are laid out contiguously at the current `length`, so a plan reads the first
/// `items` of each tensor as one `[items, length, width]` input without a copy. Changing `length`
/// moves the items in place (positions past an item's own are zero).
final class ItemSlabs {
  let tensors: Int, capacity: Int, maxLength: Int, width: Int
  /// Positions per item in the current layout.
  private(set) var length: Int
  private let memory: UnsafeMutablePointer<Float>
  private var slabSize: Int { capacity * maxLength * width }

  init(tensors: Int, capacity: Int, maxLength: Int, width: Int, what: String) throws {
    guard let count = Limits.product([tensors, capacity, maxLength, width]), let bytes = Limits.product([count, 4]) else {
      throw RuntimeError.allocation("\(what): \(tensors) x \(capacity) x \(maxLength) x \(width) floats overflow")
    }
    if let problem = Limits.memoryProblem(bytes, what) { throw RuntimeError.allocation(problem) }
    self.tensors = tensors
    self.capacity = capacity
    self.maxLength = maxLength
    self.width = width
    length = 1
    memory = .allocate(capacity: max(count, 1))
    memory.initialize(repeating: 0, count: max(count, 1))
  }

  deinit { memory.deallocate() }

  /// Item `b`'s rows of tensor `t` in the current layout.
  func item(_ t: Int, _ b: Int) -> UnsafeMutablePointer<Float> { memory + t * slabSize + b * length * width }

  /// The first `items` items of tensor `t`, `[items, length, width]`.
  func tensor(_ t: Int, items: Int) -> ExternalTensor {
    ExternalTensor(base: UnsafeMutableRawPointer(memory + t * slabSize), shape: [items, length, width])
  }

  /// Item `b`'s rows of tensor `t` from `source` (`positions` rows of `width`), zero after them.
  func write(_ t: Int, _ b: Int, from source: UnsafePointer<Float>, positions: Int) {
    let dst = item(t, b), n = min(positions, length) * width
    dst.update(from: source, count: n)
    (dst + n).update(repeating: 0, count: length * width - n)
  }

  /// Item `from`'s rows copied over item `to`'s, in every tensor.
  func move(_ from: Int, to: Int) {
    guard from != to else { return }
    for t in 0..<tensors { item(t, to).update(from: item(t, from), count: length * width) }
  }

  /// The first `items` items re-laid at `newLength` positions each (cut or zero-padded).
  func relayout(items: Int, length newLength: Int) {
    precondition(newLength >= 1 && newLength <= maxLength, "ItemSlabs: length \(newLength) outside 1...\(maxLength)")
    guard newLength != length else { return }
    let old = length * width, new = newLength * width, keep = min(old, new)
    for t in 0..<tensors {
      let base = memory + t * slabSize
      // Longer: from the last item down, so no item is overwritten before it moves; shorter: up.
      let order = newLength > length ? Array((0..<items).reversed()) : Array(0..<items)
      for b in order {
        memmove(base + b * new, base + b * old, keep * MemoryLayout<Float>.size)
        if new > keep { (base + b * new + keep).update(repeating: 0, count: new - keep) }
      }
    }
    length = newLength
  }
}
