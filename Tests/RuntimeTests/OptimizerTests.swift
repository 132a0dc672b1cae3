import CKernels
import Foundation
import Testing
import TestSupport

@testable import Runtime

/// PyTorch's Adam after clip_grad_norm_, in double: the oracle for the float32 optimizer.
struct ReferenceAdam {
  var config: AdamSettings
  var p: [String: [Double]]
  var m: [String: [Double]] = [:], v: [String: [Double]] = [:]
  var t = 0

  init(config: AdamSettings, params: [String: HostTensor]) {
    self.config = config
    p = params.mapValues { (try! $0.floats).map(Double.init) }
    for (k, a) in p { (m[k], v[k]) = ([Double](repeating: 0, count: a.count), [Double](repeating: 0, count: a.count)) }
  }

  mutating func step(_ grads: [String: HostTensor]) {
    t += 1
    let g = grads.mapValues { (try! $0.floats).map(Double.init) }
    let norm = g.values.reduce(0.0) { $0 + $1.reduce(0.0) { $0 + $1 * $1 } }.squareRoot()
    let coef = config.clip / (norm + 1e-6)
    let scale = config.clip > 0 && coef < 1 ? coef : 1
    let lr = config.learningRate(t)
    let bc1 = 1 - pow(config.beta1, Double(t)), bc2 = 1 - pow(config.beta2, Double(t))
    for (k, gk) in g {
      for i in gk.indices {
        let gi = gk[i] * scale
        m[k]![i] = config.beta1 * m[k]![i] + (1 - config.beta1) * gi
        v[k]![i] = config.beta2 * v[k]![i] + (1 - config.beta2) * gi * gi
        p[k]![i] -= lr / bc1 * m[k]![i] / (v[k]![i].squareRoot() / bc2.squareRoot() + config.eps)
      }
    }
  }
}

@Suite struct OptimizerTests {
  /// Two parameters over several 16K blocks, two small ones, one that never gets a gradient.
  static let shapes: [String: [Int]] = [
    "encoder.weight": [300, 70], "encoder.bias": [7], "out.weight": [40000], "norm.gamma": [1],
    "unused.weight": [5],
  ]

  static func setup(seed: UInt64 = 1) -> (params: [String: HostTensor], grads: [[String: HostTensor]]) {
    var r = TestNumbers(state: seed)
    var params: [String: HostTensor] = [:]
    for name in shapes.keys.sorted() { params[name] = r.tensor(shapes[name]!, scale: 0.5) }
    // Odd steps have a norm far above 1 (clipped), even steps far below (not clipped).
    let grads: [[String: HostTensor]] = (0..<6).map { s in
      var g: [String: HostTensor] = [:]
      for name in shapes.keys.sorted() where name != "unused.weight" {
        g["grad." + name] = r.tensor(shapes[name]!, scale: s % 2 == 0 ? 1 : 1e-4)
      }
      return g
    }
    return (params, grads)
  }

  /// Adam's engine with a schedule that rises for 3 updates, then decays; a clip of 1.
  static let config = AdamSettings(learningRate: { i in
    let d = 16.0, w = 3.0, t = Double(i)
    return 1 / d.squareRoot() * min(1 / t.squareRoot(), t / (w * w.squareRoot()))
  }, beta1: 0.9, beta2: 0.98, eps: 1e-9, clip: 1)

  /// Runs `steps` updates and returns the parameters and the reports.
  static func run(threads: Int, steps: Int = 6, config: AdamSettings = config, useReference: Bool = false)
    throws -> ([String: [Float]], [AdamStepReport])
  {
    let (params, grads) = setup()
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(settings: config, parameters: mem.buffers, threads: threads, useReference: useReference)
    var reports: [AdamStepReport] = []
    for s in 0..<steps { reports.append(try opt.step(grads: grads[s], prefix: "grad.")) }
    return (mem.all, reports)
  }

  @Test func invalidSettingsAreRefused() {
    var bad = Self.config
    bad.beta2 = 1
    #expect(throws: OptimizerError.self) { try bad.validate() }
    bad = Self.config
    bad.eps = .nan
    #expect(throws: OptimizerError.self) { try bad.validate() }
  }

  @Test func matchesDoublePrecisionPyTorchAdamOverSeveralSteps() throws {
    let (params, grads) = Self.setup()
    var ref = ReferenceAdam(config: Self.config, params: params)
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(settings: Self.config, parameters: mem.buffers, threads: 2)
    for s in 0..<6 {
      let report = try opt.step(grads: grads[s], prefix: "grad.")
      ref.step(Dictionary(uniqueKeysWithValues: grads[s].map { (String($0.key.dropFirst(5)), $0.value) }))
      #expect(report.step == s + 1)
      #expect(report.learningRate == Self.config.learningRate(s + 1))
      #expect(report.updatedParameters == 4)
      for (name, got) in mem.all {
        let want = ref.p[name]!
        let err = zip(got, want).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(err < 2e-6, "step \(s + 1) \(name): max error \(err)")
      }
    }
    #expect(opt.stepCount == 6)
  }

  @Test func clipsOnlyWhenTheNormExceedsTheMax() throws {
    let (params, grads) = Self.setup()
    let (_, reports) = try Self.run(threads: 1, steps: 2)
    #expect(reports[0].gradientNorm > 100 && reports[0].clipScale < 1)
    #expect(reports[0].clipScale == Float(1) / (Float(reports[0].gradientNorm) + 1e-6))
    #expect(reports[1].gradientNorm < 1 && reports[1].clipScale == 1)
    // A clipped step equals an unclipped step on gradients scaled by the clip factor, bit for bit.
    let scaled = grads[0].mapValues { t in HostTensor(shape: t.shape, floats: (try! t.floats).map { $0 * reports[0].clipScale }) }
    var noClip = Self.config
    noClip.clip = 0
    let a = ParameterMemory(params), b = ParameterMemory(params)
    try AdamOptimizer(settings: Self.config, parameters: a.buffers, threads: 1).step(grads: grads[0], prefix: "grad.")
    try AdamOptimizer(settings: noClip, parameters: b.buffers, threads: 1).step(grads: scaled, prefix: "grad.")
    #expect(a.all == b.all)
    // Below the max, clipping on or off makes no difference at all.
    let c = ParameterMemory(params), d = ParameterMemory(params)
    try AdamOptimizer(settings: Self.config, parameters: c.buffers, threads: 1).step(grads: grads[1], prefix: "grad.")
    try AdamOptimizer(settings: noClip, parameters: d.buffers, threads: 1).step(grads: grads[1], prefix: "grad.")
    #expect(c.all == d.all)
  }

  @Test func sameBitsForAnyThreadCountAndForTheReferenceKernels() throws {
    let (one, r1) = try Self.run(threads: 1)
    for threads in [1, 2, 3, 4] {
      let (other, r) = try Self.run(threads: threads)
      #expect(other == one, "threads \(threads)")
      #expect(r == r1)
    }
    let (ref, rr) = try Self.run(threads: 2, useReference: true)
    #expect(ref == one)
    #expect(rr == r1)
  }

  @Test func sumOfSquaresKernelEqualsItsReferenceAtEveryOffset() {
    var r = TestNumbers(state: 7)
    let x = (0..<1000).map { _ in r.next() }
    for (r0, r1) in [(0, 0), (0, 1), (3, 18), (5, 1000), (0, 1000), (17, 33), (999, 1000)] {
      let fast = mq_sumsq(x, Int64(r0), Int64(r1)), ref = mq_sumsq_ref(x, Int64(r0), Int64(r1))
      #expect(fast.bitPattern == ref.bitPattern, "[\(r0), \(r1))")
      let exact = x[r0..<r1].reduce(0.0) { $0 + Double($1) * Double($1) }
      #expect(abs(fast - exact) <= 1e-12 * max(exact, 1))
    }
  }

  @Test func parametersWithoutGradientsStayUnchangedWithZeroState() throws {
    let (params, grads) = Self.setup()
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(settings: Self.config, parameters: mem.buffers, threads: 2)
    for s in 0..<3 { try opt.step(grads: grads[s], prefix: "grad.") }
    #expect(mem.values("unused.weight") == (try params["unused.weight"]!.floats))
    let state = opt.exportState()
    #expect(try state.m["unused.weight"]!.floats == [0, 0, 0, 0, 0])
    #expect(try state.v["unused.weight"]!.floats == [0, 0, 0, 0, 0])
    #expect(mem.values("encoder.bias") != (try params["encoder.bias"]!.floats))
  }

  @Test func stepsAllocateNoState() throws {
    let (params, grads) = Self.setup()
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(settings: Self.config, parameters: mem.buffers, threads: 2)
    let (address, bytes) = (opt.stateAddress, opt.stateBytes)
    // m and v of every parameter (padded to 16 floats) plus one Double per 16K block.
    let padded = Self.shapes.values.map { ($0.reduce(1, *) + 15) / 16 * 16 }.reduce(0, +)
    let blocks = Self.shapes.values.map { ($0.reduce(1, *) + AdamOptimizer.blockSize - 1) / AdamOptimizer.blockSize }.reduce(0, +)
    #expect(bytes == 2 * padded * 4 + blocks * 8)
    for s in 0..<6 {
      try opt.step(grads: grads[s], prefix: "grad.")
      #expect(opt.stateAddress == address && opt.stateBytes == bytes)
    }
  }

  @Test func exportedStateResumesBitForBit() throws {
    let (params, grads) = Self.setup()
    let (uninterrupted, _) = try Self.run(threads: 2)
    // Three steps, export, a new optimizer over copies of the parameters, three more steps.
    let first = ParameterMemory(params)
    let a = try AdamOptimizer(settings: Self.config, parameters: first.buffers, threads: 2)
    for s in 0..<3 { try a.step(grads: grads[s], prefix: "grad.") }
    let state = a.exportState()
    #expect(state.step == 3)
    let second = ParameterMemory(Dictionary(uniqueKeysWithValues: first.all.map {
      ($0.key, HostTensor(shape: Self.shapes[$0.key]!, floats: $0.value))
    }))
    let b = try AdamOptimizer(settings: Self.config, parameters: second.buffers, threads: 1)
    try b.importState(state)
    #expect(b.stepCount == 3 && b.exportState() == state)
    for s in 3..<6 { try b.step(grads: grads[s], prefix: "grad.") }
    #expect(second.all == uninterrupted)
  }

  @Test func badGradientsAndStatesAreRefusedBeforeAnythingChanges() throws {
    let (params, grads) = Self.setup()
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(settings: Self.config, parameters: mem.buffers, threads: 2)
    var wrong = grads[0]
    wrong["grad.encoder.bias"] = HostTensor(shape: [8], floats: Array(repeating: 1, count: 8))
    #expect(throws: OptimizerError.tensorMismatch(name: "grad.encoder.bias", expected: "F32 [7]", actual: "F32 [8]")) {
      try opt.step(grads: wrong, prefix: "grad.")
    }
    var bad = grads[0]
    var values = try bad["grad.out.weight"]!.floats
    values[20000] = .nan
    bad["grad.out.weight"] = HostTensor(shape: [40000], floats: values)
    do {
      try opt.step(grads: bad, prefix: "grad.")
      Issue.record("a NaN gradient was accepted")
    } catch {
      guard case .nonFiniteGradient(let name, let norm) = error else { throw error }
      #expect(name == "out.weight" && norm.isNaN)
      #expect("\(error)".contains("\"out.weight\""))
    }
    #expect(opt.stepCount == 0)
    #expect(mem.all == ParameterMemory(params).all)
    var state = opt.exportState()
    state.m["encoder.bias"] = nil
    #expect(throws: OptimizerError.missingState(name: "encoder.bias", what: "m")) { try opt.importState(state) }
    // A checkpoint's adam_step of Int.max: refused, not an overflow trap at the next update.
    var last = opt.exportState()
    last.step = Int.max
    #expect(throws: OptimizerError.self) { try opt.importState(last) }
    #expect(opt.stepCount == 0)
    #expect(throws: OptimizerError.duplicateParameter("a")) {
      let p = UnsafeMutablePointer<Float>.allocate(capacity: 1)
      defer { p.deallocate() }
      _ = try AdamOptimizer(settings: Self.config, parameters: [.init(name: "a", shape: [1], pointer: p),
                                                              .init(name: "a", shape: [1], pointer: p)], threads: 1)
    }
  }

  @Test func gradientPointersGiveTheSameUpdate() throws {
    let (params, grads) = Self.setup()
    let (viaTensors, _) = try Self.run(threads: 2, steps: 1)
    let mem = ParameterMemory(params)
    let opt = try AdamOptimizer(settings: Self.config, parameters: mem.buffers, threads: 2)
    let g = ParameterMemory(Dictionary(uniqueKeysWithValues: grads[0].map { (String($0.key.dropFirst(5)), $0.value) }))
    var table: [String: UnsafePointer<Float>] = [:]
    for b in g.buffers { table[b.name] = UnsafePointer(b.pointer) }
    try opt.step(gradientPointers: table)
    #expect(mem.all == viaTensors)
    #expect(throws: OptimizerError.unknownParameter("nope")) { try opt.step(gradientPointers: ["nope": table.values.first!]) }
  }
}
