// Finite-difference checks of every backward kernel against its forward kernel: for random x and
// a random upstream g, the analytic gradient of L(x) = f(x) · g (in double) against the central
// difference (L(x + ε e_i) - L(x - ε e_i)) / 2ε at a sample of coordinates i, at smooth points.
import CKernels
import Testing

/// Σ a_i b_i in double.
func dot(_ a: [Float], _ b: [Float]) -> Double {
  precondition(a.count == b.count)
  var s = 0.0
  for i in a.indices { s += Double(a[i]) * Double(b[i]) }
  return s
}

/// Checks `analytic` = ∂loss/∂x at up to `samples` coordinates (all when x is smaller), skipping
/// those `skip` names (non-smooth points). An error within atol + rtol * max(|a|, |fd|) passes.
func checkGradient(
  _ what: String, x: [Float], analytic: [Float], eps: Float = 1e-2, samples: Int = 40, rtol: Double = 1e-2,
  atol: Double = 1e-3, seed: UInt64 = 1, skip: (Int) -> Bool = { _ in false }, loss: ([Float]) -> Double,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(x.count == analytic.count, "\(what): \(x.count) inputs, \(analytic.count) gradients", sourceLocation: sourceLocation)
  guard x.count == analytic.count, !x.isEmpty else { return }
  var rng = SplitMix64(seed: seed)
  let coords = x.count <= samples ? Array(x.indices) : (0..<samples).map { _ in Int.random(in: x.indices, using: &rng) }
  var worst = 0.0, detail = ""
  var checked = 0
  for i in coords where !skip(i) {
    var xp = x, xm = x
    xp[i] += eps
    xm[i] -= eps
    let fd = (loss(xp) - loss(xm)) / (Double(xp[i]) - Double(xm[i]))
    let a = Double(analytic[i])
    let e = abs(a - fd) / (atol + rtol * max(abs(a), abs(fd)))
    checked += 1
    if !(e <= worst) {
      worst = e.isNaN ? .infinity : e
      detail = "at \(i): analytic \(a), finite difference \(fd)"
    }
  }
  #expect(checked > 0, "\(what): no coordinate checked", sourceLocation: sourceLocation)
  #expect(worst <= 1, "\(what): scaled error \(worst) \(detail)", sourceLocation: sourceLocation)
}

@Suite struct BackwardGradientTests {
  @Test func activations() {
    var rng = SplitMix64(seed: 11)
    let n = 50
    let x = randomFloats(n, &rng, in: -3...3), g = randomFloats(n, &rng)
    func forward(_ f: (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64, Int64) -> Void, _ x: [Float]) -> [Float] {
      runFull(count: n, rows: n) { f($0, x, $1, $2) }
    }
    let cases: [(String, UnaryKernel, ActivationBackward)] = [
      ("tanh", mq_tanh, mq_tanh_backward), ("sigmoid", mq_sigmoid, mq_sigmoid_backward), ("relu", mq_relu, mq_relu_backward),
    ]
    for (name, f, back) in cases {
      let y = forward(f, x)
      let dx = runFull(count: n, rows: n) { back($0, g, y, $1, $2) }
      // relu: skip points within ε of the kink.
      checkGradient("\(name)_grad", x: x, analytic: dx, skip: { name == "relu" && abs(x[$0]) < 0.05 }) {
        dot(forward(f, $0), g)
      }
    }
  }

  @Test func sumToIsTheGradientOfBroadcast() {
    var rng = SplitMix64(seed: 12)
    let rows = 6, width = 7
    let x = randomFloats(width, &rng), g = randomFloats(rows * width, &rng)
    let dx = runFull(count: width, rows: width) { mq_sum_rows($0, g, Int64(rows), Int64(width), $1, $2) }
    checkGradient("sum_to", x: x, analytic: dx) { x in
      dot(runFull(count: rows * width, rows: rows) { mq_copy_blocks($0, Int64(width), 0, x, 0, 0, Int64(width), $1, $2) }, g)
    }
  }

  @Test func embeddingGradIsTheGradientOfTheGather() {
    var rng = SplitMix64(seed: 13)
    let vocab = 9, n = 14, e = 4
    let table = randomFloats(vocab * e, &rng), g = randomFloats(n * e, &rng)
    var ids = randomIds(n, below: Int32(vocab), &rng)
    ids[3] = ids[0]
    ids[7] = ids[0] // repeats
    let dt = runFull(count: vocab * e, rows: vocab) { mq_embedding_backward($0, g, ids, Int64(n), Int64(e), $1, $2) }
    checkGradient("embedding_grad", x: table, analytic: dt) { t in
      dot(runFull(count: n * e, rows: n) { mq_embedding($0, t, ids, Int64(e), $1, $2) }, g)
    }
  }

  // linear's and matmul's gradients (linear_grad_input, linear_grad_weight, the transposed matmuls)
  // are checked through the runtime's own kernels in CompilerTests/GradientCheckTests.swift.

  @Test(arguments: [(Float(-1e10), Float(0), false), (-Float.infinity, Float(1e-10), true), (Float(-1e10), Float(1e-10), true)])
  func maskedSoftmax(fill: Float, eps: Float, causal: Bool) {
    var rng = SplitMix64(seed: 15)
    let batch = 2, q = 3, n = 6, rows = batch * q, scale: Float = 0.7
    let x = randomFloats(rows * n, &rng, in: -2...2), g = randomFloats(rows * n, &rng)
    let mask: [Float] = [0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0] // [batch, n]
    func forward(_ x: [Float]) -> [Float] {
      runFull(count: rows * n, rows: rows) {
        mq_masked_softmax($0, x, mask, Int64(q), Int64(n), scale, fill, eps, causal ? 1 : 0, 1, $1, $2)
      }
    }
    let dx = runFull(count: rows * n, rows: rows) { mq_softmax_backward($0, g, forward(x), Int64(n), scale, eps, $1, $2) }
    checkGradient("softmax_grad fill \(fill) eps \(eps) causal \(causal)", x: x, analytic: dx, samples: 100) {
      dot(forward($0), g)
    }
  }

  @Test func layerNorm() {
    var rng = SplitMix64(seed: 16)
    let rows = 5, d = 7, eps: Float = 1e-6
    let x = randomFloats(rows * d, &rng, in: -2...2), g = randomFloats(rows * d, &rng)
    let gamma = randomFloats(d, &rng, in: 0.5...1.5), beta = randomFloats(d, &rng)
    func forward(_ x: [Float], _ gamma: [Float], _ beta: [Float]) -> [Float] {
      runFull(count: rows * d, rows: rows) { mq_layernorm($0, x, gamma, beta, Int64(d), eps, $1, $2) }
    }
    var stats = [Float](repeating: 0, count: 2 * rows)
    let dx = runFull(count: rows * d, rows: rows) { mq_layernorm_backward($0, &stats, g, x, gamma, Int64(d), eps, $1, $2) }
    var dgamma = [Float](repeating: 0, count: d), dbeta = [Float](repeating: 0, count: d)
    mq_layernorm_backward_params(&dgamma, &dbeta, g, x, stats, Int64(rows), Int64(d), 0, Int64(d))
    checkGradient("layer_norm_grad dx", x: x, analytic: dx, samples: 100) { dot(forward($0, gamma, beta), g) }
    checkGradient("layer_norm_grad dgamma", x: gamma, analytic: dgamma) { dot(forward(x, $0, beta), g) }
    checkGradient("layer_norm_grad dbeta", x: beta, analytic: dbeta) { dot(forward(x, gamma, $0), g) }
  }

  @Test func lstmCell() {
    var rng = SplitMix64(seed: 17)
    let b = 2, h = 3
    let gates = randomFloats(b * 4 * h, &rng, in: -2...2), c = randomFloats(b * h, &rng)
    let dh = randomFloats(b * h, &rng), dc = randomFloats(b * h, &rng)
    func loss(_ gates: [Float], _ c: [Float]) -> Double {
      var hn = [Float](repeating: 0, count: b * h), cn = hn
      mq_lstm_cell(&hn, &cn, gates, c, Int64(h), 0, Int64(b))
      return dot(hn, dh) + dot(cn, dc)
    }
    var hn = [Float](repeating: 0, count: b * h), cn = hn
    mq_lstm_cell(&hn, &cn, gates, c, Int64(h), 0, Int64(b))
    var dgates = [Float](repeating: 0, count: b * 4 * h), dcPrev = [Float](repeating: 0, count: b * h)
    mq_lstm_cell_backward(&dgates, &dcPrev, dh, dc, gates, c, cn, Int64(h), 0, Int64(b))
    checkGradient("lstm_cell_grad dgates", x: gates, analytic: dgates) { loss($0, c) }
    checkGradient("lstm_cell_grad dc_prev", x: c, analytic: dcPrev) { loss(gates, $0) }
  }

  /// Repeated ids (inside the context, and shared with the question) and OOV slots (ids >= V).
  @Test func pointerMixture() {
    var rng = SplitMix64(seed: 18)
    let B = 2, T = 3, V = 5, X = 8, Lc = 4, Lq = 3, rows = B * T
    let pv = randomFloats(rows * V, &rng, in: 0...1), gamma = randomFloats(rows, &rng, in: 0.1...0.9)
    let lambda = randomFloats(rows, &rng, in: 0.1...0.9), ac = randomFloats(rows * Lc, &rng, in: 0...1)
    let aq = randomFloats(rows * Lq, &rng, in: 0...1), dP = randomFloats(rows * X, &rng)
    let cids: [Int32] = [2, 6, 2, 0, 7, 7, 1, 4], qids: [Int32] = [6, 3, 2, 5, 7, 0]
    func forward(_ pv: [Float], _ gm: [Float], _ lm: [Float], _ ac: [Float], _ aq: [Float]) -> Double {
      dot(runFull(count: rows * X, rows: rows) {
        mq_pointer_mixture($0, pv, gm, lm, ac, cids, aq, qids, Int64(T), Int64(V), Int64(X), Int64(Lc), Int64(Lq), $1, $2)
      }, dP)
    }
    var dpv = [Float](repeating: 0, count: rows * V), dg = [Float](repeating: 0, count: rows), dl = dg
    var dac = [Float](repeating: 0, count: rows * Lc), daq = [Float](repeating: 0, count: rows * Lq)
    mq_pointer_mixture_backward(&dpv, &dg, &dl, &dac, &daq, dP, pv, gamma, lambda, ac, cids, aq, qids,
                                Int64(T), Int64(V), Int64(X), Int64(Lc), Int64(Lq), 0, Int64(rows))
    checkGradient("mixture_grad dpvocab", x: pv, analytic: dpv) { forward($0, gamma, lambda, ac, aq) }
    checkGradient("mixture_grad dgamma", x: gamma, analytic: dg) { forward(pv, $0, lambda, ac, aq) }
    checkGradient("mixture_grad dlambda", x: lambda, analytic: dl) { forward(pv, gamma, $0, ac, aq) }
    checkGradient("mixture_grad dac", x: ac, analytic: dac) { forward(pv, gamma, lambda, $0, aq) }
    checkGradient("mixture_grad daq", x: aq, analytic: daq) { forward(pv, gamma, lambda, ac, $0) }
  }

  /// Rows with the ignore target (1) drop out of the mean; every coordinate of P is checked.
  @Test func nllLoss() {
    var rng = SplitMix64(seed: 19)
    let rows = 6, X = 5, g: Float = 0.8
    let P = randomFloats(rows * X, &rng, in: 0.2...1)
    let targets: [Int32] = [3, 1, 0, 4, 1, 3]
    func loss(_ P: [Float]) -> Double {
      var sum = 0.0, count: Int64 = 0
      mq_nll(&sum, &count, P, targets, Int64(X), 1, 0, Int64(rows))
      return Double(g) * sum / Double(count)
    }
    let dP = runFull(count: rows * X, rows: rows) { mq_nll_backward($0, P, targets, Int64(X), 1, g, 4, $1, $2) }
    checkGradient("nll_loss_grad", x: P, analytic: dP, eps: 2e-3) { loss($0) }
  }
}
