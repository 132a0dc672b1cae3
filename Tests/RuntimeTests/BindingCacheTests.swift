import GraphIR
import Testing

@testable import Runtime

/// What binding a new shape computes once and keeps: the layout with its scan bodies', the step
/// costs, and the bound buckets themselves (least recently run evicted first).
@Suite struct BindingCacheTests {
  static let e = ExecutorTests.e, h = ExecutorTests.h

  static func inputs(batch b: Int, time t: Int) -> [String: HostTensor] {
    ["x": f32T([b, t, e], seed: 100), "h0": f32T([b, h], seed: 101), "c0": f32T([b, h], seed: 102),
     "lengths": HostTensor(shape: [b], int32s: (0..<b).map { Int32(max(t - $0, 0)) })]
  }

  /// Past `ExecutorOptions.maxBuckets`, the bucket run least recently goes, not every bucket: a recently run
  /// shape stays bound and still computes what a fresh executor does.
  @Test func fullCacheEvictsTheLeastRecentlyRunBucket() throws {
    let plan = biLSTMPlan(e: Self.e, h: Self.h)
    let n = 24
    let ex = try Executor(plan: plan, params: ExecutorTests.lstmParams(), threads: 2, options: .init(maxBuckets: n))
    // One arena for the largest shape, so no run grows it (growing drops every bucket).
    try ex.reserve(["B": 1, "T": n + 1])
    for t in 1...n { _ = try ex.run(Self.inputs(batch: 1, time: t)) }
    #expect(ex.bucketCount == n)
    let again = try ex.run(Self.inputs(batch: 1, time: 1))
    _ = try ex.run(Self.inputs(batch: 1, time: n + 1))
    #expect(ex.bucketCount == n)
    #expect(ex.arenaBytes(dims: ["B": 1, "T": 1]) != nil, "the shape run again was evicted")
    #expect(ex.arenaBytes(dims: ["B": 1, "T": 2]) == nil, "the least recently run shape is still bound")
    #expect(ex.arenaBytes(dims: ["B": 1, "T": n + 1]) != nil)
    let fresh = try Executor(plan: plan, params: ExecutorTests.lstmParams(), threads: 2)
    #expect(try ex.run(Self.inputs(batch: 1, time: 1)) == again)
    #expect(try fresh.run(Self.inputs(batch: 1, time: 2)) == ex.run(Self.inputs(batch: 1, time: 2)))
  }

  /// A layout carries each scan body's layout, the one the body would get on its own (the
  /// executor binds bodies with it instead of laying them out again).
  @Test func layoutCarriesEachScanBodysLayout() throws {
    let plan = biLSTMPlan(e: Self.e, h: Self.h)
    let env = ["B": 3, "T": 4]
    let layout = try plan.layout(env)
    let scans = plan.steps.indices.filter { plan.steps[$0].op == .scan }
    #expect(scans.count == 2)
    #expect(Set(layout.bodies.keys) == Set(scans))
    for i in scans {
      #expect(layout.bodies[i] == (try plan.steps[i].body[0].layout(env)))
      #expect(layout.bodies[i]!.arenaBytes > 0)
    }
  }

  /// `byteCount(env)` multiplies the evaluated dims: the same value as evaluating the symbolic
  /// byte count, and the same error when a symbol is unbound or the size overflows.
  @Test func byteCountAtABindingMatchesTheSymbolicOne() throws {
    let types: [TensorType] = [
      .f32([.sym("B"), .sym("T") + Dim(1), Dim(200)]), .i32([.sym("B")]), .f32([]),
      .f32([.sym("B") * .sym("T"), .sym("T") - Dim(1)]),
    ]
    for t in types {
      for env in [["B": 3, "T": 4], ["B": 0, "T": 7], ["B": 64, "T": 1]] {
        #expect(try t.byteCount(env) == t.byteCount.evaluate(env), "\(t) at \(env)")
      }
    }
    let big = TensorType.f32([.sym("B"), .sym("T")])
    #expect(throws: DimError.overflow(expression: "B*T*4", binding: "B=4611686018427387904, T=4")) {
      try big.byteCount(["B": 1 << 62, "T": 4])
    }
    #expect(throws: (any Error).self) { try big.byteCount(["B": 2]) }
    #expect(throws: (any Error).self) { try big.byteCount.evaluate(["B": 2]) }
  }

  /// `PlanAttrs`' accessors read the same values as the IR attributes they came from.
  @Test func planAttrAccessorsAgreeWithIRAttrs() {
    let attrs: Attrs = ["n": .int(3), "p": .float(0.5), "q": .int(2), "flag": .bool(true), "name": .string("x"),
                        "d": .dim(.sym("B") + Dim(1)), "ds": .dims([.sym("T"), Dim(4)])]
    let plan = PlanAttrs(attrs)
    for k in ["n", "p", "q", "flag", "name", "d", "ds", "missing"] {
      #expect(plan.int(k) == attrs.int(k), "\(k)")
      #expect(plan.float(k) == attrs.float(k), "\(k)")
      #expect(plan.bool(k) == (attrs.bool(k) ?? false), "\(k)")
      #expect(plan.string(k) == attrs.string(k), "\(k)")
      #expect(plan.dim(k) == attrs.dim(k), "\(k)")
      #expect(plan.dims(k) == attrs.dims(k), "\(k)")
    }
  }
}
