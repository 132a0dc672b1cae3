import GraphIR
import Testing

@testable import Runtime

/// The linear kernel's column paths: few rows against many columns split by columns across the
/// team, and a weight over 8 MB walked in blocks, forward and backward on alternate calls.
@Suite struct WideLinearTests {
  @Test(arguments: [1, 2])
  func columnSplitsAndBlockOrderGiveTheSameResult(threads: Int) throws {
    let (m, k, n) = (3, 200, 12_000)  // 9.6 MB of weight: the block walk
    let p = PlanSketch("wide")
    let x = p.input("x", .f32([Dim(m), Dim(k)]))
    let w = p.param("w", [Dim(n), Dim(k)]), b = p.param("b", [Dim(n)])
    let y = p.one(.linear, [x, w, b], .f32([Dim(m), Dim(n)]), ["activation": .string("tanh")])
    let plan = p.finish([("y", y)])
    let params = ["w": f32T([n, k], seed: 3), "b": f32T([n], seed: 4)]
    let xs = f32T([m, k], seed: 5)
    let fast = try Executor(plan: plan, params: params, threads: threads)
    let ref = try Executor(plan: plan, params: params, threads: 1, options: ExecutorOptions(useReference: true))
    let want = floats(try ref.run(["x": xs])["y"])
    // Two calls: one walks the blocks forward, the next backward.
    for call in 0..<2 {
      expectClose(floats(try fast.run(["x": xs])["y"]), want, tol: 1e-5, "call \(call), \(threads) threads")
    }
  }
}
