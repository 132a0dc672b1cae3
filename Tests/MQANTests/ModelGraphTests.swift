import GraphIR
import Testing
@testable import MQAN

@Suite struct ModelGraphTests {
  @Test func defaultParameterCountMatchesDecaNLP() {
    #expect(MQANParameters.table(.default).count == 137)
    #expect(MQANParameters.count(.default) == 14_469_902)
  }

  @Test(arguments: ["tiny", "small", "default"])
  func forwardGraphVerifies(preset: String) throws {
    let cfg = try #require(ModelConfig.presets[preset])
    for mode in DecoderMode.allCases {
      let g = try MQANGraph.forward(cfg, options: ForwardOptions(decoder: mode, loss: mode == .consistent,
                                                                 probs: true, activations: true))
      try g.verify()
      // Every param the graph names is in decaNLP's table with the same shape.
      let table = Dictionary(uniqueKeysWithValues: MQANParameters.table(cfg).map { ($0.name, $0.shape) })
      func checkParams(_ g: Graph) {
        for n in g.nodes {
          if n.op == .param, let name = n.attrs.string("name") {
            #expect(table[name]?.map { Dim($0) } == n.types[0].shape, "\(name)")
          }
          if let body = n.attrs.graph("body") { checkParams(body) }
        }
      }
      checkParams(g)
    }
  }

  @Test func badConfigNamesTheField() {
    var cfg = ModelConfig.tiny
    cfg.dimension = 7
    #expect(throws: ModelError.self) { try MQANGraph.forward(cfg) }
    do { _ = try MQANGraph.forward(cfg) } catch { #expect(error.description.contains("dimension")) }
  }
}
