import Compiler
import GraphIR
import Testing

/// Checks `plan`'s layout at `env`, recursively through body plans: no two arena/workspace
/// buffers whose stage intervals intersect share a byte, every placed buffer lies inside the
/// arena, and the arena is no larger than all buffers laid end to end.
func assertNoLiveOverlap(plan: Plan, env: [String: Int],
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
  let layout = try plan.layout(env)
  var placed: [(id: Int, first: Int, last: Int, start: Int, end: Int)] = []
  for (i, b) in plan.buffers.enumerated() {
    let interval: (Int, Int)
    switch b.storage {
    case .arena(let f, let l): interval = (f, l)
    case .workspace(_, let f, let l): interval = (f, l)
    case .input, .param, .view, .outer:
      #expect(layout.offsets[i] == nil, "#\(i) \(b.name) is not an arena buffer", sourceLocation: sourceLocation)
      continue
    }
    guard let offset = layout.offsets[i] else {
      Issue.record("arena buffer #\(i) \(b.name) was not placed", sourceLocation: sourceLocation)
      continue
    }
    #expect(offset % Plan.alignment == 0, sourceLocation: sourceLocation)
    #expect(offset + layout.sizes[i] <= layout.arenaBytes, "#\(i) ends past the arena", sourceLocation: sourceLocation)
    placed.append((i, interval.0, interval.1, offset, offset + layout.sizes[i]))
  }
  for (n, a) in placed.enumerated() {
    for b in placed[(n + 1)...] where a.first <= b.last && b.first <= a.last {
      let disjoint = a.end <= b.start || b.end <= a.start || a.start == a.end || b.start == b.end
      #expect(disjoint, """
        @\(plan.name) at \(env): #\(a.id) [stage \(a.first)..\(a.last)] bytes \(a.start)..<\(a.end) overlaps \
        #\(b.id) [stage \(b.first)..\(b.last)] bytes \(b.start)..<\(b.end)
        """, sourceLocation: sourceLocation)
    }
  }
  #expect(layout.arenaBytes <= layout.totalBytes, sourceLocation: sourceLocation)
  for s in plan.steps {
    for body in s.body { try assertNoLiveOverlap(plan: body, env: env, sourceLocation: sourceLocation) }
  }
}

/// Every step label of `plan` and its body plans.
func allLabels(_ plan: Plan) -> [String] {
  plan.steps.flatMap { [$0.label] + $0.body.flatMap(allLabels) }
}

/// A deterministic pseudo-random source (64-bit LCG), so failures reproduce.
struct LCG {
  var state: UInt64
  mutating func next(_ n: Int) -> Int {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return Int((state >> 33) % UInt64(n))
  }
}

/// Builds a graph of `count` ops of varied kinds and shapes over symbolic `B`, `T`, whose
/// unread values are its outputs; params are named by shape, so some are shared.
func randomGraph(seed: UInt64, count: Int) throws -> Graph {
  var rng = LCG(state: seed)
  let b = GraphBuilder(name: "random\(seed)")
  let bt: [Dim] = [.sym("B"), .sym("T")]
  var pool = [try b.input("x", .f32, bt + [8]), try b.input("y", .f32, bt + [4])]
  func pick(_ rng: inout LCG, _ where: (Value) -> Bool = { _ in true }) -> Value? {
    let candidates = pool.filter(`where`)
    return candidates.isEmpty ? nil : candidates[candidates.count - 1 - rng.next(min(candidates.count, 6))]
  }
  while pool.count < count + 2 {
    guard let x = pick(&rng) else { break }
    let width = x.shape.last ?? 1
    var out: Value?
    var kind = rng.next(10)
    if width.constant == nil, [0, 1, 8].contains(kind) { kind = 2 }  // weights need constant widths
    switch kind {
    case 0, 1:
      let n = [4, 8, 16][rng.next(3)]
      let w = try b.param("w\(n)x\(width)_\(rng.next(2))", [Dim(n), width])
      out = try b.linear(x, w, rng.next(2) == 0 ? try b.param("b\(n)", [Dim(n)]) : nil)
    case 2: out = try b.tanh(x)
    case 3: out = try b.sigmoid(x)
    case 4: out = try pick(&rng, { $0.type == x.type && $0.ref != x.ref }).map { y throws(GraphError) in
      try rng.next(2) == 0 ? b.add(x, y) : b.mul(x, y)
    } ?? b.relu(x)
    case 5: out = try pick(&rng, { $0.shape.dropLast() == x.shape.dropLast() && $0.ref != x.ref }).map {
      y throws(GraphError) in try b.concat([x, y], axis: -1)
    }
    case 6: if let w = width.constant, w >= 4 { out = try b.slice(x, axis: x.type.rank - 1, start: 0, length: 4) }
    case 7: if x.type.rank == 3 { out = try b.reshape(x, [x.shape[0] * x.shape[1], width]) }
    case 8: out = try b.layerNorm(x, gamma: b.param("g\(width)", [width]), beta: b.param("be\(width)", [width]),
                                  eps: 1e-6)
    default: out = try x.type.rank == 3 && rng.next(2) == 0 ? b.matmul(x, x, transB: true) : b.softmax(x)
    }
    if let v = out { pool.append(v) }
  }
  // Every value nothing reads is an output, so dead-node elimination keeps the whole graph.
  let read = b.graph.useCounts()
  for (k, v) in pool.enumerated().dropFirst(2) where read[v.ref] == nil {
    try b.output("out\(k)", v)
  }
  return b.finish()
}

/// SplitMix64 as a `RandomNumberGenerator`: seeded, so a failing run reproduces.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
