import Compiler
import GraphIR
import Runtime
import Testing

/// `select-gemm` and what the runtime does with its choice: the path, split and packed weights of
/// every GEMM step; packed weights that follow the weights; a path the CPU lacks refused.
@Suite struct GemmSelectionTests {
  let B = Dim.sym("B")

  /// y = relu(x wᵀ + b) and z = y vᵀ: two linears with parameter weights.
  func graph() throws -> Graph {
    let b = GraphBuilder(name: "gemm")
    let x = try b.input("x", .f32, [B, 37])
    let y = try b.relu(b.linear(x, b.param("w", [70, 37]), b.param("b", [70])))
    try b.output("z", b.linear(y, b.param("v", [5, 70])))
    return b.finish()
  }

  func params(_ seed: UInt64) -> [String: HostTensor] {
    var rng = SeededGenerator(seed: seed)
    func t(_ shape: [Int]) -> HostTensor {
      HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
    }
    return ["w": t([70, 37]), "b": t([70]), "v": t([5, 70])]
  }

  func feed(rows: Int) -> [String: HostTensor] {
    var rng = SeededGenerator(seed: 7)
    return ["x": HostTensor(shape: [rows, 37], floats: (0..<rows * 37).map { _ in Float.random(in: -2...2, using: &rng) })]
  }

  func compiled(_ target: GemmTarget?) throws -> Plan {
    var options = CompileOptions()
    options.gemm = target
    return try compile(try graph(), options: options).plan
  }

  @Test func recordsPathBlockingSplitAndPacking() throws {
    let target = Gemm.best
    let plan = try compiled(target)
    let linears = plan.steps.filter { $0.op == .linear }
    #expect(linears.count == 2)
    for st in linears {
      #expect(st.attrs.string("gemm") == target.name)
      #expect(st.attrs.int("kc") == target.kc && st.attrs.int("nb") == target.nb && st.attrs.int("mb") == target.mb)
      #expect(st.attrs.bool("pack"))
    }
    // At the sample dims B = 32 rows: against 70 columns the threads split columns, against 5 rows.
    #expect(linears.map { $0.attrs.string("split") } == ["columns", "rows"])
    let blas = try compiled(.openblas).steps.filter { $0.op == .linear }
    #expect(blas.allSatisfy { $0.attrs.string("gemm") == "openblas" && !$0.attrs.bool("pack") && $0.attrs.int("kc") == nil })
  }

  /// Every path, packed or not, 1 or 2 threads, rows or columns, agrees with OpenBLAS and the
  /// reference kernels.
  @Test(arguments: ["mqan-avx512", "mqan-avx2", "mqan-portable"], [1, 3, 70])
  func everyPathAgrees(gemm: String, rows: Int) throws {
    guard let target = try? Gemm.target(named: gemm) else { return } // a path this CPU lacks
    let p = params(11), f = feed(rows: rows)
    let want = try #require(try Executor(plan: compiled(.openblas), params: p, threads: 1).run(f)["z"]?.floats)
    let ref = try #require(try Executor(plan: compiled(target), params: p, threads: 1,
                                        options: ExecutorOptions(useReference: true)).run(f)["z"]?.floats)
    for threads in [1, 2] {
      var plan = try compiled(target)
      for split in ["rows", "columns"] {
        for i in plan.steps.indices where plan.steps[i].op == .linear { plan.steps[i].attrs.values["split"] = .string(split) }
        let got = try #require(try Executor(plan: plan, params: p, threads: threads).run(f)["z"]?.floats)
        for (g, (w, r)) in zip(got, zip(want, ref)) {
          #expect(abs(g - w) <= 1e-4 * (1 + abs(w)), "\(gemm) \(split) threads \(threads): \(g) vs OpenBLAS \(w)")
          #expect(abs(g - r) <= 1e-4 * (1 + abs(r)), "\(gemm) \(split) threads \(threads): \(g) vs reference \(r)")
        }
      }
    }
  }

  /// The same plan on 1 and 2 threads, split by rows or columns: the same bits.
  @Test func resultsDoNotDependOnThreads() throws {
    let p = params(12), f = feed(rows: 70)
    var results: [[Float]] = []
    for split in ["rows", "columns"] {
      var plan = try compiled(Gemm.best)
      for i in plan.steps.indices where plan.steps[i].op == .linear { plan.steps[i].attrs.values["split"] = .string(split) }
      for threads in [1, 2] {
        results.append(try #require(try Executor(plan: plan, params: p, threads: threads).run(f)["z"]?.floats))
      }
    }
    #expect(results.allSatisfy { $0 == results[0] })
  }

  /// Packed weights are repacked after `setParameters` and, once writable pointers were handed
  /// out, after every write through them (what an optimizer does between runs).
  @Test func packedWeightsFollowTheWeights() throws {
    let plan = try compiled(Gemm.best)
    let f = feed(rows: 3)
    let a = params(21), b = params(22)
    func fresh(_ p: [String: HostTensor]) throws -> [Float] {
      try #require(try Executor(plan: plan, params: p, threads: 2).run(f)["z"]?.floats)
    }
    let ex = try Executor(plan: plan, params: a, threads: 2)
    #expect(try ex.run(f)["z"]?.floats == fresh(a))
    try ex.setParameters(b)
    #expect(try ex.run(f)["z"]?.floats == fresh(b))
    // Write a's weights back through the pointers, as the optimizer does.
    for buf in ex.parameterBuffers() {
      let src = try #require(try a[buf.name]?.floats)
      for i in 0..<buf.count { buf.pointer[i] = src[i] }
    }
    #expect(try ex.run(f)["z"]?.floats == fresh(a))
    let v = ex.parameterBuffers().first { $0.name == "v" }!
    v.pointer[0] += 1
    #expect(try ex.run(f)["z"]?.floats != fresh(a))
  }

  /// A plan that names a path this CPU does not have (or an unknown one) is refused with the
  /// step and the path named, never run.
  @Test func unknownPathIsRefused() throws {
    var plan = try compiled(Gemm.best)
    for i in plan.steps.indices where plan.steps[i].op == .linear { plan.steps[i].attrs.values["gemm"] = .string("mqan-sse9") }
    let ex = try Executor(plan: plan, params: params(1), threads: 1)
    #expect {
      _ = try ex.run(feed(rows: 2))
    } throws: { "\($0)".contains("mqan-sse9") }
    #expect(throws: (any Error).self) { try Gemm.target(named: "mqan-sse9") }
  }
}
