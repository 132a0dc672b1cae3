/// Where each arena buffer of a plan sits for one binding of the dims.
public struct ArenaLayout: Sendable, Equatable {
  /// Byte offset of each buffer in the arena; nil for buffers that are not in the arena.
  public var offsets: [Int?]
  /// Byte size of each buffer at this binding (0 for views, inputs and params).
  public var sizes: [Int]
  /// Arena size: the peak of the placement.
  public var arenaBytes: Int
  /// The sum of all arena buffers, as if none shared memory.
  public var totalBytes: Int
}

extension Plan {
  /// Every offset is a multiple of this, so kernels get cache-line aligned rows.
  public static let alignment = 64

  /// Places the arena buffers for the given dims: largest first, each at the lowest offset that
  /// does not overlap a placed buffer whose stage interval intersects its own. A scan's workspace
  /// is as large as its body's own layout.
  public func layout(_ env: [String: Int]) throws(DimError) -> ArenaLayout {
    var sizes = [Int](repeating: 0, count: buffers.count)
    var intervals: [(id: Int, first: Int, last: Int)] = []
    for (i, b) in buffers.enumerated() {
      switch b.storage {
      case .arena(let f, let l):
        sizes[i] = Plan.aligned(try b.type.byteCount.evaluate(env))
        intervals.append((i, f, l))
      case .workspace(let s, let f, let l):
        sizes[i] = Plan.aligned(try steps[s].body.first?.layout(env).arenaBytes ?? 0)
        intervals.append((i, f, l))
      case .input, .param, .view, .outer:
        continue
      }
    }
    intervals.sort { sizes[$0.id] != sizes[$1.id] ? sizes[$0.id] > sizes[$1.id] : $0.id < $1.id }
    var offsets = [Int?](repeating: nil, count: buffers.count)
    var placed: [(first: Int, last: Int, start: Int, end: Int)] = []
    var peak = 0, total = 0
    for iv in intervals {
      let size = sizes[iv.id]
      total += size
      let conflicts = placed.filter { $0.first <= iv.last && iv.first <= $0.last }
        .sorted { $0.start < $1.start }
      var offset = 0
      for c in conflicts where c.start < offset + size && offset < c.end {
        offset = max(offset, c.end)
      }
      // A conflict skipped above may overlap the moved offset: re-scan until stable.
      var moved = true
      while moved {
        moved = false
        for c in conflicts where c.start < offset + size && offset < c.end {
          offset = c.end
          moved = true
        }
      }
      offsets[iv.id] = offset
      placed.append((iv.first, iv.last, offset, offset + size))
      peak = max(peak, offset + size)
    }
    return ArenaLayout(offsets: offsets, sizes: sizes, arenaBytes: peak, totalBytes: total)
  }

  static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
