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
  /// By scan step: its body's layout within the scan's workspace.
  public var bodies: [Int: ArenaLayout] = [:]
}

extension Plan {
  /// Every offset is a multiple of this, so kernels get cache-line aligned rows.
  public static let alignment = 64

  /// Places the arena buffers for the given dims: largest first, each at the lowest offset that
  /// does not overlap a placed buffer whose stage interval intersects its own. A scan's workspace
  /// is as large as its body's own layout. Sizes and offsets are checked: one that does not fit
  /// in an `Int` throws `DimError.overflow`.
  ///
  /// The placed buffers are kept sorted by offset, so each placement sweeps them once, in address
  /// order, and stops at the first buffer that starts past the gap it found.
  public func layout(_ env: [String: Int]) throws(DimError) -> ArenaLayout {
    var sizes = [Int](repeating: 0, count: buffers.count)
    var intervals: [(id: Int, first: Int, last: Int)] = []
    var bodies: [Int: ArenaLayout] = [:]
    for (i, b) in buffers.enumerated() {
      switch b.storage {
      case .arena(let f, let l):
        sizes[i] = try Plan.aligned(try b.type.byteCount(env), b.type.byteCount, env)
        intervals.append((i, f, l))
      case .workspace(let s, let f, let l):
        if bodies[s] == nil, let body = steps[s].body.first { bodies[s] = try body.layout(env) }
        sizes[i] = try Plan.aligned(bodies[s]?.arenaBytes ?? 0, Dim(0), env)
        intervals.append((i, f, l))
      case .input, .param, .view, .outer:
        continue
      }
    }
    intervals.sort { sizes[$0.id] != sizes[$1.id] ? sizes[$0.id] > sizes[$1.id] : $0.id < $1.id }
    var offsets = [Int?](repeating: nil, count: buffers.count)
    // Sorted by start offset.
    var placed: [(first: Int, last: Int, start: Int, end: Int)] = []
    placed.reserveCapacity(intervals.count)
    var peak = 0, total = 0
    func add(_ a: Int, _ b: Int) throws(DimError) -> Int {
      let (r, o) = a.addingReportingOverflow(b)
      if o { throw DimError.overflow(expression: "the arena's size", binding: Plan.binding(env)) }
      return r
    }
    for iv in intervals {
      let size = sizes[iv.id]
      total = try add(total, size)
      // The lowest offset whose [offset, offset + size) meets no placed buffer live in the same
      // stages: in address order, a conflict that overlaps the candidate moves it past its end.
      var offset = 0
      for c in placed where c.first <= iv.last && iv.first <= c.last {
        if c.start >= (try add(offset, size)) { break }
        if c.end > offset { offset = c.end }
      }
      let end = try add(offset, size)
      offsets[iv.id] = offset
      var lo = 0, hi = placed.count
      while lo < hi {
        let mid = (lo + hi) / 2
        if placed[mid].start <= offset { lo = mid + 1 } else { hi = mid }
      }
      placed.insert((iv.first, iv.last, offset, end), at: lo)
      peak = max(peak, end)
    }
    return ArenaLayout(offsets: offsets, sizes: sizes, arenaBytes: peak, totalBytes: total, bodies: bodies)
  }

  static func binding(_ env: [String: Int]) -> String {
    env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
  }

  static func aligned(_ n: Int, _ dim: @autoclosure () -> Dim, _ env: [String: Int]) throws(DimError) -> Int {
    guard n <= Int.max - alignment else {
      throw DimError.overflow(expression: dim().description, binding: binding(env))
    }
    return aligned(n)
  }

  static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
