// Compiling MQAN's default preset (decaNLP's defaults: d = 200, 3 heads, V = 50,000) into plans:
// the `train` graph (teacher-forced forward pass + loss), the `encode` graph (the encoder for
// decoding) and the `decode-step` graph (one step over key/value caches),
// through the whole pass pipeline (shape inference, DCE, CSE, scheduling, memory planning,
// lowering) with `CompileOptions()` (no per-pass verification in release builds). The DESIGN
// target: every plan compiles in under one second.
//
// Building the graph with the builder is timed separately (`graph ...`); `compile ...` times only
// `compile(graph)` on a graph built in setup.

import Benchmark
import Compiler
import GraphIR
import MQAN

final class Slot<S>: @unchecked Sendable {
  var value: S?
}

let graphs: [(String, @Sendable () throws -> Graph)] = [
  ("train", { try MQANGraph.forward(.default, options: ForwardOptions(decoder: .consistent, loss: true)) }),
  ("encode", { try MQANGraph.encoder(.default, crossAttention: .consistent) }),
  ("decode-step", { try MQANGraph.decodeStep(.default, mode: .consistent) }),
]

let benchmarks: @Sendable () -> Void = {
  let config = Benchmark.Configuration(
    metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
    warmupIterations: 1, maxDuration: .seconds(3), maxIterations: 50)
  for (name, build) in graphs {
    Benchmark("graph \(name) default", configuration: config, closure: { _ throws in
      blackHole(try build())
    })

    let slot = Slot<Graph>()
    Benchmark("compile \(name) default", configuration: config,
              closure: { _ throws in
                blackHole(try compile(slot.value!).plan)
              },
              setup: { slot.value = try build() },
              teardown: { slot.value = nil })
  }
}
