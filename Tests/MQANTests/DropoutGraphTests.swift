import Compiler
import GraphIR
import Runtime
import Testing
@testable import MQAN

/// Training-mode dropout: at decaNLP's sites, seeded, and off in evaluation.
@Suite struct DropoutGraphTests {
  func lossAndGrad(_ fx: ParityFixture, dropout: Float?, seed: Int32) throws -> (Float, [Float]) {
    var opts = ForwardOptions(decoder: .consistent, loss: true)
    opts.dropout = dropout
    var co = CompileOptions()
    co.differentiate = "loss"
    let plan = try compile(MQANGraph.forward(fx.config, options: opts), options: co).plan
    var feed = try fx.inputs()
    if (dropout ?? 0) > 0 { feed["dropout_seed"] = HostTensor(shape: [1], int32s: [seed]) }
    let out = try Executor(plan: plan, params: fx.params, threads: 2).run(feed)
    return (try #require(out["loss"]).floats[0], try #require(out["grad.out.weight"]).floats)
  }

  @Test func dropoutIsSeededAndOffAtZero() throws {
    let fx = try ParityTests.fixture("tiny")
    let expected = try fx.file.tensor("expected.loss").floats[0]
    let (off, _) = try lossAndGrad(fx, dropout: nil, seed: 0)
    #expect(abs(off - expected) < 1e-5)
    let (zero, _) = try lossAndGrad(fx, dropout: 0, seed: 5)
    #expect(zero == off, "rate 0 builds the evaluation graph")
    let (a, ga) = try lossAndGrad(fx, dropout: 0.2, seed: 5)
    let (b, gb) = try lossAndGrad(fx, dropout: 0.2, seed: 5)
    let (c, _) = try lossAndGrad(fx, dropout: 0.2, seed: 6)
    #expect(a == b && ga == gb, "same seed, same draw")
    #expect(a != c, "another seed, another draw")
    #expect(a != off)
  }

  @Test func everyDropoutSiteIsInTheGraph() throws {
    var opts = ForwardOptions(decoder: .consistent, loss: true)
    opts.dropout = 0.2
    let g = try MQANGraph.forward(.tiny, options: opts)
    let masks = g.nodes.filter { $0.op == .dropoutMask }
    // 3 embedding projections, coattention, 2 encoder inputs, per encoder layer 2 residuals + FFN
    // input (2 encoders x 2 layers), the decoder input, per decoder layer 3 residuals + FFN input,
    // and 5 per-step masks of the pointer decoder.
    #expect(masks.count == 3 + 1 + 2 + 2 * 2 * 3 + 1 + 2 * 4 + 5)
    #expect(masks.contains { $0.attrs.float("p") == 0.3 })
    try g.verify()
  }
}
