// Whole steps: MQAN's teacher-forced forward pass and loss, as `mqan profile forward` runs it, the
// training step (forward + backward), and batched decoding (encode + decode-step plans). The forward: the `train` graph
// (`MQANGraph.forward`, decaNLP's consistent decoder, loss on) compiled into a plan, weights from
// PyTorch's default initialisation, a synthetic batch of full-length sequences of random words over
// a 60,000-word vocabulary, run by `Runtime.Executor` on 1 and 2 threads.
//
// Setup (not timed): build and compile the graph, initialise the weights, build the executor, the
// embedding table and the feed, and run one step so the shape bucket (arena, schedule) is bound.
// Each iteration is one `Executor.run(feed)`.
//
// Custom metrics: `tokens/s` (B x (Tc + Tq + Ta) tokens a step) and `FLOP/s` (the plan's FLOP
// formula at the batch's dims, as `mqan profile forward` reports it).

import Benchmark
import Compiler
import Dispatch
import GraphIR
import MQAN
import MQANRuntime

let tokensMetric = BenchmarkMetric.custom("tokens/s", polarity: .prefersLarger, useScalingFactor: false)
let flopsMetric = BenchmarkMetric.custom("FLOP/s", polarity: .prefersLarger, useScalingFactor: false)

/// Words in the vocabulary the synthetic ids come from (`mqan profile forward --vocab`'s default).
let vocabulary = 60_000
let seed: UInt64 = 1

struct Preset {
  var name: String
  var config: ModelConfig
  var batch: Int, context: Int, question: Int, answer: Int
  var maxIterations: Int
  var seconds: Int
  var tokens: Int { batch * (context + question + answer) }
}

let presets: [Preset] = [
  Preset(name: "small", config: .small, batch: 16, context: 64, question: 16, answer: 16,
         maxIterations: 200, seconds: 2),
  Preset(name: "default", config: .default, batch: 32, context: 256, question: 16, answer: 32,
         maxIterations: 5, seconds: 10),
]

final class ForwardState: @unchecked Sendable {
  let executor: Executor
  let feed: [String: HostTensor]
  let flops: Double

  init(_ p: Preset, threads: Int, options: ExecutorOptions, backward: Bool = false) throws {
    let graph = try MQANGraph.forward(p.config, options: ForwardOptions(decoder: .consistent, loss: true))
    var compileOptions = CompileOptions()
    if backward { compileOptions.differentiate = "loss" }
    let plan = try compile(graph, options: compileOptions).plan
    let params = ParameterInit.initialize(p.config, seed: seed)
    executor = try Executor(plan: plan, params: params, threads: threads, options: options)
    let table = EncodedBatch.randomEmbeddings(vocab: vocabulary, config: p.config, seed: seed &+ 1)
    let batch = EncodedBatch.synthetic(batch: p.batch, context: p.context, question: p.question, answer: p.answer,
                                       vocab: vocabulary, config: p.config, seed: seed &+ 2)
    feed = batch.feed(config: p.config, embeddings: table)
    let env = ["B": p.batch, "Tc": p.context, "Tq": p.question, "Ta": p.answer, "Nv": vocabulary,
               "X": feed["limited_to_full"]?.count ?? p.config.generativeVocab]
    flops = Double(try plan.stats.flops.evaluate(env))
    // Bind the shape bucket (arena, schedule, scratch) outside the measurement.
    let out = try executor.run(feed)
    guard let loss = try out["loss"]?.floats.first, loss.isFinite else {
      throw BenchmarkSetupError.badLoss(p.name)
    }
  }
}

enum BenchmarkSetupError: Error, CustomStringConvertible {
  case badLoss(String)
  var description: String {
    switch self {
    case .badLoss(let name): "forward pass of preset \(name) gave no finite loss"
    }
  }
}

final class Slot<S>: @unchecked Sendable {
  var value: S?
}

func forward(_ name: String, _ p: Preset, threads: Int, options: ExecutorOptions = .init(),
             maxIterations: Int? = nil, backward: Bool = false) {
  let slot = Slot<ForwardState>()
  let config = Benchmark.Configuration(
    metrics: [.wallClock, .cpuTotal, .throughput, .peakMemoryResident, .mallocCountTotal, tokensMetric, flopsMetric],
    warmupIterations: 1, maxDuration: .seconds(p.seconds), maxIterations: maxIterations ?? p.maxIterations)
  Benchmark(name, configuration: config,
            closure: { benchmark throws in
              let state = slot.value!
              let t0 = DispatchTime.now().uptimeNanoseconds
              let out = try state.executor.run(state.feed)
              let ns = Double(max(DispatchTime.now().uptimeNanoseconds - t0, 1))
              blackHole(out)
              benchmark.measurement(tokensMetric, Int(Double(p.tokens) / ns * 1e9))
              benchmark.measurement(flopsMetric, Int(state.flops / ns * 1e9))
            },
            setup: { slot.value = try ForwardState(p, threads: threads, options: options, backward: backward) },
            teardown: { slot.value = nil })
}

let benchmarks: @Sendable () -> Void = {
  for p in presets {
    for threads in [1, 2] {
      forward("forward+loss \(p.name) B\(p.batch) Tc\(p.context) Tq\(p.question) Ta\(p.answer) t\(threads)",
              p, threads: threads)
    }
  }
  // The LSTM sequence as the plans run it: all input projections as one GEMM, then per step one
  // GEMM with the gate sum in its epilogue and one lstm_cell; both directions on their own lanes.
  for threads in [1, 2] {
    lstmSequence("lstm sequence bidirectional B32 T256 in600 H100 t\(threads)", threads: threads)
  }
  // Whole training steps (forward, loss and backward; the Adam update is `mqan profile train`'s).
  for p in presets {
    forward("train step \(p.name) B\(p.batch) Tc\(p.context) Tq\(p.question) Ta\(p.answer) t2", p, threads: 2,
            backward: true)
  }
  // Batched greedy and beam-4 decoding of the small preset: encode + 16 decode steps, all run.
  let small0 = presets[0]
  for beam in [1, 4] {
    decode("decode beam \(beam) small B\(small0.batch) Tc\(small0.context) Tq\(small0.question) 16 steps t2", small0,
           beam: beam, steps: 16)
  }
  // The small preset again with every C kernel's `_ref` twin and the naive GEMM (the runtime's
  // `useReference`), for the end-to-end gain of the optimized kernels.
  let small = presets[0]
  forward("forward+loss_ref small B\(small.batch) Tc\(small.context) Tq\(small.question) Ta\(small.answer) t1",
          small, threads: 1, options: ExecutorOptions(useReference: true), maxIterations: 50)
}

/// Encode + `steps` decode steps for B x `beam` hypotheses (no early stop), as `mqan profile decode`.
func decode(_ name: String, _ p: Preset, beam: Int, steps: Int) {
  let slot = Slot<(MQANDecoder, [String: HostTensor])>()
  let sentences = BenchmarkMetric.custom("sentences/s", polarity: .prefersLarger, useScalingFactor: false)
  let config = Benchmark.Configuration(metrics: [.wallClock, .peakMemoryResident, sentences], warmupIterations: 1,
                                       maxDuration: .seconds(p.seconds), maxIterations: 50)
  Benchmark(name, configuration: config,
            closure: { benchmark throws in
              let (decoder, feed) = slot.value!
              let options = BeamSearchOptions(beamSize: beam, maxLength: steps, nBest: 1, eos: -1,
                                              initToken: Int32(p.config.initToken))
              let t0 = DispatchTime.now().uptimeNanoseconds
              blackHole(try decoder.beamSearch(feed, options: options))
              let ns = Double(max(DispatchTime.now().uptimeNanoseconds - t0, 1))
              benchmark.measurement(sentences, Int(Double(p.batch) / ns * 1e9))
            },
            setup: {
              let decoder = try MQANDecoder(config: p.config, params: ParameterInit.initialize(p.config, seed: seed),
                                            threads: 2)
              let table = EncodedBatch.randomEmbeddings(vocab: vocabulary, config: p.config, seed: seed &+ 1)
              let batch = EncodedBatch.synthetic(batch: p.batch, context: p.context, question: p.question, answer: 2,
                                                 vocab: vocabulary, config: p.config, seed: seed &+ 2)
              slot.value = (decoder, batch.feed(config: p.config, embeddings: table))
            },
            teardown: { slot.value = nil })
}

/// A bidirectional LSTM layer (MQAN's context BiLSTM after coattention: 600 inputs, 100 hidden per
/// direction) over B = 32 sequences of 256 steps, compiled with the compiler's default passes.
func lstmSequence(_ name: String, threads: Int) {
  let slot = Slot<(Executor, [String: HostTensor])>()
  let config = Benchmark.Configuration(metrics: [.wallClock], warmupIterations: 1, maxDuration: .seconds(3),
                                       maxIterations: 50)
  Benchmark(name, configuration: config,
            closure: { _ throws in
              let (executor, feed) = slot.value!
              blackHole(try executor.run(feed))
            },
            setup: {
              let (b, t, inp, h) = (32, 256, 600, 100)
              let g = GraphBuilder(name: "bilstm")
              let x = try g.input("x", .f32, [.sym("B"), .sym("T"), Dim(inp)])
              var params: [String: HostTensor] = [:]
              var outs: [Value] = []
              for dir in ["f", "r"] {
                let gx = try g.linear(x, g.param("\(dir).wih", [Dim(4 * h), Dim(inp)]), g.param("\(dir).bih", [Dim(4 * h)]))
                let zero = try g.zeros([.sym("B"), Dim(h)])
                let r = try g.scan(name: dir, seqs: [gx], carries: [zero, zero], reverse: dir == "r") { body, s throws(GraphError) in
                  let gates = try body.add(s.seqs[0], body.linear(s.carries[0], body.param("\(dir).whh", [Dim(4 * h), Dim(h)]),
                                                                  body.param("\(dir).bhh", [Dim(4 * h)])))
                  let cell = try body.lstmCell(gates: gates, c: s.carries[1])
                  return ([cell.h, cell.c], [cell.h])
                }
                outs.append(r.outputs[0])
                for (n, shape) in [("wih", [4 * h, inp]), ("bih", [4 * h]), ("whh", [4 * h, h]), ("bhh", [4 * h])] {
                  params["\(dir).\(n)"] = HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { Float($0 % 13) / 130 - 0.05 })
                }
              }
              try g.output("y", g.concat(outs, axis: -1))
              let executor = try Executor(plan: compile(g.finish()).plan, params: params, threads: threads)
              let feed = ["x": HostTensor(shape: [b, t, inp], floats: (0..<(b * t * inp)).map { Float($0 % 17) / 17 - 0.5 })]
              _ = try executor.run(feed)
              slot.value = (executor, feed)
            },
            teardown: { slot.value = nil })
}
