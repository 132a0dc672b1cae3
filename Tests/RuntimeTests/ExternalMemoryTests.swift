import Foundation
import GraphIR
import Testing

@testable import Runtime

/// `Executor.run(_:external:)`: inputs read from and outputs computed into caller memory, and a
/// key/value cache updated in place across runs (what greedy decoding does every step).
@Suite struct ExternalMemoryTests {
  static let R = Dim.sym("R"), S = Dim.sym("S"), D = Dim.sym("D")

  /// cache_update(cache, reorder, row, step) -> next_cache; plus next_cache * 2 as a fed-back check.
  func cachePlan() -> Plan {
    let p = PlanSketch("cache")
    let cache = p.input("cache", .f32([Self.R, Self.S, Self.D]))
    let reorder = p.input("reorder", .i32([Self.R]))
    let row = p.input("row", .f32([Self.R, 1, Self.D]))
    let step = p.input("step", .i32([1]))
    let next = p.one(.cacheUpdate, [cache, reorder, row, step], .f32([Self.R, Self.S, Self.D]))
    let twice = p.one(.affine, [next], .f32([Self.R, Self.S, Self.D]), ["alpha": .float(2), "beta": .float(0)])
    return p.finish([("next_cache", next), ("twice", twice)])
  }

  @Test func cacheUpdatesInPlaceAcrossRuns() throws {
    let (r, s, d) = (3, 4, 2)
    let ex = try Executor(plan: cachePlan(), params: [:], threads: 2)
    let memory = UnsafeMutablePointer<Float>.allocate(capacity: r * s * d)
    defer { memory.deallocate() }
    memory.initialize(repeating: 0, count: r * s * d)
    let view = ExternalTensor(base: UnsafeMutableRawPointer(memory), shape: [r, s, d])
    var expected = [Float](repeating: 0, count: r * s * d)
    for t in 0..<s {
      let row = (0..<(r * d)).map { Float(100 * t + $0) }
      let out = try ex.run(["reorder": HostTensor(shape: [r], int32s: [0, 1, 2]),
                            "row": HostTensor(shape: [r, 1, d], floats: row),
                            "step": HostTensor(shape: [1], int32s: [Int32(t)])],
                           external: ["cache": view, "next_cache": view])
      #expect(out["next_cache"] == nil, "an external output is not copied out")
      for i in 0..<r { for e in 0..<d { expected[(i * s + t) * d + e] = row[i * d + e] } }
      #expect(Array(UnsafeBufferPointer(start: memory, count: r * s * d)) == expected, "step \(t)")
      #expect(floats(out["twice"]) == expected.map { 2 * $0 })
    }
  }

  @Test func reorderGathersIntoTheOtherBuffer() throws {
    let (r, s, d) = (3, 2, 1)
    let ex = try Executor(plan: cachePlan(), params: [:], threads: 1)
    var a: [Float] = [1, 0, 2, 0, 3, 0]
    var b = [Float](repeating: -1, count: r * s * d)
    let out = try a.withUnsafeMutableBytes { pa in
      try b.withUnsafeMutableBytes { pb in
        try ex.run(["reorder": HostTensor(shape: [r], int32s: [2, 2, 0]),
                    "row": HostTensor(shape: [r, 1, d], floats: [7, 8, 9]),
                    "step": HostTensor(shape: [1], int32s: [1])],
                   external: ["cache": ExternalTensor(base: pa.baseAddress!, shape: [r, s, d]),
                              "next_cache": ExternalTensor(base: pb.baseAddress!, shape: [r, s, d])])
      }
    }
    #expect(b == [3, 7, 3, 8, 1, 9])
    #expect(floats(out["twice"]) == [6, 14, 6, 16, 2, 18])
    #expect(a == [1, 0, 2, 0, 3, 0], "the input cache is left alone")
  }

  @Test func badExternalMemoryIsRejected() throws {
    let ex = try Executor(plan: cachePlan(), params: [:], threads: 1)
    var m = [Float](repeating: 0, count: 64)
    let feed: [String: HostTensor] = ["reorder": HostTensor(shape: [2], int32s: [0, 1]),
                                      "row": HostTensor(shape: [2, 1, 2], floats: [1, 2, 3, 4]),
                                      "step": HostTensor(shape: [1], int32s: [0])]
    m.withUnsafeMutableBytes { p in
      let base = p.baseAddress!
      // Output memory of the wrong shape.
      #expect(throws: RuntimeError.self) {
        try ex.run(feed, external: ["cache": ExternalTensor(base: base, shape: [2, 3, 2]),
                                    "next_cache": ExternalTensor(base: base, shape: [2, 4, 2])])
      }
      // An input fed twice.
      var twice = feed
      twice["cache"] = HostTensor(shape: [2, 3, 2], floats: [Float](repeating: 0, count: 12))
      #expect(throws: RuntimeError.self) {
        try ex.run(twice, external: ["cache": ExternalTensor(base: base, shape: [2, 3, 2])])
      }
      // A step past the cache's slots is caught before any kernel runs.
      var late = feed
      late["step"] = HostTensor(shape: [1], int32s: [3])
      #expect(throws: RuntimeError.self) {
        try ex.run(late, external: ["cache": ExternalTensor(base: base, shape: [2, 3, 2]),
                                    "next_cache": ExternalTensor(base: base, shape: [2, 3, 2])])
      }
    }
  }
}

/// `top_k` through the executor: rows split over the team, log of the values.
@Suite struct TopKDispatchTests {
  @Test(arguments: [1, 2])
  func topKOverRows(threads: Int) throws {
    let p = PlanSketch("topk")
    let x = p.input("x", .f32([B, 2, 5]))
    let top = p.step(.topK, [x], [.f32([B, 2, 3]), .i32([B, 2, 3])], ["k": .dim(3), "log": .bool(true)])
    let plan = p.finish([("values", top[0]), ("ids", top[1])])
    let ex = try Executor(plan: plan, params: [:], threads: threads)
    let xs: [Float] = [0.1, 0.4, 0.2, 0.2, 0.1, /**/ 0, 0, 1, 0, 0, /**/ 0.3, 0.3, 0.3, 0.05, 0.05, /**/ 1, 2, 3, 4, 5]
    let out = try ex.run(["x": HostTensor(shape: [2, 2, 5], floats: xs)])
    #expect(try out["ids"]!.asInt32() == [1, 2, 3, 2, 0, 1, 0, 1, 2, 4, 3, 2])
    let want: [Float] = [0.4, 0.2, 0.2, 1, 0, 0, 0.3, 0.3, 0.3, 5, 4, 3].map { Float(Foundation.log(Double($0))) }
    expectClose(floats(out["values"]).map { $0 == -.infinity ? -1e30 : $0 }, want.map { $0 == -.infinity ? -1e30 : $0 },
                tol: 1e-6, "values")
  }
}

/// `scatter_columns` through the executor: each row's values at the shortlist's columns, -inf
/// elsewhere; an id past the columns is refused before any kernel runs.
@Suite struct ScatterColumnsDispatchTests {
  @Test(arguments: [1, 2])
  func scattersRows(threads: Int) throws {
    let p = PlanSketch("scatter")
    let x = p.input("x", .f32([B, 2]))
    let ids = p.input("ids", .i32([2]))
    let out = p.step(.scatterColumns, [x, ids], [.f32([B, 4])], ["columns": .dim(4), "fill": .float(-.infinity)])
    let plan = p.finish([("y", out[0])])
    let ex = try Executor(plan: plan, params: [:], threads: threads)
    let y = try ex.run(["x": HostTensor(shape: [3, 2], floats: [1, 2, 3, 4, 5, 6]), "ids": HostTensor(shape: [2], int32s: [1, 3])])
    let ninf = -Float.infinity
    #expect(floats(y["y"]) == [ninf, 1, ninf, 2, ninf, 3, ninf, 4, ninf, 5, ninf, 6])
    #expect(throws: RuntimeError.self) {
      _ = try ex.run(["x": HostTensor(shape: [1, 2], floats: [1, 2]), "ids": HostTensor(shape: [2], int32s: [1, 4])])
    }
  }
}
